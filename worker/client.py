"""The job commands as plain functions: submit, status, cancel, retry, list.

Nothing here imports numpy or scikit-learn; Celery is imported only by the functions that
publish (submit, retry).
"""

import itertools
import math
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from pipeline.discover import InputItem, InputRoot, InputWalk
from pipeline.params import QuantizeParams
from worker.jobs import (
    FAILED,
    BrokerUnreachable,
    JobStore,
    item_row,
    unreachable_message,
)
from worker.settings import JOBS_LISTED, broker_url, max_chunk, retention_s

#: The tail of a walk is cut into chunks of remaining / TAIL_SPREAD images, so the last
#: messages are small and spread over all workers (guided self-scheduling).
TAIL_SPREAD = 16


class UnknownJob(LookupError):
    """No such job in Redis (never submitted, or expired after the retention)."""


def open_store(broker: str | None = None) -> JobStore:
    """A JobStore on the broker's Redis; BrokerUnreachable when it does not answer."""
    store = JobStore(broker_url(broker), retention_s())
    store.check_reachable()
    return store


def guided_chunks(items: Iterable, largest: int, spread: int = TAIL_SPREAD) -> Iterator[list]:
    """Cut a stream into chunks of ``largest`` items, shrinking towards the end of the stream.

    Only ``largest × spread`` items are held at a time, so memory stays bounded on any folder.
    """
    stream = iter(items)
    window: deque = deque()
    exhausted = False
    while True:
        while not exhausted and len(window) < largest * spread:
            try:
                window.append(next(stream))
            except StopIteration:
                exhausted = True
        if not window:
            return
        size = largest if not exhausted else min(largest, math.ceil(len(window) / spread))
        yield [window.popleft() for _ in range(min(size, len(window)))]


class ChunkPublisher:
    """Publishes a job's items as chunk messages over one shared producer connection."""

    def __init__(
        self, store: JobStore, job: str, roots: list[str] | None = None, chunk_prefix: str = "s"
    ):
        from worker.tasks import quantize_chunk  # Celery loads only when we publish

        self.task = quantize_chunk
        self.store = store
        self.job = job
        self.roots = list(roots or [])
        self.root_index = {root: index for index, root in enumerate(self.roots)}
        self.chunk_ids = (f"{chunk_prefix}{number}" for number in itertools.count())
        self.sent = 0

    def rows(self, items: list[InputItem]) -> tuple[list, bool]:
        """Message rows for the items, and whether the job gained a new input root."""
        new_root = False
        rows = []
        for item in items:
            if item.root not in self.root_index:
                self.root_index[item.root] = len(self.roots)
                self.roots.append(item.root)
                new_root = True
            rows.append(item_row(self.root_index[item.root], item))
        return rows, new_root

    @contextmanager
    def producer(self):
        """One producer on one connection to the job's broker, shared by every message."""
        app = self.task.app
        with app.connection_for_write(self.store.url) as connection:
            yield app.amqp.Producer(connection)

    def publish_all(self, items: Iterable[InputItem]) -> int:
        """Count then publish each chunk, so ``done`` never runs ahead of ``total``."""
        total = 0
        with self.producer() as producer:
            for chunk in guided_chunks(items, max_chunk()):
                good = [item for item in chunk if not item.error]
                rows, new_root = self.rows(good)
                chunks = {next(self.chunk_ids): rows} if rows else {}
                self.store.add_items(self.job, len(chunk), chunks, self.roots if new_root else None)
                for item in chunk:
                    if item.error:  # refused by the walk (a link out of the tree): never sent
                        self.store.record(self.job, item.source, FAILED, item.error, None)
                self.send_all(chunks, producer)
                total += len(chunk)
        return total

    def publish_rows(self, rows: list) -> int:
        """Publish rows of items already counted (``retry``), in order; ``self.sent`` says how
        many went out if it fails midway."""
        self.sent = 0
        with self.producer() as producer:
            for chunk in guided_chunks(rows, max_chunk()):
                chunks = {next(self.chunk_ids): chunk}
                self.store.add_chunks(self.job, chunks)
                self.send_all(chunks, producer)
                self.sent += len(chunk)
        return self.sent

    def send_all(self, chunks: dict[str, list], producer) -> None:
        for chunk_id, rows in chunks.items():
            self.task.apply_async(
                (self.job, rows, chunk_id),
                producer=producer,
                argsrepr=f"(job={self.job!r}, chunk={chunk_id!r}, images={len(rows)})",
            )


def submit(
    roots: list[InputRoot],
    out: Path,
    params: QuantizeParams,
    *,
    overwrite: bool,
    broker: str | None = None,
) -> dict:
    """Create a job, stream the walk into chunk messages, and seal it. Returns {job, total}."""
    from pipeline.batch import new_job_id

    store = open_store(broker)
    job = new_job_id()
    store.create(job, str(Path(os.path.abspath(out))), params, overwrite)
    walk = InputWalk(roots)
    try:
        total = ChunkPublisher(store, job).publish_all(walk)
        store.seal(job, walk.ignored)
    except BaseException as exc:
        _abandon_quietly(store, job)
        if isinstance(exc, redis.RedisError | OSError) or _is_broker_error(exc):
            raise BrokerUnreachable(unreachable_message(store.url, exc)) from None
        raise
    return {"job": job, "total": total}


def _is_broker_error(exc: BaseException) -> bool:
    from kombu.exceptions import OperationalError

    return isinstance(exc, OperationalError)


def _abandon_quietly(store: JobStore, job: str) -> None:
    """Best effort; if Redis is gone the half-made job expires by itself (SUBMIT_LEASE_S)."""
    try:
        store.abandon(job)
    except redis.RedisError:
        pass


def status(job: str, broker: str | None = None, *, store: JobStore | None = None) -> dict:
    """The status document of design.md, from one hash read plus the kept failures."""
    store = store or open_store(broker)
    meta = _read(store.meta, job)
    if meta is None:
        raise UnknownJob(job)
    return status_document(meta, _read(store.failures, job), now=time.time())


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
    pending = max(0, counts["total"] - finished)
    started_at = _moment(meta, "started_at")
    finished_at = _moment(meta, "finished_at")
    state = job_state(meta, finished)
    until = finished_at or _moment(meta, "cancelled") or now
    elapsed = max(0.0, until - started_at) if started_at else 0.0
    rate = finished / elapsed if elapsed > 0 and finished else 0.0
    eta = None
    if state in ("queued", "running") and rate > 0:
        eta = round(pending / rate, 1)
    elif state == "done":
        eta = 0.0
    created_at = _moment(meta, "created_at")
    return {
        "job": meta["job"],
        "state": state,
        **counts,
        "pending": pending,
        "failures": failures,
        "rate": round(rate, 3),
        "eta_s": eta,
        "ignored": int(meta.get("ignored", 0)),
        "retrying": int(meta.get("retrying", 0)),
        "submitted": "enqueued" in meta,
        "out": meta.get("out"),
        "params": _params(meta),
        "created_at": created_at,
        "started_at": started_at,
        "finished_at": finished_at,
        "elapsed_s": round((finished_at or now) - created_at, 3) if created_at else None,
    }


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
    import json

    return json.loads(meta["params"]) if meta.get("params") else None


def cancel(job: str, broker: str | None = None) -> dict:
    """Flag the job; workers skip its remaining images. Returns the new status."""
    store = open_store(broker)
    before = status(job, store=store)
    if before["state"] in ("queued", "running"):
        store.cancel(job)
    return status(job, store=store)


def retry(job: str, broker: str | None = None) -> dict:
    """Re-enqueue the job's failed items under the same job id. Returns {job, retried}."""
    store = open_store(broker)
    before = status(job, store=store)
    if before["state"] == "cancelled":
        raise ValueError(f"job {job} was cancelled; submit the folder again instead")
    if not before["submitted"]:
        raise ValueError(f"job {job} is still being submitted; retry it once it is done")
    records = store.take_failed_for_retry(job) or []
    publisher = ChunkPublisher(store, job, list(store.roots(job)), f"r{time.time_ns()}-")
    rows = [record["item"] for record in records if record.get("item")]
    unrecoverable = [record for record in records if not record.get("item")]
    for record in unrecoverable:  # refused at submit (links out of the tree): fail again as is
        store.record(job, record["path"], FAILED, record["error"], None)
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
                store.record(job, record["path"], FAILED, record["error"], record["item"])
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
