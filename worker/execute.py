"""What a worker does with one chunk message, without Celery: check, quantize, count.

A chunk's first delivery is counted in batches: one script call begins it (not cancelled; which
images are final already), the images are quantized, and one script call per RECORD_INTERVAL_S
(and one at the end) counts what was done. A chunk delivered again (its worker died, or a
transient fault put images back) runs image by image as a careful path: before each image the
job record says whether to go on (not cancelled, not already counted, not an image that keeps
killing its process), and each outcome is recorded at once. Runs in a pool process, one image at
a time.
"""

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from pipeline.job import Status
from pipeline.save import FolderSweeper, discard_temps
from worker.jobs import MAX_UNFINISHED_DELIVERIES, JobSettings, JobStore, Outcome
from worker.settings import broker_url, retention_s
from worker.shared_palette import label_settings

log = logging.getLogger(__name__)

#: Seconds between two batches of results recorded for one chunk: progress shows at least this
#: often, a cancel is noticed within it, and a worker killed mid-chunk loses at most this much
#: counting (the chunk's redelivery finds the outputs this job wrote and counts them then).
RECORD_INTERVAL_S = 0.25

POISON_REASON = (
    f"worker process died {MAX_UNFINISHED_DELIVERIES} times on this image; not retried again"
)


@dataclass
class ChunkOutcome:
    counts: Counter = field(default_factory=Counter)
    retry_rows: list = field(default_factory=list)


@lru_cache(maxsize=4)
def _store_for(url: str, pid: int) -> JobStore:
    """One Redis client per broker and pool process (keyed by pid: never reuse a socket across
    a fork)."""
    return JobStore(url, retention_s())


#: Sweeps each output folder once per job in this process, for temp files of other names than
#: pipeline.save's (a killed writer's own temp is found by the next writer of that output).
_sweeper = FolderSweeper()


def store(url: str | None = None) -> JobStore:
    """The job store on broker ``url`` (the task's broker), else the configured one."""
    return _store_for(url or broker_url(), os.getpid())


@lru_cache(maxsize=64)
def _settings_of(job: str, jobs: JobStore, pid: int) -> JobSettings | None:
    return jobs.settings(job)


def job_settings(jobs: JobStore, job: str) -> JobSettings | None:
    """A job's settings never change once submitted, so each process reads them once."""
    settings = _settings_of(job, jobs, os.getpid())
    if settings is None:
        _settings_of.cache_clear()  # an unknown job may appear later; do not remember misses
    return settings


def run_chunk(
    job: str, rows: list, chunk: str | None, *, final_try: bool, broker: str | None = None
) -> ChunkOutcome:
    """Quantize and count each row of one chunk message of ``job``, read from broker ``broker``."""
    outcome = ChunkOutcome()
    if not isinstance(job, str) or not isinstance(rows, list):
        log.warning("dropping a malformed message (job %r)", job)
        outcome.counts["malformed"] += 1
        return outcome
    jobs = store(broker)
    settings = job_settings(jobs, job)
    if settings is None:
        log.warning("job %r is unknown or expired; dropping a message of %d rows", job, len(rows))
        outcome.counts["unknown"] += len(rows)
        return outcome
    if not _in_open_chunk(jobs, job, chunk, rows):
        log.warning(
            "job %s: refused a message (chunk %r, %d rows) whose rows are in none of the job's "
            "open chunks: finished already, or forged; nothing read, written or counted",
            job,
            chunk,
            len(rows),
        )
        outcome.counts["refused"] += len(rows)
        return outcome
    settings = label_settings(jobs, settings)
    if settings is None:
        log.warning("job %s: label chunk %r came before its shared palette; dropped", job, chunk)
        outcome.counts["early"] += len(rows)
        return outcome
    _sweep_output_folders(settings, rows)
    start = jobs.begin_chunk(job, chunk, [_source_of(row) for row in rows])
    if start.verdict != "go":
        outcome.counts[start.verdict] += len(rows)
        if start.verdict == "cancelled":
            _announce_cancel(job)
        return outcome
    todo = [
        row
        for row, status in zip(rows, start.statuses, strict=True)
        if status is None or status == Status.RETRYING
    ]
    if len(todo) < len(rows):
        outcome.counts["finished"] += len(rows) - len(todo)  # counted by an earlier delivery
    if start.first:
        _run_batched(jobs, settings, todo, chunk, outcome, final_try)
    else:
        # A delivery after the first one: the first ran batched and noted no image, so if it
        # died, the image it died on carries one death the ledger did not count. (When it was
        # put back by a transient fault instead, a killer fails one death early: still failed.)
        batched_deaths = 1 if start.deliveries > 1 else 0
        _run_one_by_one(jobs, settings, todo, chunk, outcome, final_try, batched_deaths)
    return outcome


def _run_batched(jobs, settings, rows, chunk, outcome, final_try) -> None:
    """Quantize ``rows`` and count them in batches, one script call per RECORD_INTERVAL_S."""
    pending: list[Outcome] = []
    last_record = time.monotonic()
    for index, row in enumerate(rows):
        result = _quantize_row(settings, row, final_try)
        if result is None:
            outcome.retry_rows.append(row)
            outcome.counts["retry"] += 1
            continue
        pending.append(result)
        if time.monotonic() - last_record >= RECORD_INTERVAL_S:
            if _record(jobs, settings.job, pending, outcome):
                outcome.counts["cancelled"] += len(rows) - index - 1
                return
            pending, last_record = [], time.monotonic()
    _record(jobs, settings.job, pending, outcome, None if outcome.retry_rows else chunk)


def _record(jobs, job, pending, outcome, finished_chunk=None) -> bool:
    """Count ``pending`` (and strike ``finished_chunk`` off the ledger); True when cancelled."""
    counted, cancelled = jobs.record_chunk(job, pending, finished_chunk)
    for result, now in zip(pending, counted, strict=False):
        outcome.counts[result.status if now else "finished"] += 1  # else another copy did
        if now:
            _log_failure(job, result)
    if cancelled:
        _announce_cancel(job)
    return cancelled


def _log_failure(job: str, result: Outcome) -> None:
    if result.status == Status.FAILED:
        log.warning("job %s: %s failed: %s", job, result.source, result.error)


def _quantize_row(settings: JobSettings, row, final_try: bool) -> Outcome | None:
    """Quantize one row; its outcome, or None when a transient fault puts it back for later."""
    from pipeline.process import quantize_file

    try:
        item = settings.item(row)
    except (ValueError, TypeError) as exc:
        log.warning("job %s: refused a message row %r: %s", settings.job, _source_of(row), exc)
        return Outcome(_source_of(row), Status.FAILED, str(exc), None)
    result = quantize_file(
        item, settings.out, settings.params, job=settings.job, overwrite=settings.overwrite
    )
    if result.retryable and not final_try:
        return None
    return Outcome(item.source, result.status, result.error or "", row)


def _run_one_by_one(jobs, settings, rows, chunk, outcome, final_try, batched_deaths=0) -> None:
    """The careful path of a chunk delivered again: begin and record each image on its own.
    ``batched_deaths`` is the death of a batched first delivery, which its ledger could not
    pin on an image: charged to whichever image dies again, so that one fails after the
    documented MAX_UNFINISHED_DELIVERIES deaths in all, not one more."""
    for index, row in enumerate(rows):
        verdict = run_item(jobs, settings, row, final_try=final_try, earlier_deaths=batched_deaths)
        if verdict == "retry":
            outcome.retry_rows.append(row)
        elif verdict == "cancelled":
            outcome.counts["cancelled"] += len(rows) - index
            _announce_cancel(settings.job)
            return
        outcome.counts[verdict] += 1
    if not outcome.retry_rows:
        jobs.chunk_done(settings.job, chunk)  # every item is final: never send this chunk again


def _source_of(row) -> str:
    """The source a row names, also for a malformed row (then a short repr of it)."""
    if isinstance(row, list) and len(row) == 4 and isinstance(row[2], str):
        return row[2]
    return repr(row)[:200]


#: Cancelled jobs this process has already said it drops, so a cancel is one log line per
#: process, not one per message.
_announced_cancels: set[str] = set()


def _announce_cancel(job: str) -> None:
    if job not in _announced_cancels:
        _announced_cancels.add(job)
        log.info("job %s is cancelled: dropping the rest of its images without a word", job)


def _in_open_chunk(jobs: JobStore, job: str, chunk, rows: list) -> bool:
    """True when every row is one the submitter wrote into the job's ledger for ``chunk``.

    Every legitimate message (submit, retry, a transient-fault retry, the lost-message sweep)
    carries rows of a ledger entry written before it was published, so with AOF any message
    that survives a crash still finds its entry. A message from anyone else with broker access
    does not, and it must not change the counts of the job it names.
    """
    if not isinstance(chunk, str):
        return False
    ledger = jobs.chunk_rows(job, chunk)
    return ledger is not None and all(row in ledger for row in rows)


def _sweep_output_folders(settings: JobSettings, rows: list) -> None:
    from pipeline.discover import output_paths

    for output in {row[3] for row in rows if isinstance(row, list) and len(row) == 4}:
        try:
            folder = output_paths(settings.out, output)[0].parent
        except (ValueError, TypeError):
            continue  # the row fails on its own below
        _sweeper.sweep(settings.job, folder)


def run_item(
    jobs: JobStore, settings: JobSettings, row, *, final_try: bool, earlier_deaths: int = 0
) -> str:
    """Process one row; return what happened (done/skipped/failed/finished/cancelled/retry)."""
    try:
        item = settings.item(row)
    except (ValueError, TypeError):
        item = None
    if item is not None:
        verdict = jobs.begin(settings.job, item.source, earlier_deaths)
        if verdict == "poison":
            _discard_temps_of(settings, item)  # its killed writers left them; nobody rewrites it
            jobs.record(settings.job, item.source, Status.FAILED, POISON_REASON, row)
            log.warning("job %s: %s failed: %s", settings.job, item.source, POISON_REASON)
            return Status.FAILED
        if verdict != "go":
            return verdict
    result = _quantize_row(settings, row, final_try)
    if result is None:
        jobs.forget_attempt(settings.job, item.source)
        return "retry"
    counted = jobs.record(settings.job, result.source, result.status, result.error, result.row)
    if counted != "counted":
        return "finished"  # another copy counted it
    _log_failure(settings.job, result)
    return result.status


def _discard_temps_of(settings: JobSettings, item) -> None:
    from pipeline.discover import output_paths

    try:
        params = settings.params
        discard_temps(*output_paths(settings.out, item.output, params.format, params.exports))
    except (ValueError, OSError):
        pass
