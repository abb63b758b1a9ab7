"""The benchmark inputs, made deterministically from scikit-learn's two bundled photos.

* ``china.jpg`` and ``flower.jpg`` as they ship (427×640 each);
* a 24-megapixel photo (6000×4000) built from both, saved as a JPEG;
* a folder mix of ten 0.1–2 MP photos (crops and rescales of both) for the steady-state figure.

Files are written once into a cache folder and reused by later runs.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

#: Megapixels of the folder mix, spread evenly between 0.1 and 2 (mean 1.05 MP). With it the
#: codec floor comes out near 0.46× the seed's time, as in the targets' anchor mix.
MIX_MEGAPIXELS = tuple(float(x) for x in np.round(np.linspace(0.1, 2.0, 10), 3))

#: Size of the big photo: 24 MP, a common camera resolution.
BIG_SIZE = (6000, 4000)

#: JPEG quality of every generated input.
JPEG_QUALITY = 90


def cache_dir() -> Path:
    """Where generated inputs live: $COLORQUANT_BENCH_DATA, else a folder in the temp dir."""
    default = Path(tempfile.gettempdir()) / "colorquant-bench-inputs"
    return Path(os.environ.get("COLORQUANT_BENCH_DATA", default))


def sample_photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_image

    return {name: Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")}


def _save(image: Image.Image, path: Path) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp.jpg")
        image.save(temp, quality=JPEG_QUALITY)
        os.replace(temp, path)
    return path


def samples() -> list[Path]:
    """china.jpg and flower.jpg, re-encoded losslessly as PNG so decode is exact and cheap."""
    root = cache_dir() / "samples"
    paths = []
    for name, image in sample_photos().items():
        path = root / name.replace(".jpg", ".png")
        if not path.exists():
            root.mkdir(parents=True, exist_ok=True)
            image.save(path)
        paths.append(path)
    return paths


def big_photo() -> Path:
    """A 6000×4000 JPEG: china and flower side by side, upscaled, with a mirrored copy below."""
    path = cache_dir() / "big" / "big-24mp.jpg"
    if path.exists():
        return path
    photos = list(sample_photos().values())
    row = Image.new("RGB", (1280, 427))
    row.paste(photos[0], (0, 0))
    row.paste(photos[1], (640, 0))
    sheet = Image.new("RGB", (1280, 854))
    sheet.paste(row, (0, 0))
    sheet.paste(row.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (0, 427))
    return _save(sheet.resize(BIG_SIZE, Image.Resampling.LANCZOS), path)


def mix() -> list[Path]:
    """Ten photos of 0.1–2 MP: alternating sources, each a crop of a rescaled copy."""
    root = cache_dir() / "mix-linear"
    photos = list(sample_photos().values())
    paths = []
    for index, megapixels in enumerate(MIX_MEGAPIXELS):
        path = root / f"mix-{index:02d}-{megapixels:.2f}mp.jpg"
        if not path.exists():
            source = photos[index % 2]
            aspect = (4 / 3, 3 / 2, 1.0, 16 / 9)[index % 4]
            width = int(round((megapixels * 1e6 * aspect) ** 0.5))
            height = int(round(megapixels * 1e6 / width))
            if index % 3 == 1:
                width, height = height, width  # some portrait photos
            # Rescale so the crop fits, then cut a window that moves with the index.
            scale = max(width / source.width, height / source.height) * 1.15
            big = source.resize(
                (int(source.width * scale) + 1, int(source.height * scale) + 1),
                Image.Resampling.LANCZOS,
            )
            left = (big.width - width) * (index % 3) // 2
            top = (big.height - height) * ((index + 1) % 3) // 2
            _save(big.crop((left, top, left + width, top + height)), path)
        paths.append(path)
    return paths


#: Real colour photos that Python packages ship, by package: (file, name in the benchmark).
#: scikit-image's are optional (``pip install scikit-image``); matplotlib's come with it.
PACKAGED_PHOTOS = {
    "skimage": (
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "retina.jpg",
        "rocket.jpg",
    ),
    "matplotlib": ("grace_hopper.jpg",),
}


def _package_photo_folder(package: str) -> Path | None:
    from importlib.util import find_spec

    spec = find_spec(package)
    if spec is None:
        return None
    root = Path(spec.origin).parent
    return root / "data" if package == "skimage" else root / "mpl-data" / "sample_data"


def real_photos() -> list[Path]:
    """The quality mix: china and flower plus the colour photos scikit-image and matplotlib
    ship (0.1–2 MP: portraits, a cat, food, a rocket, deep space, a microscope slide, a retina
    scan), each as a lossless PNG copy in the cache folder."""
    root = cache_dir() / "real"
    paths = list(samples())
    for package, names in PACKAGED_PHOTOS.items():
        folder = _package_photo_folder(package)
        if folder is None:
            print(f"  ({package} not installed: its photos are left out)", flush=True)
            continue
        for name in names:
            path = root / (Path(name).stem + ".png")
            if not path.exists():
                root.mkdir(parents=True, exist_ok=True)
                with Image.open(folder / name) as photo:
                    photo.convert("RGB").save(path)
            paths.append(path)
    return paths
