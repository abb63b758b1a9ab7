"""What each command does, as plain functions: they take parsed options and return an exit code.

Heavy modules (numpy, scikit-learn, Celery) are imported inside the functions that need them,
so the commands that do not quantize never load them.
"""

import os
from dataclasses import asdict, replace
from pathlib import Path

import typer

from cli.documents import batch_report, print_json
from cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    err,
    job_errors,
    print_error,
    usage_error,
)
from cli.options import EXTENSIONS_TEXT, QuantizeOptions, cpu_count
from cli.render import (
    ProgressDisplay,
    follow,
    format_psnr,
    no_worker_warning,
    plural,
    print_batch_report,
    print_failures,
    print_interrupted_run,
    print_interrupted_watch,
    print_job_end,
    print_job_id,
    print_jobs,
    print_status,
    stdout_console,
)
from pipeline.discover import InputError, describe_ignored, first_image, resolve_roots
from pipeline.ownership import (
    OutputIsInput,
    OutputRefused,
    check_figure_target,
    refuse_outputs_over_inputs,
)
from pipeline.params import QuantizeParams, parse_exports, parse_sample
from pipeline.settings import PER_IMAGE, SHARED, max_pixels


def check_environment() -> None:
    """Settings read from the environment are checked once, up front, as usage errors."""
    try:
        max_pixels()
    except ValueError as exc:
        raise usage_error(str(exc)) from None


def make_params(options: QuantizeOptions) -> QuantizeParams:
    check_environment()
    try:
        # The random codebook draws K pixels whatever --sample says; record what was done.
        drawn = "all" if options.method == "random" else options.sample
        sample = parse_sample(drawn)
        if sample is not None and sample < options.k:
            raise ValueError(
                f"--sample {sample} draws fewer pixels than the {options.k} colours asked "
                f"for (-k); sample at least {options.k} pixels, or use --sample all"
            )
        params = QuantizeParams(
            k=options.k,
            sample=sample,
            seed=options.seed,
            method=options.method,
            format=options.format.strip().lower(),
            exports=parse_exports(options.export),
            space=options.space,
            dither=options.dither,
            metrics=options.metrics,
        )
        return with_palette_source(params, options.palette)
    except ValueError as exc:
        raise usage_error(str(exc)) from None


def with_palette_source(params: QuantizeParams, choice: str) -> QuantizeParams:
    """``params`` with the palette source of ``--palette``: per-image, shared, or a FILE read
    now, so that a bad file stops the command before any image is touched."""
    if choice == PER_IMAGE:
        return params
    if choice == SHARED:
        if params.method != "kmeans" or params.sample is not None:
            raise ValueError(
                "--palette shared fits k-means on the colours of every pixel; "
                "it takes neither --method random nor --sample N"
            )
        return replace(params, palette=SHARED)
    from pipeline.palette_files import read_palette_file

    colors = read_palette_file(Path(choice))  # PaletteFileError is a ValueError
    return replace(params, palette=choice).with_colors(colors)


def input_roots(paths: list[Path], out: Path, params: QuantizeParams):
    """The PATHs as input roots, refused as a usage error when they cannot be used with OUT:
    missing, overlapping, OUT inside an input folder, or an output path (in ``params``' format,
    exports included) that is an input."""
    try:
        roots = resolve_roots(paths, out)
        refuse_outputs_over_inputs(roots, out, fmt=params.format, exports=params.exports)
    except InputError as exc:
        raise usage_error(str(exc)) from None
    except OutputIsInput as exc:
        raise usage_error(f"{exc}; nothing was written") from None
    return roots


def require_images(roots, paths: list[Path]) -> None:
    """A usage error when the PATHs hold no image at all, saying what they held instead."""
    found, walk = first_image(roots)
    if found:
        return
    given = " ".join(str(path) for path in paths)
    held = describe_ignored(walk.ignored_kinds)
    held = "no files" if held == "nothing" else held
    raise usage_error(
        f"no images in {given}: {held}; images are files named {EXTENSIONS_TEXT} "
        "(see --help); nothing was written"
    )


def check_writable(out: Path) -> None:
    """Fail early, with one line, when OUT cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise usage_error(f"-o {out} is a file, not a folder; give a folder for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise usage_error(f"cannot create output folder {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise usage_error(f"output folder {out} is not writable")


def missing_folders(out: Path) -> list[Path]:
    """OUT and those of its parents that do not exist yet, deepest first: what
    ``check_writable`` is about to create."""
    missing = []
    for folder in (out, *out.absolute().parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed command created, deepest first, while they are empty: a
    worker or a person may have put something there since, which stays."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def finish_batch(counts: dict, out: Path, as_json: bool) -> int:
    """Print a finished batch's report (JSON or human); return the exit code."""
    report = batch_report(counts)
    if as_json:
        print_json(report)
    else:
        print_batch_report(report, out)
    return EXIT_SOME_FAILED if report["failed"] else EXIT_OK


def run_local(
    paths: list[Path], out: Path, options: QuantizeOptions, workers: int | None, as_json: bool
) -> int:
    """``run``: quantize with local processes; the exit code of the batch."""
    from pipeline.batch import collect_items, run_batch

    params = make_params(options)
    roots = input_roots(paths, out, params)
    require_images(roots, paths)
    if params.shared:
        check_shared_outputs(roots, out, params, options.overwrite)
    check_writable(out)
    items, ignored = collect_items(roots)
    if params.shared:
        return run_shared_local(items, ignored, out, params, options, workers, as_json)
    try:
        with ProgressDisplay("Quantizing", len(items)) as display:
            summary = run_batch(
                items,
                out,
                params,
                workers=workers or cpu_count(),
                overwrite=options.overwrite,
                ignored=ignored,
                on_result=display.count,
            )
    except KeyboardInterrupt:
        print_interrupted_run(display.outcomes, len(items))
        return EXIT_INTERRUPTED
    return finish_batch(asdict(summary), out, as_json)


def check_shared_outputs(roots, out: Path, params: QuantizeParams, overwrite: bool) -> None:
    """A usage error when the shared palette's files in OUT would replace a file colorquant
    did not write, or when an input's own exports would land on them."""
    from pipeline.shared import check_shared_target, export_clash

    try:
        check_shared_target(out, params, overwrite)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    clash = export_clash(roots, params)
    if clash:
        raise usage_error(clash)


def run_shared_local(items, ignored, out, params, options, workers, as_json) -> int:
    """``run --palette shared``: count every image, fit one palette, then label with it."""
    from pipeline.batch import new_job_id
    from pipeline.shared import run_shared

    # One bar over both passes: counting every image, then labelling every image.
    with ProgressDisplay("Counting, then quantizing", 2 * len(items)) as display:
        summary = run_shared(
            items,
            out,
            params,
            workers=workers or cpu_count(),
            job=new_job_id(),
            overwrite=options.overwrite,
            ignored=ignored,
            on_counted=display.count,
            on_result=display.count,
        )
    return finish_batch(asdict(summary), out, as_json)


def submit_job(
    paths: list[Path],
    out: Path,
    options: QuantizeOptions,
    broker: str | None,
    wait: bool,
    as_json: bool,
) -> int:
    """``submit``: queue one job for the workers; with ``wait``, follow it to its end."""
    from worker.client import open_store, workers_alive
    from worker.client import submit as submit_to_workers

    params = make_params(options)
    roots = input_roots(paths, out, params)
    require_images(roots, paths)
    if params.shared:
        check_shared_outputs(roots, out, params, options.overwrite)
    with job_errors():
        open_store(broker)  # an unreachable broker is reported before OUT is created
    missing = missing_folders(out)
    check_writable(out)
    with job_errors():
        try:
            receipt = submit_to_workers(
                roots, out, params, overwrite=options.overwrite, broker=broker
            )
        except BaseException:
            remove_empty(missing)  # nothing half-written: not even the folder we just made
            raise
        if not wait:
            print_json(receipt) if as_json else print(receipt["job"])
            print_job_id(receipt)
            if receipt["total"] and not workers_alive(broker):
                err.print(no_worker_warning(broker))
            return EXIT_OK
        print_job_id(receipt)
        final = follow_job(receipt["job"], broker)
    finish_batch(final, out, as_json)
    return job_exit_code(final)


def follow_job(job: str, broker: str | None) -> dict:
    """Follow a job to its end; on Ctrl-C say that the job goes on, and exit 130."""
    from worker.client import status_reader

    read_status = status_reader(job, broker)
    try:
        return follow(read_status, broker=broker)
    except KeyboardInterrupt:
        print_interrupted_watch(job, _workers_or_none(broker), broker)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _workers_or_none(broker: str | None) -> int | None:
    """How many workers are alive, or None when the broker cannot tell right now."""
    from worker.client import workers_alive

    try:
        return workers_alive(broker)
    except Exception:  # an interrupted command must still exit cleanly
        return None


def job_exit_code(document: dict) -> int:
    """0 when every image succeeded; 1 when some failed or the job was cancelled."""
    return EXIT_SOME_FAILED if document["failed"] or document["state"] == "cancelled" else EXIT_OK


def show_status(job: str, broker: str | None, as_json: bool) -> int:
    from worker.client import status

    with job_errors():
        document = status(job, broker)
    emit(document, as_json, print_status)
    return EXIT_OK


def watch_job(job: str, broker: str | None) -> int:
    with job_errors():
        final = follow_job(job, broker)
    print_job_end(final)
    return job_exit_code(final)


def show_jobs(broker: str | None, as_json: bool) -> int:
    from worker.client import list_jobs

    with job_errors():
        documents = list_jobs(broker)
    emit(documents, as_json, print_jobs)
    return EXIT_OK


def cancel_job(job: str, broker: str | None) -> int:
    from worker.client import cancel

    with job_errors():
        document = cancel(job, broker)
    left = f"{plural(document['cancelled'])} left unprocessed"
    if document["previous_state"] == "cancelled":
        err.print(f"job {job} was already cancelled; {left}")
    elif document["previous_state"] == "done":
        err.print(f"job {job} had already finished; nothing to cancel")
    else:
        # Images a worker had already begun still finish (and count as done or failed), so
        # the figure read just now is an upper bound; status shows the final one.
        err.print(f"job {job} cancelled: up to {left}; images already under way still finish")
    return EXIT_OK


def retry_job(job: str, broker: str | None) -> int:
    from worker.client import retry

    with job_errors():
        receipt = retry(job, broker)
    if not receipt["retried"] and not receipt.get("not_retried"):
        err.print(f"job {job} has no failed images to retry")
        return EXIT_OK
    message = f"job {job}: {plural(receipt['retried'])} queued again"
    if receipt.get("not_retried"):
        message += (
            f"; {plural(receipt['not_retried'])} refused before reading (links out of the "
            "input tree) stay failed"
        )
    err.print(message)
    return EXIT_OK


def compare_image(
    image: Path, out: Path, k: int, seed: int, overwrite: bool = False, as_json: bool = False
) -> int:
    """``compare``: the four-panel figure for one image; its numbers on stdout with --json."""
    from pipeline.threads import limit_threads_env, warm_up

    limit_threads_env()  # before numpy loads: one BLAS/OpenMP thread, as in every worker
    from pipeline.compare import comparison_figure, figure_format
    from pipeline.load import ImageRejected

    check_environment()
    if image.is_dir():
        raise usage_error(f"{image} is a folder; compare takes one image")
    if not image.is_file():
        raise usage_error(f"{image}: no such file")
    try:
        figure_format(out)
        check_figure_target(out, image, overwrite)
    except OutputIsInput as exc:
        raise usage_error(f"{exc}; nothing was written") from None
    except OutputRefused as exc:
        print_error(str(exc))
        return EXIT_SOME_FAILED
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    warm_up()  # the compiled loops, compiled first if this machine has none (one line says so)
    try:
        shown = comparison_figure(image, out, k, seed)
    except ImageRejected as exc:
        print_error(f"{image}: {exc}")
        return EXIT_SOME_FAILED
    except OSError as exc:
        raise usage_error(f"cannot write {out}: {exc.strerror}") from None
    if as_json:
        print_json(shown)
        return EXIT_OK
    for row in shown["panels"][1:]:
        err.print(f"  {panel_summary(row)}")
    print(shown["figure"])
    return EXIT_OK


def panel_summary(row: dict) -> str:
    """One line per result panel: name, colours, PSNR, SSIMULACRA2."""
    score = row["ssimulacra2"]
    score = "n/a" if score is None else f"{score:.1f}"
    colours = f"{row['colors']:,} colour" + ("" if row["colors"] == 1 else "s")
    return f"{row['name']}: {colours}, {format_psnr(row['psnr'])}, SSIMULACRA2 {score}"


def demo(out: Path, k: int, workers: int | None, overwrite: bool = False) -> int:
    """``demo``: the seed example end to end on scikit-learn's bundled photos."""
    from pipeline.threads import limit_threads_env

    limit_threads_env()  # the figures are drawn here, in this process
    check_environment()
    from pipeline.demo import DEMO_FOLDERS, DEMO_IMAGES, run_demo

    check_writable(out)
    try:
        with ProgressDisplay("Demo", len(DEMO_IMAGES) * len(DEMO_FOLDERS)) as display:
            result = run_demo(out, k, workers or cpu_count(), display.count, overwrite)
    except OutputRefused as exc:
        print_error(str(exc))
        return EXIT_SOME_FAILED
    folder = result["folder"]
    err.print(f"[bold]Demo written to {folder}[/]")
    for name, summary in result["summaries"].items():
        made = summary.done + summary.skipped
        err.print(f"  {name:8} {folder / name}/  ({made} images + palettes)")
        print_failures(summary.failures, summary.failed)
    for figure in result["figures"]:
        err.print(f"  figure   {figure['figure']}")
        for row in figure["panels"][1:]:
            err.print(f"    {panel_summary(row)}")
    failed = any(summary.failed for summary in result["summaries"].values())
    return EXIT_SOME_FAILED if failed else EXIT_OK


def start_worker(concurrency: int | None, broker: str | None, loglevel: str) -> int:
    from worker.start import run_worker

    check_environment()
    run_worker(concurrency, broker, loglevel=loglevel)
    return EXIT_OK


def emit(document, as_json: bool, render) -> None:
    """One JSON document on stdout, or ``render`` it as a table."""
    if as_json:
        print_json(document)
    else:
        render(document, stdout_console())
