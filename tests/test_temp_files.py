"""Temp files of the atomic writes: a killed writer's temp is gone by the end of a run, a live
writer's is never taken from it, and a crowded OUT folder changes no result."""

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.discover import InputWalk, resolve_roots
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file
from pipeline.save import TEMP_MARKER, remove_temps_in, temp_path, write_atomic
from tests.conftest import run_cli
from tests.odd_files import photo
from tests.temp_writers import killed_writer, start_writer, temps_in

#: Empty files in the crowded OUT folder: a flat folder of 100,000 photos' outputs.
CROWD = 100_000


def photos(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for index in range(count):
        Image.fromarray(photo(size=(64, 48), seed=index)).save(folder / f"p{index}.png")
    return folder


def test_a_killed_writers_temp_is_gone_at_the_end_of_a_run(tmp_path):
    inputs = photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    stale = killed_writer(out / "p0.png")
    other_name = out / f".p1.png{TEMP_MARKER}from-an-older-version"
    other_name.write_bytes(b"half")
    done = run_cli("run", inputs, "-o", out, "-k", "8", "-j", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 2
    assert not stale.exists() and not other_name.exists()
    assert temps_in(out) == []
    with Image.open(out / "p0.png") as result:
        result.load()
        assert result.size == (64, 48)


def test_the_next_writer_waits_for_a_live_one_and_never_takes_its_temp(tmp_path):
    final = tmp_path / "a.png"
    writer = start_writer(final, "hold")
    try:
        assert writer.stdout.readline().strip() == "holding"
        assert remove_temps_in(tmp_path) == 0  # a sweep keeps a live writer's temp
        assert temp_path(final).exists()
        second = threading.Thread(target=write_atomic, args=(final, b"whole file"))
        second.start()
        second.join(0.5)
        assert second.is_alive() and not final.exists()  # waiting for the lock
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(60) == 0  # dies without finishing: its half file stays behind
        second.join(60)
        assert not second.is_alive()
    finally:
        writer.kill()
        writer.wait()
    assert final.read_bytes() == b"whole file"
    assert temps_in(tmp_path) == []


def test_a_sweep_removes_dead_writers_temps_only(tmp_path):
    dead = killed_writer(tmp_path / "dead.png")
    older = tmp_path / f".x.png{TEMP_MARKER}abc123"
    older.write_bytes(b"half")
    mine = tmp_path / "kept.png.colorquant-tmp-not-hidden"  # not our name: never touched
    mine.write_bytes(b"user data")
    assert remove_temps_in(tmp_path) == 2
    assert not dead.exists() and not older.exists() and mine.exists()


def _comparable(out: Path, name: str) -> tuple:
    document = json.loads((out / f"{name}.palette.json").read_text())
    del document["timings_ms"], document["produced_by"]
    with Image.open(out / f"{name}.png") as result:
        return document, np.asarray(result.convert("RGB"))


@pytest.fixture
def crowded(tmp_path):
    """An empty folder for the crowd, in RAM when the machine has /dev/shm (making 100,000 files
    on a busy disk takes minutes; the code under test does the same on either)."""
    if os.access("/dev/shm", os.W_OK):
        folder = Path(tempfile.mkdtemp(prefix="colorquant-crowd-", dir="/dev/shm"))
        yield folder
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield tmp_path / "crowded"


@pytest.mark.slow  # 100,000 files made and listed, and a `colorquant run`
def test_a_crowded_out_folder_changes_no_result(tmp_path, crowded):
    inputs = photos(tmp_path / "in", 3)
    empty = tmp_path / "empty"
    crowded.mkdir(exist_ok=True)
    for index in range(CROWD):
        os.close(os.open(crowded / f"f{index:06d}.dat", os.O_CREAT | os.O_WRONLY, 0o644))
    for item in InputWalk(resolve_roots([inputs], empty)):  # the reference, in this process
        assert quantize_file(item, empty, QuantizeParams(k=8)).status == "done"
    done = run_cli("run", inputs, "-o", crowded, "-k", "8", "-j", "1", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 3
    for index in range(3):
        document, pixels = _comparable(empty, f"p{index}")
        crowded_document, crowded_pixels = _comparable(crowded, f"p{index}")
        assert crowded_document == document
        np.testing.assert_array_equal(crowded_pixels, pixels)
    # Nothing of the crowd was touched; the hidden state folder holds the run's own record.
    listed = [name for name in os.listdir(crowded) if name != ".colorquant"]
    assert len(listed) == CROWD + 6
    assert temps_in(crowded) == []


def test_writing_twice_leaves_one_whole_file(tmp_path):
    final = tmp_path / "b.json"
    for content in (b"first", b"second, longer"):
        write_atomic(final, content)
    assert final.read_bytes() == b"second, longer" and temps_in(tmp_path) == []
