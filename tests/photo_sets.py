"""Folders of small photos for palette tests: crops of the bundled photos, made by the tests."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import sample_photo_path

#: Crop widths and heights of :func:`small_photo_folder` (half-open ranges), and the tiny ones
#: of tests that only need many varied images.
SMALL_SIZES, TINY_SIZES = ((40, 81), (30, 61)), ((16, 33), (16, 33))


def small_photo_folder(folder: Path, count: int, seed: int = 0, sizes=SMALL_SIZES) -> Path:
    """``count`` small PNG crops (``sizes``: about 40×30 to 80×60 by default) of china.jpg and
    flower.jpg, in three subfolders; lossless, so a test can recount exactly the pixels
    colorquant read."""
    rng = np.random.default_rng(seed)
    photos = [
        np.asarray(Image.open(sample_photo_path(name)).convert("RGB"))
        for name in ("china.jpg", "flower.jpg")
    ]
    for index in range(count):
        photo = photos[index % 2]
        width, height = int(rng.integers(*sizes[0])), int(rng.integers(*sizes[1]))
        top = int(rng.integers(0, photo.shape[0] - height))
        left = int(rng.integers(0, photo.shape[1] - width))
        target = folder / f"set{index % 3}" / f"photo{index:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[top : top + height, left : left + width]).save(target)
    return folder


def palette_rows(document: dict) -> set[tuple[int, ...]]:
    """The colours of a palette JSON document, as a set of RGB tuples."""
    return {tuple(entry["rgb"]) for entry in document["colors"]}


def output_colors(path: Path) -> set[tuple[int, ...]]:
    """The RGB colours that actually occur in an output image."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    return {tuple(row) for row in np.unique(pixels, axis=0).tolist()}


def expected_shared_palette(folder: Path, k: int, seed: int = 0, space="oklab") -> np.ndarray:
    """The palette a fit of the merged colour counts of every image under ``folder`` gives,
    computed here, image by image in reverse order, independently of any runner."""
    from pipeline.counts import count_colors, merge_counts
    from pipeline.fit import fit_palette
    from pipeline.load import load_image

    images = sorted(folder.rglob("*.png"), reverse=True)
    counts = [count_colors(load_image(path, folder).image) for path in images]
    return fit_palette(merge_counts(counts), k, space=space, seed=seed)


def check_shared_outputs(out: Path, expected: np.ndarray, images: int) -> None:
    """Every output uses only the shared palette, which equals ``expected``."""
    shared = json.loads((out / "palette.json").read_text())
    assert [entry["rgb"] for entry in shared["colors"]] == expected[:, :3].tolist()
    assert shared["images"] == images
    allowed = palette_rows(shared)
    documents = sorted(out.rglob("photo*.palette.json"))
    assert len(documents) == images
    for document_path in documents:
        document = json.loads(document_path.read_text())
        assert document["palette"] == "shared" and document["palette_file"] == "palette.json"
        assert palette_rows(document) == allowed
        assert output_colors(out / document["output"]) <= allowed
