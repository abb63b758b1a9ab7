"""Workers dying or stopping mid-job: each job still ends exact, on real Redis and real workers.

Every test checks that its fault landed mid-job (a good part of the job still pending), then that
``status --json`` counts every image exactly once, every output is whole, and no temp file is
left in OUT.
"""

import os
import signal

import pytest

from tests.faults.faultkit import (
    QUEUE,
    VISIBILITY_TIMEOUT_S,
    assert_job_exact,
    assert_struck_mid_job,
    job_status,
    submit,
    wait_for,
    wait_until_done,
    wait_until_started,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_pool_process_sigkilled_mid_task_is_redelivered(
    redis_server, worker_factory, photo_job, tmp_path
):
    photos, names = photo_job
    out = tmp_path / "out"
    job = submit(photos, out, redis_server.url)  # before the workers, so it starts from zero
    worker = worker_factory(redis_server.url, concurrency=2)
    wait_until_started(job, redis_server.url)

    victim = wait_for(worker.busy_pool_pid, 30, "a pool process running a task")
    os.kill(victim, signal.SIGKILL)  # the OOM killer's way
    assert_struck_mid_job(job_status(job, redis_server.url))

    wait_until_done(job, redis_server.url, timeout=120)
    assert_job_exact(job, redis_server.url, photos, names, out)
    log = worker.log()
    # The pool noticed a process died while running a task (so the kill landed mid-task) ...
    assert "WorkerLostError" in log or "signal 9" in log, log[-3000:]
    # ... and the worker itself lived on and replaced it.
    assert worker.process.poll() is None
    assert victim not in worker.pool_pids()


def test_whole_worker_sigkilled_other_worker_finishes(
    redis_server, worker_factory, photo_job, tmp_path
):
    photos, names = photo_job
    out = tmp_path / "out"
    job = submit(photos, out, redis_server.url)
    doomed = worker_factory(redis_server.url, concurrency=1, wait=False)
    survivor = worker_factory(redis_server.url, concurrency=1, wait=False)
    doomed.wait_ready()
    survivor.wait_ready()
    broker = redis_server.client()
    wait_until_started(job, redis_server.url)

    # Both workers hold a message (kombu's unacked hash has 2 entries) and the doomed one is
    # computing: then the whole machine goes, main process and pool at once.
    def doomed_is_working():
        return broker.hlen("unacked") >= 2 and doomed.busy_pool_pid()

    wait_for(doomed_is_working, 30, "the doomed worker to be running a task")
    doomed.signal_group(signal.SIGKILL)
    doomed.process.wait(timeout=10)
    assert_struck_mid_job(job_status(job, redis_server.url))

    # The lost messages come back after about the visibility timeout (plus one restore sweep);
    # the deadline is generous, it only bounds the wait.
    wait_until_done(job, redis_server.url, timeout=10 * VISIBILITY_TIMEOUT_S + 60)
    assert_job_exact(job, redis_server.url, photos, names, out)
    assert survivor.process.poll() is None
    # Late copies of the lost messages (redelivered after their images were done) drain too.
    wait_for(
        lambda: broker.llen(QUEUE) == 0 and broker.hlen("unacked") == 0,
        4 * VISIBILITY_TIMEOUT_S + 30,
        "the queue and kombu's unacked hash to drain",
    )


def test_sigterm_warm_shutdown_loses_nothing(redis_server, worker_factory, photo_job, tmp_path):
    photos, names = photo_job
    out = tmp_path / "out"
    job = submit(photos, out, redis_server.url)
    stopping = worker_factory(redis_server.url, concurrency=2)
    wait_until_started(job, redis_server.url)
    wait_for(stopping.busy_pool_pid, 30, "the worker to be running a task")

    stopping.process.send_signal(signal.SIGTERM)  # to the main process only, as the FAQ says
    assert_struck_mid_job(job_status(job, redis_server.url))
    code = stopping.process.wait(timeout=60)
    assert code == 0, stopping.log()[-3000:]
    after_stop = job_status(job, redis_server.url)
    assert after_stop["state"] == "running" and after_stop["pending"] > 0

    # A worker started afterwards finishes the job: nothing the stopped one held is lost.
    worker_factory(redis_server.url, concurrency=2)
    wait_until_done(job, redis_server.url, timeout=10 * VISIBILITY_TIMEOUT_S + 60)
    assert_job_exact(job, redis_server.url, photos, names, out)
