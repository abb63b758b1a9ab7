"""``colorquant demo``: the seed example end to end on scikit-learn's bundled photos."""

import shutil
from pathlib import Path

from pipeline.batch import collect_items, run_batch
from pipeline.compare import comparison_figure, panels
from pipeline.discover import resolve_roots

#: The photos scikit-learn ships, which the seed example uses.
DEMO_IMAGES = ("china.jpg", "flower.jpg")


def bundled_image_folder() -> Path:
    """Where scikit-learn keeps its sample photos (found without importing scikit-learn)."""
    from importlib.util import find_spec

    spec = find_spec("sklearn")
    return Path(spec.origin).parent / "datasets" / "images"


#: Output folder of each result the demo writes, by its panel in the figure (left to right).
DEMO_FOLDERS = ("example", "default", "random")


def run_demo(folder: Path, k: int, workers: int, on_result=None) -> dict:
    """Copy the photos to ``folder/input``; write the example's result, colorquant's default
    and the random codebook (each in its own folder); draw a four-panel figure per photo."""
    inputs = folder / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    for name in DEMO_IMAGES:
        shutil.copyfile(bundled_image_folder() / name, inputs / name)
    summaries = {}
    results = [panel.params for panel in panels(k, seed=0) if panel.params is not None]
    for name, params in zip(DEMO_FOLDERS, results, strict=True):
        out = folder / name
        items, ignored = collect_items(resolve_roots([inputs], out))
        summaries[name] = run_batch(
            items,
            out,
            params,
            workers=workers,
            overwrite=True,
            ignored=ignored,
            on_result=on_result,
        )
    figures = [
        comparison_figure(inputs / name, folder / f"{Path(name).stem}-compare.png", k)
        for name in DEMO_IMAGES
    ]
    return {"folder": folder, "summaries": summaries, "figures": figures}
