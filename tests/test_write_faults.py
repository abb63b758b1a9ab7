"""A full disk or a read-only OUT costs the images it hits, leaves nothing partial, and the
batch goes on. These tests mount a real tmpfs (root only, as in CI)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from pipeline.discover import InputItem
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file
from pipeline.save import temp_path
from tests.conftest import run_cli, skip_or_fail
from tests.odd_files import photo


@pytest.fixture
def small_disk(tmp_path):
    """A real 160 KiB tmpfs: room for a few outputs, then ENOSPC."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0:
        skip_or_fail("mounting a tmpfs needs root (CI runs as root)")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        skip_or_fail(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _inputs(folder: Path, count: int) -> list[InputItem]:
    folder.mkdir()
    items = []
    for index in range(count):
        name = f"p{index:02d}.png"
        Image.fromarray(photo(size=(160, 120), seed=index)).save(folder / name)
        items.append(InputItem(str(folder), name, name, f"p{index:02d}.png"))
    return items


def test_full_disk_fails_those_images_with_a_reason_and_leaves_nothing_partial(
    small_disk, tmp_path
):
    items = _inputs(tmp_path / "in", 12)
    results = [quantize_file(item, small_disk, QuantizeParams(k=64)) for item in items]
    statuses = [result.status for result in results]
    assert "done" in statuses and "failed" in statuses, statuses
    for result in results:
        png = small_disk / result.output
        palette = small_disk / result.output.replace(".png", ".palette.json")
        if result.status == "failed":
            assert result.error == "cannot write output: No space left on device"
            assert result.retryable
            assert not palette.exists()
        else:
            assert json.loads(palette.read_text())["output"] == result.output
            with Image.open(png) as image:
                image.load()
    assert [p.name for p in small_disk.iterdir() if "tmp" in p.name] == []


def test_read_only_out_fails_each_image_and_the_cli_says_so_up_front(small_disk, tmp_path):
    items = _inputs(tmp_path / "in", 2)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = quantize_file(items[0], small_disk, QuantizeParams(k=8))
    assert result.status == "failed"
    assert result.error == "cannot write output: Read-only file system"
    assert not result.retryable
    completed = run_cli("run", tmp_path / "in", "-o", small_disk)
    assert completed.returncode == 2
    assert "not writable" in completed.stderr and "Traceback" not in completed.stderr
    assert list(small_disk.iterdir()) == []


def test_a_killed_writers_temp_file_is_removed_when_the_output_is_written_again(tmp_path):
    items = _inputs(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    stale = temp_path(out / "p00.png")  # its one temp name: the next writer finds it directly
    stale.write_bytes(b"half a png")
    assert quantize_file(items[0], out, QuantizeParams(k=8)).status == "done"
    assert not stale.exists()
    assert sorted(p.name for p in out.iterdir()) == ["p00.palette.json", "p00.png"]
