"""What a worker does in the count and fit phases of a shared-palette job, without Celery.

- count (:func:`run_count_chunk`): count the colours of each image of a chunk, merge them,
  write the chunk's counts file atomically (pipeline/chunk_counts.py), record the images that
  could not be read as failed, then strike the chunk off the count ledger. The call that strikes
  off the last chunk moves the job to the fit phase and sends the fit task.
- fit (:func:`run_fit`): merge the counted chunks' files in sorted order, fit the palette once,
  write ``OUT/palette.json`` (and its exports) atomically, write the label chunks into the
  job's ledger, switch to the label phase and publish them. Everything the fit computes depends
  only on the files, so a repeat (redelivery, the sweep) gives the same palette and the same
  chunks; only the call that switched the phase publishes. A chunk file that is missing or
  unreadable (deleted or damaged under OUT) cannot be fitted on and will not come back by
  retrying: the fit puts those chunks back on the count ledger, returns the job to the count
  phase and sends their count messages again; their recount ends in the fit again.
- label: ordinary chunks (worker/execute.py) with the fitted palette as a fixed palette
  (worker/shared_palette.py), counted by the ordinary ledger.

Runs in a pool process (the fit runs the compiled k-means loops, pipeline/lloyd.py).
"""

import logging
import os
from functools import lru_cache

from pipeline.job import Status
from worker.execute import POISON_REASON, job_settings, store
from worker.jobs import JobSettings, JobStore, Outcome
from worker.phase_store import COUNT, FIT, PhaseStore

log = logging.getLogger(__name__)

#: Prefix of the label chunk made from count chunk ``c``: ``L`` + ``c``, fixed by the count
#: chunk, so a repeated fit writes the same ledger entries.
LABEL_PREFIX = "L"


@lru_cache(maxsize=4)
def _phases_for(jobs: JobStore, pid: int) -> PhaseStore:
    return PhaseStore(jobs)


def phases(broker: str | None = None) -> PhaseStore:
    """The phase store on broker ``broker``, one per pool process."""
    jobs = store(broker)
    return _phases_for(jobs, os.getpid())


def run_count_chunk(job: str, chunk, broker: str | None = None, app=None) -> dict:
    """Count one chunk of ``job``; returns what happened, for the task's log line. Raises
    OSError when the counts file cannot be written (a transient fault: the task retries)."""
    from pipeline.chunk_counts import counts_path, write_chunk_counts

    jobs, store_ = store(broker), phases(broker)
    settings = job_settings(jobs, job) if isinstance(job, str) else None
    if settings is None or not isinstance(chunk, str):
        log.warning("count message of unknown job %r (chunk %r) dropped", job, chunk)
        return {"unknown": 1}
    try:
        path = counts_path(settings.out, job, chunk)
    except ValueError:
        return {"refused": 1}
    start = store_.begin_count(job, chunk)
    if start.verdict != "go":
        return {start.verdict: 1}
    counted = _count_rows(jobs, settings, start.rows, careful=start.deliveries > 1)
    if counted is None:
        return {"cancelled": 1}
    merged, good, failed = counted
    write_chunk_counts(path, merged, good)
    if failed:
        jobs.record_chunk(job, failed)
        for outcome in failed:
            log.warning("job %s: %s failed: %s", job, outcome.source, outcome.error)
    if store_.mark_counted(job, chunk, len(good)):
        send_fit(job, app=app)
    return {"counted": len(good), "failed": len(failed)}


def _count_rows(jobs: JobStore, settings: JobSettings, rows: list, careful: bool):
    """Merged counts of the rows that could be read, their rows, and the failures (None when
    the job was cancelled meanwhile). A chunk delivered again begins each image in the ledger
    first, so the image that killed the earlier deliveries is found and, after
    MAX_UNFINISHED_DELIVERIES of them, failed."""
    from pipeline.counts import CountsAccumulator
    from pipeline.shared import count_file

    accumulator, good, failed = CountsAccumulator(), [], []
    for row in rows:
        item = settings.item(row)  # rows come from the ledger the submit wrote: well formed
        if careful:
            # The batched first delivery that died noted no image: charge its death (as the
            # label path does), so a killer fails after MAX_UNFINISHED_DELIVERIES deaths in all.
            verdict = jobs.begin(settings.job, item.source, earlier_deaths=1)
            if verdict == "poison":
                failed.append(Outcome(item.source, Status.FAILED, POISON_REASON, row))
                continue
            if verdict == "finished":  # recorded as failed by an earlier delivery
                continue
            if verdict != "go":  # cancelled, or the job expired: write and record nothing
                return None
        counted = count_file(item)
        if careful:
            jobs.forget_attempt(settings.job, item.source)
        if counted.counts is None:
            failed.append(Outcome(item.source, Status.FAILED, counted.error, row))
        else:
            accumulator.add(counted.counts)
            good.append(row)
    return (accumulator.result() if good else None), good, failed


def run_fit(job: str, broker: str | None = None) -> dict:
    """Fit the shared palette of ``job`` and start its label phase; a no-op unless the job is
    in the fit phase. Chunks whose counts file is missing or unreadable are counted again
    first (:func:`_recount_lost`). Raises OSError when the disk under OUT fails otherwise
    (the task retries)."""
    jobs, store_ = store(broker), phases(broker)
    phase, cancelled = store_.phase_of(job)
    settings = job_settings(jobs, job)
    if phase != FIT or cancelled or settings is None:
        return {"skipped": phase or "unknown"}
    merged, chunks, lost = merged_counts(settings, store_.counted_chunks(job))
    if lost:
        return _recount_lost(jobs, store_, job, lost)
    colors = []
    if merged is not None:
        from pipeline.shared import fit_shared, write_shared_palette

        fitted = fit_shared(merged, settings.params)
        write_shared_palette(settings.out, fitted, settings.params, merged, job)
        colors = fitted.tolist()
    if not store_.stage_label(job, chunks) or not store_.enter_label(job, colors):
        return {"skipped": "switched by another fit"}
    send_label_chunks(job, chunks, broker)
    _keep_merged_counts(settings, merged, chunks)
    log.info("job %s: %d shared colours fitted; %d label chunks", job, len(colors), len(chunks))
    return {"fitted": len(colors), "label_chunks": len(chunks)}


def _recount_lost(jobs: JobStore, store_: PhaseStore, job: str, lost: list[str]) -> dict:
    """Send the count chunks whose files the fit could not read to be counted again (once,
    by the fit that moved the job back to the count phase)."""
    resend = store_.recount(job, lost)
    if resend is None:
        return {"skipped": "switched by another fit"}
    send_count_chunks(jobs, job, resend)
    log.warning(
        "job %s: the counts of %d chunk(s) were missing or unreadable under OUT (%s); "
        "counting them again before the fit",
        job,
        len(lost),
        ", ".join(lost[:5]) + (", ..." if len(lost) > 5 else ""),
    )
    return {"recount": len(resend)}


def _keep_merged_counts(settings: JobSettings, merged, chunks: dict[str, list]) -> None:
    """One file of the merged counts in place of the chunk files (pipeline/chunk_counts.py).
    Only the fit that switched the phase gets here, after the label chunks are out."""
    from pipeline.chunk_counts import keep_merged_counts

    rows = [row for chunk in sorted(chunks) for row in chunks[chunk]]
    keep_merged_counts(settings.out, settings.job, merged, rows)


def merged_counts(settings: JobSettings, counted: list[str]):
    """The merged counts of the counted chunks' files (None when no image was counted), the
    label chunks (the rows of each count chunk under its label chunk id) and the chunks whose
    file is missing or not a readable chunk counts file. Any other OSError is raised: a disk
    fault the task retries."""
    from pipeline.chunk_counts import counts_path, read_chunk_counts
    from pipeline.counts import CountsAccumulator

    accumulator, chunks, lost = CountsAccumulator(), {}, []
    for chunk in counted:
        try:
            counts, rows = read_chunk_counts(counts_path(settings.out, settings.job, chunk))
        except (FileNotFoundError, ValueError):
            lost.append(chunk)
            continue
        if counts is not None:
            accumulator.add(counts)
        if rows:
            chunks[LABEL_PREFIX + chunk] = rows
    return (accumulator.result() if accumulator.images else None), chunks, lost


# --- sending the next phase's messages -------------------------------------------------------


def send_fit(job: str, app) -> None:
    """Send the fit task of ``job`` through the Celery ``app``."""
    from worker.settings import FIT_TASK

    app.send_task(FIT_TASK, (job,), argsrepr=f"(job={job!r})")


def send_label_chunks(job: str, chunks: dict[str, list], broker: str | None) -> None:
    from worker.publish import ChunkPublisher

    ChunkPublisher(store(broker), job).send_all(chunks)


def send_count_chunks(jobs: JobStore, job: str, chunks: dict[str, list]) -> None:
    from worker.publish import ChunkPublisher
    from worker.settings import COUNT_TASK

    ChunkPublisher(jobs, job, task=COUNT_TASK).send_all(chunks)


def resend_phase(app, jobs: JobStore, job: str, phase: str) -> int | None:
    """The lost-message sweep's part for a phased job: re-send what the phase waits for (the
    uncounted count chunks, or the fit). Returns how many messages, or None in the label phase
    (its ledger is re-sent like any job's)."""
    if phase == COUNT:
        chunks = PhaseStore(jobs).pending_counts(job)
        send_count_chunks(jobs, job, chunks)
        return len(chunks)
    if phase == FIT:
        send_fit(job, app=app)
        return 1
    return None  # LABEL: ordinary chunks
