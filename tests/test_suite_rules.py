"""Rules the suite keeps about itself: it runs the working tree, and never times assertions.

A wall-clock threshold in an assertion fails on a slow or busy machine and passes a slow bug on a
fast one; tests wait for a condition with a generous deadline instead. This module reads every
test file's syntax tree and fails on any assertion that compares a clock difference.
"""

import ast
import os
import stat
import sys
from pathlib import Path

from tests.conftest import colorquant_launcher, run_cli

TESTS = Path(__file__).resolve().parent

#: Clock functions whose differences measure wall-clock (or CPU) time.
CLOCKS = frozenset(
    {"time", "perf_counter", "perf_counter_ns", "monotonic", "monotonic_ns", "process_time"}
)


def _is_clock_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    return name in CLOCKS


def _mentions(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(sub, ast.Name) and sub.id in names for sub in ast.walk(node))


def _is_duration(node: ast.AST, clocks: set[str], durations: set[str]) -> bool:
    """True for an expression that holds a clock difference: ``clock() - start``, a name bound
    to one, or anything computed from those."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in durations:
            return True
        if isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Sub):
            sides = (sub.left, sub.right)
            if any(_is_clock_call(side) or _mentions(side, clocks) for side in sides):
                return True
    return False


def timed_assertions(source: str) -> list[int]:
    """Line numbers of assertions that compare a clock difference with anything."""
    tree = ast.parse(source)
    clocks: set[str] = set()  # names bound to a clock reading
    durations: set[str] = set()  # names bound to a difference of clock readings
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            if _is_clock_call(node.value):
                clocks |= names
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_duration(node.value, clocks, durations):
            durations |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        for compare in (sub for sub in ast.walk(node.test) if isinstance(sub, ast.Compare)):
            operands = [compare.left, *compare.comparators]
            if any(_is_duration(operand, clocks, durations) for operand in operands):
                found.append(node.lineno)
                break
    return found


def test_the_detector_finds_timed_assertions_and_spares_deadlines():
    timed = (
        "import time\n"
        "started = time.monotonic()\n"
        "assert time.monotonic() - started < 50\n"
        "t0 = time.perf_counter()\n"
        "elapsed = time.perf_counter() - t0\n"
        "assert elapsed <= 1.5, 'too slow'\n"
        "assert (time.time() - t0) * 1000 < LIMIT_MS\n"
    )
    assert timed_assertions(timed) == [3, 6, 7]
    deadline = (
        "import time\n"
        "deadline = time.monotonic() + 60\n"
        "while time.monotonic() < deadline:\n"
        "    pass\n"
        "assert done, f'timed out after {time.monotonic() - deadline:.0f} s'\n"
        "assert count < 50\n"
    )
    assert timed_assertions(deadline) == []


def test_no_test_asserts_on_wall_clock_time():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for line in timed_assertions(path.read_text()):
            offenders.append(f"{path.relative_to(TESTS.parent)}:{line}")
    assert offenders == [], f"assertions on elapsed time (wait for an event instead): {offenders}"


def test_the_cli_under_test_is_this_environments_not_the_first_on_path(tmp_path):
    """A stale ``colorquant`` earlier on PATH must not be what the suite runs."""
    stale = tmp_path / "colorquant"
    stale.write_text("#!/bin/sh\necho 'colorquant stale-copy'\n")
    stale.chmod(stale.stat().st_mode | stat.S_IXUSR)
    path = f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"
    completed = run_cli("--version", env={"PATH": path})
    assert completed.returncode == 0, completed.stderr
    assert "stale-copy" not in completed.stdout
    launcher = colorquant_launcher()
    assert Path(launcher[0]).parent == Path(sys.executable).parent
