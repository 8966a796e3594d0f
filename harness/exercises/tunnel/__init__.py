"""Exercise 3: TensorBoard on the login node, seen from the laptop through an `ssh -N -L` tunnel.

What the harness knows about it, by concern: `parts` (sshd, TensorBoard and the tunnel as real processes),
`checks` (the lesson's rules as functions that return problems), `fixtures` (the pytest fixtures).
"""
from __future__ import annotations

from harness.exercises import Exercise

EXERCISE = Exercise(
    key="tunnel", number=3, title="TensorBoard through an SSH tunnel", day=1, lesson="book/tensorboard.md",
    programs=("tensorboard.sh", "tunnel.sh", "ssh_config.example"), tests=("tests/test_tunnel.py",), wait_target_s=30.0,
)
