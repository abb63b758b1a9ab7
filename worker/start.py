"""``colorquant worker``: a Celery prefork worker with the project's settings.

Thread limits go into the environment before anything imports numpy, so every pool process
runs one BLAS/OpenMP thread; the parent never imports numpy's, numba's or scikit-learn's threaded
runtimes (it forks the pool), and each pool process warms up in ``worker_process_init`` (see
worker/tasks.py).
"""

import os
import uuid

from pipeline.threads import limit_threads_env
from worker.settings import BROKER_ENV, CONCURRENCY_ENV, QUEUE


def default_node_name() -> str:
    """Unique per worker, so two workers on one host both answer ``celery inspect ping``."""
    return f"colorquant-{uuid.uuid4().hex[:8]}@%h"


def default_concurrency() -> int:
    configured = os.environ.get(CONCURRENCY_ENV, "").strip()
    if configured:
        return int(configured)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def worker_argv(concurrency: int, node_name: str, loglevel: str) -> list[str]:
    return [
        "worker",
        "--pool=prefork",
        f"--concurrency={concurrency}",
        f"--hostname={node_name}",
        f"--queues={QUEUE}",
        "--events",
        f"--loglevel={loglevel}",
    ]


def run_worker(
    concurrency: int | None = None,
    broker: str | None = None,
    node_name: str | None = None,
    loglevel: str = "INFO",
) -> None:
    """Start the worker in this process; returns when it shuts down."""
    limit_threads_env()
    if broker:
        os.environ[BROKER_ENV] = broker
    from worker.app import app  # reads the broker from the environment set just above

    app.worker_main(
        worker_argv(
            concurrency or default_concurrency(), node_name or default_node_name(), loglevel
        )
    )
