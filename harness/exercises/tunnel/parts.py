"""Exercise 3's real parts: an OpenSSH server run as the current user, TensorBoard started by tensorboard.sh, and the
`ssh -N -L` tunnel of tunnel.sh. Every `start_*` is a context manager (harness.processes.started): it starts its
process in a new process group, waits until it really serves (sshd shows its banner, TensorBoard answers HTTP, the
tunnel carries a connection), and on the way out stops the whole group (TensorBoard's data server and sshd's
session children included), pass or fail.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from harness.processes import (Outcome, ProcessFailed, Running, accepts, answers_http, free_port, port_taken,
                               run_until_it_gives_up, started)

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")  # sshd refuses to start without its privilege-separation directory

def _shows_ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


# --- sshd -------------------------------------------------------------------------------------------

@dataclass
class SshServer:
    """What a client needs to log in to the test sshd: no password, no prompt, a host key it knows."""
    port: int
    user: str
    key: Path
    known_hosts: Path
    run: Running | None = None

    @property
    def destination(self) -> str:
        return f"{self.user}@127.0.0.1"

    def client_options(self) -> list[str]:
        """ssh options that pin this server: its port, our key, its host key and nothing from ~/.ssh."""
        return ["-F", "/dev/null", "-p", str(self.port), "-i", str(self.key),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10"]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, capture_output=True)


def _sshd_config(home: Path, port: int) -> str:
    return "\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {home / 'host_ed25519'}",
        f"PidFile {home / 'sshd.pid'}",
        f"AuthorizedKeysFile {home / 'authorized_keys'}",
        "UsePAM no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "StrictModes no",
        "AllowTcpForwarding local",
        "X11Forwarding no",
        "PrintMotd no",
        "LogLevel VERBOSE",
        "",
    ])


@contextlib.contextmanager
def start_sshd(home: Path, port: int | None = None, timeout: float = 20) -> Iterator[SshServer]:
    """An OpenSSH server on 127.0.0.1 that lets the current user in with a key generated in `home`.

    It runs as whoever starts it: OpenSSH lets a normal user run sshd on a high port with a host key of its own,
    and then logs in only that user, which is all a tunnel test needs. No root on a student's laptop."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if os.geteuid() == 0:  # root's sshd separates privileges and insists on this folder; a user's sshd needs none
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    for key in ("host_ed25519", "user_ed25519"):
        if not (home / key).exists():
            _keygen(home / key)
    (home / "authorized_keys").write_text((home / "user_ed25519.pub").read_text())
    host_key = (home / "host_ed25519.pub").read_text().split()
    known_hosts = home / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    config = home / "sshd_config"
    config.write_text(_sshd_config(home, port))
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        raise ProcessFailed(f"sshd rejects its configuration {config}: {check.stderr.strip()}")
    server = SshServer(port=port, user=_user_name(), key=home / "user_ed25519", known_hosts=known_hosts)
    with started("sshd", [SSHD, "-D", "-e", "-f", str(config)], home / "sshd.log",
                 lambda: _shows_ssh_banner(port), timeout) as run:
        server.run = run
        yield server


def _user_name() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


# --- TensorBoard --------------------------------------------------------------------------------------

def env_with_venv(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a student's shell with the course venv active: its bin/ first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@contextlib.contextmanager
def start_tensorboard(script: Path, logdir: Path, port: int | None = None, log: Path | None = None,
                      timeout: float = 60) -> Iterator[Running]:
    """Run the exercise's tensorboard.sh over `logdir` and wait until its page answers on 127.0.0.1."""
    port = port or free_port()
    log = log or Path(tempfile.mkdtemp(prefix="tensorboard-")) / "tensorboard.log"
    env = env_with_venv({"LOGDIR": str(logdir), "PORT": str(port)})
    with started(f"{script.name} (TensorBoard)", ["bash", str(script.resolve())], log,
                 lambda: answers_http(f"http://127.0.0.1:{port}/"), timeout, env=env, cwd=logdir.parent) as run:
        run.port = port
        yield run


def port_after_killing_the_script(run: Running, timeout: float = 60) -> bool:
    """SIGTERM to the script's own PID (not its group), as `kill PID` on the login node does; once that process has
    ended, is its port still open? With `exec`, that PID is TensorBoard itself and the port closes with it; without,
    the shell dies and TensorBoard lives on as an orphan that keeps the port."""
    os.kill(run.pid, signal.SIGTERM)
    run.proc.wait(timeout=timeout)
    return accepts(run.port)


# --- the tunnel ---------------------------------------------------------------------------------------

def tunnel_command(script: Path, server: SshServer) -> list[str]:
    """How the harness calls the exercise's tunnel.sh: destination first, then the options for our sshd."""
    return ["bash", str(script.resolve()), server.destination, *server.client_options()]


def tunnel_env(local_port: int, remote_port: int) -> dict[str, str]:
    """The environment tunnel.sh reads its two ports from."""
    return env_with_venv({"LOCAL_PORT": str(local_port), "REMOTE_PORT": str(remote_port)})


@contextlib.contextmanager
def start_tunnel(script: Path, server: SshServer, remote_port: int, local_port: int | None = None,
                 log: Path | None = None, timeout: float = 30) -> Iterator[Running]:
    """Run the exercise's tunnel.sh (`ssh -N -L`) and wait until the local end carries an HTTP answer."""
    local_port = local_port or free_port()
    log = log or Path(tempfile.mkdtemp(prefix="tunnel-")) / "tunnel.log"
    env = tunnel_env(local_port, remote_port)
    with started(f"{script.name} (ssh -N -L)", tunnel_command(script, server), log,
                 lambda: answers_http(f"http://127.0.0.1:{local_port}/"), timeout, env=env) as run:
        run.port = local_port
        yield run


# A local forward that cannot bind its port: what OpenSSH prints (an error, or fatal with ExitOnForwardFailure)
FORWARD_FAILED = "Could not request local forwarding"


def tunnel_on_a_taken_port(script: Path, server: SshServer, remote_port: int, log: Path) -> Outcome:
    """tunnel.sh with its LOCAL_PORT held on every loopback address: it should stop with ssh's error."""
    local_port = free_port()
    with port_taken(local_port):
        return run_until_it_gives_up(f"{script.name} (port {local_port} taken)", tunnel_command(script, server),
                                     log, FORWARD_FAILED, tunnel_env(local_port, remote_port))
