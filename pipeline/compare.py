"""The seed example's figure: the original beside its k-means and random-codebook results."""

import io
from pathlib import Path

from pipeline.discover import InputItem
from pipeline.load import load_image
from pipeline.ownership import FIGURE_MARKER, FIGURE_MARKER_KEY
from pipeline.params import QuantizeParams
from pipeline.save import write_atomic


def comparison_figure(image_path: Path, figure_path: Path, params: QuantizeParams) -> dict:
    """Write a figure of original | k-means | random; return the numbers shown in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.quantize import quantize_image

    item_root = image_path.resolve().parent
    loaded = load_image(image_path, item_root)
    kmeans = quantize_image(loaded.image, params)
    random = quantize_image(
        loaded.image, QuantizeParams(k=params.k, seed=params.seed, method="random")
    )
    panels = [
        (loaded.image, f"Original ({kmeans.colors_in:,} colours)"),
        (kmeans.indexed, _title("K-means", kmeans)),
        (random.indexed, _title("Random", random)),
    ]
    width, height = loaded.image.size
    figure, axes = plt.subplots(1, 3, figsize=(15, 15 * height / width / 3 + 0.8))
    for axis, (image, title) in zip(axes, panels, strict=True):
        axis.imshow(image.convert("RGBA"))
        axis.set_title(title)
        axis.axis("off")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(figure_path, encode_figure(buffer.getvalue(), figure_path))
    return {
        "figure": str(figure_path),
        "colors_in": kmeans.colors_in,
        "kmeans_psnr": kmeans.psnr,
        "random_psnr": random.psnr,
    }


def figure_format(figure_path: Path) -> str:
    """The Pillow format a figure is written in, from its name; ValueError when none writes it."""
    from PIL import Image

    Image.init()
    name = Image.registered_extensions().get(figure_path.suffix.lower())
    if name is None or name not in Image.SAVE:
        raise ValueError(
            f"cannot write a figure named {figure_path.name}: name it .png, .jpg, .webp, "
            ".tiff or another extension Pillow writes"
        )
    return name


def encode_figure(png: bytes, figure_path: Path) -> bytes:
    """The figure in the format its name asks for, marked as colorquant's where the format
    carries text (PNG), so a later run may replace it."""
    from PIL import Image, PngImagePlugin

    image = Image.open(io.BytesIO(png))
    output = io.BytesIO()
    name = figure_format(figure_path)
    if name == "PNG":
        marker = PngImagePlugin.PngInfo()
        marker.add_text(FIGURE_MARKER_KEY, FIGURE_MARKER)
        image.save(output, format=name, pnginfo=marker)
    else:
        image.convert("RGB").save(output, format=name)
    return output.getvalue()


def _title(name: str, result) -> str:
    psnr = "lossless" if result.psnr is None else f"{result.psnr:.2f} dB"
    return f"{name} ({len(result.palette)} colours, {psnr})"


__all__ = ["comparison_figure", "InputItem"]
