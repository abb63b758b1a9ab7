"""The seed example's figure: the original beside its k-means and random-codebook results."""

from pathlib import Path

from pipeline.discover import InputItem
from pipeline.load import load_image
from pipeline.params import QuantizeParams
from pipeline.save import write_atomic


def comparison_figure(image_path: Path, figure_path: Path, params: QuantizeParams) -> dict:
    """Write a PNG figure of original | k-means | random; return the numbers shown in it."""
    import io

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
    write_atomic(figure_path, buffer.getvalue())
    return {
        "figure": str(figure_path),
        "colors_in": kmeans.colors_in,
        "kmeans_psnr": kmeans.psnr,
        "random_psnr": random.psnr,
    }


def _title(name: str, result) -> str:
    psnr = "lossless" if result.psnr is None else f"{result.psnr:.2f} dB"
    return f"{name} ({len(result.palette)} colours, {psnr})"


__all__ = ["comparison_figure", "InputItem"]
