"""``colorquant report`` on the outputs of a real ``colorquant run``: what the page holds, the
previews beside it, their reuse, and the command's errors."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipeline.report import build_report, current_failures
from pipeline.thumbnails import THUMB_BOX
from tests.conftest import run_cli, sample_photo_path
from tests.report_helpers import (
    BROKEN_REASON,
    make_inputs,
    page_data,
    palettes,
    quantized_run,
)


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> tuple[Path, Path]:
    """OUT of a real run (four photos done, one broken file failed) and its report page."""
    base = tmp_path_factory.mktemp("report")
    folder, out = make_inputs(base / "in"), base / "out"
    quantized_run(folder, out)
    completed = run_cli("report", out)
    assert completed.returncode == 0, completed.stderr
    page = Path(completed.stdout.strip())
    assert page == out / "report.html"
    return out, page


def test_the_page_has_a_row_per_output_with_its_figures(reported):
    out, page = reported
    rows = {row["s"]: row for row in page_data(page)["rows"]}
    expected = palettes(out)
    assert (
        set(rows)
        == set(expected)
        == {"china.jpg", "tower.png", "trip/flower.jpg", "trip/corner.png"}
    )
    for source, document in expected.items():
        row = rows[source]
        assert row["p"] == document["metrics"]["psnr"]
        assert row["k"] == len(document["colors"])
        assert (row["bi"], row["bo"]) == (
            document["metrics"]["bytes_in"],
            document["metrics"]["bytes_out"],
        )
        most_used = max(document["colors"], key=lambda color: color["count"])["hex"][1:]
        assert row["w"].split(" ")[0].split(":")[0] == most_used


def test_each_row_has_small_previews_of_original_and_result(reported):
    out, page = reported
    for row in page_data(page)["rows"]:
        original = Image.open(page.parent / row["to"])
        result = Image.open(page.parent / row["tr"])
        assert original.format == result.format == "JPEG"
        assert max(original.size) <= THUMB_BOX and max(result.size) <= THUMB_BOX
        with Image.open(out / row["s"].replace(".jpg", ".png")) as full:
            assert result.size[0] / result.size[1] == pytest.approx(
                full.size[0] / full.size[1], rel=0.02
            )


def test_the_failure_is_listed_with_its_reason_and_the_page_needs_no_network(reported):
    _, page = reported
    text = page.read_text()
    failures = re.search(r'<table id="failures">.*?</table>', text, re.S).group(0)
    assert "broken.jpg" in failures and BROKEN_REASON in failures
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert '<link rel="stylesheet"' not in text


def test_a_second_report_reuses_previews_and_remakes_a_stale_one(reported):
    out, page = reported
    folder = page.parent / "report_files"
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    china = out / "china.png"
    # Later than every preview, however long the run and the first report took.
    later = max([china.stat().st_mtime_ns, *before.values()]) + 5_000_000_000
    os.utime(china, ns=(later, later))  # the output changed after its preview was made
    assert run_cli("report", out).returncode == 0
    after = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert set(after) == set(before)
    changed = {name for name in after if after[name] != before[name]}
    china_result = next(row["tr"] for row in page_data(page)["rows"] if row["s"] == "china.jpg")
    assert changed == {Path(china_result).name}


def test_report_does_not_import_scikit_learn(reported, tmp_path):
    out, _ = reported
    report_args = ["report", str(out), "-o", str(tmp_path / "r.html")]
    probe = "\n".join(
        [
            "import sys, cli",
            f"try: cli.app({report_args!r})",
            "except SystemExit as exit: assert exit.code in (0, None), exit.code",
            "print(sorted(m for m in ('sklearn', 'numba', 'scipy') if m in sys.modules))",
        ]
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "r_files").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing-folder"], "is not a folder"),
        (["{empty}"], "holds no colorquant outputs"),
        (["{empty}", "-o", "{empty}/report.txt"], "name it .html"),
    ],
)
def test_bad_report_arguments_are_one_line_usage_errors(args, message, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    completed = run_cli("report", *(arg.format(empty=empty) for arg in args), env={})
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: ") and message in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # two real runs of the embedded pool (process start-up dominates)
def test_after_a_rerun_that_skips_and_fixes_the_report_shows_the_current_state(tmp_path):
    folder, out = make_inputs(tmp_path / "in"), tmp_path / "out"
    quantized_run(folder, out)
    assert run_cli("report", out).returncode == 0
    shutil.copyfile(sample_photo_path("flower.jpg"), folder / "broken.jpg")  # fixed by the user
    rerun = run_cli("run", folder, "-o", out, "-k", "16", "-j", "2", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert run_cli("report", out).returncode == 0
    page = out / "report.html"
    text = page.read_text()
    assert {row["s"] for row in page_data(page)["rows"]} == set(palettes(out))
    assert len(palettes(out)) == 5
    assert "No failures." in text and BROKEN_REASON not in text
    assert "4 skipped" in text and "1 done" in text


def test_a_failed_file_deleted_since_is_no_longer_a_failure(tmp_path):
    """A run failed gone.jpg and kept.jpg; the user deleted gone.jpg. Later runs never meet it
    again, so only its absence can clear it; kept.jpg, still there and unfixed, stays listed."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "kept.jpg").write_bytes(b"still not a JPEG")
    failures = [{"path": name, "error": "not an image"} for name in ("gone.jpg", "kept.jpg")]
    record = {
        "job": "a",
        "roots": [["", str(folder)]],
        "finished_at": 1.0,
        "summary": {"failures": failures},
    }
    assert list(current_failures([record], None, [])) == ["kept.jpg"]
    unplaced = {**record, "roots": []}  # no way to find the files: both stay
    assert list(current_failures([unplaced], None, [])) == ["gone.jpg", "kept.jpg"]


def test_ssimulacra2_when_measured_gets_a_column_and_leads_the_sort(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name, psnr, score in (("a", 31.0, 72.5), ("b", 28.0, 80.1), ("c", None, None)):
        Image.new("RGB", (40, 30), (200, 40, 40)).convert("P").save(out / f"{name}.png")
        document = {
            "source": f"{name}.jpg",
            "output": f"{name}.png",
            "colors": [{"hex": "#c82828", "count": 1200, "share": 1.0}],
            "metrics": {"psnr": psnr, "ssimulacra2": score, "bytes_in": 900, "bytes_out": 300},
        }
        (out / f"{name}.palette.json").write_text(json.dumps(document))
    summary = build_report(out, workers=1)
    data = page_data(Path(summary["page"]))
    assert data["ssim2"] is True and data["sort"] == "q"
    scores = {row["s"]: row["q"] for row in data["rows"]}
    assert scores == {"a.jpg": 72.5, "b.jpg": 80.1, "c.jpg": None}
    assert all(row["tr"] and row["to"] is None for row in data["rows"])  # no record: no originals
    assert "SSIMULACRA2: 2 images" in Path(summary["page"]).read_text()


def test_a_file_name_that_is_not_utf8_gets_a_working_link_and_readable_text(tmp_path):
    """``caf\\xe9.png`` (Latin-1 bytes): the page is written, each link percent-encodes the
    file's bytes so a browser opens that very file, and the name reads ``caf\\xe9.png``."""
    from urllib.parse import unquote_to_bytes

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.new("RGB", (24, 16), (40, 90, 160)).save(folder / os.fsdecode(b"caf\xe9.png"))
    (folder / os.fsdecode(b"bro\xefen.png")).write_bytes(b"not a PNG")
    assert run_cli("run", folder, "-o", out, "-k", "4").returncode == 1
    completed = run_cli("report", out)
    assert completed.returncode == 0, completed.stderr
    page = out / "report.html"
    (row,) = page_data(page)["rows"]
    assert unquote_to_bytes(row["o"]) == b"caf\xe9.png"
    for link in (row["o"], row["to"], row["tr"]):
        assert (out / os.fsdecode(unquote_to_bytes(link))).is_file(), link
    assert row["s"] == "caf\\xe9.png"
    failures = page.read_text(encoding="utf-8").split('<table id="failures">')[1]
    assert "bro\\xefen.png" in failures
