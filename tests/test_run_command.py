"""``colorquant run`` end to end, as a person runs it: real photos, real processes, exit codes."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from threadpoolctl import threadpool_limits

from tests.conftest import load_rgb, psnr, run_cli, sample_photo_path
from tests.test_seed_compat import seed_codebook

PALETTE_KEYS = {
    "source",
    "output",
    "k",
    "method",
    "sample",
    "seed",
    "colors",
    "metrics",
    "timings_ms",
    "produced_by",
}


def run_json(*args) -> tuple[int, dict]:
    completed = run_cli("run", *args, "--json")
    assert "Traceback" not in completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def test_run_writes_an_indexed_png_and_palette_per_photo(photo_folder, tmp_path):
    out = tmp_path / "out"
    code, report = run_json(photo_folder, "-o", out, "-k", "32", "-j", "2")
    assert code == 0
    assert (report["total"], report["done"], report["failed"], report["skipped"]) == (4, 4, 0, 0)
    for source in sorted(photo_folder.rglob("*.*")):
        rel = source.relative_to(photo_folder)
        png = out / rel.with_suffix(".png")
        document = json.loads((out / rel.parent / (rel.stem + ".palette.json")).read_text())
        assert set(document) >= PALETTE_KEYS
        assert document["source"] == rel.as_posix()
        assert document["output"] == rel.with_suffix(".png").as_posix()
        with Image.open(png) as image:
            assert image.format == "PNG" and image.mode == "P"
            assert image.size == Image.open(source).size
            assert len(image.getpalette()) // 3 <= 32
            assert "exif" not in image.info
        assert len(document["colors"]) <= 32
        assert sum(c["count"] for c in document["colors"]) == np.prod(Image.open(source).size)
        recomputed = psnr(load_rgb(source), load_rgb(png))
        assert document["metrics"]["psnr"] == pytest.approx(recomputed, abs=1e-3)


def test_every_photo_beats_the_seed_method_in_rgb(photo_folder, tmp_path):
    out = tmp_path / "out"
    code, _ = run_json(photo_folder, "-o", out, "-k", "64", "--space", "rgb", "--dither", "0")
    assert code == 0
    for source in sorted(photo_folder.rglob("*.*")):
        pixels = load_rgb(source).astype(np.uint8)
        codebook = seed_codebook(pixels, 64, 0, 1000).astype(np.float64)
        flat = pixels.reshape(-1, 3).astype(np.float64)
        nearest = ((flat[:, None, :] - codebook[None]) ** 2).sum(2).argmin(1)
        seed_psnr = psnr(flat, codebook[nearest])
        rel = source.relative_to(photo_folder)
        ours = psnr(load_rgb(source), load_rgb(out / rel.with_suffix(".png")))
        assert ours >= seed_psnr, f"{rel}: {ours:.2f} dB < seed {seed_psnr:.2f} dB"


def test_rerun_skips_and_overwrite_redoes(photo_folder, tmp_path):
    out = tmp_path / "out"
    assert run_json(photo_folder, "-o", out, "-k", "16")[0] == 0
    code, again = run_json(photo_folder, "-o", out, "-k", "16")
    assert code == 0 and again["skipped"] == 4 and again["done"] == 0
    code, other_k = run_json(photo_folder, "-o", out, "-k", "24")
    assert code == 0 and other_k["done"] == 4, "different parameters must not be skipped"
    code, forced = run_json(photo_folder, "-o", out, "-k", "24", "--overwrite")
    assert code == 0 and forced["done"] == 4 and forced["skipped"] == 0
    edited = photo_folder / "trip" / "crop.jpg"
    Image.open(edited).rotate(180).save(edited, quality=80)
    code, after_edit = run_json(photo_folder, "-o", out, "-k", "24")
    assert code == 0 and (after_edit["done"], after_edit["skipped"]) == (1, 3)


def test_seed_flags_reproduce_the_example_through_the_cli(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "china.jpg").write_bytes(sample_photo_path("china.jpg").read_bytes())
    out = tmp_path / "out"
    recipe = (
        "--space",
        "rgb",
        "--dither",
        "0",
        "--method",
        "kmeans",
        "--sample",
        "1000",
        "--seed",
        "0",
        "-k",
        "64",
    )
    code, _ = run_json(folder, "-o", out, *recipe)
    assert code == 0
    ours = sorted(
        tuple(c["rgb"]) for c in json.loads((out / "china.palette.json").read_text())["colors"]
    )
    pixels = np.asarray(Image.open(folder / "china.jpg").convert("RGB"))
    # Workers run one OpenMP thread; the same reduction order gives bit-identical centres.
    with threadpool_limits(1):
        codebook = seed_codebook(pixels, 64, 0, 1000)
    expected = sorted(map(tuple, np.unique(codebook, axis=0).tolist()))
    assert ours == expected


@pytest.mark.parametrize(
    "args, message",
    [
        (["-k", "1"], "-k"),
        (["-k", "300"], "-k"),
        (["--sample", "lots"], "sample"),
        (["--method", "octree"], "method"),
        (["-j", "0"], "-j"),
    ],
)
def test_bad_flags_are_one_line_usage_errors(photo_folder, tmp_path, args, message):
    completed = run_cli("run", photo_folder, "-o", tmp_path / "out", *args)
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert message in completed.stderr


def test_missing_input_and_out_inside_input_are_refused(photo_folder, tmp_path):
    missing = run_cli("run", tmp_path / "nope", "-o", tmp_path / "out")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    inside = run_cli("run", photo_folder, "-o", photo_folder / "out")
    assert inside.returncode == 2 and "inside the input folder" in inside.stderr
    assert not (photo_folder / "out").exists()


def test_unwritable_out_is_a_clear_error(photo_folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    completed = run_cli("run", photo_folder, "-o", blocker / "out")
    assert completed.returncode == 2
    assert "cannot create output folder" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_two_files_with_one_stem_do_not_overwrite_each_other(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (25, 35, 3), dtype=np.uint8)).save(folder / "b.png")
    out = tmp_path / "out"
    code, report = run_json(folder, "-o", out, "-k", "8")
    assert code == 0 and report["done"] == 2
    sources = {}
    for palette in out.glob("*.palette.json"):
        document = json.loads(palette.read_text())
        sources[document["source"]] = document["output"]
        assert (out / document["output"]).is_file()
    assert sources == {"b.jpg": "b.jpg.png", "b.png": "b.png.png"}
    assert Image.open(out / "b.png.png").size == (35, 25)


def test_help_explains_every_command():
    completed = run_cli("--help")
    assert completed.returncode == 0
    for command in ("run", "compare", "demo"):
        assert command in completed.stdout
    run_help = run_cli("run", "--help").stdout
    for flag in (
        "--out",
        "--colors",
        "--sample",
        "--seed",
        "--method",
        "--jobs",
        "--overwrite",
        "--json",
    ):
        assert flag in run_help


def test_cli_import_does_not_load_scikit_learn():
    import subprocess
    import sys

    code = "import sys, cli; assert 'sklearn' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_overlapping_or_repeated_paths_are_refused(photo_folder, tmp_path):
    for paths in ([photo_folder, photo_folder], [photo_folder, photo_folder / "trip"]):
        completed = run_cli("run", *paths, "-o", tmp_path / "out")
        assert completed.returncode == 2 and "Traceback" not in completed.stderr
        assert "twice" in completed.stderr or "inside" in completed.stderr


def test_a_named_file_that_is_not_an_image_fails_with_a_reason(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, report = run_json(notes, "-o", tmp_path / "out")
    assert code == 1
    assert report["failures"] == [
        {
            "path": "notes.txt",
            "error": "not an image file name (see the accepted extensions in --help)",
        }
    ]


def test_a_bad_pixel_limit_setting_is_a_usage_error(photo_folder, tmp_path):
    completed = run_cli(
        "run", photo_folder, "-o", tmp_path / "out", env={"COLORQUANT_MAX_PIXELS": "lots"}
    )
    assert completed.returncode == 2
    assert (
        completed.stderr.strip() == "error: COLORQUANT_MAX_PIXELS='lots' is not a number of pixels"
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_random_method_records_that_it_drew_k_pixels(photo_folder, tmp_path):
    out = tmp_path / "out"
    code, _ = run_json(
        photo_folder / "china.jpg", "-o", out, "--method", "random", "--sample", "1000", "-k", "8"
    )
    assert code == 0
    document = json.loads((out / "china.palette.json").read_text())
    assert (document["method"], document["sample"]) == ("random", "all")


def test_version():
    completed = run_cli("--version")
    assert completed.returncode == 0 and completed.stdout.startswith("colorquant ")
