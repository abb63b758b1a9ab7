"""The comparison figure: the original beside the example's k-means, colorquant's default and
the random codebook, each titled with its colour count, PSNR and SSIMULACRA2.

The figure's panel titles are read back from the drawn axes and returned (and written into the
PNG's text chunks), so what a person reads on the figure is what scripts and tests see.
"""

import io
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, PngImagePlugin

from pipeline.load import load_image
from pipeline.params import QuantizeParams
from pipeline.save import write_atomic

#: PNG text chunk of the figure that holds its panels as JSON (it also marks the figure as
#: colorquant's, see pipeline.ownership).
PANELS_KEY = "colorquant:panels"

#: Pixels the example's k-means is fitted on (scikit-learn's example draws 1,000).
EXAMPLE_SAMPLE = 1000


@dataclass(frozen=True)
class Panel:
    """One result shown in the figure: how it was made and what it is called."""

    name: str
    params: QuantizeParams | None  # None for the original


def panels(k: int, seed: int) -> list[Panel]:
    """The four panels, left to right."""
    example = {"space": "rgb", "dither": 0.0}
    return [
        Panel("Original", None),
        Panel(
            "Example's k-means (1,000 px, RGB)",
            QuantizeParams(k=k, seed=seed, sample=EXAMPLE_SAMPLE, **example),
        ),
        Panel("colorquant default", QuantizeParams(k=k, seed=seed)),
        Panel("Random codebook", QuantizeParams(k=k, seed=seed, method="random", **example)),
    ]


def comparison_figure(image_path: Path, figure_path: Path, k: int = 64, seed: int = 0) -> dict:
    """Write the PNG figure; return what it shows: per panel its title, colour count, PSNR
    and SSIMULACRA2 (None for the original)."""
    from pipeline.metrics import ssimulacra2_score
    from pipeline.quantize import quantize_image

    loaded = load_image(image_path, image_path.resolve().parent)
    shown = []
    for panel in panels(k, seed):
        if panel.params is None:
            image, colors, psnr, score = loaded.image, None, None, None
        else:
            result = quantize_image(loaded.image, panel.params)
            image, colors, psnr = result.indexed, len(result.palette), result.psnr
            score = ssimulacra2_score(loaded.image, image)
        shown.append(
            {
                "name": panel.name,
                "image": image,
                "colors": colors,
                "psnr": psnr,
                "ssimulacra2": score,
            }
        )
    shown[0]["colors"] = _count_colors(loaded.image)
    titles = _draw(shown, figure_path)
    rows = [
        {key: value for key, value in row.items() if key != "image"} | {"title": title}
        for row, title in zip(shown, titles, strict=True)
    ]
    return {"figure": str(figure_path), "k": k, "seed": seed, "panels": rows}


def _count_colors(image: Image.Image) -> int:
    import numpy as np

    from pipeline.distinct import sorted_distinct

    pixels = np.asarray(image.convert("RGBA")).reshape(-1, 4).view(np.uint32)
    return len(sorted_distinct(pixels))


def colour_count(colors: int) -> str:
    """``1 colour``, ``96,615 colours``."""
    return f"{colors:,} colour" if colors == 1 else f"{colors:,} colours"


def title(row: dict) -> str:
    """A panel's title: its name, colour count and, for results, PSNR and SSIMULACRA2."""
    if row["psnr"] is None and row["ssimulacra2"] is None:
        return f"{row['name']}\n{colour_count(row['colors'])}"
    psnr = "lossless" if row["psnr"] is None else f"PSNR {row['psnr']:.2f} dB"
    score = "n/a" if row["ssimulacra2"] is None else f"{row['ssimulacra2']:.1f}"
    return f"{row['name']}\n{colour_count(row['colors'])}, {psnr}, SSIMULACRA2 {score}"


def _draw(shown: list[dict], figure_path: Path) -> list[str]:
    """Draw the panels side by side, write the PNG; return the titles as drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width, height = shown[0]["image"].size
    figure, axes = plt.subplots(
        1, len(shown), figsize=(5 * len(shown), 5 * height / width + 1.0), squeeze=False
    )
    for axis, row in zip(axes[0], shown, strict=True):
        axis.imshow(row["image"].convert("RGBA"), interpolation="nearest")
        axis.set_title(title(row), fontsize=10)
        axis.axis("off")
    figure.tight_layout()
    drawn = [axis.get_title() for axis in figure.axes]
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text(PANELS_KEY, json.dumps(drawn))
    figure.savefig(buffer, format="png", dpi=100, pil_kwargs={"pnginfo": info})
    plt.close(figure)
    write_atomic(figure_path, encode_figure(buffer.getvalue(), figure_path))
    return drawn


def figure_format(figure_path: Path) -> str:
    """The Pillow format a figure is written in, from its name; ValueError when none writes it."""
    Image.init()
    name = Image.registered_extensions().get(figure_path.suffix.lower())
    if name is None or name not in Image.SAVE:
        raise ValueError(
            f"cannot write a figure named {figure_path.name}: name it .png, .jpg, .webp, "
            ".tiff or another extension Pillow writes"
        )
    return name


def encode_figure(png: bytes, figure_path: Path) -> bytes:
    """The figure in the format its name asks for. Only PNG keeps the panels' text chunk, by
    which colorquant knows its own figures (and may replace them without --overwrite)."""
    name = figure_format(figure_path)
    if name == "PNG":
        return png
    output = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(output, format=name)
    return output.getvalue()
