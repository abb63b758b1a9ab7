"""The worker side of "never destroy what colorquant did not write", on real workers."""

import json
import os
import shutil

import pytest
from PIL import Image

from harness.images import sample_photo_path


@pytest.mark.slow
def test_a_worker_never_replaces_a_file_colorquant_did_not_write(cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(sample_photo_path("china.jpg"), folder / "china.jpg")
    shutil.copyfile(sample_photo_path("flower.jpg"), folder / "flower.jpg")
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "china.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(mine)
    original = mine.read_bytes()
    waited = cluster.cli("submit", folder, "-o", out, "--wait", "--json", "-k", "8")
    assert waited.returncode == 1, waited.stderr
    report = json.loads(waited.stdout)
    assert (report["done"], report["failed"]) == (1, 1)
    assert report["failures"][0]["path"] == "china.jpg"
    assert str(mine) in report["failures"][0]["error"]
    assert mine.read_bytes() == original


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_submitted_as_run_handles_it(cluster, tmp_path):
    """``caf\\xe9.png`` (Latin-1 bytes) goes through Redis and a Celery message and back: the
    job runs, its outputs are byte for byte those of ``run``, and status names the file."""
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (24, 16), (40, 90, 160)).save(folder / name)
    Image.new("RGB", (24, 16), (200, 40, 30)).save(folder / "plain.png")
    (folder / os.fsdecode(b"bro\xefen.png")).write_bytes(b"not a PNG")
    waited = cluster.cli("submit", folder, "-o", tmp_path / "out", "--wait", "--json", "-k", "4")
    assert waited.returncode == 1, waited.stderr  # the broken file fails, nothing else
    report = json.loads(waited.stdout)
    assert (report["done"], report["failed"]) == (2, 1)
    assert [os.fsencode(f["path"]) for f in report["failures"]] == [b"bro\xefen.png"]
    shown = cluster.cli("status", report["job"])
    assert shown.returncode == 0 and os.fsdecode(b"bro\xefen.png") in shown.stdout, shown.stderr
    ran = cluster.cli("run", folder, "-o", tmp_path / "ran", "-k", "4")
    assert ran.returncode == 1, ran.stderr
    for made in (tmp_path / "ran").glob("*.png"):
        assert (tmp_path / "out" / made.name).read_bytes() == made.read_bytes(), made.name
    for made in (tmp_path / "ran").glob("*.palette.json"):
        submitted = json.loads((tmp_path / "out" / made.name).read_bytes())
        for field in ("source", "output", "colors", "metrics"):
            assert submitted[field] == json.loads(made.read_bytes())[field], made.name
    # run keeps its job record in OUT/.colorquant; a submitted job keeps it in Redis.
    names = [sorted((tmp_path / out).glob("[!.]*")) for out in ("out", "ran")]
    assert [path.name for path in names[0]] == [path.name for path in names[1]]
