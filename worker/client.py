"""The job commands as plain functions: submit, status, cancel, retry, list.

Nothing here imports numpy or scikit-learn. Celery is imported only to send a shared-palette
job's fit task; the publisher builds Celery's chunk messages itself (worker/messages.py).
"""

import json
import os
import time
from pathlib import Path

import redis

from pipeline.discover import InputRoot, InputWalk
from pipeline.job import Status, new_job_id
from pipeline.params import QuantizeParams
from worker.jobs import BrokerUnreachable, JobStore, unreachable_message
from worker.phase_store import COUNT, FIT, PhaseStore
from worker.publish import ChunkPublisher
from worker.settings import COUNT_TASK, JOBS_LISTED, broker_url, retention_s


class UnknownJob(LookupError):
    """No such job in Redis (never submitted, or expired after the retention)."""


def open_store(broker: str | None = None) -> JobStore:
    """A JobStore on the broker's Redis; BrokerUnreachable when it does not answer."""
    store = JobStore(broker_url(broker), retention_s())
    store.check_reachable()
    return store


def celery_app():
    """The Celery app that sends a shared-palette job's fit task; Celery loads only then."""
    from worker.app import app

    return app


def submit(
    roots: list[InputRoot],
    out: Path,
    params: QuantizeParams,
    *,
    overwrite: bool,
    broker: str | None = None,
) -> dict:
    """Create a job, stream the walk into chunk messages, and seal it. Returns {job, total}."""
    store = open_store(broker)
    job = new_job_id()
    store.create(job, str(Path(os.path.abspath(out))), params, overwrite)
    walk = InputWalk(roots)
    try:
        total = publisher_for(store, job, params).publish_all(walk)
        store.seal(job, walk.ignored)
        if params.shared and PhaseStore(store).count_phase_over(job):
            from worker.phases import send_fit

            send_fit(job, celery_app())  # every chunk was counted before the seal
    except BaseException as exc:
        _abandon_quietly(store, job)
        if isinstance(exc, redis.RedisError | OSError):
            raise BrokerUnreachable(unreachable_message(store.url, exc)) from None
        raise
    return {"job": job, "total": total}


def publisher_for(store: JobStore, job: str, params: QuantizeParams) -> ChunkPublisher:
    """The publisher of a job's first messages: chunks to quantize, or for a shared-palette
    job, chunks to count, noted in its count ledger."""
    if not params.shared:
        return ChunkPublisher(store, job)
    return CountPublisher(store, job, task=COUNT_TASK)


class CountPublisher(ChunkPublisher):
    """Publishes the count chunks of a shared-palette job, noted in its count ledger."""

    def note_chunks(self, count: int, chunks: dict[str, list], roots: list | None, pipe) -> None:
        self.store.add_items(self.job, count, {}, roots, pipe=pipe)
        if chunks:  # written at once, still before the transaction that holds the messages
            PhaseStore(self.store).add_count_chunks(self.job, chunks)


def _abandon_quietly(store: JobStore, job: str) -> None:
    """Best effort; if Redis is gone the half-made job expires by itself (SUBMIT_LEASE_S)."""
    try:
        store.abandon(job)
        PhaseStore(store).forget(job)
    except redis.RedisError:
        pass


def status(job: str, broker: str | None = None, *, store: JobStore | None = None) -> dict:
    """The ``status --json`` document, from one hash read plus the kept failures, and the
    number of workers alive (one more read)."""
    store = store or open_store(broker)
    meta = _read(store.meta, job)
    if meta is None:
        raise UnknownJob(job)
    document = status_document(meta, _read(store.failures, job), now=time.time())
    document["workers"] = _read(store.workers_alive)
    return document


def workers_alive(broker: str | None = None) -> int:
    """How many workers sent a heartbeat lately to this broker's Redis."""
    return _read(open_store(broker).workers_alive)


def status_reader(job: str, broker: str | None = None):
    """A function returning the job's current status, reusing one Redis connection."""
    store = open_store(broker)
    return lambda: status(job, store=store)


def _read(method, *args):
    try:
        return method(*args)
    except redis.RedisError as exc:
        raise BrokerUnreachable(unreachable_message(method.__self__.url, exc)) from None


def status_document(meta: dict, failures: list[dict], *, now: float) -> dict:
    counts = {name: int(meta.get(name, 0)) for name in ("total", "done", "failed", "skipped")}
    finished = counts["done"] + counts["failed"] + counts["skipped"]
    state = job_state(meta, finished)
    untouched = max(0, counts["total"] - finished)
    created_at = _moment(meta, "created_at")
    finished_at = _moment(meta, "finished_at")
    # A job's clock stops when it finishes or is cancelled.
    until = finished_at or _moment(meta, "cancelled") or now
    rate = _rate(meta, finished, until)
    eta = None
    if state in ("queued", "running") and rate > 0:
        eta = round(untouched / rate, 1)
    elif state == "done":
        eta = 0.0
    return {
        "job": meta["job"],
        "state": state,
        **counts,
        "pending": 0 if state == "cancelled" else untouched,
        "cancelled": untouched if state == "cancelled" else 0,
        "failures": failures,
        "rate": round(rate, 3),
        "eta_s": eta,
        "ignored": int(meta.get("ignored", 0)),
        "retrying": int(meta.get("retrying", 0)),
        "phase": meta.get("phase"),
        "counted": int(meta.get("counted", 0)) if "phase" in meta else None,
        "submitted": "enqueued" in meta,
        "out": meta.get("out"),
        "inputs": json.loads(meta.get("roots") or "[]"),
        "params": _params(meta),
        "created_at": created_at,
        "started_at": _moment(meta, "started_at"),
        "finished_at": finished_at,
        "elapsed_s": round(max(0.0, until - created_at), 3) if created_at else None,
    }


def _rate(meta: dict, finished: int, until: float) -> float:
    """Images per second: since the last ``retry`` if there was one (only its images are
    moving), else since the first image began."""
    retried_at = _moment(meta, "retried_at")
    if retried_at:
        finished = int(meta.get("retried", 0)) - int(meta.get("retrying", 0))
        since = retried_at
    else:
        since = _moment(meta, "started_at")
    elapsed = until - since if since else 0.0
    return finished / elapsed if elapsed > 0 and finished > 0 else 0.0


def job_state(meta: dict, finished: int) -> str:
    total = int(meta.get("total", 0))
    if "enqueued" in meta and finished >= total and not int(meta.get("retrying", 0)):
        return "done"
    if "cancelled" in meta:
        return "cancelled"
    if "started_at" in meta or finished:
        return "running"
    return "queued"


def _moment(meta: dict, name: str) -> float | None:
    value = meta.get(name)
    return float(value) if value else None


def _params(meta: dict) -> dict | None:
    return json.loads(meta["params"]) if meta.get("params") else None


def cancel(job: str, broker: str | None = None) -> dict:
    """Flag the job; workers skip its remaining images. Returns the new status, with the state
    it had before as ``previous_state`` (a second cancel changes nothing)."""
    store = open_store(broker)
    before = status(job, store=store)
    if before["state"] in ("queued", "running"):
        store.cancel(job)
    return {**status(job, store=store), "previous_state": before["state"]}


def retry(job: str, broker: str | None = None) -> dict:
    """Re-enqueue the job's failed items under the same job id. Returns {job, retried}."""
    store = open_store(broker)
    before = status(job, store=store)
    if before["state"] == "cancelled":
        raise ValueError(f"job {job} was cancelled; submit the folder again instead")
    if not before["submitted"]:
        raise ValueError(f"job {job} is still being submitted; retry it once it is done")
    if before["phase"] in (COUNT, FIT):
        raise ValueError(
            f"job {job} is still in its {before['phase']} phase: its shared palette is not "
            "fitted yet; retry it once the job labels"
        )
    if before["phase"] and not PhaseStore(store).shared_colors(job):
        raise ValueError(
            f"job {job} has no shared palette: none of its images could be read; fix them and "
            "submit the folder again"
        )
    records = store.take_failed_for_retry(job) or []
    publisher = ChunkPublisher(store, job, list(store.roots(job)), f"r{time.time_ns()}-")
    rows = [record["item"] for record in records if record.get("item")]
    unrecoverable = [record for record in records if not record.get("item")]
    for record in unrecoverable:  # refused at submit (links out of the tree): fail again as is
        store.record(job, record["path"], Status.FAILED, record["error"], None)
    try:
        published = publisher.publish_rows(rows)
    except Exception as exc:
        _restore_unpublished(store, job, records, rows[publisher.sent :])
        raise BrokerUnreachable(unreachable_message(store.url, exc)) from None
    return {"job": job, "retried": published, "not_retried": len(unrecoverable)}


def _restore_unpublished(store: JobStore, job: str, records: list[dict], rows: list) -> None:
    """Put the items whose message never left back to failed, with their old reason."""
    unsent = {row[2] for row in rows}
    try:
        for record in records:
            if record["path"] in unsent:
                store.record(job, record["path"], Status.FAILED, record["error"], record["item"])
    except redis.RedisError:
        pass


def list_jobs(broker: str | None = None) -> list[dict]:
    store = open_store(broker)
    now = time.time()
    metas = _read(store.recent_jobs, JOBS_LISTED)
    # No failure lists here (one more read per job); `status JOB` shows them.
    documents = [status_document(meta, [], now=now) for meta in metas]
    for document in documents:
        del document["failures"]
    return documents
