"""The commands that look at work already done or under way: ``report`` and ``exporter``.

Neither imports numpy or scikit-learn; the report's previews are made by Pillow alone.
"""

from pathlib import Path

from cli.errors import EXIT_OK, err, job_errors, print_warning, usage_error
from cli.options import cpu_count
from cli.render import ProgressDisplay, plural

#: Suffixes the report page may have.
PAGE_SUFFIXES = (".html", ".htm")


def write_report(
    out: Path, page: Path | None, job: str | None, broker: str | None, workers: int | None
) -> int:
    """``report``: write the HTML page of OUT (and of ``job`` from Redis); print its path."""
    from cli.actions import check_writable
    from pipeline.report import ReportError, build_report, default_page
    from worker.reportsource import job_for_report, roots_lookup

    if not out.is_dir():
        raise usage_error(f"{out} is not a folder")
    page = page or default_page(out)
    if page.suffix.lower() not in PAGE_SUFFIXES:
        raise usage_error(f"the report is an HTML page: name it .html, not {page.name}")
    with job_errors():
        status = job_for_report(job, broker) if job else None
    check_writable(page.parent)
    with ProgressDisplay("Previews") as display:
        counted = PreviewCount(display)
        try:
            summary = build_report(
                out,
                page,
                job=status,
                job_roots=roots_lookup(broker),
                workers=workers or cpu_count(),
                on_plan=counted.plan,
                on_progress=counted.advance,
            )
        except ReportError as exc:
            raise usage_error(str(exc)) from None
    err.print(f"{plural(summary['images'])}, {summary['failed']} failed → {summary['page']}")
    print(summary["page"])
    return EXIT_OK


class PreviewCount:
    """Feeds the progress display with previews made out of those to make."""

    def __init__(self, display: ProgressDisplay):
        self.display = display
        self.total = self.made = 0

    def plan(self, total: int) -> None:
        self.total = total
        self.display.show(0, total, 0, 0.0, None)

    def advance(self, count: int) -> None:
        self.made += count
        self.display.show(self.made, self.total, 0, 0.0, None)


def serve_exporter(port: int, host: str, broker: str | None) -> int:
    """``exporter``: serve /metrics until interrupted."""
    from worker.exporter import serve

    with job_errors():
        try:
            serve(port, host, broker, warn=print_warning)
        except OSError as exc:
            raise usage_error(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    return EXIT_OK
