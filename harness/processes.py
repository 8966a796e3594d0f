"""Processes that serve: started in a process group of their own, waited for until they really serve, and stopped
whole (children included) on the way out, pass or fail; and what listens on which port.

Not an exercise: any exercise's servers (an sshd, TensorBoard, an `ssh -L` tunnel) use it. A
process that dies while we wait raises `ProcessFailed` carrying its own last words.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence


class ProcessFailed(RuntimeError):
    """A process exited, or never became ready, before it served."""


@dataclass
class Running:
    """A started process: its PID (also its process-group id) and the file that collects its output."""
    name: str
    proc: subprocess.Popen
    log: Path
    port: int | None = None
    group_pids: set[int] = field(default_factory=set)  # every PID seen in its family; all dead after stop

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self, last: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-last:] if self.log.exists() else ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_table() -> dict[int, tuple[int, int]]:
    """{pid: (parent pid, process group)} of every live process (zombies count as gone), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                state, ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]  # after "pid (comm) "
                if state != "Z":
                    table[int(entry.name)] = (int(ppid), int(pgrp))
    return table


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def family(pid: int) -> set[int]:
    """Everything a started process stands for: itself, its process group, and all its descendants, even
    those that moved to a session of their own (sshd's per-connection children do)."""
    table = _process_table()
    found = {p for p, (_, pgrp) in table.items() if pgrp == pid or p == pid}
    frontier = set(found)
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def stop_group(run: Running, grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after `grace` seconds, reap the leader."""
    run.group_pids |= family(run.pid)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, sig)
        for pid in run.group_pids:  # descendants in sessions of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.proc.wait(timeout=0.1)
            if run.proc.poll() is not None and not any(pid_alive(p) for p in run.group_pids):
                return


@contextlib.contextmanager
def started(name: str, cmd: Sequence[str], log: Path, ready: Callable[[], bool], timeout: float,
             env: dict[str, str] | None = None, cwd: Path | None = None) -> Iterator[Running]:
    """Start `cmd` in its own process group, wait until `ready()`, yield it, then stop the whole group."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True)
    run = Running(name, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise ProcessFailed(f"{name} exited with code {proc.returncode} before it was ready: "
                                    f"{run.output().strip() or '(no output)'}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{name} was not ready after {timeout:.0f} s: {run.output().strip()}")
            time.sleep(0.2)
        run.group_pids |= family(proc.pid)
        yield run
    finally:
        stop_group(run)


def accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of a GET; a connection error raises OSError."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def answers_http(url: str) -> bool:
    try:
        return http_get(url, timeout=2)[0] == 200
    except OSError:
        return False


@contextlib.contextmanager
def port_taken(port: int) -> Iterator[list[str]]:
    """Hold `port` on every loopback address where `ssh -L PORT:...` may listen, as another program on the laptop
    would: 127.0.0.1 and, where this machine has IPv6, ::1 (ssh binds "localhost", which is both; holding only
    127.0.0.1 lets it fall back to ::1 and succeed). Yields the addresses held."""
    held: list[socket.socket] = []
    try:
        for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((address, port))
                sock.listen(1)
            except OSError:  # no IPv6 here: then ssh cannot listen there either
                sock.close()
                continue
            held.append(sock)
        if not held:
            raise ProcessFailed(f"could not take port {port} on 127.0.0.1 or ::1 for the test")
        yield [sock.getsockname()[0] for sock in held]
    finally:
        for sock in held:
            sock.close()


@dataclass
class Outcome:
    """How a program that should give up on its own ended: its exit code (None: still running when stopped)."""
    returncode: int | None
    output: str
    waited_s: float


def run_until_it_gives_up(name: str, cmd: Sequence[str], log: Path, said: str, env: dict[str, str],
                          timeout: float = 30, grace: float = 10) -> Outcome:
    """Run `cmd` until it exits, or until it has printed `said` and then not exited within `grace` seconds (it
    hangs on: the outcome's returncode is None). `timeout` bounds the wait for either; its whole group is stopped.
    A program that gives up exits milliseconds after its message, so `grace` is no race with a busy machine."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    run = Running(name, proc, log)
    started = time.monotonic()
    try:
        deadline = started + timeout
        while proc.poll() is None and said not in run.output(10_000) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
        run.group_pids |= family(proc.pid)
        return Outcome(proc.poll(), run.output(), time.monotonic() - started)
    finally:
        stop_group(run)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of TCP sockets listening on `port`, read from /proc/net/tcp and tcp6."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError), open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                hex_addr, hex_port = local.split(":")
                if state != "0A" or int(hex_port, 16) != port:  # 0A = LISTEN
                    continue
                raw = bytes.fromhex(hex_addr)
                # the kernel prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(socket.inet_ntop(family, raw))
    return found


def non_loopback_addresses() -> list[str]:
    """This machine's IPv4 addresses other than 127.0.0.0/8 (what another user or host could connect to)."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
    except FileNotFoundError:  # no iproute2: the listening-socket check alone has to do
        return []
    addresses = [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]
    return [a for a in addresses if not a.startswith("127.")]
