"""The first run on a machine compiles the image loops once, says so on stderr, and gives the
same results as later runs; a process holding the compile lock that dies frees it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pipeline.first_compile import COMPILING_LINE, LOCK_NAME, _locked
from tests.conftest import file_digests, run_cli


# Slow: the run compiles every loop from an empty cache (about 15 s of CPU), which is the point.
@pytest.mark.slow
def test_first_run_says_it_compiles_and_later_runs_do_not(tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    pixels = np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(source / "tiny.png")
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba")}

    runs = ("first", "second")
    first, second = (
        run_cli("run", source, "-o", tmp_path / run, "-j", "1", "--json", env=env) for run in runs
    )

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stderr.count(COMPILING_LINE) == 1
    assert COMPILING_LINE not in first.stdout  # --json output stays a document
    assert COMPILING_LINE not in second.stderr
    images = [file_digests(tmp_path / run)["tiny.png"] for run in runs]
    assert images[0] == images[1]
    palettes = [json.loads((tmp_path / run / "tiny.palette.json").read_text()) for run in runs]
    assert palettes[0]["colors"] == palettes[1]["colors"]


def test_a_dead_lock_holder_frees_the_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"handle = open({str(tmp_path / LOCK_NAME)!r}, 'a')\n"
            "fcntl.flock(handle, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with _locked(str(tmp_path), wait=False) as held:
            assert not held  # another process compiles: this one moves on, or waits
        holder.kill()  # a compiler that crashes
        holder.wait()
        with _locked(str(tmp_path), wait=False) as held:
            assert held  # the kernel released the dead holder's lock
    finally:
        holder.kill()
        holder.stdout.close()
