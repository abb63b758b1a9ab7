"""Palette files, formats and exports through ``submit`` on the real workers."""

import json

import numpy as np
import pytest

from pipeline.palette_files import export_bytes
from tests.photo_sets import output_colors, small_photo_folder

pytestmark = [pytest.mark.integration]

BRAND = np.array([[250, 250, 245], [15, 15, 20], [190, 40, 40], [40, 80, 170], [100, 150, 70]])


@pytest.mark.slow  # a job on the session's two real workers
def test_submit_applies_a_palette_file_in_webp_with_exports(cluster, tmp_path):
    photos = small_photo_folder(tmp_path / "in", 12, seed=5)
    brand = tmp_path / "brand.ase"
    brand.write_bytes(export_bytes("ase", BRAND.astype(np.uint8), "brand"))
    out = tmp_path / "out"
    receipt = json.loads(
        cluster.cli(
            "submit", photos, "-o", out, "--palette", brand, "--format", "webp",
            "--export", "gpl,css", "--json", check=True,
        ).stdout
    )  # fmt: skip
    final = cluster.wait_until_final(receipt["job"])
    assert final["done"] == 12 and final["failed"] == 0
    allowed = {tuple(row) for row in BRAND.tolist()}
    documents = list(out.rglob("*.palette.json"))
    assert len(documents) == 12
    for path in documents:
        document = json.loads(path.read_text())
        assert document["format"] == "webp" and document["timings_ms"]["fit"] == 0
        assert output_colors(out / document["output"]) <= allowed
        assert path.with_name(path.name.replace(".palette.json", ".gpl")).is_file()
        assert path.with_name(path.name.replace(".palette.json", ".css")).is_file()


def test_submit_refuses_a_shared_palette_for_now(cluster, tmp_path):
    photos = small_photo_folder(tmp_path / "in", 2)
    result = cluster.cli("submit", photos, "-o", tmp_path / "out", "--palette", "shared")
    assert result.returncode == 2 and "--palette shared" in result.stderr
    assert not (tmp_path / "out").exists()
