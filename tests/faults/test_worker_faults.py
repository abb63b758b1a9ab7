"""Workers dying or stopping mid-job: each job still ends exact, on real Redis and real workers.

Every test checks that its fault landed mid-job (a good part of the job still pending), then that
``status --json`` counts every image exactly once, every output is whole, and no temp file is
left in OUT.
"""

import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.faultkit import (
    QUEUE,
    TEMP_MARKER,
    VISIBILITY_TIMEOUT_S,
    assert_job_exact,
    assert_struck_mid_job,
    in_flight,
    job_status,
    ledger_begins,
    submit,
    wait_for,
    wait_until_done,
    wait_until_started,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

#: Kills of a busy pool process after which one must have landed while it held a begun chunk.
KILLS_TO_CATCH_A_BEGUN_CHUNK = 4
#: Time for Redis to apply a command the victim sent just before it died (so a chunk it had
#: finished is not taken as in flight); far shorter than a redelivery to a new pool process.
DEAD_CLIENT_SETTLE_S = 0.1
#: Pauses of a worker after which one must have caught it holding a task.
FREEZES_TO_CATCH_A_TASK = 4


def test_pool_process_sigkilled_mid_task_is_redelivered(
    redis_server, worker_factory, photo_job, tmp_path
):
    photos, names = photo_job
    out = tmp_path / "out"
    # A temp file an earlier killed writer left beside one of the outputs: gone by the end.
    stale = out / Path(names[-1]).parent / f".{Path(names[-1]).stem}.png{TEMP_MARKER}x1y2z3"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\x89PNG half")
    job = submit(photos, out, redis_server.url)  # before the workers, so it starts from zero
    # One pool process: whatever the AOF shows in flight at a kill, the victim held it.
    worker = worker_factory(redis_server.url, concurrency=1)
    aof = redis_server.aof_files()[-1]

    pool = set(worker.pool_pids())
    assert len(pool) == 1, pool

    def begun_and_unfinished():
        return in_flight(aof, job, until=aof.stat().st_size)

    def the_pool_process():
        pids = worker.pool_pids()
        return pids[0] if len(pids) == 1 else None

    victims, held = [], set()
    # Kill while the AOF shows a chunk begun and not finished, which only the one pool process
    # can hold. It may finish the chunk between that look and the kill; then look again.
    while not held and len(victims) < KILLS_TO_CATCH_A_BEGUN_CHUNK:
        wait_for(begun_and_unfinished, "a chunk begun and not finished", 30, poll=0.02)
        victim = wait_for(the_pool_process, "the pool process", 30)
        os.kill(victim, signal.SIGKILL)  # the OOM killer's way
        victims.append(victim)
        time.sleep(DEAD_CLIENT_SETTLE_S)
        held = begun_and_unfinished()
    assert held, f"no kill of {victims} caught a begun chunk"
    assert_struck_mid_job(job_status(job, redis_server.url))

    wait_until_done(job, redis_server.url, timeout=120)
    assert_job_exact(job, redis_server.url, photos, names, out)
    # What the killed process held (a chunk, or an image of a careful redelivery, begun and
    # not finished) was begun a second time, by the redelivered message, and counted once.
    begun_twice = {name for name, count in ledger_begins(aof, job).items() if count >= 2}
    assert held <= begun_twice, f"in flight at the kill and not run again: {held - begun_twice}"
    assert "WorkerLostError" in worker.log(), worker.log()[-3000:]
    # The worker itself lived on and brought its pool back to full size with a new process.
    assert worker.process.poll() is None

    def full_pool():
        now = set(worker.pool_pids())
        return now if len(now) == len(pool) else None

    refilled = wait_for(full_pool, "the pool to be back to full size", 60)
    assert not refilled & (pool | set(victims)), (pool, victims, refilled)
    assert not stale.exists()


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

    wait_for(doomed_is_working, "the doomed worker to be running a task", 30)
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
        "the queue and kombu's unacked hash to drain",
        4 * VISIBILITY_TIMEOUT_S + 30,
    )


def test_sigterm_warm_shutdown_loses_nothing(redis_server, worker_factory, photo_job, tmp_path):
    photos, names = photo_job
    out = tmp_path / "out"
    job = submit(photos, out, redis_server.url)
    stopping = worker_factory(redis_server.url, concurrency=2)
    wait_until_started(job, redis_server.url)
    wait_for(stopping.busy_pool_pid, "the worker to be running a task", 30)

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


def test_worker_frozen_past_visibility_timeout_runs_twice_counts_once(
    redis_server, worker_factory, photo_job, tmp_path
):
    """A worker paused longer than the visibility timeout (SIGSTOP: a long GC pause, a VM
    migration, a network partition): its message goes to the other worker, then the paused
    one wakes up and finishes its copy too. The images are counted once all the same.

    (The other worker may not finish the message while the first is paused: if the pause
    caught an output half written, its writer still holds that output's temp file, and the
    next writer waits for it, as for any live writer.)"""
    photos, names = photo_job
    out = tmp_path / "out"
    url = redis_server.url
    job = submit(photos, out, url)
    frozen = worker_factory(url, concurrency=1, wait=False)
    other = worker_factory(url, concurrency=1, wait=False)
    frozen.wait_ready()
    other.wait_ready()
    wait_until_started(job, url)

    held = set()
    for _ in range(FREEZES_TO_CATCH_A_TASK):  # it may end its task just before the pause
        wait_for(frozen.tasks_in_hand, "the worker to hold a task", 30, poll=0.02)
        frozen.signal_group(signal.SIGSTOP)
        held = frozen.tasks_in_hand()
        if held:
            break
        frozen.signal_group(signal.SIGCONT)
    assert held, "no pause caught the worker holding a task"
    try:
        assert_struck_mid_job(job_status(job, url))
        wait_for(
            lambda: held & set(other.received_tasks()),
            "the paused worker's message to reach the other worker",
            10 * VISIBILITY_TIMEOUT_S + 60,
        )
    finally:
        frozen.signal_group(signal.SIGCONT)

    wait_until_done(job, url, timeout=10 * VISIBILITY_TIMEOUT_S + 60)
    # The woken worker finishes the copy it held (done by the other, or in part) and acks.
    wait_for(
        lambda: not held & frozen.tasks_in_hand(), "the woken worker to end the task it held", 60
    )
    assert all(f"[{task}] succeeded in " in frozen.log() for task in held), frozen.log()[-3000:]
    broker = redis_server.client()
    wait_for(
        lambda: broker.llen(QUEUE) == 0 and broker.hlen("unacked") == 0,
        "the queue and kombu's unacked hash to drain",
        4 * VISIBILITY_TIMEOUT_S + 30,
    )
    assert_job_exact(job, url, photos, names, out)
    assert frozen.process.poll() is None and other.process.poll() is None
