"""The lost-message sweep: re-send the chunks of a job that nothing will ever deliver again.

Redis acks by copying a popped message into kombu's ``unacked`` hash, a separate command from the
pop. A Redis crash with AOF (fsync every second) can keep the pop and lose the copy, and with it
every later write: the message is gone, and so are the counts of what it did. The job's chunk
ledger (worker/jobs.py) still names it, so it can be sent again; outputs and counts are
idempotent, so sending a chunk twice costs time, never correctness.

A job is taken as stalled only when the broker holds no message at all (queue and unacked hash
both empty: nothing is queued, reserved or running anywhere) while the job, sealed and neither
finished nor cancelled, has had no progress for STALL_S. Then its ledger is re-sent. Each worker's
main process runs the sweep on a timer; a short Redis lock lets one of them act per round. It
uses Redis and Celery only: the main process forks the pool and never loads the quantizer.
"""

import logging
import time

from celery import bootsteps

from worker.jobs import ACTIVE_JOBS, JobStore, job_keys
from worker.phases import resend_phase
from worker.publish import ChunkPublisher
from worker.settings import QUEUE, broker_url, restore_sweep_interval, retention_s

log = logging.getLogger(__name__)

SWEEP_LOCK = "colorquant:sweep-lock"

#: Seconds of a Redis call the sweep may block the worker's event loop, at most.
SWEEP_SOCKET_TIMEOUT_S = 2.0


def stall_seconds(interval: float) -> float:
    """No progress for this long, with the broker empty, means the job's messages are lost."""
    return max(3.0, 2 * interval)


def broker_is_empty(store: JobStore, unacked_key: str) -> bool:
    client = store.redis
    return client.llen(QUEUE) == 0 and client.hlen(unacked_key) == 0


def stalled_jobs(store: JobStore, stall_s: float, now: float) -> list[str]:
    """Sealed, unfinished, uncancelled jobs with no progress for ``stall_s``."""
    stalled = []
    for job in store.redis.smembers(ACTIVE_JOBS):
        meta = store.meta(job)
        if not meta or "finished_at" in meta or "cancelled" in meta:
            store.redis.srem(ACTIVE_JOBS, job)
            continue
        last_progress = float(meta.get("updated_at") or meta.get("created_at") or 0)
        if "enqueued" in meta and now - last_progress >= stall_s:
            stalled.append(job)
    return stalled


def resend_ledger(app, store: JobStore, job: str) -> int:
    """Send every chunk still in the job's ledger again; returns how many.
    A shared-palette job before its label phase gets what its phase waits for instead: its
    uncounted count chunks, or its fit (worker/phases.py)."""
    phase = store.redis.hget(job_keys(job)["meta"], "phase")
    resent = resend_phase(app, store, job, phase) if phase else None
    if resent is not None:
        store.redis.hset(job_keys(job)["meta"], "updated_at", time.time())
        return resent
    chunks = store.pending_chunks(job)
    ChunkPublisher(store, job).send_all(chunks)
    store.redis.hset(job_keys(job)["meta"], "updated_at", time.time())
    return len(chunks)


def sweep_once(
    app, store: JobStore, unacked_key: str, interval: float, node: str
) -> dict[str, int]:
    """One round, publishing through the worker's Celery ``app``; returns {job: chunks re-sent}."""
    if not store.redis.set(SWEEP_LOCK, node, nx=True, ex=max(1, int(interval))):
        return {}
    if not broker_is_empty(store, unacked_key):
        return {}
    resent = {}
    for job in stalled_jobs(store, stall_seconds(interval), time.time()):
        resent[job] = resend_ledger(app, store, job)
        log.warning(
            "job %s has pending images but no message left in the broker (lost in a Redis "
            "restart?); re-sent %d chunk(s) from its ledger",
            job,
            resent[job],
        )
    return resent


class LostMessageSweep(bootsteps.StartStopStep):
    """A worker bootstep: run :func:`sweep_once` every few seconds in the main process."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker):
        app = worker.app
        options = app.conf.broker_transport_options or {}
        interval = restore_sweep_interval(float(options.get("visibility_timeout", 3600)))
        store = JobStore(
            app.conf.broker_url or broker_url(),
            retention_s(),
            socket_timeout=SWEEP_SOCKET_TIMEOUT_S,
        )
        unacked_key = options.get("unacked_key", "unacked")
        self.timer_ref = worker.timer.call_repeatedly(
            interval,
            self._round,
            (app, store, unacked_key, interval, worker.hostname),
            priority=10,
        )

    @staticmethod
    def _round(app, store, unacked_key, interval, node):
        try:
            sweep_once(app, store, unacked_key, interval, node)
        except Exception as exc:  # Redis down or restarting: the next round tries again
            log.debug("lost-message sweep skipped: %r", exc)

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
