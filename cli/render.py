"""How results look on a terminal: the progress display, the status table, the job list and the
batch report. Everything here writes to a rich Console; nothing here computes a result."""

import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cli.errors import err

#: Seconds between two status reads while watching a job.
WATCH_POLL_S = 0.5

#: Failures printed under a report or a status table; --json lists them all.
FAILURES_PRINTED = 20

FINAL_STATES = ("done", "cancelled")


class ProgressDisplay:
    """The one progress bar of ``run``, ``demo``, ``watch`` and ``submit --wait``.

    A bar with done/total, failures, rate and ETA on a terminal; silent elsewhere. Feed it with
    :meth:`show` (counts from a job's status) or :meth:`count` (one finished image at a time).
    """

    def __init__(self, label: str, total: int | None = None, console: Console = err):
        self.label = label
        self.total = total
        self.console = console
        self.progress = None
        self.finished = self.failed = 0
        self.outcomes: Counter = Counter()  # images ended so far, by status
        self.started = time.monotonic()

    def __enter__(self) -> "ProgressDisplay":
        if not self.console.is_terminal:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("failed {task.fields[failed]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=self.console,
        )
        self.bar = self.progress.add_task(
            self.label, total=self.total, failed=0, rate="", eta=format_eta(None)
        )
        self.progress.start()
        return self

    def show(
        self,
        finished: int,
        total: int | None,
        failed: int,
        rate: float,
        eta_s: float | None,
        label: str | None = None,
    ) -> None:
        """Draw the given counts (a no-op without a terminal)."""
        if self.progress is None:
            return
        self.progress.update(
            self.bar,
            total=total or None,
            completed=finished,
            failed=failed,
            rate=format_rate(rate),
            eta=format_eta(eta_s),
            description=label or self.label,
        )

    def count(self, result) -> None:
        """One more image ended (a FileResult); rate and ETA are measured from the start."""
        self.finished += 1
        self.failed += result.status == "failed"
        self.outcomes[str(result.status)] += 1
        elapsed = time.monotonic() - self.started
        rate = self.finished / elapsed if elapsed > 0 else 0.0
        left = (self.total or 0) - self.finished
        eta = left / rate if rate else None
        self.show(self.finished, self.total, self.failed, rate, eta)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def follow(
    read_status: Callable[[], dict], console: Console = err, broker: str | None = None
) -> dict:
    """Poll a job until it is done or cancelled, drawing its progress; return the last status.

    Says so (once) while no worker is alive to run it."""
    document = read_status()
    warned = False
    with ProgressDisplay(f"job {document['job']}", console=console) as display:
        while True:
            final = document["state"] in FINAL_STATES
            if not final and document.get("workers") == 0 and not warned:
                console.print(no_worker_warning(broker))
                warned = True
            display.show(
                document["done"] + document["failed"] + document["skipped"],
                document["total"],
                document["failed"],
                document["rate"],
                None if final else document["eta_s"],
                label=f"job {document['job']} {state_text(document)}",
            )
            if final:
                return document
            time.sleep(WATCH_POLL_S)
            document = read_status()


def no_worker_warning(broker: str | None = None) -> str:
    """What to do when no worker runs: the job waits in the queue until one starts."""
    from worker.settings import masked_url

    command = "colorquant worker" + (f" --broker {masked_url(broker)}" if broker else "")
    return (
        "[yellow]warning:[/] no colorquant worker is running for this broker, so the job waits "
        f"in the queue; start one with: {escape(command)}"
    )


def print_job_id(receipt: dict) -> None:
    """The job id on stderr as soon as it is known, so ``watch``, ``retry`` and ``cancel``
    stay within reach even when stdout is a JSON document still to come."""
    job = receipt["job"]
    err.print(f"job {job}: {plural(receipt['total'])} queued; follow with: colorquant watch {job}")


def print_interrupted_watch(job: str, workers: int | None = None, broker: str | None = None):
    """Ctrl-C stops the watching, not the job; with no worker alive, the job only waits."""
    goes_on = "waits in the queue" if workers == 0 else "goes on in the workers"
    err.print(
        f"stopped watching; job {job} {goes_on}. Watch it again with: "
        f"colorquant watch {job}; stop it with: colorquant cancel {job}"
    )
    if workers == 0:
        err.print(no_worker_warning(broker))


def print_batch_report(report: dict, out: Path) -> None:
    """The human summary of a finished batch (the ``--json`` report's counts and failures)."""
    err.print(
        f"{report['done']} done, {report['skipped']} skipped, {report['failed']} failed, "
        f"{report['ignored']} ignored (not images) of {report['total']} in "
        f"{report['elapsed_s']:.1f} s → {escape(str(out))}"
    )
    print_failures(report["failures"], report["failed"])


def print_interrupted_run(outcomes: Counter, total: int) -> None:
    """What Ctrl-C left behind in ``run``, and how to go on."""
    err.print(
        f"interrupted: {outcomes['done']} done, {outcomes['skipped']} skipped, "
        f"{outcomes['failed']} failed of {total}; run the same command again to resume "
        "(finished images are skipped)"
    )


def print_job_end(document: dict) -> None:
    """The last line of ``watch``: how a job ended, then its failures."""
    d = document
    err.print(
        f"job {d['job']} {d['state']}: {d['done']} done, {d['skipped']} skipped, "
        f"{d['failed']} failed of {d['total']}"
    )
    print_failures(d["failures"], d["failed"])


def print_failures(failures: list[dict], failed: int, console: Console = err) -> None:
    for failure in failures[:FAILURES_PRINTED]:
        console.print(
            f"  [red]failed[/] {escape(failure['path'])}: {escape(str(failure['error']))}"
        )
    if failed > FAILURES_PRINTED:
        console.print(f"  … and {failed - FAILURES_PRINTED} more (see --json)")


def print_status(document: dict, console: Console) -> None:
    d = document
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in status_rows(d):
        table.add_row(label, escape(str(value)))
    console.print(table)
    if d["state"] not in FINAL_STATES and d.get("workers") == 0:
        console.print(no_worker_warning())
    print_failures(d["failures"], d["failed"], console)


def status_rows(d: dict) -> list[tuple[str, object]]:
    """The lines of the human ``status``: what the job is, how far it got, how long it took."""
    params = d.get("params") or {}
    final = d["state"] in FINAL_STATES
    pending = f"{d['pending']}" + (f" ({d['retrying']} retrying)" if d["retrying"] else "")
    rows = [
        ("job", d["job"]),
        ("state", d["state"]),
        *([("phase", phase_text(d))] if d.get("phase") else []),
        ("total", d["total"]),
        ("done", d["done"]),
        ("failed", d["failed"]),
        ("skipped", d["skipped"]),
        ("cancelled" if d.get("cancelled") else "pending", d.get("cancelled") or pending),
        ("ignored", f"{d['ignored']} (not images)"),
        ("rate", format_rate(d["rate"])),
        (
            "finished" if final else "ETA",
            format_moment(d["finished_at"]) if final else format_eta(d["eta_s"]),
        ),
        ("elapsed", format_duration(d.get("elapsed_s"))),
        ("submitted", format_moment(d["created_at"])),
        ("K", params.get("k", "")),
        ("method", " ".join(str(params[key]) for key in ("method", "space") if key in params)),
        ("inputs", ", ".join(d.get("inputs") or [])),
        ("out", d.get("out") or ""),
    ]
    if "workers" in d and not final:
        rows.append(("workers", d["workers"] or "none running"))
    return rows


def phase_text(d: dict) -> str:
    """A shared-palette job's phase, with how far the count got while it counts:
    ``count (120 of 200 images counted)``, ``fit``, ``label``; "" for a one-phase job."""
    phase = d.get("phase") or ""
    if phase == "count":
        return f"count ({d.get('counted') or 0} of {d['total']} images counted)"
    return phase


def state_text(d: dict) -> str:
    """The state, with the phase of a shared-palette job that has not ended: ``running
    (count)``."""
    if d.get("phase") and d["state"] not in FINAL_STATES:
        return f"{d['state']} ({d['phase']})"
    return d["state"]


def print_jobs(documents: list[dict], console: Console) -> None:
    if not documents:
        console.print("no jobs")
        return
    table = Table(box=None, header_style="bold")
    columns = ("JOB", "STATE", "FINISHED/TOTAL", "DONE", "FAILED", "SKIPPED", "CREATED", "OUT")
    for column in columns:
        table.add_column(column, no_wrap=column != "OUT", overflow="fold")
    for d in documents:
        table.add_row(
            d["job"],
            state_text(d),
            f"{d['done'] + d['failed'] + d['skipped']}/{d['total']}",
            str(d["done"]),
            str(d["failed"]),
            str(d["skipped"]),
            format_moment(d["created_at"]),
            escape(d.get("out") or ""),
        )
    console.print(table)


def stdout_console() -> Console:
    """A console for tables on stdout; on a pipe there is no width to fit, so never fold a cell."""
    width = None if sys.stdout.isatty() else 1000
    return Console(highlight=False, soft_wrap=True, width=width)


def format_rate(rate: float) -> str:
    return f"{rate:.1f} img/s" if rate else "–"


def format_eta(eta: float | None) -> str:
    if eta is None:
        return "–"
    minutes, seconds = divmod(int(round(eta)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def format_duration(seconds: float | None) -> str:
    return "" if seconds is None else format_eta(seconds)


def format_moment(moment: float | None) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def format_psnr(value) -> str:
    return "lossless" if value is None else f"{value:.2f} dB"


def plural(count: int, noun: str = "image") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
