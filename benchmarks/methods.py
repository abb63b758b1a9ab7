"""The competitors, each a function ``(RGB image, k) -> indexed (mode P) image``.

Every method gets the same decoded image and its result goes through the same indexed-PNG write
(:func:`pipeline.save.png_bytes`), so the timings differ only by the quantization itself.
pngquant is the exception: it is an external program, so it reads and writes PNG files itself and
is timed as a whole process.
"""

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.params import QuantizeParams


def _indexed(labels: np.ndarray, size, centres_0_255: np.ndarray) -> Image.Image:
    palette = np.clip(np.rint(centres_0_255), 0, 255).astype(np.uint8)
    indexed = Image.frombuffer("P", size, labels.astype(np.uint8), "raw", "P", 0, 1)
    indexed.putpalette(palette.tobytes(), rawmode="RGB")
    return indexed


def seed(image: Image.Image, k: int) -> Image.Image:
    """The seed example: KMeans on 1,000 random pixels in [0, 1], then ``predict`` on all."""
    from sklearn.cluster import KMeans
    from sklearn.utils import shuffle

    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3) / 255
    sample = shuffle(pixels, random_state=0, n_samples=1_000)
    model = KMeans(n_clusters=k, random_state=0).fit(sample)
    return _indexed(model.predict(pixels), image.size, model.cluster_centers_ * 255)


def full_kmeans(image: Image.Image, k: int) -> Image.Image:
    """scikit-learn KMeans on every pixel (the quality reference)."""
    from sklearn.cluster import KMeans

    pixels = np.asarray(image, dtype=np.float64).reshape(-1, 3) / 255
    model = KMeans(n_clusters=k, random_state=0).fit(pixels)
    return _indexed(model.labels_, image.size, model.cluster_centers_ * 255)


def pillow_median_cut(image: Image.Image, k: int) -> Image.Image:
    return image.quantize(k, method=Image.Quantize.MEDIANCUT)


def pillow_median_cut_kmeans(image: Image.Image, k: int) -> Image.Image:
    """Median cut, then Pillow's k-means refinement (``kmeans=1``: iterate until ≤1 change)."""
    return image.quantize(k, method=Image.Quantize.MEDIANCUT, kmeans=1)


def pillow_octree(image: Image.Image, k: int) -> Image.Image:
    return image.quantize(k, method=Image.Quantize.FASTOCTREE)


def _colorquant(image: Image.Image, k: int, **settings) -> Image.Image:
    from pipeline.quantize import quantize_image

    return quantize_image(image, QuantizeParams(k=k, **settings)).indexed


#: colorquant without dithering.
UNDITHERED = {"dither": 0.0}


def colorquant(image: Image.Image, k: int) -> Image.Image:
    """The example's space without dithering (``--space rgb --dither 0``): the PSNR mode."""
    return _colorquant(image, k, space="rgb", **UNDITHERED)


def colorquant_default(image: Image.Image, k: int) -> Image.Image:
    """colorquant's defaults: Oklab, dithered at the default level."""
    return _colorquant(image, k)


def colorquant_undithered(image: Image.Image, k: int) -> Image.Image:
    """The default space (Oklab) with ``--dither 0``."""
    return _colorquant(image, k, **UNDITHERED)


#: In-process methods by key, with the label tables and plots show, in display order.
LABELS = {
    "seed": "seed (1,000 px KMeans + predict)",
    "full": "full-data KMeans",
    "median_cut": "Pillow median cut",
    "median_cut_kmeans": "Pillow median cut + kmeans",
    "octree": "Pillow fast octree (codec floor)",
    "colorquant": "colorquant --space rgb --dither 0",
    "colorquant_undithered": "colorquant --dither 0 (Oklab)",
    "colorquant_default": "colorquant default (Oklab, dithered)",
}
BY_KEY = {
    "seed": seed,
    "full": full_kmeans,
    "median_cut": pillow_median_cut,
    "median_cut_kmeans": pillow_median_cut_kmeans,
    "octree": pillow_octree,
    "colorquant": colorquant,
    "colorquant_undithered": colorquant_undithered,
    "colorquant_default": colorquant_default,
}
PNGQUANT_LABEL = "pngquant --speed 1 --nofs"
PNGQUANT_DEFAULT_LABEL = "pngquant --speed 1 (default, dithered)"


def pngquant_available() -> bool:
    return shutil.which("pngquant") is not None


def pngquant(png_in: Path, k: int, png_out: Path, dithered: bool = False) -> None:
    """Run pngquant on a PNG file; it writes its own indexed PNG. ``dithered``: its default
    Floyd–Steinberg dithering instead of ``--nofs``."""
    flags = [] if dithered else ["--nofs"]
    subprocess.run(
        ["pngquant", "--speed", "1", *flags, "--force", "--output", str(png_out), str(k), "--"]
        + [str(png_in)],
        check=True,
        capture_output=True,
    )


def pngquant_png(image: Image.Image, k: int, dithered: bool = False) -> bytes:
    """The PNG pngquant writes for an in-memory image (through temp files)."""
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.png", Path(folder) / "out.png"
        image.save(source, compress_level=1)
        pngquant(source, k, output, dithered)
        return output.read_bytes()


def pngquant_image(image: Image.Image, k: int, dithered: bool = False) -> Image.Image:
    """pngquant's result for an in-memory image; for quality only."""
    with Image.open(io.BytesIO(pngquant_png(image, k, dithered))) as result:
        result.load()
        return result.copy()
