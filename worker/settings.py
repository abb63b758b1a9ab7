"""Named settings of the distributed runner, each read from the environment with a safe default.

Everything here is plain Python (no Celery import), so the CLI can read it cheaply.
"""

import os
from urllib.parse import urlsplit, urlunsplit

from pipeline.settings import positive_env_number

#: Environment variable naming the broker; ``--broker`` wins over it.
BROKER_ENV = "COLORQUANT_BROKER_URL"

#: Broker used when neither ``--broker`` nor COLORQUANT_BROKER_URL is given.
DEFAULT_BROKER_URL = "redis://localhost:6379/0"

#: Environment variable with the Redis visibility timeout, in seconds.
VISIBILITY_TIMEOUT_ENV = "COLORQUANT_VISIBILITY_TIMEOUT"

#: A message not acked this long after delivery goes back to the queue. One chunk of images takes
#: seconds to minutes; an hour (Celery's default) only delays the return of a lost worker's tasks.
DEFAULT_VISIBILITY_TIMEOUT_S = 900

#: Environment variable with how long a job's bookkeeping keys live in Redis, in seconds.
RETENTION_ENV = "COLORQUANT_JOB_RETENTION"

#: Keep a job's counts and failures for a week after its last activity.
DEFAULT_RETENTION_S = 7 * 24 * 3600

#: Environment variable with the largest number of images one task message carries.
CHUNK_ENV = "COLORQUANT_CHUNK_SIZE"

#: Images per message at most. Bigger chunks publish faster; smaller ones balance better. The
#: submitter shrinks chunks towards the end of a walk, so the tail still spreads over all workers.
DEFAULT_MAX_CHUNK = 32

#: Environment variable with the worker concurrency (pool processes) when ``-c`` is not given.
CONCURRENCY_ENV = "COLORQUANT_CONCURRENCY"

#: Queue every colorquant task goes to.
QUEUE = "colorquant"

#: Name of the task that quantizes a chunk of images, as Flower and ``celery inspect`` show it.
CHUNK_TASK = "colorquant.quantize_chunk"

#: The count and fit phases of a ``--palette shared`` job (worker/phase_tasks.py); its label
#: phase is ordinary CHUNK_TASK chunks.
COUNT_TASK, FIT_TASK = "colorquant.count_chunk", "colorquant.fit_shared"

#: Retries of a transient fault (full disk, broker hiccup) before the image counts as failed.
MAX_TRANSIENT_RETRIES = 5

#: Backoff of those retries: 2, 4, 8… seconds, capped.
RETRY_BACKOFF_S, RETRY_BACKOFF_MAX_S = 2, 60

#: Seconds the CLI waits to connect to Redis before calling the broker unreachable.
CONNECT_TIMEOUT_S = 3.0

#: Seconds a submit may pause between two chunks before its half-made job expires by itself, so
#: a submit killed midway never leaves a job that looks alive.
SUBMIT_LEASE_S = 120

#: Failures listed in ``status`` at most; the counts stay exact above it.
FAILURES_SHOWN = 1000

#: Jobs listed by ``colorquant jobs``, newest first.
JOBS_LISTED = 50


def broker_url(explicit: str | None = None) -> str:
    """``--broker``, else COLORQUANT_BROKER_URL, else the local default."""
    return explicit or os.environ.get(BROKER_ENV) or DEFAULT_BROKER_URL


def masked_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe to print or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable broker URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def visibility_timeout() -> float:
    return positive_env_number(
        VISIBILITY_TIMEOUT_ENV, DEFAULT_VISIBILITY_TIMEOUT_S, "number of seconds"
    )


def restore_sweep_interval(timeout: float) -> int:
    """Seconds between kombu's sweeps of unacked messages, for a given visibility timeout.

    kombu scans only every ``unacked_restore_interval`` × ``unacked_restore_throttle`` seconds
    (10 × 10 by default), whatever the timeout; we set the throttle to 1 and sweep a few times per
    timeout, so a lost worker's tasks come back within about 1.25 × the timeout.
    """
    return int(min(10, max(1, timeout // 4)))


def retention_s() -> int:
    return positive_env_number(RETENTION_ENV, DEFAULT_RETENTION_S, "number of seconds", whole=True)


def max_chunk() -> int:
    return positive_env_number(CHUNK_ENV, DEFAULT_MAX_CHUNK, "number of images", whole=True)
