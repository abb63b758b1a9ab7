"""``colorquant report``: one self-contained HTML page about the outputs in a folder.

The page answers "which results look bad, so I can redo them with a larger K?". It reads what
exists in OUT (every palette JSON, the job records ``run`` leaves in ``OUT/.colorquant/``), and,
for a submitted job, what the caller read from Redis. It writes the page plus a folder of JPEG
previews beside it; the page has its styles and script inline and loads nothing from a network.
Rows are data in the page, drawn by a small script a page at a time, so 10,000 images stay fast.
"""

import html
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from pipeline.jobrecord import STATE_DIR, read_json, read_records
from pipeline.settings import PALETTE_SUFFIX
from pipeline.thumbnails import ThumbTask, make_thumbnails, remove_unused, thumb_name

#: The page's name inside OUT when ``-o`` is not given.
DEFAULT_PAGE = "report.html"

#: Suffix of the previews folder beside the page: report.html → report_files/.
THUMBS_SUFFIX = "_files"

#: Palette colours drawn per row, the most used first; the rest are counted, not drawn.
SWATCHES_SHOWN = 16

#: Failures listed on the page; the count above stays exact.
FAILURES_LISTED = 1000

#: Bars of the quality chart.
CHART_BINS = 20

#: Rows the page draws at a time.
PAGE_ROWS = 100

#: Template shipped as package data beside this module.
TEMPLATE = "report_template.html"


class ReportError(ValueError):
    """OUT cannot be reported on (missing, or holds no colorquant output)."""


@dataclass
class ReportInputs:
    """What the page is made of, gathered from OUT (and Redis, through the caller)."""

    out: Path
    rows: list[dict] = field(default_factory=list)
    failures: dict[str, dict] = field(default_factory=dict)
    records: list[dict] = field(default_factory=list)
    job: dict | None = None


def find_palettes(out: Path):
    """Every palette JSON below OUT, skipping hidden folders (bookkeeping, previews)."""
    for folder, subfolders, files in os.walk(out):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in files:
            if name.endswith(PALETTE_SUFFIX) and not name.startswith("."):
                yield Path(folder, name)


def read_row(path: Path) -> dict | None:
    """One table row from a palette JSON; None for a file that is not one of ours."""
    document = read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("output"), str):
        return None
    metrics = document.get("metrics") or {}
    colors = [color for color in document.get("colors") or [] if isinstance(color, dict)]
    by_use = sorted(colors, key=lambda color: -(color.get("count") or 0))[:SWATCHES_SHOWN]
    timings = document.get("timings_ms") or {}
    return {
        "source": str(document.get("source") or document["output"]),
        "output": document["output"],
        "job": (document.get("produced_by") or {}).get("job"),
        "k": len(colors),
        "psnr": metrics.get("psnr"),
        "ssim2": metrics.get("ssimulacra2"),
        "bytes_in": metrics.get("bytes_in") or 0,
        "bytes_out": metrics.get("bytes_out") or 0,
        "ms": round(sum(v for v in timings.values() if isinstance(v, int | float))),
        "swatches": " ".join(
            f"{str(color.get('hex', '#000000'))[1:]}:{round(1000 * (color.get('share') or 0))}"
            for color in by_use
        ),
        "mtime": path.stat().st_mtime,
    }


def gather(out: Path, job: dict | None = None) -> ReportInputs:
    """Rows, failures and job records of OUT; ``job`` is a submitted job's status from Redis
    (with its ``roots``), whose failures join those the run records hold."""
    if not out.is_dir():
        raise ReportError(f"{out} is not a folder")
    inputs = ReportInputs(out=out, records=read_records(out), job=job)
    inputs.rows = [row for path in find_palettes(out) if (row := read_row(path))]
    inputs.failures = current_failures(inputs.records, job, inputs.rows)
    if not inputs.rows and not inputs.records and job is None:
        raise ReportError(f"{out} holds no colorquant outputs (no *{PALETTE_SUFFIX} files)")
    return inputs


def current_failures(records: list[dict], job: dict | None, rows: list[dict]) -> dict:
    """Failures by source, the latest report of each; a failure an output written since has
    made stale is dropped, and so is a run's failure whose file is gone from its input folder
    (deleted or moved away since: a later run no longer meets it, so nothing would clear it)."""
    failures: dict[str, dict] = {}
    gone: dict[str, bool] = {}
    for record in records:
        summary = record.get("summary") or {}
        pairs = [tuple(pair) for pair in record.get("roots") or []]
        for failure in summary.get("failures") or []:
            failures[failure["path"]] = {**failure, "at": record.get("finished_at") or 0}
            gone[failure["path"]] = _is_gone(failure["path"], pairs)
    if job is not None:
        for failure in job.get("failures") or []:
            failures[failure["path"]] = {**failure, "at": time.time()}
            gone[failure["path"]] = False  # the job's own current state
    written = {row["source"]: row["mtime"] for row in rows}
    return {
        source: failure
        for source, failure in sorted(failures.items())
        if written.get(source, 0) < failure["at"] and not gone[source]
    }


def _is_gone(source: str, pairs: list[tuple]) -> bool:
    """True when ``source`` maps to a path through the run's (prefix, folder) pairs and
    nothing is there any more (not even a broken link); False when it cannot be placed."""
    candidates = [
        os.path.join(folder, source[len(prefix) :])
        for prefix, folder in pairs
        if source.startswith(prefix)
    ]
    return bool(candidates) and not any(os.path.lexists(path) for path in candidates)


# --- finding the originals -------------------------------------------------------------------


def source_roots(inputs: ReportInputs, job_roots: Callable[[str], list[str] | None] | None):
    """(prefix, folder) pairs per job, newest job first: how each job's sources map to files."""
    by_job: dict[str, list] = {}
    for record in reversed(inputs.records):
        by_job[record["job"]] = [tuple(pair) for pair in record.get("roots") or []]
    if inputs.job is not None:
        by_job.setdefault(inputs.job["job"], folder_pairs(inputs.job.get("roots") or []))
    if job_roots is not None:
        for job in sorted({row["job"] for row in inputs.rows if row["job"]} - set(by_job)):
            by_job[job] = folder_pairs(job_roots(job) or [])
    return by_job


def folder_pairs(folders: list[str]) -> list[tuple[str, str]]:
    """Pairs for input folders known without their prefixes (a job in Redis): a lone folder's
    sources are paths below it; with several folders, each one's name prefixes its sources."""
    return [(prefix, folder) for folder in folders for prefix in ("", Path(folder).name + "/")]


def find_original(row: dict, by_job: dict[str, list], every_pair: list) -> str | None:
    pairs = by_job.get(row["job"], []) + every_pair
    for prefix, folder in pairs:
        if row["source"].startswith(prefix):
            candidate = os.path.join(folder, row["source"][len(prefix) :])
            if os.path.isfile(candidate):
                return candidate
    return None


# --- the page --------------------------------------------------------------------------------


def default_page(out: Path) -> Path:
    return out / DEFAULT_PAGE


def thumbs_folder(page: Path) -> Path:
    return page.with_name(page.stem + THUMBS_SUFFIX)


def build_report(
    out: Path,
    page: Path | None = None,
    *,
    job: dict | None = None,
    job_roots: Callable[[str], list[str] | None] | None = None,
    workers: int = 1,
    on_plan: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Write the report of OUT and its previews; return a summary of what it holds.

    ``job`` is a submitted job's status (with ``roots``) read from Redis; ``job_roots`` looks up
    the input folders of other submitted jobs whose outputs are in OUT.
    """
    from pipeline.save import write_atomic

    page = Path(page) if page else default_page(out)
    inputs = gather(out, job)
    thumbs = thumbs_folder(page)
    tasks = plan_thumbnails(inputs, thumbs, source_roots(inputs, job_roots))
    if on_plan:
        on_plan(sum(not task.up_to_date() for task in tasks))
    made = make_thumbnails(tasks, workers, on_progress)
    remove_unused(thumbs, {thumb for thumb, ok in made.items() if ok})
    write_atomic(page, render_page(inputs, page, made).encode("utf-8"))
    return {
        "page": str(page),
        "thumbnails": str(thumbs),
        "images": len(inputs.rows),
        "failed": len(inputs.failures),
    }


def plan_thumbnails(inputs: ReportInputs, thumbs: Path, by_job: dict) -> list[ThumbTask]:
    """Two previews per row (original when found, result), recorded on the row."""
    every_pair = [pair for pairs in by_job.values() for pair in pairs]
    tasks = []
    for row in inputs.rows:
        row["thumb_o"] = row["thumb_r"] = None
        original = find_original(row, by_job, every_pair)
        result = inputs.out / row["output"]
        for kind, image in (("o", original), ("r", result)):
            if image is not None:
                row[f"thumb_{kind}"] = str(thumbs / thumb_name(row["output"], kind))
                tasks.append(ThumbTask(str(image), row[f"thumb_{kind}"]))
    return tasks


def href(target: Path | str, page: Path) -> str:
    """A relative URL from the page to ``target``: its bytes percent-encoded, so a file name
    that is not UTF-8 (lone surrogates once decoded) still links to that very file."""
    relative = os.path.relpath(os.path.abspath(target), os.path.abspath(page.parent))
    return quote(os.fsencode(Path(relative).as_posix()))


def readable(name: str) -> str:
    """A file name as the page shows it: valid UTF-8 as is, any other byte as ``\\xe9``
    (a lone surrogate cannot be written into the UTF-8 page)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def page_rows(inputs: ReportInputs, page: Path, made: dict[str, bool]) -> list[dict]:
    """The rows as the page's script reads them: short keys, relative links."""

    def thumb(path):
        return href(path, page) if path and made.get(path) else None

    return [
        {
            "s": readable(row["source"]),
            "o": href(inputs.out / row["output"], page),
            "k": row["k"],
            "p": row["psnr"],
            "q": row["ssim2"],
            "bi": row["bytes_in"],
            "bo": row["bytes_out"],
            "ms": row["ms"],
            "to": thumb(row["thumb_o"]),
            "tr": thumb(row["thumb_r"]),
            "w": row["swatches"],
        }
        for row in inputs.rows
    ]


def render_page(inputs: ReportInputs, page: Path, made: dict[str, bool]) -> str:
    rows = page_rows(inputs, page, made)
    has_ssim2 = any(row["q"] is not None for row in rows)
    data = {"rows": rows, "ssim2": has_ssim2, "sort": "q" if has_ssim2 else "p", "page": PAGE_ROWS}
    template = resources.files("pipeline").joinpath(TEMPLATE).read_text(encoding="utf-8")
    fills = {
        "title": html.escape(
            readable(f"colorquant report: {inputs.out.resolve().name or inputs.out}")
        ),
        "heading": html.escape(readable(str(inputs.out))),
        "totals": render_totals(inputs),
        "chart": quality_chart(inputs.rows, "ssim2" if has_ssim2 else "psnr"),
        "failures": render_failures(inputs.failures),
        "data": json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/"),
    }
    for name, value in fills.items():
        template = template.replace("{{" + name + "}}", value)
    return template


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return ""


def latest_job(inputs: ReportInputs) -> dict | None:
    """The job whose counts head the page: the one asked for, else the newest run's summary."""
    if inputs.job is not None:
        return {**inputs.job, "kind": "submit"}
    for record in reversed(inputs.records):
        if record.get("summary"):
            return {**record["summary"], "kind": record.get("kind", "run")}
    return None


def render_totals(inputs: ReportInputs) -> str:
    rows = inputs.rows
    bytes_in = sum(row["bytes_in"] for row in rows)
    bytes_out = sum(row["bytes_out"] for row in rows)
    ratio = f" ({bytes_out / bytes_in:.0%} of the input)" if bytes_in else ""
    figures = [
        ("images", f"{len(rows) + len(inputs.failures)}"),
        ("outputs", f"{len(rows)}"),
        ("failed", f"{len(inputs.failures)}"),
        ("bytes in", human_bytes(bytes_in)),
        ("bytes out", human_bytes(bytes_out) + ratio),
        ("processing time", f"{sum(row['ms'] for row in rows) / 1000:.1f} s (sum over images)"),
    ]
    job = latest_job(inputs)
    if job is not None:
        counts = ", ".join(
            f"{job.get(name, 0)} {name}" for name in ("done", "skipped", "failed") if name in job
        )
        state = f" {job['state']}" if job.get("state") else ""
        elapsed = f" in {job['elapsed_s']:.1f} s" if job.get("elapsed_s") else ""
        figures.append(
            (
                f"last {job['kind']}",
                f"{job.get('job', '')}{state}: {job.get('total', 0)} images ({counts}){elapsed}",
            )
        )
    cells = "".join(
        f'<div class="figure{" wide" if label.startswith("last") else ""}">'
        f"<span>{html.escape(label)}</span><b>{html.escape(value)}</b></div>"
        for label, value in figures
    )
    return f'<div class="totals">{cells}</div>'


def quality_chart(rows: list[dict], metric: str) -> str:
    """An inline SVG histogram of the quality figures (PSNR in dB, or SSIMULACRA2)."""
    label = "SSIMULACRA2" if metric == "ssim2" else "PSNR (dB)"
    values = [row[metric] for row in rows if isinstance(row[metric], int | float)]
    lossless = sum(1 for row in rows if metric == "psnr" and row["psnr"] is None)
    if not values:
        note = f"{lossless} lossless" if lossless else "no quality figures yet"
        return f'<p class="chart-note">{label}: {note}</p>'
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    counts = [0] * CHART_BINS
    for value in values:
        counts[min(CHART_BINS - 1, int((value - low) / span * CHART_BINS))] += 1
    width, height, bar = 480, 110, 480 / CHART_BINS
    tallest = max(counts)
    bars = []
    for index, count in enumerate(counts):
        top = height - (height - 8) * count / tallest
        start = low + span * index / CHART_BINS
        bars.append(
            f'<rect x="{index * bar + 1:.1f}" y="{top:.1f}" width="{bar - 2:.1f}" '
            f'height="{height - top:.1f}"><title>{count} images, {label} '
            f"{start:.1f}–{start + span / CHART_BINS:.1f}</title></rect>"
        )
    extra = f", {lossless} lossless" if lossless else ""
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height + 30}" role="img" '
        f'aria-label="{label} histogram">{"".join(bars)}'
        f'<text x="0" y="{height + 16}">{low:.1f}</text>'
        f'<text x="{width}" y="{height + 16}" text-anchor="end">{high:.1f}</text>'
        f'<text x="{width / 2}" y="{height + 28}" text-anchor="middle">{label}: '
        f"{len(values)} images{extra}</text></svg>"
    )


def render_failures(failures: dict[str, dict]) -> str:
    if not failures:
        return '<p class="none">No failures.</p>'
    items = "".join(
        f"<tr><td>{html.escape(readable(source))}</td>"
        f"<td>{html.escape(readable(str(failure.get('error'))))}</td></tr>"
        for source, failure in list(failures.items())[:FAILURES_LISTED]
    )
    more = len(failures) - FAILURES_LISTED
    tail = f'<p class="none">… and {more} more.</p>' if more > 0 else ""
    return (
        f'<table id="failures"><thead><tr><th>file</th><th>reason</th></tr></thead>'
        f"<tbody>{items}</tbody></table>{tail}"
    )


__all__ = ["build_report", "ReportError", "default_page", "STATE_DIR"]
