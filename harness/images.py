"""Photos to feed the workers: scikit-learn's two bundled photos, crops of them, and quick
generated images. Nothing is downloaded."""

import random
from pathlib import Path

import numpy as np
from PIL import Image

#: The photos scikit-learn ships (427×640 each).
SAMPLE_PHOTOS = ("china.jpg", "flower.jpg")


def sample_photo_path(name: str) -> Path:
    """The path of one of scikit-learn's bundled photos, without importing scikit-learn."""
    from importlib.util import find_spec

    return Path(find_spec("sklearn").origin).parent / "datasets" / "images" / name


def make_photos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` real-photo JPEGs of 0.15–0.5 MP, cut from the bundled photos and scaled, in
    three sub-folders. Returns their paths relative to ``folder``, sorted."""
    rng = random.Random(seed)
    sources = [Image.open(sample_photo_path(name)).convert("RGB") for name in SAMPLE_PHOTOS]
    names = []
    for index in range(count):
        source = sources[index % 2]
        width, height = source.size
        crop_w, crop_h = rng.randint(width // 2, width), rng.randint(height // 2, height)
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        scale = rng.uniform(1.0, 1.5)
        image = source.crop((left, top, left + crop_w, top + crop_h)).resize(
            (int(crop_w * scale), int(crop_h * scale))
        )
        rel = f"set{index % 3}/photo{index:03d}.jpg"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / rel, quality=85)
        names.append(rel)
    return sorted(names)


def write_generated_images(folder: Path, count: int, size=(96, 128), seed: int = 0) -> list[Path]:
    """Smooth gradients with noise: photo-like enough to quantize, quick to make."""
    rng = np.random.default_rng(seed)
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width]
    paths = []
    for index in range(count):
        phase = rng.random(3) * 6
        image = np.stack(
            [np.sin(rows / (9 + c * 4) + cols / (13 + index) + phase[c]) for c in range(3)], -1
        )
        image = (image + 1) * 110 + rng.normal(0, 12, image.shape)
        path = folder / f"gen-{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths
