"""``--palette per-image|shared|FILE``, ``--format`` and ``--export`` through ``colorquant run``."""

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.palette_files import export_bytes
from pipeline.params import QuantizeParams
from pipeline.shared import write_shared_palette
from tests.conftest import run_cli
from tests.photo_sets import (
    check_shared_outputs,
    expected_shared_palette,
    output_colors,
    small_photo_folder,
)

BRAND = np.array([[255, 255, 255], [20, 20, 20], [200, 30, 40], [30, 90, 180], [90, 140, 60]])


def run_json(*args) -> dict:
    result = run_cli("run", *map(str, args), "-j", "2", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["gpl", "act", "ase"])
def test_a_palette_file_is_applied_as_it_is_with_no_fit(tmp_path, kind):
    photos = small_photo_folder(tmp_path / "in", 6)
    brand = tmp_path / f"brand.{kind}"
    brand.write_bytes(export_bytes(kind, BRAND.astype(np.uint8), "brand"))
    report = run_json(photos, "-o", tmp_path / "out", "--palette", brand)
    assert report["done"] == 6
    allowed = {tuple(row) for row in BRAND.tolist()}
    for document_path in (tmp_path / "out").rglob("*.palette.json"):
        document = json.loads(document_path.read_text())
        assert document["palette"] == str(brand)
        assert document["timings_ms"]["fit"] == 0  # no fit ran
        assert [entry["rgb"] for entry in document["colors"]] == BRAND.tolist()
        assert output_colors(tmp_path / "out" / document["output"]) <= allowed


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "no such palette file"), (b"GIMP Palette\n1 2\n", "not a valid .gpl palette")],
)
def test_a_bad_palette_file_is_a_usage_error_before_any_image(tmp_path, content, reason):
    photos = small_photo_folder(tmp_path / "in", 2)
    brand = tmp_path / "brand.gpl"
    if content is not None:
        brand.write_bytes(content)
    result = run_cli("run", photos, "-o", tmp_path / "out", "--palette", brand)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_earlier_runs_palette_json_is_a_palette_file(tmp_path):
    photos = small_photo_folder(tmp_path / "in", 4)
    run_json(photos, "-o", tmp_path / "first", "-k", "8")
    earlier = tmp_path / "first" / "set0" / "photo0000.palette.json"
    report = run_json(photos, "-o", tmp_path / "again", "--palette", earlier)
    assert report["done"] == 4
    allowed = {tuple(e["rgb"]) for e in json.loads(earlier.read_text())["colors"]}
    for image in (tmp_path / "again").rglob("*.png"):
        assert output_colors(image) <= allowed


def test_a_rerun_with_new_exports_writes_them_and_leaves_the_images(tmp_path):
    photos = small_photo_folder(tmp_path / "in", 4)
    out = tmp_path / "out"
    run_json(photos, "-o", out, "-k", "8")
    image = out / "set0" / "photo0000.png"
    before = os.stat(image).st_mtime_ns
    assert run_json(photos, "-o", out, "-k", "8")["skipped"] == 4
    report = run_json(photos, "-o", out, "-k", "8", "--export", "gpl,css")
    assert report["done"] == 4 and report["skipped"] == 0
    assert os.stat(image).st_mtime_ns == before  # only the missing exports were written
    document = json.loads((out / "set0" / "photo0000.palette.json").read_text())
    gpl = (out / "set0" / "photo0000.gpl").read_text()
    assert gpl.startswith("GIMP Palette") and len(gpl.splitlines()) == 3 + len(document["colors"])
    assert (out / "set0" / "photo0000.css").is_file()
    assert document["exports"] == ["gpl", "css"]  # the JSON lists the files beside it
    assert run_json(photos, "-o", out, "-k", "8", "--export", "gpl,css")["skipped"] == 4


@pytest.mark.parametrize("fmt", ["webp", "gif"])
def test_formats_name_their_outputs_and_are_redone_on_a_format_change(tmp_path, fmt):
    photos = small_photo_folder(tmp_path / "in", 3)
    out = tmp_path / "out"
    run_json(photos, "-o", out, "-k", "8")
    report = run_json(photos, "-o", out, "-k", "8", "--format", fmt)
    assert report["done"] == 3
    document = json.loads((out / "set0" / "photo0000.palette.json").read_text())
    assert document["output"] == f"set0/photo0000.{fmt}" and document["format"] == fmt
    assert output_colors(out / document["output"]) <= {tuple(e["rgb"]) for e in document["colors"]}


@pytest.mark.slow  # 200 photos counted, fitted and labelled, twice, and recounted by the test
def test_shared_palette_run_uses_one_palette_equal_to_the_fit_of_merged_counts(tmp_path):
    photos = small_photo_folder(tmp_path / "in", 200)
    out = tmp_path / "out"
    report = run_json(photos, "-o", out, "-k", "24", "--palette", "shared", "--export", "gpl")
    assert report["done"] == 200 and report["failed"] == 0
    check_shared_outputs(out, expected_shared_palette(photos, 24), 200)
    assert (out / "palette.gpl").read_text().startswith("GIMP Palette")
    again = run_json(photos, "-o", out, "-k", "24", "--palette", "shared", "--export", "gpl")
    assert again["skipped"] == 200  # same inputs, same merged counts, same palette


def test_a_shared_palette_redone_without_an_export_removes_the_old_one(tmp_path):
    """-k 4 --export gpl,css, then -k 2 --export css: OUT/palette.gpl holds the 4 colours, so
    it goes; a palette file the palette.json never listed (a person's) stays."""
    merged = SimpleNamespace(images=1, pixels=4)
    colors = BRAND[:4].astype(np.uint8)
    write_shared_palette(tmp_path, colors, QuantizeParams(k=4, exports=("gpl", "css")), merged, "a")
    (tmp_path / "palette.act").write_bytes(b"mine")
    write_shared_palette(tmp_path, colors[:2], QuantizeParams(k=2, exports=("css",)), merged, "b")
    assert sorted(os.listdir(tmp_path)) == ["palette.act", "palette.css", "palette.json"]
    assert (tmp_path / "palette.act").read_bytes() == b"mine"


def test_shared_palette_refuses_a_palette_json_it_did_not_write(tmp_path):
    photos = small_photo_folder(tmp_path / "in", 2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "palette.json").write_text("{}")
    result = run_cli("run", photos, "-o", tmp_path / "out", "--palette", "shared")
    assert result.returncode == 2 and "did not write it" in result.stderr
    assert (tmp_path / "out" / "palette.json").read_text() == "{}"


def test_shared_palette_refuses_an_input_whose_exports_would_land_on_the_shared_ones(tmp_path):
    photos = small_photo_folder(tmp_path / "in", 2)
    (photos / "set0" / "photo0000.png").rename(photos / "Palette.png")
    out = tmp_path / "out"
    # An unreachable broker: submit refuses first, before any connection.
    env = {"COLORQUANT_BROKER_URL": "redis://127.0.0.1:9/0"}
    for command in ("run", "submit"):
        result = run_cli(command, photos, "-o", out, "--palette", "shared", "--export", "gpl",
                         env=env)  # fmt: skip
        assert result.returncode == 2 and "Palette.png" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    # Without exports nothing clashes: Palette.png, Palette.palette.json beside palette.json.
    done = run_cli("run", photos, "-o", out, "--palette", "shared", "-j", "1", "--json")
    assert done.returncode == 0, done.stderr
    names = {path.name for path in out.iterdir()}
    assert {"palette.json", "Palette.png", "Palette.palette.json"} <= names
