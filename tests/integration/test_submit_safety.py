"""The worker side of "never destroy what colorquant did not write", on real workers."""

import json
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
