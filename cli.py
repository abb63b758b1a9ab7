"""colorquant's command line: every command a person types.

Each command parses its options and hands over to a plain function in ``pipeline/`` or
``worker/``. Nothing here imports numpy or scikit-learn, so ``--help`` and the job commands
answer at once.
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.discover import InputError, resolve_roots
from pipeline.params import QuantizeParams, parse_sample
from pipeline.settings import MAX_COLORS, METHODS, MIN_COLORS, max_pixels
from pipeline.threads import limit_threads_env

app = typer.Typer(
    name="colorquant",
    help="Reduce every photo in a folder to a K-colour palette with k-means: an indexed PNG "
    "plus its palette JSON per image, on this machine or on Celery workers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# soft_wrap: long paths stay on one line, so piped or logged output stays greppable.
err = Console(stderr=True, highlight=False, soft_wrap=True)

#: Exit codes, as scripts rely on them.
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Image files or folders; folders are walked recursively.", show_default=False
    ),
]
OutOpt = Annotated[
    Path, typer.Option("-o", "--out", help="Output folder; it mirrors the input tree.")
]
KOpt = Annotated[
    int,
    typer.Option(
        "-k",
        "--colors",
        min=MIN_COLORS,
        max=MAX_COLORS,
        help=f"Palette size, {MIN_COLORS}–{MAX_COLORS}.",
    ),
]
SampleOpt = Annotated[
    str,
    typer.Option(
        "--sample",
        metavar="all|N",
        help="Fit on all pixels through the colour histogram ([bold]all[/]), or on N "
        "random pixels as scikit-learn's example does.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, help="Random seed.")]
MethodOpt = Annotated[
    str,
    typer.Option(
        "--method",
        metavar="|".join(METHODS),
        help="[bold]kmeans[/], or [bold]random[/]: K random pixels as the codebook "
        "(the example's baseline; ignores --sample).",
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "-j",
        "--jobs",
        min=1,
        help="Worker processes.  [default: number of cores]",
        show_default=False,
    ),
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Redo outputs that already exist with these settings.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def show_version(value: bool) -> None:
    if value:
        from pipeline.version import VERSION

        print(f"colorquant {VERSION}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def common(
    version: Annotated[
        bool,
        typer.Option("--version", callback=show_version, is_eager=True, help="Print the version."),
    ] = False,
):
    """Reduce every photo in a folder to a K-colour palette with k-means: an indexed PNG plus
    its palette JSON per image, on this machine or on Celery workers."""


def usage_error(message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(EXIT_USAGE)


def check_environment() -> None:
    """Settings read from the environment are checked once, up front, as usage errors."""
    try:
        max_pixels()
    except ValueError as exc:
        raise usage_error(str(exc)) from None


def make_params(k: int, sample: str, seed: int, method: str) -> QuantizeParams:
    check_environment()
    try:
        # The random codebook draws K pixels whatever --sample says; record what was done.
        drawn = "all" if method == "random" else sample
        return QuantizeParams(k=k, sample=parse_sample(drawn), seed=seed, method=method)
    except ValueError as exc:
        raise usage_error(str(exc)) from None


def input_roots(paths: list[Path], out: Path):
    try:
        return resolve_roots(paths, out)
    except InputError as exc:
        raise usage_error(str(exc)) from None


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@app.command()
def run(
    paths: PathsArg,
    out: OutOpt,
    k: KOpt = 64,
    sample: SampleOpt = "all",
    seed: SeedOpt = 0,
    method: MethodOpt = "kmeans",
    jobs: JobsOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
):
    """Quantize images here, with local processes. No Redis needed.

    Outputs that already exist with the same settings are skipped, so a re-run resumes.
    Exit code 0 when every image succeeded, 1 when some failed, 2 for a usage error.
    """
    from pipeline.batch import collect_items, run_batch

    params = make_params(k, sample, seed, method)
    roots = input_roots(paths, out)
    check_writable(out)
    items, ignored = collect_items(roots)
    with progress_reporter(len(items), "Quantizing") as on_result:
        summary = run_batch(
            items,
            out,
            params,
            workers=jobs or cpu_count(),
            overwrite=overwrite,
            ignored=ignored,
            on_result=on_result,
        )
    report = summary.to_json()
    print_batch_report(report, out, as_json)
    raise typer.Exit(EXIT_SOME_FAILED if summary.failed else EXIT_OK)


@app.command()
def compare(
    image: Annotated[Path, typer.Argument(help="One image.", show_default=False)],
    out: Annotated[Path, typer.Option("-o", "--out", help="The figure to write (PNG).")],
    k: KOpt = 64,
    seed: SeedOpt = 0,
):
    """Draw the seed example's figure: original | k-means | random codebook, with PSNR."""
    limit_threads_env()  # before numpy loads: one BLAS/OpenMP thread, as in every worker
    from pipeline.compare import comparison_figure
    from pipeline.load import ImageRejected

    check_environment()
    if image.is_dir():
        raise usage_error(f"{image} is a folder; compare takes one image")
    if not image.is_file():
        raise usage_error(f"{image}: no such file")
    if out.suffix.lower() != ".png":
        raise usage_error(f"the figure is a PNG: name it .png, not {out.name}")
    try:
        shown = comparison_figure(image, out, QuantizeParams(k=k, seed=seed))
    except ImageRejected as exc:
        err.print(f"[red]error:[/] {image}: {exc}")
        raise typer.Exit(EXIT_SOME_FAILED) from None
    except OSError as exc:
        raise usage_error(f"cannot write {out}: {exc.strerror}") from None
    err.print(f"k-means {fmt_psnr(shown['kmeans_psnr'])}, random {fmt_psnr(shown['random_psnr'])}")
    print(shown["figure"])


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Folder for the demo's inputs and outputs.")
    ] = Path("colorquant-demo"),
    k: KOpt = 64,
    jobs: JobsOpt = None,
):
    """Run the seed example end to end on scikit-learn's bundled china.jpg and flower.jpg.

    Writes the k-means and random-codebook results with their palettes, and a figure per photo.
    """
    limit_threads_env()  # the figures are drawn here, in this process
    check_environment()
    from pipeline.demo import run_demo

    check_writable(out)
    with progress_reporter(4, "Demo") as on_result:
        result = run_demo(out, k, jobs or cpu_count(), on_result)
    folder = result["folder"]
    err.print(f"[bold]Demo written to {folder}[/]")
    for method, summary in result["summaries"].items():
        err.print(f"  {method:7} {folder / method}/  ({summary.done} images + palettes)")
    for figure in result["figures"]:
        err.print(
            f"  figure  {figure['figure']}  (k-means {fmt_psnr(figure['kmeans_psnr'])}, "
            f"random {fmt_psnr(figure['random_psnr'])})"
        )


BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        metavar="URL",
        help="Redis broker URL (default: $COLORQUANT_BROKER_URL, else "
        "redis://localhost:6379/0). A password in it is never printed.",
        show_default=False,
    ),
]
JobArg = Annotated[str, typer.Argument(help="Job id, as printed by submit.", show_default=False)]


class job_errors:
    """Turn an unreachable broker, an unknown job or a bad setting into one line and exit 2."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from worker.client import UnknownJob
        from worker.jobs import BrokerUnreachable

        if isinstance(exc, BrokerUnreachable | ValueError):
            raise usage_error(str(exc)) from None
        if isinstance(exc, UnknownJob):
            raise usage_error(f"no job {exc} (never submitted, or expired)") from None
        return False


def job_exit_code(document: dict) -> int:
    """0 when every image succeeded; 1 when some failed or the job was cancelled."""
    return EXIT_SOME_FAILED if document["failed"] or document["state"] == "cancelled" else EXIT_OK


@app.command()
def submit(
    paths: PathsArg,
    out: OutOpt,
    k: KOpt = 64,
    sample: SampleOpt = "all",
    seed: SeedOpt = 0,
    method: MethodOpt = "kmeans",
    overwrite: OverwriteOpt = False,
    broker: BrokerOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end.")] = False,
    as_json: JsonOpt = False,
):
    """Send images to Celery workers as one job, and print its id.

    Workers must see PATH and OUT at the same paths (one machine, or a shared volume).
    With --wait: exit code 0 when every image succeeded, 1 when some failed; 2 for a usage
    error or an unreachable broker.
    """
    from worker.client import status_reader
    from worker.client import submit as submit_job
    from worker.render import batch_report, follow

    params = make_params(k, sample, seed, method)
    roots = input_roots(paths, out)
    check_writable(out)
    with job_errors():
        receipt = submit_job(roots, out, params, overwrite=overwrite, broker=broker)
        if not wait:
            print(json.dumps(receipt) if as_json else receipt["job"])
            err.print(
                f"{receipt['total']} images queued; follow with: colorquant watch {receipt['job']}"
            )
            return
        final = follow(status_reader(receipt["job"], broker), err)
    print_batch_report(batch_report(final), out, as_json)
    raise typer.Exit(job_exit_code(final))


@app.command()
def status(job: JobArg, broker: BrokerOpt = None, as_json: JsonOpt = False):
    """Show a job's state, counts, speed, ETA and failures."""
    from worker.client import status as job_status
    from worker.render import print_status

    with job_errors():
        document = job_status(job, broker)
    emit(document, as_json, print_status)


@app.command()
def watch(job: JobArg, broker: BrokerOpt = None):
    """Follow a job live until it ends. Exit code 1 if anything failed or it was cancelled."""
    from worker.client import status_reader
    from worker.render import follow, print_failures

    with job_errors():
        final = follow(status_reader(job, broker), err)
    err.print(
        f"job {job} {final['state']}: {final['done']} done, {final['skipped']} skipped, "
        f"{final['failed']} failed of {final['total']}"
    )
    print_failures(final["failures"], final["failed"], err)
    raise typer.Exit(job_exit_code(final))


@app.command()
def jobs(broker: BrokerOpt = None, as_json: JsonOpt = False):
    """List recent jobs, newest first."""
    from worker.client import list_jobs
    from worker.render import print_jobs

    with job_errors():
        documents = list_jobs(broker)
    emit(documents, as_json, print_jobs)


@app.command()
def cancel(job: JobArg, broker: BrokerOpt = None):
    """Cancel a job: workers skip the images that are left."""
    from worker.client import cancel as cancel_job

    with job_errors():
        document = cancel_job(job, broker)
    err.print(f"job {job} {document['state']}: {plural(document['pending'])} left unprocessed")


@app.command()
def retry(job: JobArg, broker: BrokerOpt = None):
    """Re-enqueue a job's failed images under the same job id."""
    from worker.client import retry as retry_job

    with job_errors():
        receipt = retry_job(job, broker)
    message = f"job {job}: {plural(receipt['retried'])} queued again"
    if receipt.get("not_retried"):
        message += (
            f"; {plural(receipt['not_retried'])} refused before reading (links out of the "
            "input tree) stay failed"
        )
    err.print(message)


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "-c",
            "--concurrency",
            min=1,
            help="Pool processes (default: $COLORQUANT_CONCURRENCY, else the number of cores).",
            show_default=False,
        ),
    ] = None,
    broker: BrokerOpt = None,
    loglevel: Annotated[str, typer.Option("--loglevel", help="Celery log level.")] = "INFO",
):
    """Start a Celery worker that quantizes submitted jobs (Ctrl-C for a warm shutdown).

    Unlike the other commands, a worker waits for an unreachable broker, retrying, so that it
    can start before Redis does.
    """
    from worker.start import run_worker

    check_environment()
    run_worker(concurrency, broker, loglevel=loglevel)


@app.command()
def report(
    out: Annotated[
        Path, typer.Argument(help="An output folder of run or submit.", show_default=False)
    ],
    page: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            metavar="REPORT.html",
            help="The page to write; its previews go to a folder beside it (REPORT_files/). "
            "[default: OUT/report.html]",
            show_default=False,
        ),
    ] = None,
    job: Annotated[
        str | None,
        typer.Option("--job", help="A submitted job: read its counts and failures from Redis."),
    ] = None,
    broker: BrokerOpt = None,
    jobs: JobsOpt = None,
):
    """Write one self-contained HTML page about OUT: thumbnails of each original beside its
    result, palettes, PSNR, sizes and failures, worst first. Previews made earlier are reused."""
    from pipeline.report import ReportError, build_report, default_page
    from worker.reportsource import job_for_report, roots_lookup

    if not out.is_dir():
        raise usage_error(f"{out} is not a folder")
    page = page or default_page(out)
    if page.suffix.lower() not in (".html", ".htm"):
        raise usage_error(f"the report is an HTML page: name it .html, not {page.name}")
    with job_errors():
        status_doc = job_for_report(job, broker) if job else None
    check_writable(page.parent)
    with counting_bar("Thumbnails") as (on_plan, on_progress):
        try:
            summary = build_report(
                out,
                page,
                job=status_doc,
                job_roots=roots_lookup(broker),
                workers=jobs or cpu_count(),
                on_plan=on_plan,
                on_progress=on_progress,
            )
        except ReportError as exc:
            raise usage_error(str(exc)) from None
    err.print(f"{plural(summary['images'])}, {summary['failed']} failed → {summary['page']}")
    print(summary["page"])


@app.command()
def exporter(
    port: Annotated[
        int,
        typer.Option(
            "--port", min=1, max=65535, envvar="COLORQUANT_EXPORTER_PORT", help="Port to serve."
        ),
    ] = 9808,
    host: Annotated[
        str, typer.Option("--host", envvar="COLORQUANT_EXPORTER_HOST", help="Address to bind.")
    ] = "0.0.0.0",
    broker: BrokerOpt = None,
):
    """Serve Prometheus metrics at http://HOST:PORT/metrics: per job the images done, failed,
    skipped and pending, rate and state; the queue depth; the workers alive."""
    from worker.exporter import serve

    with job_errors():
        try:
            serve(port, host, broker)
        except OSError as exc:
            raise usage_error(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None


class counting_bar:
    """A rich progress bar on a terminal, fed by (on_plan(total), on_progress(n)); silent
    elsewhere."""

    def __enter__(self):
        self.progress = None
        return self.plan, self.advance

    def __init__(self, label: str):
        self.label = label

    def plan(self, total: int) -> None:
        if err.is_terminal and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn(self.label), BarColumn(), MofNCompleteColumn(), console=err
            )
            self.task = self.progress.add_task(self.label, total=total)
            self.progress.start()

    def advance(self, count: int) -> None:
        if self.progress:
            self.progress.advance(self.task, count)

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()


def emit(document, as_json: bool, render) -> None:
    """One JSON document on stdout, or ``render`` it as a table."""
    if as_json:
        print(json.dumps(document, indent=1, ensure_ascii=False))
    else:
        # On a pipe, no terminal width to fit: never fold a table cell.
        width = None if sys.stdout.isatty() else 1000
        render(document, Console(highlight=False, soft_wrap=True, width=width))


def plural(count: int, noun: str = "image") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def fmt_psnr(value) -> str:
    return "lossless" if value is None else f"{value:.2f} dB"


def check_writable(out: Path) -> None:
    """Fail early, with one line, when OUT cannot be created or written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise usage_error(f"cannot create output folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise usage_error(f"output folder {out} is not writable")


class progress_reporter:
    """A rich progress bar with rate and ETA on a terminal; silent elsewhere."""

    def __init__(self, total: int, label: str):
        self.total = total
        self.label = label
        self.progress = None

    def __enter__(self):
        if not err.is_terminal:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("failed {task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err,
        )
        self.task = self.progress.add_task(self.label, total=self.total, failed=0, rate="")
        self.failed = 0
        self.progress.start()
        return self.update

    def update(self, result) -> None:
        if result.status == "failed":
            self.failed += 1
        self.progress.advance(self.task)
        task = self.progress.tasks[0]
        rate = f"{task.speed:.1f} img/s" if task.speed else ""
        self.progress.update(self.task, failed=self.failed, rate=rate)

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()


def print_batch_report(report: dict, out: Path, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return
    err.print(
        f"{report['done']} done, {report['skipped']} skipped, {report['failed']} failed, "
        f"{report['ignored']} ignored (not images) of {report['total']} in "
        f"{report['elapsed_s']:.1f} s → {out}"
    )
    for failure in report["failures"][:20]:
        err.print(f"  [red]failed[/] {failure['path']}: {failure['error']}", soft_wrap=True)
    if len(report["failures"]) > 20:
        err.print(f"  … and {len(report['failures']) - 20} more (see --json)")


def main() -> None:
    """Console entry point: no traceback reaches a person unless COLORQUANT_DEBUG is set."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("COLORQUANT_DEBUG"):
            raise
        err.print(
            f"[red]error:[/] {type(exc).__name__}: {exc} (set COLORQUANT_DEBUG=1 for details)"
        )
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
