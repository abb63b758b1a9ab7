"""The first ``colorquant run`` on a machine: the cost of compiling the image loops.

``python -m benchmarks.first_run`` (about a minute) runs ``colorquant run`` on two tiny PNGs
with an empty ``NUMBA_CACHE_DIR`` (a machine's first run: every loop is compiled), then again
on the now warm cache, at ``-j 1`` and ``-j 2``; it records the wall time and the CPU time of
the run and its pool processes, and writes ``results/first_run.md`` (a README section).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: Where the README section goes (benchmarks/run.py includes it).
SECTION = Path(__file__).parent / "results" / "first_run.md"

#: Pool sizes measured.
JOBS = (1, 2)

#: Side of the tiny test images, in pixels (the compile cost does not depend on it).
SIDE = 48


def _tiny_images(folder: Path) -> None:
    for index in range(2):
        pixels = np.random.default_rng(index).integers(0, 256, (SIDE, SIDE + 16, 3), np.uint8)
        Image.fromarray(pixels).save(folder / f"tiny{index}.png")


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(source: Path, out: Path, jobs: int, cache: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``colorquant run`` (CPU: it and its pool processes)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    command = [sys.executable, "-m", "cli", "run", str(source), "-o", str(out), "-j", str(jobs)]
    cpu, start = _cpu_of_children(), time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start, _cpu_of_children() - cpu


def measure() -> list[tuple[int, str, float, float]]:
    """(jobs, cold or warm, wall s, CPU s) for each pool size: a cold run, then a warm one."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        source = root / "in"
        source.mkdir()
        _tiny_images(source)
        for jobs in JOBS:
            cache = root / f"numba-{jobs}"
            for state in ("cold", "warm"):
                wall, cpu = timed_run(source, root / f"out-{jobs}-{state}", jobs, cache)
                rows.append((jobs, state, wall, cpu))
    return rows


#: The same measurement before the compile lock and the trimmed loops (commit 89a95ef), taken
#: side by side with the code after them (2026-12-05 14:04Z, load average 1.3; two rounds each).
BEFORE = (
    "Before (89a95ef: every pool process compiled every loop itself, silently), run by turns",
    "with the code after it (`/usr/bin/time`, means of two rounds): cold `-j 1` 13.4 s wall,",
    "13.5 s CPU (after: 9.1 s, 9.1 s); cold `-j 2` 13.9 s wall, 27.3 s CPU (after: 5.9 s,",
    "9.9 s). Under a load average of 3, cold `-j 2` took 35.7 s wall before. Now the process",
    "that compiles says so in one line on stderr; each module's loops are compiled by one",
    "process while the others compile the rest or wait on its lock (`pipeline/first_compile.py`);",
    "and the loops avoid numba features slow to compile (slice and fancy-index assignments,",
    "the generic argsort, cumsum and searchsorted). The outputs are the same bytes.",
)


def render(rows, load: tuple[float, float, float]) -> str:
    lines = [
        "## First run: compiling the image loops (`python -m benchmarks.first_run`)",
        "",
        "`colorquant run` of two tiny PNGs with an empty `NUMBA_CACHE_DIR` (cold: a machine's",
        "first run compiles every loop, once) and again (warm). CPU: the run and its pool",
        f"processes. Measured {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
        f"load average [{', '.join(f'{x:.1f}' for x in load)}].",
        "",
        "| -j | cache | wall s | CPU s |",
        "|---|---|---|---|",
    ]
    lines += [f"| {jobs} | {state} | {wall:.1f} | {cpu:.1f} |" for jobs, state, wall, cpu in rows]
    lines += ["", *BEFORE]
    return "\n".join(lines) + "\n"


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    text = render(measure(), os.getloadavg())
    SECTION.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
