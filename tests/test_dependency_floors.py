"""The declared dependency floors admit only versions that have the APIs the code calls.

``pip install .`` into an environment that already holds an older NumPy keeps it when the floor
allows it; the first large image would then fail inside the quantizer with an AttributeError.
"""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: NumPy functions first released in NumPy 2.0 (its release notes), as ``np.NAME``.
NUMPY_2_FUNCTIONS = frozenset({"bitwise_count", "unique_counts", "unique_values", "vecdot"})


def _declared_floor(package: str) -> tuple[int, ...]:
    """The ``>=`` floor of ``package`` in pyproject's dependencies, as a version tuple."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        match = re.fullmatch(rf"{package}(?:\[[^\]]*\])?>=([0-9.]+)", requirement.replace(" ", ""))
        if match:
            return tuple(int(part) for part in match.group(1).split("."))
    raise AssertionError(f"{package} has no >= floor in pyproject.toml")


def _numpy_2_calls() -> set[str]:
    """``module: function`` for each NumPy-2.0-only function the installed packages call."""
    calls = set()
    for package in ("pipeline", "worker", "cli"):
        for source in (ROOT / package).rglob("*.py"):
            for name in re.findall(r"\bnp\.(\w+)\(", source.read_text()):
                if name in NUMPY_2_FUNCTIONS:
                    calls.add(f"{source.relative_to(ROOT)}: np.{name}")
    return calls


def test_the_numpy_floor_has_every_numpy_function_the_code_calls():
    calls = _numpy_2_calls()
    if calls:
        assert _declared_floor("numpy") >= (2, 0), f"NumPy 2.0 functions in use: {sorted(calls)}"


def test_the_floor_reader_reads_pyproject():
    """The check above is live: it finds the floors that are there."""
    assert _declared_floor("numpy") >= (1,)
    assert _declared_floor("celery") >= (5,)
