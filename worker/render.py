"""How job documents look on a terminal: the status table, the job list, and the live watch."""

import time
from collections.abc import Callable
from datetime import datetime

from rich.console import Console
from rich.table import Table

#: Seconds between two status reads while watching a job.
WATCH_POLL_S = 0.5

#: Failures printed under a status table; --json lists them all (up to FAILURES_SHOWN).
FAILURES_PRINTED = 20

FINAL_STATES = ("done", "cancelled")


def print_status(document: dict, console: Console) -> None:
    d = document
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    pending = f"{d['pending']}" + (f" ({d['retrying']} retrying)" if d["retrying"] else "")
    for label, value in (
        ("job", d["job"]),
        ("state", d["state"]),
        ("total", d["total"]),
        ("done", d["done"]),
        ("failed", d["failed"]),
        ("skipped", d["skipped"]),
        ("pending", pending),
        ("ignored", f"{d['ignored']} (not images)"),
        ("rate", format_rate(d["rate"])),
        ("ETA", format_eta(d["eta_s"])),
        ("submitted", format_moment(d["created_at"])),
        ("out", d.get("out") or ""),
    ):
        table.add_row(label, str(value))
    console.print(table)
    print_failures(d["failures"], d["failed"], console)


def print_failures(failures: list[dict], failed: int, console: Console) -> None:
    for failure in failures[:FAILURES_PRINTED]:
        console.print(f"  [red]failed[/] {failure['path']}: {failure['error']}", soft_wrap=True)
    if failed > FAILURES_PRINTED:
        console.print(f"  … and {failed - FAILURES_PRINTED} more (see --json)")


def print_jobs(documents: list[dict], console: Console) -> None:
    if not documents:
        console.print("no jobs")
        return
    table = Table(box=None, header_style="bold")
    for column in ("JOB", "STATE", "DONE/TOTAL", "FAILED", "SKIPPED", "CREATED", "OUT"):
        table.add_column(column, no_wrap=column != "OUT", overflow="fold")
    for d in documents:
        table.add_row(
            d["job"],
            d["state"],
            f"{d['done']}/{d['total']}",
            str(d["failed"]),
            str(d["skipped"]),
            format_moment(d["created_at"]),
            d.get("out") or "",
        )
    console.print(table)


def format_rate(rate: float) -> str:
    return f"{rate:.1f} img/s" if rate else "–"


def format_eta(eta: float | None) -> str:
    if eta is None:
        return "–"
    minutes, seconds = divmod(int(round(eta)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def format_moment(moment: float | None) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def follow(read_status: Callable[[], dict], console: Console) -> dict:
    """Poll a job until it is done or cancelled, with a live bar on a terminal; return the end."""
    document = read_status()
    if not console.is_terminal:
        while document["state"] not in FINAL_STATES:
            time.sleep(WATCH_POLL_S)
            document = read_status()
        return document
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]}"),
        TextColumn("ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task(f"job {document['job']}", total=None, failed=0, rate="", eta="")
        while True:
            progress.update(
                bar,
                total=document["total"] or None,
                completed=document["done"] + document["failed"] + document["skipped"],
                failed=document["failed"],
                rate=format_rate(document["rate"]),
                eta=format_eta(document["eta_s"]),
                description=f"job {document['job']} {document['state']}",
            )
            if document["state"] in FINAL_STATES:
                return document
            time.sleep(WATCH_POLL_S)
            document = read_status()


def batch_report(document: dict) -> dict:
    """The ``run --json`` shape of design.md, from a finished job's status."""
    keys = ("job", "total", "done", "failed", "skipped", "ignored", "failures", "elapsed_s")
    return {key: document[key] for key in keys}
