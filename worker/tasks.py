"""The one Celery task: quantize a chunk of a job's images. Thin, like a web view.

The message carries the job id and compact item rows; everything else (OUT, parameters, input
roots) comes from the job's record in Redis, so a forged message cannot point a worker at a
folder the job does not own. The image work itself is ``pipeline.process.quantize_file``.
"""

import logging
import os

import redis
from celery.signals import worker_process_init

from worker.app import app
from worker.execute import run_chunk
from worker.settings import CHUNK_TASK, MAX_TRANSIENT_RETRIES, RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_S

log = logging.getLogger(__name__)


class QuietCancelledChunks(logging.Filter):
    """Drops Celery's "Task … succeeded" line of a chunk whose images were all dropped because
    their job is cancelled: worker/execute.py says so once per process instead of a line per
    message."""

    def filter(self, record: logging.LogRecord) -> bool:
        details = record.args if isinstance(record.args, dict) else {}
        return not str(details.get("return_value", "")).startswith("{'cancelled'")


logging.getLogger("celery.app.trace").addFilter(QuietCancelledChunks())


@worker_process_init.connect
def _warm_up_pool_process(**_):
    """Each pool process loads the quantizer and its compiled loops before its first task
    (never the parent, which forks: GNU OpenMP is not fork-safe)."""
    from pipeline.threads import limit_threads_now, warm_up

    limit_threads_now()
    warm_up()
    log.info("pool process %d warmed up: quantizer loaded, one BLAS/OpenMP thread", os.getpid())


@app.task(
    bind=True,
    name=CHUNK_TASK,
    autoretry_for=(redis.ConnectionError, redis.TimeoutError),
    retry_backoff=RETRY_BACKOFF_S,
    retry_backoff_max=RETRY_BACKOFF_MAX_S,
    retry_jitter=True,
    max_retries=MAX_TRANSIENT_RETRIES,
)
def quantize_chunk(self, job: str, rows: list, chunk: str | None = None) -> dict:
    """Quantize each image of ``rows`` for ``job``; put back the ones hit by a transient fault.

    ``chunk`` names the chunk in the job's ledger (see worker/jobs.py), struck off once done."""
    final_try = self.request.retries >= MAX_TRANSIENT_RETRIES
    outcome = run_chunk(job, rows, chunk, final_try=final_try, broker=self.app.conf.broker_url)
    if outcome.retry_rows:
        delay = min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_S * 2**self.request.retries)
        log.warning(
            "job %s: %d image(s) hit a transient fault; retrying in %ss",
            job,
            len(outcome.retry_rows),
            delay,
        )
        raise self.retry(args=(job, outcome.retry_rows, chunk), countdown=delay)
    return dict(outcome.counts)
