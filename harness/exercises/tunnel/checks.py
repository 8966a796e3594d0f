"""Exercise 3's checks, as functions that return problems: the lesson's rules for tunnel.sh and tensorboard.sh."""
from __future__ import annotations

from harness.exercises.tunnel import parts
from harness.processes import Outcome
from harness.requires import require_command


def require_ssh_parts() -> None:
    """The real OpenSSH server and client."""
    require_command(parts.SSHD, "install the Debian package openssh-server")
    require_command("ssh", "install the Debian package openssh-client")
    require_command("ssh-keygen", "install the Debian package openssh-client")


def taken_port_problems(outcome: Outcome) -> list[str]:
    """The lesson's rule for tunnel.sh: when its local port is taken on the laptop, ssh stops with an error
    (`-o ExitOnForwardFailure=yes`) instead of hanging on as a tunnel that carries nothing."""
    said = parts.FORWARD_FAILED in outcome.output
    last = next((line for line in reversed(outcome.output.splitlines()) if line.strip()), "no output")
    if outcome.returncode is None and said:
        return ["tunnel.sh kept running although its local port was taken, so the tunnel carries nothing and "
                "nobody is told: make ssh stop with an error then (-o ExitOnForwardFailure=yes)"]
    if outcome.returncode is None:
        return [f"tunnel.sh neither stopped nor reported the taken local port within {outcome.waited_s:.0f} s: {last}"]
    if outcome.returncode == 0:
        return ["tunnel.sh ended with exit code 0 although its local port was taken: it must fail (ssh -N -o "
                "ExitOnForwardFailure=yes -L ...)"]
    if not said:
        return [f"tunnel.sh failed (exit code {outcome.returncode}) before it tried the local port: {last}"]
    return []


def exec_problems(port_still_open: bool) -> list[str]:
    """The lesson's rule for tensorboard.sh: `exec`, so that stopping the script (kill PID) stops TensorBoard."""
    if port_still_open:
        return ["tensorboard.sh: after its own process was stopped, TensorBoard still answered on its port: start it "
                "with exec, so that the script becomes TensorBoard and stopping one stops the other"]
    return []
