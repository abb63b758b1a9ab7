"""``pipeline.process.quantize_file`` on its own: one image in, one outcome out, never a raise.

The runners and the Celery task all call this one function, so its outcomes (done, skipped,
failed with a one-line reason, retryable or not) are tested here directly, without a pool or a
broker in between.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.discover import InputItem, output_paths
from pipeline.job import Status
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file
from tests.conftest import sample_photo_path

#: Small and quick, but a real photo: a crop of china.jpg.
CROP = (100, 50, 260, 170)

PARAMS = QuantizeParams(k=16)


@pytest.fixture
def photo(tmp_path: Path) -> InputItem:
    root = tmp_path / "in"
    (root / "trip").mkdir(parents=True)
    Image.open(sample_photo_path("china.jpg")).crop(CROP).save(root / "trip" / "a.jpg")
    return InputItem(str(root), "trip/a.jpg", "trip/a.jpg", "trip/a.png")


def written(out: Path) -> list[str]:
    """Every file below OUT (none when OUT was never made)."""
    return sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())


def test_a_photo_is_quantized_and_described(photo, tmp_path):
    out = tmp_path / "out"
    result = quantize_file(photo, out, PARAMS, job="job1")
    assert (result.status, result.error, result.retryable) == (Status.DONE, None, False)
    assert written(out) == ["trip/a.palette.json", "trip/a.png"]
    with Image.open(out / "trip/a.png") as png:
        assert png.mode == "P" and png.size == (CROP[2] - CROP[0], CROP[3] - CROP[1])
        entries = len(png.getpalette()) // 3
    palette = json.loads((out / "trip/a.palette.json").read_text())
    assert (palette["source"], palette["output"], palette["k"]) == ("trip/a.jpg", "trip/a.png", 16)
    assert palette["produced_by"]["job"] == "job1"
    assert result.colors == len(palette["colors"]) == entries <= 16
    assert result.psnr == palette["metrics"]["psnr"] > 20


def test_an_unchanged_output_is_skipped_untouched(photo, tmp_path):
    out = tmp_path / "out"
    first = quantize_file(photo, out, PARAMS, job="first")
    stamp = os.stat(out / "trip/a.png").st_mtime_ns
    again = quantize_file(photo, out, PARAMS, job="second")
    assert again.status == Status.SKIPPED
    assert (again.psnr, again.colors) == (first.psnr, first.colors)
    assert os.stat(out / "trip/a.png").st_mtime_ns == stamp


def test_a_redelivery_finding_its_own_jobs_output_counts_it_done(photo, tmp_path):
    out = tmp_path / "out"
    quantize_file(photo, out, PARAMS, job="same")
    stamp = os.stat(out / "trip/a.png").st_mtime_ns
    assert quantize_file(photo, out, PARAMS, job="same").status == Status.DONE
    assert os.stat(out / "trip/a.png").st_mtime_ns == stamp  # found, not made again


@pytest.mark.parametrize(
    "change",
    ["overwrite", "other parameters", "source edited"],
)
def test_an_output_is_made_again_when_it_is_not_the_same_work(photo, tmp_path, change):
    out = tmp_path / "out"
    quantize_file(photo, out, PARAMS)
    params, overwrite = PARAMS, False
    if change == "overwrite":
        overwrite = True
    elif change == "other parameters":
        params = QuantizeParams(k=8)
    else:
        Image.open(sample_photo_path("flower.jpg")).crop(CROP).save(photo.path)
    result = quantize_file(photo, out, params, overwrite=overwrite)
    assert result.status == Status.DONE
    palette = json.loads((out / "trip/a.palette.json").read_text())
    assert palette["k"] == params.k
    assert palette["metrics"]["bytes_in"] == photo.path.stat().st_size


def test_an_item_refused_by_the_walk_fails_with_its_reason_and_is_never_read(tmp_path):
    item = InputItem(str(tmp_path), "link.jpg", "link.jpg", "link.png", "links out of the tree")
    result = quantize_file(item, tmp_path / "out", PARAMS)
    assert (result.status, result.error) == (Status.FAILED, "links out of the tree")
    assert written(tmp_path / "out") == []


@pytest.mark.parametrize("output", ["../escape.png", "/tmp/abs.png", "a/../../b.png", "a.txt"])
def test_an_output_outside_out_is_refused(photo, tmp_path, output):
    with pytest.raises(ValueError, match="leaves the output folder"):
        output_paths(tmp_path / "out", output)
    item = InputItem(photo.root, photo.rel, photo.source, output)
    result = quantize_file(item, tmp_path / "out", PARAMS)
    assert result.status == Status.FAILED and "leaves the output folder" in result.error
    assert written(tmp_path) == ["in/trip/a.jpg"]


def test_a_file_that_is_not_an_image_fails_in_one_line_and_writes_nothing(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    (root / "fake.jpg").write_bytes(b"this is text, not a JPEG\n" * 40)
    result = quantize_file(
        InputItem(str(root), "fake.jpg", "fake.jpg", "fake.png"), root.parent / "out", PARAMS
    )
    assert result.status == Status.FAILED and not result.retryable
    assert result.error and "\n" not in result.error
    assert not result.error.startswith("internal error"), result.error
    assert written(root.parent / "out") == []


def test_an_out_that_cannot_hold_folders_is_a_write_failure_not_a_crash(photo, tmp_path):
    out = tmp_path / "out"
    out.write_text("a file where the output folder should be")
    result = quantize_file(photo, out, PARAMS)
    assert result.status == Status.FAILED and not result.retryable
    assert result.error.startswith("cannot write output"), result.error
    assert out.read_text() == "a file where the output folder should be"


def test_the_result_serialises_with_plain_status_strings(photo, tmp_path):
    document = json.loads(json.dumps(quantize_file(photo, tmp_path / "out", PARAMS).to_json()))
    assert document["status"] == "done"
    assert np.isfinite(document["psnr"])
