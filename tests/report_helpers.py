"""Shared by the report tests: a real ``colorquant run`` with one broken file, and the data the
page embeds."""

import json
import re
import shutil
from pathlib import Path

from PIL import Image

from tests.conftest import run_cli, sample_photo_path

#: The reason ``run`` gives for a file that is not an image; the report must show it.
BROKEN_REASON = "not an image"

DATA = re.compile(r'<script id="report-data" type="application/json">(.*?)</script>', re.S)


def make_inputs(folder: Path) -> Path:
    """Two photos (one nested), two crops of different sizes, and a broken .jpg."""
    (folder / "trip").mkdir(parents=True)
    shutil.copyfile(sample_photo_path("china.jpg"), folder / "china.jpg")
    shutil.copyfile(sample_photo_path("flower.jpg"), folder / "trip" / "flower.jpg")
    with Image.open(sample_photo_path("china.jpg")) as china:
        china.crop((0, 0, 200, 150)).save(folder / "trip" / "corner.png")
        china.crop((300, 200, 427, 400)).convert("RGBA").save(folder / "tower.png")
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    return folder


def quantized_run(folder: Path, out: Path) -> None:
    completed = run_cli("run", folder, "-o", out, "-k", "16", "-j", "2")
    assert completed.returncode == 1, completed.stderr  # broken.jpg fails, the rest succeed


def palettes(out: Path) -> dict[str, dict]:
    documents = (json.loads(path.read_text()) for path in out.rglob("*.palette.json"))
    return {document["source"]: document for document in documents}


def page_data(page: Path) -> dict:
    return json.loads(DATA.search(page.read_text()).group(1).replace("<\\/", "</"))
