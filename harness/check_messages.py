"""Which asserts of an exercise's checks could show a student raw Python instead of the course's words.

A self-check cuts each failure to the first line of its message. An `assert x == y` without a message shows
Python's comparison (`assert 0.0 > 0`); a message that is only some output (`result.stderr`) shows whatever that
output's first line was. A message must be words: a string, an f-string, a sum that starts with one, a check's
own line (`problems[0]`, `failed[0]`), or `why_failed(...)` (the student's file:line and exception).
"""
from __future__ import annotations

import ast
from pathlib import Path

# Tests with these markers never count for a self-check (harness/selfcheck.py): their asserts may be terse
NOT_IN_A_SELF_CHECK = {"broken_copy", "starting_point", "slurm", "root"}


def _is_words(message: ast.expr | None) -> bool:
    if message is None:
        return False
    if isinstance(message, ast.Constant):
        return isinstance(message.value, str)
    if isinstance(message, ast.JoinedStr):
        return True
    if isinstance(message, ast.BinOp) and isinstance(message.op, ast.Add):
        return _is_words(message.left)
    if isinstance(message, ast.Call) and ast.unparse(message.func) == "str" and len(message.args) == 1:
        message = message.args[0]  # `str(problems[0])`: a problem object's own line (pytest shows others' repr)
    if isinstance(message, ast.Subscript) and isinstance(message.value, ast.Name):
        return True  # a line of a list a check made (`problems[0]`, `failed[0]`)
    return ast.unparse(message).startswith("why_failed(")


def _markers(function: ast.FunctionDef) -> set[str]:
    names = set()
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(ast.unparse(target).rsplit(".", 1)[-1])
    return names


def raw_asserts(path: Path) -> list[str]:
    """`FILE:LINE assert ...` for every assert in `path` that a self-check may show and that carries no words."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
        if function.name.startswith("test_") and _markers(function) & NOT_IN_A_SELF_CHECK:
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Assert) and not _is_words(node.msg):
                found.append(f"{path.name}:{node.lineno} assert {ast.unparse(node.test)[:70]}")
    return sorted(set(found))
