"""Quantize one file end to end: the single function both runners and the Celery task call.

``quantize_file`` never raises for a bad input or a failed write: it returns a
:class:`FileResult` whose ``status`` is ``done``, ``skipped`` or ``failed`` with a one-line reason.
"""

import errno
import hashlib
import os
import socket
import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.discover import InputItem
from pipeline.job import Status
from pipeline.load import ImageRejected, check_inside, load_image
from pipeline.outputs import OutputFiles, encode_image, export_files
from pipeline.ownership import (
    foreign_output,
    is_palette_of,
    not_ours_reason,
    read_palette,
    same_file,
)
from pipeline.palette_files import document_colors
from pipeline.params import QuantizeParams
from pipeline.save import json_bytes, write_atomic, write_pair_atomic
from pipeline.settings import EXPORT_FORMATS, SHARED_PALETTE_NAME
from pipeline.stale_outputs import remove_stale_outputs
from pipeline.version import VERSION

#: errno values worth retrying later: the fault lies with the machine, not with the image.
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EIO, errno.ENOMEM})


@dataclass
class FileResult:
    """What happened to one input: its status, where the output is, and why it failed."""

    source: str
    output: str
    status: Status
    error: str | None = None
    retryable: bool = False
    psnr: float | None = None
    mse: float | None = None
    colors: int | None = None
    timings_ms: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def quantize_file(
    item: InputItem,
    out_root: str | Path,
    params: QuantizeParams,
    *,
    job: str | None = None,
    overwrite: bool = False,
) -> FileResult:
    """Load, quantize and save one input; report the outcome instead of raising."""
    digests: dict[str, str | None] = {}
    settled = settled_result(item, out_root, params, job=job, overwrite=overwrite, digests=digests)
    if settled is not None:
        return settled
    files = OutputFiles.of(out_root, item.output, params.format, params.exports)
    try:
        return _quantize_and_save(item, files, params, job, digests.get(item.path))
    except ImageRejected as exc:
        return FileResult(item.source, item.output, Status.FAILED, str(exc))
    except OSError as exc:
        return _write_failure(item, exc)
    except MemoryError:
        return FileResult(item.source, item.output, Status.FAILED, "out of memory", retryable=True)
    except Exception as exc:  # a bug must cost one file, never the batch
        return FileResult(item.source, item.output, Status.FAILED, f"internal error: {exc!r}")


def settled_result(
    item: InputItem,
    out_root: str | Path,
    params: QuantizeParams,
    *,
    job: str | None = None,
    overwrite: bool = False,
    digests: dict | None = None,
) -> FileResult | None:
    """The outcome of ``item`` when it is known without reading a pixel: a failure found by the
    walk, an output that must not be replaced, or an output already up to date (writing the
    palette exports it lacks, from its palette JSON). None when the image must be quantized.
    Cheap (a stat and a small JSON read), so a runner can settle a whole re-run before it
    starts a process or loads the quantizer. A source hashed on the way is recorded in
    ``digests`` (path → SHA-256), so the caller that goes on to quantize it need not hash it
    again."""
    if item.error:
        return FileResult(item.source, item.output, Status.FAILED, item.error)
    try:
        files = OutputFiles.of(out_root, item.output, params.format, params.exports)
    except ValueError as exc:
        return FileResult(item.source, item.output, Status.FAILED, str(exc))
    previous = read_palette(files.palette)
    refused = _refused_output(item, files.every_path(), previous, overwrite, files.output)
    if refused:
        return FileResult(item.source, files.output, Status.FAILED, refused)
    current = is_palette_of(previous, files.output) and _image_is_the_palettes(previous, files)
    if not (current and _same_work(previous, item, params, files.image, digests)):
        return None
    made_by_this_job = job is not None and previous.get("produced_by", {}).get("job") == job
    missing = files.missing_exports()
    if missing and not overwrite:  # the image is current: only the new exports are due
        try:
            _write_exports(files, document_colors(previous), missing)
            _note_exports(files, previous, missing)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # redo the image, which writes every file
        return _result_from_palette(item, previous, Status.DONE)
    if made_by_this_job:
        return _result_from_palette(item, previous, Status.DONE)
    if not overwrite:
        return _result_from_palette(item, previous, Status.SKIPPED)
    return None


def _quantize_and_save(item, files: OutputFiles, params, job, digest=None) -> FileResult:
    import numpy as np  # numpy/sklearn only where pixels are touched

    from pipeline.metrics import ssimulacra2_score
    from pipeline.quantize import label_image, quantize_image

    started = time.perf_counter()
    # Hashed before decoding (here, or just before by the settle step): an edit made meanwhile
    # leaves a stale digest, so it is redone.
    digest = digest or source_digest(item)
    loaded = load_image(item.path, Path(item.root))
    load_ms = (time.perf_counter() - started) * 1000.0
    if params.colors is not None:  # a palette file's, or the job's shared one: no fit
        result = label_image(
            loaded.image,
            np.array(params.colors, dtype=np.uint8),
            space=params.space,
            dither=params.dither,
        )
    else:
        result = quantize_image(loaded.image, params)
    score = ssimulacra2_score(loaded.image, result.indexed) if params.metrics == "full" else None
    bytes_in, icc_profile = loaded.bytes_in, loaded.icc_profile
    # The decoded pixels are done with: freed before encoding, whose copies of the compressed
    # stream would otherwise come on top of them (a 24 MP photo decodes to 96 MB).
    del loaded
    started = time.perf_counter()
    encoded = encode_image(result.indexed, params.format, icc_profile)
    timings = {
        "load": round(load_ms, 2),
        "sample": result.timings_ms["sample"],
        "fit": result.timings_ms["fit"],
        "label": round(result.timings_ms["label"] + result.timings_ms["reconstruct"], 2),
    }
    document = palette_document(item, params, result, bytes_in, len(encoded), job, timings)
    document["output"] = files.output
    document["metrics"]["ssimulacra2"] = None if score is None else round(score, 4)
    document["source_sha256"] = digest
    document["timings_ms"]["save"] = round((time.perf_counter() - started) * 1000.0, 2)
    palette = json_bytes(document)  # encoded before anything is written: no image left alone
    replaced = read_palette(files.palette)  # may name this source's image in another format
    write_pair_atomic((files.image, encoded), (files.palette, palette))
    _write_exports(files, result.colors, files.kinds)
    remove_stale_outputs(replaced, item, files)
    return _result_from_palette(item, document, Status.DONE)


def _note_exports(files: OutputFiles, document: dict, added) -> None:
    """Rewrite an image's palette JSON so its ``exports`` lists the palette files beside it,
    the ones just added to an up-to-date image included."""
    listed = set(document.get("exports") or ()) | set(added)
    document["exports"] = [kind for kind in EXPORT_FORMATS if kind in listed]
    write_atomic(files.palette, json_bytes(document))


def _write_exports(files: OutputFiles, colors, kinds) -> None:
    """Write the palette files ``kinds`` beside an image, each atomically."""
    for path, data in export_files(files, colors, kinds).items():
        write_atomic(path, data)


def palette_document(item, params, result, bytes_in, bytes_out, job, timings) -> dict:
    """The palette JSON written beside each output: the colours in palette order, with metrics
    and provenance."""
    total = int(result.counts.sum()) or 1
    colors = []
    for index, rgb in enumerate(result.palette.tolist()):
        count = int(result.counts[index])
        entry = {
            "rgb": rgb,
            "hex": "#{:02x}{:02x}{:02x}".format(*rgb),
            "count": count,
            "share": round(count / total, 6),
        }
        if result.alphas is not None and result.alphas[index] < 255:
            entry["alpha"] = int(result.alphas[index])
        colors.append(entry)
    settings = params.to_json(with_colors=False)
    width, height = result.indexed.size
    return {
        "source": item.source,
        "output": item.output,
        "k": settings.pop("k"),
        "palette_size": len(colors),  # below k when the image has fewer colours
        **settings,
        **({"palette_file": SHARED_PALETTE_NAME} if params.shared else {}),
        "width": width,
        "height": height,
        "colors": colors,
        "metrics": {
            "mse": round(result.mse, 4),
            "psnr": None if result.psnr is None else round(result.psnr, 4),
            "ssimulacra2": None,
            "colors_in": result.colors_in,
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
        },
        "timings_ms": dict(timings),
        "produced_by": {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": VERSION,
            "job": job,
        },
    }


def _image_is_the_palettes(previous: dict, files: OutputFiles) -> bool:
    """True when the image beside a palette JSON is the one the JSON describes (its size):
    not so after a writer was killed between the JSON and the image (pipeline/save.py)."""
    try:
        return files.image.stat().st_size == previous["metrics"]["bytes_out"]
    except (OSError, KeyError, TypeError):
        return False


def _refused_output(
    item: InputItem, paths, previous: dict | None, overwrite: bool, output: str
) -> str | None:
    """Why the outputs of ``item`` must not be written, or None: an output that is this very
    input is never replaced; a file colorquant did not make is replaced only with overwrite."""
    for path in paths:
        if same_file(path, item.path):
            return f"the output {path} is this image itself; not replaced"
    if overwrite:
        return None
    foreign = foreign_output(paths, previous, output)
    if foreign:
        return not_ours_reason(foreign)
    return _another_inputs_reason(item, previous, output)


def _another_inputs_reason(item: InputItem, previous: dict | None, output: str) -> str | None:
    """Why an output must not be replaced: it is the result of another input (an earlier run
    over another folder into the same OUT), which a person would lose without a word."""
    if not is_palette_of(previous, output):
        return None
    earlier = previous.get("source")
    if not isinstance(earlier, str) or earlier == item.source:
        return None
    return (
        f"{output} is the result of another input, {earlier!r}, from an earlier run; "
        "not replaced without --overwrite"
    )


def _same_work(
    previous: dict, item: InputItem, params: QuantizeParams, png_path: Path, digests=None
) -> bool:
    """True when the existing output came from this source's current bytes with ``params``.

    The rule is the source's content, not its mtime: ``cp -p``, ``rsync -t`` and an edit that
    keeps the size (any uncompressed BMP, TIFF or PPM) carry an older mtime. Hashing costs a
    read of the file, cheap next to decoding it; a different size settles it without reading.
    """
    try:
        if not (
            png_path.is_file()
            and previous.get("source") == item.source
            and QuantizeParams.from_json(previous).image_work() == params.image_work()
            and (params.colors is None or _same_colors(previous, params.colors))
            and previous["metrics"]["bytes_in"] == os.stat(item.path).st_size
        ):
            return False
        digest = source_digest(item)
        if digests is not None:
            digests[item.path] = digest
        return digest is not None and previous.get("source_sha256") == digest
    except (KeyError, TypeError, ValueError, OSError):
        return False


def _same_colors(previous: dict, given) -> bool:
    """True when an output's palette is the given one (give or take the one transparent entry
    labelling adds for an image with transparency)."""

    def opaque(rows):
        return sorted(
            tuple(row) + (255,) * (4 - len(row)) for row in rows if len(row) == 3 or row[3]
        )

    return opaque(document_colors(previous).tolist()) == opaque(given)


def source_digest(item: InputItem) -> str | None:
    """The SHA-256 of a source file's bytes, in hex: what the skip rule compares. None for
    anything :func:`load_image` would refuse to read (it says why): a path that leaves the
    input tree, a missing file, or one that is not a regular file (a FIFO must not block)."""
    try:
        real = check_inside(Path(item.path), Path(item.root))
        with open(os.open(real, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except (ImageRejected, OSError):
        return None


def _result_from_palette(item: InputItem, document: dict, status: Status) -> FileResult:
    metrics = document.get("metrics", {})
    return FileResult(
        item.source,
        document.get("output", item.output),
        status,
        psnr=metrics.get("psnr"),
        mse=metrics.get("mse"),
        colors=len(document.get("colors", [])),
        timings_ms=document.get("timings_ms", {}),
    )


def _write_failure(item: InputItem, exc: OSError) -> FileResult:
    reason = exc.strerror or str(exc) or type(exc).__name__
    return FileResult(
        item.source,
        item.output,
        Status.FAILED,
        f"cannot write output: {reason}",
        retryable=exc.errno in TRANSIENT_ERRNOS,
    )
