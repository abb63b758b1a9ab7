"""One palette for a whole job (``--palette shared``): count, merge, fit once, then label.

The phases, for ``run`` (here, with local processes) and ``submit`` (on Celery workers):

1. count: the exact colour counts of each image (:func:`pipeline.counts.count_colors`);
2. merge: their sum, which does not depend on the order or on how the images were grouped;
3. fit: one weighted fit on the merged counts (:func:`pipeline.fit.fit_palette`), written
   once as ``OUT/palette.json`` (plus the exports asked for);
4. label: every image mapped to that palette, as with a palette file.

Memory stays bounded whatever the number of images: only merged counts are kept, never pixels.
"""

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.batch import BatchSummary, bounded_map, run_batch, worker_pool
from pipeline.discover import InputItem
from pipeline.load import ImageRejected, load_image
from pipeline.ownership import OutputRefused, read_palette
from pipeline.params import QuantizeParams
from pipeline.save import json_bytes, write_atomic
from pipeline.settings import EXPORT_FORMATS, SHARED_PALETTE_NAME
from pipeline.version import VERSION


@dataclass
class Counted:
    """The outcome of the count phase for one image: its counts, or why it failed."""

    item: InputItem
    counts: object | None  # pipeline.counts.ColorCounts (numpy is loaded in workers only)
    error: str | None = None

    @property
    def status(self) -> str:
        return "failed" if self.error else "done"


def count_file(item: InputItem) -> Counted:
    """Load one input and count its colours; never raises for a bad image."""
    from pipeline.counts import count_colors

    if item.error:
        return Counted(item, None, item.error)
    try:
        loaded = load_image(item.path, Path(item.root))
        return Counted(item, count_colors(loaded.image))
    except ImageRejected as exc:
        return Counted(item, None, str(exc))
    except MemoryError:
        return Counted(item, None, "out of memory")
    except Exception as exc:  # a bug must cost one file, never the job
        return Counted(item, None, f"internal error: {exc!r}")


def fit_shared(merged, params: QuantizeParams):
    """The shared palette of merged counts: (n, 3|4) uint8."""
    from pipeline.fit import fit_palette

    return fit_palette(merged, params.k, space=params.space, seed=params.seed)


def shared_paths(out_root: str | Path, exports=()) -> list[Path]:
    """``OUT/palette.json`` and its export files."""
    root = Path(out_root)
    stem = SHARED_PALETTE_NAME.rsplit(".", 1)[0]
    return [root / SHARED_PALETTE_NAME, *(root / f"{stem}.{kind}" for kind in exports)]


def check_shared_target(out_root: str | Path, params: QuantizeParams, overwrite: bool) -> None:
    """Refuse (OutputRefused) to replace a palette file in OUT that colorquant did
    not write."""
    if overwrite:
        return
    paths = shared_paths(out_root, params.exports)
    if is_shared_palette(paths[0]):
        return
    for path in paths:
        if os.path.lexists(path):
            raise OutputRefused(
                f"{path} exists and colorquant did not write it; not replaced without --overwrite"
            )


def export_clash(roots, params: QuantizeParams) -> str | None:
    """Why an input's own palette exports would land on the shared palette's (``OUT/palette.gpl``
    for an input ``palette.jpg`` at the top of the tree, with ``--export gpl``), or None. Only
    the top of each input tree is read: deeper inputs write below OUT's top."""
    from pipeline.discover import is_image_name, output_names

    if not params.exports:
        return None
    stem = SHARED_PALETTE_NAME.rsplit(".", 1)[0]
    top = [root.path.name for root in roots if root.is_file and not root.prefix]
    for root in roots:
        if not root.is_file and not root.prefix:
            try:
                top += sorted(entry.name for entry in os.scandir(root.path) if entry.is_file())
            except OSError:
                continue  # the walk reports an unreadable folder
    images = [name for name in top if is_image_name(name)]
    for name, output in zip(images, output_names(images), strict=True):
        if output.rsplit(".", 1)[0].casefold() == stem:
            return (
                f"the input {name} would write its own {stem}.{params.exports[0]} where "
                f"--palette shared writes the shared palette's; rename it or move it into a "
                "subfolder; nothing was written"
            )
    return None


def is_shared_palette(path: Path) -> bool:
    import json

    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("palette") == "shared"


def write_shared_palette(out_root, colors, params: QuantizeParams, merged, job: str) -> None:
    """Write ``OUT/palette.json`` and its exports, each atomically; then remove the exports
    the palette before listed and this job did not ask for (they hold that older palette)."""
    from pipeline.outputs import export_files_named
    from pipeline.palette_files import hex_color

    dropped = _dropped_shared_exports(out_root, params.exports)

    entries = []
    for color in colors.tolist():
        entry = {"rgb": color[:3], "hex": hex_color(color[:3])}
        if len(color) == 4 and color[3] < 255:
            entry["alpha"] = color[3]
        entries.append(entry)
    document = {
        "palette": "shared",
        **{key: params.to_json()[key] for key in ("k", "method", "sample", "seed", "space")},
        "images": merged.images,
        "pixels": merged.pixels,
        "colors": entries,
        "exports": list(params.exports),
        "produced_by": {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": VERSION,
            "job": job,
        },
    }
    paths = shared_paths(out_root, params.exports)
    write_atomic(paths[0], json_bytes(document))
    for path, data in export_files_named(paths[1:], colors, "palette").items():
        write_atomic(path, data)
    for path in dropped:
        try:
            path.unlink()
        except OSError:
            pass  # gone already (another fit), or a read-only folder: the new files stand


def _dropped_shared_exports(out_root, exports) -> list[Path]:
    """The shared palette's export files that the ``OUT/palette.json`` there now lists and
    ``exports`` leaves out. A palette.json of an older colorquant lists none: nothing goes."""
    previous = read_palette(Path(out_root, SHARED_PALETTE_NAME)) or {}
    listed = previous.get("exports") if previous.get("palette") == "shared" else None
    kinds = [kind for kind in listed or () if kind in EXPORT_FORMATS and kind not in exports]
    return shared_paths(out_root, kinds)[1:]


def run_shared(
    items: list[InputItem],
    out_root: Path,
    params: QuantizeParams,
    *,
    workers: int,
    job: str,
    overwrite: bool = False,
    ignored: int = 0,
    on_counted=None,
    on_result=None,
) -> BatchSummary:
    """The embedded shared-palette job: count in the pool, merge here, fit once (in the pool:
    this process never runs scikit-learn), write the palette, then label in the pool."""
    from pipeline.counts import CountsAccumulator

    started = time.perf_counter()
    merged = CountsAccumulator()
    counted, failures = [], []
    with worker_pool(workers) as pool:
        for outcome in bounded_map(pool, workers, count_file, items):
            if outcome.counts is None:
                failures.append({"path": outcome.item.source, "error": outcome.error})
            else:
                merged.add(outcome.counts)
                counted.append(outcome.item)
            if on_counted:
                on_counted(outcome)
        summary = BatchSummary(job=job, total=len(items), ignored=ignored)
        if counted:
            total = merged.result()
            colors = pool.submit(fit_shared, total, params).result()
            write_shared_palette(out_root, colors, params, total, job)
            summary = run_batch(
                counted,
                out_root,
                params.with_colors(colors),
                workers=workers,
                overwrite=overwrite,
                job=job,
                ignored=ignored,
                on_result=on_result,
                pool=pool,
            )
            summary.total = len(items)
    summary.failed += len(failures)
    summary.failures = failures + summary.failures
    summary.elapsed_s = time.perf_counter() - started
    return summary
