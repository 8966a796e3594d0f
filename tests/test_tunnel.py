"""Exercise 3 with real parts: TensorBoard on 127.0.0.1, reached through a real `ssh -N -L` and a real sshd.

The fixtures (harness/fixtures_tunnel.py) run the target's own tensorboard.sh and tunnel.sh, so
`pytest --target exercises` puts the student's scripts through the very same checks.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from harness import processes
from harness.exercises.tunnel import parts
from harness.exercises.tunnel.checks import exec_problems, require_ssh_parts, taken_port_problems
from harness.requires import require

from broken_copies import broken_solution

SCRIPTS = {"tensorboard.sh": [], "tunnel.sh": ["student@127.0.0.1"]}  # each with the arguments a student gives
LOSS_TAG = "train_loss"  # what fastai's TensorBoardCallback calls the smoothed training loss


def get_json(port: int, path: str) -> object:
    status, body = processes.http_get(f"http://127.0.0.1:{port}{path}")
    assert status == 200, f"GET {path} answered {status}: {body[:200]!r}"
    return json.loads(body)


def test_dashboard_page_answers_through_the_tunnel(tunnel: processes.Running) -> None:
    status, body = processes.http_get(f"http://127.0.0.1:{tunnel.port}/")
    assert status == 200, f"the tunnel's local port answered HTTP {status}, not TensorBoard's page (200)"
    assert b"<title>TensorBoard</title>" in body, "the tunnel's local port answers, but not with TensorBoard's page: " \
        "does tunnel.sh forward LOCAL_PORT to localhost:REMOTE_PORT on the login node?"


def test_scalars_api_lists_the_training_loss_through_the_tunnel(tunnel: processes.Running,
                                                                tensorboard_server: processes.Running) -> None:
    tags = get_json(tunnel.port, "/data/plugin/scalars/tags")
    runs = sorted(run for run, run_tags in tags.items() if LOSS_TAG in run_tags)
    assert runs, f"no run has the tag {LOSS_TAG!r}; TensorBoard lists {tags}"
    query = urllib.parse.urlencode({"run": runs[0], "tag": LOSS_TAG})
    points = get_json(tunnel.port, f"/data/plugin/scalars/scalars?{query}")
    steps, values = [p[1] for p in points], [p[2] for p in points]
    assert len(points) >= 2, f"{LOSS_TAG} has {len(points)} points"
    assert steps == sorted(steps) and len(set(steps)) == len(steps), f"{LOSS_TAG}'s steps are not one per step: {steps}"
    assert all(math.isfinite(v) and v > 0 for v in values), f"{LOSS_TAG} holds values that are no loss: {values}"
    # the tunnel carries exactly what TensorBoard serves on the login node's loopback
    assert points == get_json(tensorboard_server.port, f"/data/plugin/scalars/scalars?{query}"), \
        "the tunnel carries other figures than TensorBoard serves on the login node"


def test_tensorboard_listens_on_loopback_only(tensorboard_server: processes.Running) -> None:
    port = tensorboard_server.port
    assert processes.listening_addresses(port) == {"127.0.0.1"}, \
        f"TensorBoard listens on {processes.listening_addresses(port)}: on a shared login node use --host 127.0.0.1"
    for address in processes.non_loopback_addresses():
        assert not processes.accepts(port, address), f"TensorBoard answers on {address}:{port}, open to other users"


def tensorboard_keeps_its_port_after_a_kill(script: Path, logdir: Path, tmp_path: Path) -> bool:
    with parts.start_tensorboard(script, logdir, log=tmp_path / "tensorboard.log") as board:
        return parts.port_after_killing_the_script(board)


def test_stopping_tensorboard_sh_stops_tensorboard(target_dir: Path, tensorboard_logdir: Path,
                                                   tmp_path: Path) -> None:
    problems = exec_problems(tensorboard_keeps_its_port_after_a_kill(target_dir / "tensorboard.sh",
                                                                     tensorboard_logdir, tmp_path))
    assert not problems, problems[0]


@pytest.mark.broken_copy
def test_exec_check_catches_a_tensorboard_sh_without_exec(course_root: Path, tensorboard_logdir: Path,
                                                          tmp_path: Path) -> None:
    script = broken_solution(course_root, "tensorboard.sh", tmp_path, ("exec tensorboard", "tensorboard"))
    problems = exec_problems(tensorboard_keeps_its_port_after_a_kill(script, tensorboard_logdir, tmp_path))
    assert problems and "exec" in problems[0], f"the check found {problems}"
    print(problems[0])


def test_tunnel_fails_with_one_clear_error_when_sshd_is_down(target_dir: Path, tmp_path: Path) -> None:
    require_ssh_parts()
    with parts.start_sshd(tmp_path / "sshd") as server:
        pass  # started and stopped: its port is now closed
    assert not processes.accepts(server.port), f"the stopped test sshd still answers on {server.port}"
    result = subprocess.run(parts.tunnel_command(target_dir / "tunnel.sh", server),
                            env=parts.tunnel_env(processes.free_port(), processes.free_port()),
                            capture_output=True, text=True, timeout=30)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0, "tunnel.sh reported success with no sshd to talk to"
    assert len(errors) == 1 and "Connection refused" in errors[0], \
        f"tunnel.sh without an sshd should say ssh's one line 'Connection refused', it said: {errors[:3]}"


def test_tunnel_stops_with_an_error_when_its_local_port_is_taken(target_dir: Path, sshd: parts.SshServer,
                                                                 tensorboard_server: processes.Running,
                                                                 tmp_path: Path) -> None:
    """The lesson asks tunnel.sh for `-o ExitOnForwardFailure=yes`: with the laptop's port taken (on 127.0.0.1 and
    ::1, every address ssh may use), ssh must stop with its error rather than hang on as a tunnel to nowhere."""
    outcome = parts.tunnel_on_a_taken_port(target_dir / "tunnel.sh", sshd, tensorboard_server.port,
                                           tmp_path / "tunnel.log")
    problems = taken_port_problems(outcome)
    assert not problems, problems[0]
    print(f"tunnel.sh stopped with exit code {outcome.returncode} after {outcome.waited_s:.1f} s")


@pytest.mark.broken_copy
def test_taken_port_check_catches_a_tunnel_without_exit_on_forward_failure(
        course_root: Path, sshd: parts.SshServer, tensorboard_server: processes.Running, tmp_path: Path) -> None:
    script = broken_solution(course_root, "tunnel.sh", tmp_path, ("-o ExitOnForwardFailure=yes ", ""))
    outcome = parts.tunnel_on_a_taken_port(script, sshd, tensorboard_server.port, tmp_path / "tunnel.log")
    problems = taken_port_problems(outcome)
    assert problems and "ExitOnForwardFailure" in problems[0], f"the check found {problems}:\n{outcome.output}"
    print(problems[0])


def test_every_started_process_is_gone_afterwards_even_when_a_test_fails(
        target_dir: Path, tensorboard_logdir: Path, tmp_path: Path) -> None:
    require_ssh_parts()
    runs: list[processes.Running] = []
    with pytest.raises(RuntimeError, match="a failing test"):
        with parts.start_sshd(tmp_path / "sshd") as server, \
                parts.start_tensorboard(target_dir / "tensorboard.sh", tensorboard_logdir,
                                        log=tmp_path / "tensorboard.log") as board, \
                parts.start_tunnel(target_dir / "tunnel.sh", server, board.port, log=tmp_path / "tunnel.log") as tube:
            assert processes.http_get(f"http://127.0.0.1:{tube.port}/")[0] == 200, "the tunnel carries no page"
            server.run.group_pids |= processes.family(server.run.pid)  # sshd's child serving the tunnel, too
            runs = [server.run, board, tube]
            # group_pids also holds short-lived helpers seen at start (a wrapper's own checks): count the living
            alive = {pid for run in runs for pid in run.group_pids if processes.pid_alive(pid)}
            assert len(alive) >= 5, f"only {len(alive)} processes alive: sshd + its session, tensorboard + " \
                "its data server, ssh"
            assert all(processes.pid_alive(run.pid) for run in runs), "a started process died before the test ended"
            raise RuntimeError("a failing test")
    left = {run.name: sorted(pid for pid in run.group_pids if processes.pid_alive(pid)) for run in runs}
    assert not any(left.values()), f"still running after teardown: {left}"
    assert all(run.proc.returncode is not None for run in runs), "a started process was not waited for"
    for port in (server.port, board.port, tube.port):
        assert not processes.accepts(port), f"something still listens on {port}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_bad_port_is_one_clear_line(target_dir: Path, tmp_path: Path, name: str) -> None:
    env = parts.env_with_venv({"LOGDIR": str(tmp_path), "PORT": "80", "LOCAL_PORT": "http", "REMOTE_PORT": "9999"})
    result = subprocess.run(["bash", str(target_dir / name), *SCRIPTS[name]],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, f"{name} with a bad port exited {result.returncode}, not 2: {result.stderr!r}"
    assert result.stderr.count("\n") == 1 and re.match(r"error: \w*PORT='(80|http)'", result.stderr), \
        f"{name} with a bad port should say one line `error: PORT='80' ...`, it said: {result.stderr!r}"


def _untouched(script: Path) -> bool:
    return bool(re.search(r'^echo "TODO: .*exit 3$', script.read_text(), flags=re.M))


@pytest.mark.starting_point
@pytest.mark.parametrize("name", SCRIPTS)
def test_untouched_exercise_exits_with_one_todo_line(course_root: Path, tmp_path: Path, name: str) -> None:
    """What `pytest --target exercises` shows a student who has not started: one line saying what to do."""
    script = course_root / "exercises" / name
    require(_untouched(script), f"exercises/{name} has been worked on (`pytest --target exercises` checks it)")
    env = parts.env_with_venv({"LOGDIR": str(tmp_path), "PORT": str(processes.free_port()),
                               "LOCAL_PORT": str(processes.free_port()), "REMOTE_PORT": str(processes.free_port())})
    result = subprocess.run(["bash", str(script), *SCRIPTS[name]], env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 3, result
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"TODO: {name}: "), result.stderr


def _example_for(example: str, sshd: parts.SshServer, local_port: int, remote_port: int) -> str:
    """The book's `~/.ssh/config` entries pointed at the test sshd: every host name, user, key and port ours."""
    ours = {"HostName": "127.0.0.1", "User": sshd.user, "IdentityFile": str(sshd.key),
            "LocalForward": f"{local_port} localhost:{remote_port}"}
    config = re.sub(r"^(\s+)(HostName|User|IdentityFile|LocalForward) .*$",
                    lambda m: f"{m[1]}{m[2]} {ours[m[2]]}", example, flags=re.M)
    pinned = (f"    Port {sshd.port}\n    UserKnownHostsFile {sshd.known_hosts}\n    GlobalKnownHostsFile /dev/null\n"
              "    StrictHostKeyChecking yes\n    BatchMode yes\n    IdentitiesOnly yes\n    ConnectTimeout 10\n")
    return re.sub(r"^(Host .*\n)", lambda m: m[1] + pinned, config, flags=re.M)


def test_ssh_config_example_keeps_the_tunnel_out_of_the_login_entry(course_root: Path) -> None:
    """`ssh jureca` (any login node) forwards nothing; `jureca-tunnel` forwards, to the same one node as `jureca01`."""
    example = course_root / "solutions" / "ssh_config.example"

    def resolved(host: str) -> dict[str, list[str]]:
        lines = subprocess.run(["ssh", "-G", "-F", str(example), host], capture_output=True, text=True,
                               check=True).stdout.splitlines()
        found: dict[str, list[str]] = {}
        for line in lines:
            key, _, value = line.partition(" ")
            found.setdefault(key, []).append(value)
        return found

    login, node, tunnel = resolved("jureca"), resolved("jureca01"), resolved("jureca-tunnel")
    assert login["hostname"] == ["jureca.fz-juelich.de"] and "localforward" not in login, \
        f"`jureca` should be the common name and forward nothing: {login.get('hostname')}, {login.get('localforward')}"
    assert "localforward" not in node, f"`jureca01` should forward nothing: {node.get('localforward')}"
    assert tunnel["localforward"] == ["9999 [localhost]:9999"] and tunnel["exitonforwardfailure"] == ["yes"], \
        f"`jureca-tunnel` should forward 9999 and stop when it cannot: {tunnel.get('localforward')}"
    assert tunnel["hostname"] == node["hostname"] != login["hostname"], \
        "the tunnel must end on one login node, the one `ssh jureca01` logs in to, not on any behind jureca"


def test_ssh_config_example_is_the_same_tunnel(course_root: Path, sshd: parts.SshServer,
                                               tensorboard_server: processes.Running, tmp_path: Path) -> None:
    """The `~/.ssh/config` form from the book, pointed at the test sshd, carries TensorBoard like tunnel.sh, and a
    second login (`ssh jureca`) works while the tunnel holds its port.

    The broken copy, the tunnel's LocalForward in the `jureca` entry as the course had it, makes that second login
    fail with ssh's "Could not request local forwarding" (ExitOnForwardFailure), which is why the entries are apart."""
    example = (course_root / "solutions" / "ssh_config.example").read_text()
    local_port = processes.free_port()
    (tmp_path / "config").write_text(_example_for(example, sshd, local_port, tensorboard_server.port))
    login = ["ssh", "-F", str(tmp_path / "config"), "jureca", "true"]
    with processes.started("ssh -N jureca-tunnel", ["ssh", "-F", str(tmp_path / "config"), "-N", "jureca-tunnel"],
                       tmp_path / "ssh.log", lambda: processes.answers_http(f"http://127.0.0.1:{local_port}/"),
                       timeout=30):
        assert LOSS_TAG in json.dumps(get_json(local_port, "/data/plugin/scalars/tags")), \
            "the ssh_config tunnel does not carry TensorBoard's training loss"
        second = subprocess.run(login, capture_output=True, text=True, timeout=60)
        assert second.returncode == 0, f"`ssh jureca` failed while the tunnel is open: {second.stderr}"

        # the broken copy: the tunnel's lines in the login entry
        forward = re.search(r"^\s+LocalForward .*\n(?:\s+ExitOnForwardFailure .*\n)?", example, flags=re.M)
        assert forward is not None, "ssh_config.example holds no LocalForward line"
        broken = example.replace(forward[0], "")
        broken = re.sub(r"^(Host jureca jureca01\n)", lambda m: m[1] + forward[0], broken, flags=re.M)
        (tmp_path / "broken").write_text(_example_for(broken, sshd, local_port, tensorboard_server.port))
        refused = subprocess.run(["ssh", "-F", str(tmp_path / "broken"), "jureca", "true"], capture_output=True,
                                 text=True, timeout=60)
        assert refused.returncode != 0 and "Could not request local forwarding" in refused.stderr, \
            f"the broken layout should make a second login fail: exit {refused.returncode}, {refused.stderr!r}"
