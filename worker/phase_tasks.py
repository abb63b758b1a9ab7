"""The Celery tasks of a shared-palette job's count and fit phases. Thin, like worker/tasks.py:
the work is in worker/phases.py.

A count message carries the job id, its rows (for Flower's eyes only: the rows counted are the
ones the job's count ledger holds) and its chunk id. A fit message carries the job id alone.
A transient fault (the broker, or a counts file that cannot be written or read) retries with
backoff; a redelivery or a repeat changes nothing (see worker/phases.py).
"""

import redis

from worker.app import app
from worker.phases import run_count_chunk, run_fit
from worker.settings import (
    COUNT_TASK,
    FIT_TASK,
    MAX_TRANSIENT_RETRIES,
    RETRY_BACKOFF_MAX_S,
    RETRY_BACKOFF_S,
)

#: Faults worth retrying in the count and fit phases: the broker, and the disk under OUT.
TRANSIENT_FAULTS = (redis.ConnectionError, redis.TimeoutError, OSError)

RETRY_POLICY = {
    "bind": True,
    "autoretry_for": TRANSIENT_FAULTS,
    "retry_backoff": RETRY_BACKOFF_S,
    "retry_backoff_max": RETRY_BACKOFF_MAX_S,
    "retry_jitter": True,
    "max_retries": MAX_TRANSIENT_RETRIES,
}


@app.task(name=COUNT_TASK, **RETRY_POLICY)
def count_chunk(self, job: str, rows: list, chunk: str | None = None) -> dict:
    """Count the colours of one chunk of ``job`` and store them under OUT."""
    return run_count_chunk(job, chunk, broker=self.app.conf.broker_url, app=self.app)


@app.task(name=FIT_TASK, **RETRY_POLICY)
def fit_shared(self, job: str) -> dict:
    """Fit ``job``'s shared palette from its stored counts and start its label phase."""
    return run_fit(job, broker=self.app.conf.broker_url)
