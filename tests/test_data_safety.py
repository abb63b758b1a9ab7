"""Never destroy what colorquant did not write: one test per way a user could lose a file.

Each test asserts the exit code and that the original's bytes are unchanged.
"""

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from pipeline.discover import InputItem, output_names
from pipeline.job import Status
from pipeline.ownership import same_file
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file
from pipeline.save import write_pair_atomic
from tests.conftest import run_cli, sample_photo_path

FOREIGN = b"a file the user made, not colorquant\n"


def small_png(path: Path, shade: int = 40) -> bytes:
    """A tiny real PNG at ``path``; returns its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (24, 16), (shade, 90, 160))
    image.paste((200, shade, 30), (0, 0, 12, 8))
    image.save(path)
    return path.read_bytes()


def one_error_line(completed) -> str:
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: "), completed.stderr
    return lines[0]


def test_run_star_png_into_their_own_folder_is_refused(tmp_path):
    """``colorquant run *.png -o .``: every output would replace its input."""
    originals = {
        name: small_png(tmp_path / name, shade) for name, shade in (("a.png", 10), ("b.png", 90))
    }
    completed = run_cli("run", *(tmp_path / name for name in originals), "-o", tmp_path)
    assert completed.returncode == 2
    assert "would replace the input" in one_error_line(completed)
    for name, data in originals.items():
        assert (tmp_path / name).read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"], "nothing may be written"


def test_run_one_photo_into_its_own_folder_is_refused(tmp_path):
    photo = tmp_path / "photo.png"
    original = small_png(photo)
    completed = run_cli("run", photo, "-o", tmp_path, "--overwrite")
    assert completed.returncode == 2, "--overwrite never allows replacing an input"
    one_error_line(completed)
    assert photo.read_bytes() == original
    assert os.listdir(tmp_path) == ["photo.png"]


def test_run_into_a_parent_folder_never_replaces_a_file_it_did_not_write(tmp_path):
    """``run in/sub -o in`` over an ``in/china.png`` that colorquant never wrote."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copyfile(sample_photo_path("china.jpg"), folder / "sub" / "china.jpg")
    mine = folder / "china.png"
    original = small_png(mine)
    completed = run_cli("run", folder / "sub", "-o", folder, "--json")
    assert completed.returncode == 1
    report = json.loads(completed.stdout)
    assert report["failed"] == 1
    assert str(mine) in report["failures"][0]["error"]
    assert "--overwrite" in report["failures"][0]["error"]
    assert mine.read_bytes() == original
    assert not (folder / "china.palette.json").exists()

    forced = run_cli("run", folder / "sub", "-o", folder, "--overwrite", "--json")
    assert forced.returncode == 0 and json.loads(forced.stdout)["done"] == 1
    assert json.loads((folder / "china.palette.json").read_text())["source"] == "china.jpg"


def test_run_into_a_parent_folder_refuses_an_output_that_is_an_input(tmp_path):
    """in/sub/sub/a.png's output is in/sub/a.png, which is itself an input of the job."""
    folder = tmp_path / "in"
    inner = small_png(folder / "sub" / "a.png", 10)
    small_png(folder / "sub" / "sub" / "a.png", 90)
    completed = run_cli("run", folder / "sub", "-o", folder)
    assert completed.returncode == 2
    assert "would replace the input" in one_error_line(completed)
    assert (folder / "sub" / "a.png").read_bytes() == inner
    assert not list(folder.rglob("*.palette.json"))


def test_a_foreign_file_at_a_sidecar_path_is_never_replaced(tmp_path):
    """Any file written beside the image (here the palette JSON) is covered by the same rule."""
    small_png(tmp_path / "in" / "a.png")
    sidecar = tmp_path / "out" / "a.palette.json"
    sidecar.parent.mkdir()
    sidecar.write_bytes(FOREIGN)
    completed = run_cli("run", tmp_path / "in", "-o", tmp_path / "out", "--json")
    assert completed.returncode == 1
    assert str(sidecar) in json.loads(completed.stdout)["failures"][0]["error"]
    assert sidecar.read_bytes() == FOREIGN
    assert not (tmp_path / "out" / "a.png").exists()


def test_rerun_replaces_what_colorquant_wrote(tmp_path):
    """The rule must not block colorquant's own outputs: other settings redo them."""
    small_png(tmp_path / "in" / "a.png")
    assert run_cli("run", tmp_path / "in", "-o", tmp_path / "out", "-k", "4").returncode == 0
    again = run_cli("run", tmp_path / "in", "-o", tmp_path / "out", "-k", "8", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["done"] == 1


def test_compare_onto_its_own_image_is_refused(tmp_path):
    image = tmp_path / "x.png"
    original = small_png(image)
    completed = run_cli("compare", image, "-o", image, "--overwrite")
    assert completed.returncode == 2
    one_error_line(completed)
    assert image.read_bytes() == original


def test_compare_never_replaces_a_file_it_did_not_draw(tmp_path):
    image = tmp_path / "x.png"
    small_png(image)
    figure = tmp_path / "figure.png"
    figure.write_bytes(FOREIGN)
    completed = run_cli("compare", image, "-o", figure, "-k", "4")
    assert completed.returncode == 1
    assert str(figure) in one_error_line(completed)
    assert figure.read_bytes() == FOREIGN


@pytest.mark.slow  # draws three figures with matplotlib (about 2 s each)
def test_compare_redraws_its_own_figure_and_writes_other_formats(tmp_path):
    image = tmp_path / "x.png"
    small_png(image)
    figure = tmp_path / "figure.png"
    assert run_cli("compare", image, "-o", figure, "-k", "4").returncode == 0
    assert run_cli("compare", image, "-o", figure, "-k", "8").returncode == 0, "ours: redrawn"
    jpeg = tmp_path / "figure.jpg"
    assert run_cli("compare", image, "-o", jpeg, "-k", "4").returncode == 0
    with Image.open(jpeg) as drawn:
        assert drawn.format == "JPEG"


@pytest.mark.parametrize("occupied", ["input/china.jpg", "china-compare.png"])
def test_demo_never_replaces_a_file_it_did_not_write(tmp_path, occupied):
    folder = tmp_path / "demo"
    mine = folder / occupied
    mine.parent.mkdir(parents=True)
    mine.write_bytes(FOREIGN)
    completed = run_cli("demo", "-o", folder)
    assert completed.returncode == 1
    assert str(mine) in one_error_line(completed)
    assert mine.read_bytes() == FOREIGN
    assert not (folder / "default").exists(), "refused before any work"


def test_submit_refuses_an_output_that_is_an_input_before_any_broker(tmp_path):
    """The submitter's check comes first: nothing is queued or written, broker or not."""
    photo = tmp_path / "photo.png"
    original = small_png(photo)
    completed = run_cli("submit", photo, "-o", tmp_path, "--broker", "redis://127.0.0.1:9/0")
    assert completed.returncode == 2
    assert "would replace the input" in one_error_line(completed)
    assert photo.read_bytes() == original
    assert os.listdir(tmp_path) == ["photo.png"]


def item_for(photo: Path) -> InputItem:
    return InputItem(str(photo.parent), photo.name, photo.name, photo.stem + ".png")


def test_quantize_file_refuses_to_write_over_its_own_input(tmp_path):
    """The check every runner (embedded and Celery worker) makes again, per image."""
    photo = tmp_path / "photo.png"
    original = small_png(photo)
    for overwrite in (False, True):
        result = quantize_file(item_for(photo), tmp_path, QuantizeParams(k=4), overwrite=overwrite)
        assert result.status == Status.FAILED and "this image itself" in result.error
    assert photo.read_bytes() == original
    assert os.listdir(tmp_path) == ["photo.png"]


def test_quantize_file_refuses_a_foreign_file_unless_overwrite(tmp_path):
    photo = tmp_path / "in" / "photo.png"
    small_png(photo)
    foreign = tmp_path / "out" / "photo.png"
    original = small_png(foreign, shade=200)
    refused = quantize_file(item_for(photo), tmp_path / "out", QuantizeParams(k=4), job="j1")
    assert refused.status == Status.FAILED and str(foreign) in refused.error
    assert foreign.read_bytes() == original
    forced = quantize_file(item_for(photo), tmp_path / "out", QuantizeParams(k=4), overwrite=True)
    assert forced.status == "done" and foreign.read_bytes() != original


def test_an_alias_of_an_input_in_out_is_detected_as_that_input(tmp_path):
    """On a case-insensitive file system ``OUT/PHOTO.png`` and ``in/photo.png`` can be one file.

    Linux file systems here are case-sensitive, so the alias is made the other way a file gets
    two names, a hard link: the check asks the file system for identity (device and inode), so
    it sees through either kind of alias, never comparing names.
    """
    photo = tmp_path / "photo.png"
    original = small_png(photo)
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / "photo.png")
    assert same_file(out / "photo.png", photo)
    result = quantize_file(item_for(photo), out, QuantizeParams(k=4), overwrite=True)
    assert result.status == Status.FAILED
    assert photo.read_bytes() == original


def test_output_names_never_differ_by_case_alone():
    """Two inputs whose outputs differ only in case would be one file on such a file system."""
    names = output_names(["B.jpg", "b.png", "C.jpg", "c.jpg", "d.jpg"])
    assert len({name.casefold() for name in names}) == len(names)
    assert names == ["B.jpg.png", "b.png.png", "C.jpg.png", "c.jpg~2.png", "d.png"]


def test_an_image_is_never_left_without_its_palette(tmp_path):
    """When the palette cannot be written, the image is not written either."""
    image, palette = tmp_path / "a.png", tmp_path / "a.palette.json"
    palette.mkdir()  # a rename onto a folder fails
    with pytest.raises(OSError):
        write_pair_atomic((image, b"png"), (palette, b"{}"))
    assert not image.exists()


def test_another_inputs_result_is_not_replaced_without_overwrite(tmp_path):
    """Two folders run into one OUT: a.jpg's result (a.png) is not silently replaced by the
    result of the other folder's a.png; --overwrite replaces it."""
    first, second = tmp_path / "first" / "a.jpg", tmp_path / "second" / "a.png"
    for photo, shade in ((first, 40), (second, 200)):
        photo.parent.mkdir()
        Image.new("RGB", (8, 6), (shade, 90, 160)).save(photo)
    out = tmp_path / "out"
    item = InputItem(str(first.parent), first.name, first.name, "a.png")
    assert quantize_file(item, out, QuantizeParams(k=4)).status == Status.DONE
    kept = (out / "a.png").read_bytes()
    refused = quantize_file(item_for(second), out, QuantizeParams(k=4))
    assert refused.status == Status.FAILED and "result of another input, 'a.jpg'" in refused.error
    assert (out / "a.png").read_bytes() == kept
    replaced = quantize_file(item_for(second), out, QuantizeParams(k=4), overwrite=True)
    assert replaced.status == Status.DONE and (out / "a.png").read_bytes() != kept


def test_a_writer_killed_between_palette_and_image_is_redone(tmp_path):
    """A killed writer leaves the new palette JSON beside no image, or beside the image of
    earlier settings: the next run redoes the image; it neither refuses it as a file
    colorquant did not make nor skips it as up to date."""
    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    image = Image.new("RGB", (24, 16), (40, 90, 160))
    for corner, shade in (((0, 0, 12, 8), (200, 40, 30)), ((12, 8, 24, 16), (250, 240, 10))):
        image.paste(shade, corner)
    image.save(photo)
    out, reference = tmp_path / "out", tmp_path / "reference"
    assert quantize_file(item_for(photo), reference, QuantizeParams(k=3)).status == Status.DONE
    assert quantize_file(item_for(photo), out, QuantizeParams(k=2)).status == Status.DONE
    assert (out / "a.png").read_bytes() != (reference / "a.png").read_bytes()
    # Killed after the k=3 run's JSON landed, before its image did: the k=2 image is stale.
    shutil.copyfile(reference / "a.palette.json", out / "a.palette.json")
    assert quantize_file(item_for(photo), out, QuantizeParams(k=3)).status == Status.DONE
    assert (out / "a.png").read_bytes() == (reference / "a.png").read_bytes()
    # Killed before a first image landed at all.
    (out / "a.png").unlink()
    assert quantize_file(item_for(photo), out, QuantizeParams(k=3)).status == Status.DONE
    assert (out / "a.png").read_bytes() == (reference / "a.png").read_bytes()


def test_a_file_name_that_is_not_utf8_round_trips(tmp_path):
    """``bad\\xffname.png`` gets its PNG and its palette JSON; the JSON names it exactly."""
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/bad\xffname.png"
    small_png(Path(os.fsdecode(raw)))
    completed = run_cli("run", folder, "-o", tmp_path / "out", "--json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["done"] == 1
    (palette,) = (tmp_path / "out").glob("*.palette.json")
    document = json.loads(palette.read_bytes())
    assert os.fsencode(document["source"]) == b"bad\xffname.png"
    assert Path(tmp_path / "out", document["output"]).is_file()


def test_an_up_to_date_rerun_starts_no_process_and_never_loads_the_quantizer(tmp_path):
    """Skips are settled before the pool starts: ``-X importtime`` (inherited by spawned
    children) shows numba (the quantizer's compiled loops) in the first run, and neither it
    nor scikit-learn anywhere in the re-run."""
    import subprocess
    import sys

    small_png(tmp_path / "in" / "a.png")
    command = [sys.executable, "-X", "importtime", "-m", "cli", "run", tmp_path / "in"]
    command += ["-o", tmp_path / "out", "-k", "4", "-j", "1"]
    runs = [subprocess.run(command, capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0]
    assert "numba" in runs[0].stderr, "the first run must quantize (and so load numba)"
    assert "numba" not in runs[1].stderr and "sklearn" not in runs[1].stderr
    assert runs[1].stderr.strip().splitlines()[-1].startswith("0 done, 1 skipped")


def test_an_opaque_rgba_image_gets_no_transparency(tmp_path):
    Image.new("RGBA", (20, 12), (10, 200, 30, 255)).save(tmp_path / "opaque.png")
    result = quantize_file(item_for(tmp_path / "opaque.png"), tmp_path / "out", QuantizeParams(k=4))
    assert result.status == "done"
    with Image.open(tmp_path / "out" / "opaque.png") as written:
        assert "transparency" not in written.info
    document = json.loads((tmp_path / "out" / "opaque.palette.json").read_text())
    assert all("alpha" not in color for color in document["colors"])
    assert (document["width"], document["height"], document["palette_size"]) == (20, 12, 1)


def test_another_format_replaces_the_image_colorquant_wrote_and_nothing_else(tmp_path):
    """A re-run in another --format removes this source's image in the old format (its palette
    JSON names it), never a file of another format that a person put there or changed."""
    photo, out = tmp_path / "in" / "a.png", tmp_path / "out"
    small_png(photo)
    for fmt in ("png", "webp", "gif", "png"):
        result = quantize_file(item_for(photo), out, QuantizeParams(k=4, format=fmt))
        assert result.status == Status.DONE and result.output == f"a.{fmt}"
        assert sorted(os.listdir(out)) == sorted([f"a.{fmt}", "a.palette.json"])
    (out / "a.png").write_bytes(FOREIGN)  # a person's own file now, at colorquant's name
    (out / "a.webp").write_bytes(FOREIGN)
    result = quantize_file(item_for(photo), out, QuantizeParams(k=4, format="gif"))
    assert result.status == Status.DONE
    assert (out / "a.png").read_bytes() == (out / "a.webp").read_bytes() == FOREIGN


def test_a_redo_without_an_export_removes_the_old_palettes_file(tmp_path):
    """-k 4 --export gpl,css, then -k 8 --export css: the .gpl holds the 4-colour palette, so
    it goes (the new JSON no longer lists it); a palette file a person put there stays."""
    photo, out = tmp_path / "in" / "a.png", tmp_path / "out"
    small_png(photo)
    first = quantize_file(item_for(photo), out, QuantizeParams(k=4, exports=("gpl", "css")))
    assert first.status == Status.DONE
    (out / "a.act").write_bytes(FOREIGN)  # never listed in a palette JSON: not colorquant's
    second = quantize_file(item_for(photo), out, QuantizeParams(k=8, exports=("css",)))
    assert second.status == Status.DONE
    assert sorted(os.listdir(out)) == ["a.act", "a.css", "a.palette.json", "a.png"]
    assert (out / "a.act").read_bytes() == FOREIGN


def test_a_same_stem_sibling_added_later_leaves_no_orphan(tmp_path):
    """photo.jpg went to photo.png; once photo.png joins it, both keep their extension
    (photo.jpg.png, photo.png.png), and photo.jpg's earlier outputs go: no orphan is left."""
    from pipeline.discover import InputWalk, resolve_roots

    folder, out = tmp_path / "in", tmp_path / "out"
    small_png(folder / "photo.jpg")  # a PNG under a .jpg name: Pillow sniffs the content
    params = QuantizeParams(k=4, exports=("gpl",))

    def run_folder() -> list[str]:
        items = list(InputWalk(resolve_roots([folder], out)))
        assert all(quantize_file(item, out, params).status == Status.DONE for item in items)
        return sorted(os.listdir(out))

    assert run_folder() == ["photo.gpl", "photo.palette.json", "photo.png"]
    small_png(folder / "photo.png", shade=200)
    assert run_folder() == [
        "photo.jpg.gpl", "photo.jpg.palette.json", "photo.jpg.png",
        "photo.png.gpl", "photo.png.palette.json", "photo.png.png",
    ]  # fmt: skip
