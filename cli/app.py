"""The Typer app: every command a person types, each a few lines handing over to ``cli.actions``."""

import inspect
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import actions, observe
from cli.errors import (
    DEBUG_ENV,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    click,
    err,
    flag_error_message,
    print_error,
)
from cli.helpstyle import use_plain_notation
from cli.options import (
    BrokerOpt,
    JobArg,
    JobsOpt,
    JsonOpt,
    KOpt,
    OutOpt,
    OverwriteFileOpt,
    PathsArg,
    QuantizeOptions,
    SeedOpt,
    quantize_options,
)

use_plain_notation()

app = typer.Typer(
    name="colorquant",
    help="Reduce every photo in a folder to a K-colour palette with k-means: an indexed PNG "
    "plus its palette JSON per image, on this machine or on Celery workers.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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


@app.command()
@quantize_options
def run(
    paths: PathsArg,
    out: OutOpt,
    options: QuantizeOptions,
    jobs: JobsOpt = None,
    as_json: JsonOpt = False,
):
    """Quantize images here, with local processes. No Redis needed.

    Outputs that already exist with the same settings are skipped, so a re-run resumes.
    Exit code 0 when every image succeeded, 1 when some failed, 2 for a usage error.
    """
    raise typer.Exit(actions.run_local(paths, out, options, jobs, as_json))


@app.command()
@quantize_options
def submit(
    paths: PathsArg,
    out: OutOpt,
    options: QuantizeOptions,
    broker: BrokerOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end.")] = False,
    as_json: JsonOpt = False,
):
    """Send images to Celery workers as one job, and print its id.

    Workers must see PATH and OUT at the same paths (one machine, or a shared volume).
    With --wait: exit code 0 when every image succeeded, 1 when some failed; 2 for a usage
    error or an unreachable broker.
    """
    raise typer.Exit(actions.submit_job(paths, out, options, broker, wait, as_json))


@app.command()
def compare(
    image: Annotated[Path, typer.Argument(help="One image.", show_default=False)],
    out: Annotated[
        Path,
        typer.Option(
            "-o",
            "--out",
            help="The figure to write: .png, .jpg, .webp, or another format Pillow writes.",
        ),
    ],
    k: KOpt = 64,
    seed: SeedOpt = 0,
    overwrite: OverwriteFileOpt = False,
    as_json: JsonOpt = False,
):
    """Draw four panels: original | the example's k-means (1,000 px, RGB) | colorquant's
    default | random codebook, each titled with colours, PSNR and SSIMULACRA2.

    With --json, print the numbers the figure shows as one JSON document.
    """
    raise typer.Exit(actions.compare_image(image, out, k, seed, overwrite, as_json))


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Folder for the demo's inputs and outputs.")
    ] = Path("colorquant-demo"),
    k: KOpt = 64,
    jobs: JobsOpt = None,
    overwrite: OverwriteFileOpt = False,
):
    """Run the seed example end to end on scikit-learn's bundled china.jpg and flower.jpg.

    Writes the example's result (1,000-pixel k-means in RGB), colorquant's default and the
    random codebook, each with its palettes, and a four-panel figure per photo. A re-run skips
    what is done; files there that colorquant did not write are left alone.
    """
    raise typer.Exit(actions.demo(out, k, jobs, overwrite))


@app.command()
def status(job: JobArg, broker: BrokerOpt = None, as_json: JsonOpt = False):
    """Show a job's state, counts, speed, ETA and failures."""
    raise typer.Exit(actions.show_status(job, broker, as_json))


@app.command()
def watch(job: JobArg, broker: BrokerOpt = None):
    """Follow a job live until it ends. Exit code 1 if anything failed or it was cancelled."""
    raise typer.Exit(actions.watch_job(job, broker))


@app.command()
def jobs(broker: BrokerOpt = None, as_json: JsonOpt = False):
    """List recent jobs, newest first."""
    raise typer.Exit(actions.show_jobs(broker, as_json))


@app.command()
def cancel(job: JobArg, broker: BrokerOpt = None):
    """Cancel a job: workers skip the images that are left."""
    raise typer.Exit(actions.cancel_job(job, broker))


@app.command()
def retry(job: JobArg, broker: BrokerOpt = None):
    """Re-enqueue a job's failed images under the same job id."""
    raise typer.Exit(actions.retry_job(job, broker))


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
    raise typer.Exit(actions.start_worker(concurrency, broker, loglevel))


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
            help="The page to write (default: OUT/report.html); its previews go to a folder "
            "beside it (REPORT_files/).",
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
    """Write one self-contained HTML page about OUT: each original beside its result, palette,
    PSNR, sizes, and the failures, worst first. Previews made earlier are reused."""
    raise typer.Exit(observe.write_report(out, page, job, broker, jobs))


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
    skipped and pending, the rate and the state; the queue depth; the workers alive."""
    raise typer.Exit(observe.serve_exporter(port, host, broker))


def _one_line_summaries() -> None:
    """Give each command its summary for the command list: the first paragraph of its
    docstring on one line. Typer's rich help keeps a docstring's line breaks there, which
    broke summaries mid-sentence at any terminal width."""
    for info in app.registered_commands:
        first_paragraph = (inspect.getdoc(info.callback) or "").split("\n\n")[0]
        info.short_help = info.short_help or " ".join(first_paragraph.split())


_one_line_summaries()


def main() -> None:
    """Console entry point: a flag error is one ``error: ...`` line (exit 2); an unexpected
    error (a bug) is one ``error: ...`` line too, with exit 1 so that it never passes for a
    usage error, and its traceback reaches a person only when COLORQUANT_DEBUG is set."""
    try:
        code = app(standalone_mode=False)
    except click.NoArgsIsHelpError:
        sys.exit(EXIT_USAGE)  # the help was printed
    except click.ClickException as exc:
        print_error(flag_error_message(exc))
        sys.exit(EXIT_USAGE)
    except typer.Abort:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        reason = " ".join(str(exc).split())  # one line, whatever the exception's text holds
        print_error(
            f"internal error: {type(exc).__name__}: {reason} "
            f"(re-run with {DEBUG_ENV}=1 for a traceback)"
        )
        sys.exit(EXIT_INTERNAL_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
