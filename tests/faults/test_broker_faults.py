"""The broker failing: redis-server crashing mid-job, and Redis down when a person runs a command.

redis-server runs with AOF and ``appendfsync everysec`` (as in the compose file) and is killed
with SIGKILL, then started again on the same port and directory. The job must still finish
exactly, without anyone re-submitting it or running ``colorquant retry``.
"""

import json
import os
import subprocess
import time

import pytest

from harness.fixtures import new_redis_server
from tests.faults.faultkit import (
    VISIBILITY_TIMEOUT_S,
    assert_job_exact,
    assert_ledger_lost_in_tail,
    assert_ledger_recovered,
    assert_struck_mid_job,
    cli,
    cli_env,
    colorquant_command,
    cut_after_acked_pop,
    free_port,
    job_status,
    ledger_records,
    make_photos,
    submit,
    wait_for,
    wait_until_done,
    wait_until_started,
)
from worker.jobs import JOBS_INDEX, job_keys

pytestmark = [pytest.mark.slow, pytest.mark.integration]

#: How long Redis stays down: long enough that every worker sees its connection drop.
DOWN_S = 1.5

#: A longer outage: past the visibility timeout and several of Celery's reconnect attempts.
LONG_DOWN_S = 2 * VISIBILITY_TIMEOUT_S


@pytest.mark.parametrize(
    ("lose_last_second", "down_s"),
    [(False, DOWN_S), (True, DOWN_S), (False, LONG_DOWN_S)],
    ids=["crash", "crash-and-lose-the-last-second-of-aof", "crash-and-long-outage"],
)
def test_redis_crash_mid_job_then_restart(
    lose_last_second, down_s, redis_server, worker_factory, photo_job, tmp_path
):
    photos, names = photo_job
    out = tmp_path / "out"
    url = redis_server.url
    job = submit(photos, out, url)  # before the workers, so it starts from zero
    workers = [worker_factory(url, concurrency=1, wait=False) for _ in range(2)]
    for worker in workers:
        worker.wait_ready()
    wait_until_started(job, url)

    aof = redis_server.aof_files()[-1]
    kept_bytes = aof.stat().st_size  # what a power cut now would leave on disk
    if lose_last_second:
        # Wait for bookkeeping written after that point: the part the cut below takes away.
        wait_for(
            lambda: ledger_records(aof, job, after=kept_bytes),
            "an image recorded after the cut point",
            60,
            poll=0.05,
        )
    before_crash = job_status(job, url)
    redis_server.kill()
    assert_struck_mid_job(before_crash)
    lost = None
    if lose_last_second:
        lost = assert_ledger_lost_in_tail(aof, job, kept_bytes)
        # What a power cut does with everysec: the tail of the AOF never reached the disk. The
        # cut may fall inside a command; Redis loads the complete prefix (aof-load-truncated).
        os.truncate(aof, kept_bytes)
    restart_and_check(redis_server, down_s, job, (photos, names, out), lost)

    # The workers did not just reconnect: they still consume (Celery has open reports of
    # workers that reconnect and then take nothing). A new job after the crash finishes too.
    for worker in workers:
        assert worker.process.poll() is None, worker.log()[-3000:]
    # Each worker retries its connection on its own backoff (2, 4, 6, 8 s...): the later job
    # goes out once both consume again, or the first one back may take all of it.
    for worker in workers:
        wait_for(
            lambda worker=worker: (
                worker.log().count("Connected to ") >= 2 and worker.consuming_since_last_connect()
            ),
            f"worker {worker.pid} to reconnect and consume again",
            60,
        )
    later_out = tmp_path / "later"
    later_names = [name for name in names if name.startswith("set0/")]
    later = submit(photos / "set0", later_out, url)
    wait_until_done(later, url, timeout=60 + 3 * VISIBILITY_TIMEOUT_S)
    assert_job_exact(
        later, url, photos / "set0", [name[len("set0/") :] for name in later_names], later_out
    )
    for worker in workers:
        assert worker.log().count("Connected to ") >= 2, "the worker never saw the crash"
        assert worker.tasks_since_last_connect() > 0, (
            f"worker {worker.pid} reconnected but consumed nothing:\n{worker.log()[-3000:]}"
        )


def test_redis_crash_losing_a_popped_message_still_finishes(
    redis_server, worker_factory, photo_job, tmp_path
):
    """The worst prefix of the lost second: kombu's pop of a message reached the AOF, its copy
    into the unacked hash did not (they are separate commands), and the worker that ran it
    finished and acked it before the crash. No message for those images exists any more, so only
    the job's own bookkeeping can bring them back; the job must still finish by itself."""
    photos, names = photo_job
    out = tmp_path / "out"
    url = redis_server.url
    # One image per message, so a message is finished and acked within a fraction of a second
    # and the cut below takes away well under a second of writes.
    job = submit(photos, out, url, env={"COLORQUANT_CHUNK_SIZE": "1"})
    worker_factory(url, concurrency=2)
    wait_until_started(job, url, at_least=6)
    before_crash = job_status(job, url)
    redis_server.kill()
    assert_struck_mid_job(before_crash)
    aof = redis_server.aof_files()[-1]
    kept_bytes = cut_after_acked_pop(aof)
    assert kept_bytes is not None, "no finished message to lose in the AOF; nothing was tested"
    # The popped message's images were finished and recorded after the pop: the cut loses them.
    lost = assert_ledger_lost_in_tail(aof, job, kept_bytes)
    os.truncate(aof, kept_bytes)
    restart_and_check(redis_server, DOWN_S, job, (photos, names, out), lost)


def restart_and_check(redis_server, down_s: float, job: str, files: tuple, lost=None) -> None:
    """Start the crashed Redis again after ``down_s``; the job must then end exactly, every file
    whole, and any ledger records the cut took away must be back. ``files`` is
    (photos, names, out)."""
    url = redis_server.url
    time.sleep(down_s)
    redis_server.start()
    wait_until_done(job, url, timeout=12 * VISIBILITY_TIMEOUT_S + 60)
    assert_job_exact(job, url, *files)
    if lost is not None:
        assert_ledger_recovered(url, job, lost)


def one_line_error(result, *, secret: str | None = None) -> str:
    """The command failed with exit code 2 and one clear line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "broker" in lines[0].lower(), lines[0]
    if secret:
        assert secret not in result.stderr + result.stdout
    return lines[0]


def test_broker_down_at_submit_and_status(tmp_path):
    photos = tmp_path / "photos"
    make_photos(photos, 3)
    password = "s3cret-pa55word"
    url = f"redis://:{password}@127.0.0.1:{free_port()}/0"  # nothing listens there

    submitted = cli("submit", photos, "-o", tmp_path / "out", "--broker", url)
    line = one_line_error(submitted, secret=password)
    assert "127.0.0.1" in line
    assert not list((tmp_path / "out").rglob("*.png"))

    waited = cli("submit", photos, "-o", tmp_path / "out", "--wait", "--json", "--broker", url)
    one_line_error(waited, secret=password)

    job = "0123456789ab"
    for command in (
        ["status", job],
        ["status", job, "--json"],
        ["jobs"],
        ["jobs", "--json"],
        ["watch", job],
        ["cancel", job],
        ["retry", job],
    ):
        one_line_error(cli(*command, "--broker", url, timeout=60), secret=password)
    # The same through the environment variable instead of --broker.
    one_line_error(
        cli("status", "0123456789ab", env={"COLORQUANT_BROKER_URL": url}), secret=password
    )


def test_broker_dies_during_submit_leaves_no_live_job(redis_server, tmp_path):
    """Redis crashes while a big folder is being submitted: submit says so in one line, exits 2,
    and once Redis is back no half-submitted job can look alive for ever."""
    photos = tmp_path / "many"
    photos.mkdir()
    for index in range(40_000):  # empty files: the walk names them, it never reads them
        (photos / f"f{index:05d}.jpg").touch()
    url = redis_server.url
    client = redis_server.client()
    submitting = subprocess.Popen(
        [*colorquant_command(), "submit", photos, "-o", tmp_path / "out", "--broker", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )

    # Strike once the job exists and part of it is counted, but long before the walk ends.
    def job_half_made():
        jobs = client.zrange(JOBS_INDEX, 0, -1)
        if not jobs:
            return None
        total = int(client.hget(job_keys(jobs[0])["meta"], "total") or 0)
        return jobs[0] if total > 0 else None

    job = wait_for(job_half_made, "the submit to start counting", 60, poll=0.005)
    counted = int(client.hget(job_keys(job)["meta"], "total") or 0)
    redis_server.kill()
    stdout, stderr = submitting.communicate(timeout=60)
    assert counted < 40_000, "the submit finished before the crash; nothing was tested"
    result = subprocess.CompletedProcess(submitting.args, submitting.returncode, stdout, stderr)
    one_line_error(result)

    redis_server.start()  # the AOF brings back whatever reached it
    listed = cli("jobs", "--json", "--broker", url)
    assert listed.returncode == 0, listed.stderr
    # The kill was a process crash: what Redis wrote before it (the half-made job) is in the
    # AOF, so the job is listed again.
    document = {entry["job"]: entry for entry in json.loads(listed.stdout)}[job]
    # A half-submitted job may linger only while its submit lease runs; it must never look
    # like a job that is queued or running for good.
    assert not document["submitted"]
    ttl = redis_server.client().ttl(job_keys(job)["meta"])
    assert 0 < ttl <= 120, f"half-submitted job {job} has no expiry (ttl {ttl})"


def test_worker_started_before_redis_works_once_redis_is_up(worker_factory, tmp_path):
    """The README's promise: ``colorquant worker`` may start before Redis (compose, a reboot).
    It keeps retrying without exiting, and once Redis answers it takes jobs."""
    server = new_redis_server(tmp_path / "late-redis")  # its port is chosen, nothing listens
    try:
        worker = worker_factory(server.url, concurrency=1, wait=False)

        def retrying():
            assert worker.process.poll() is None, f"the worker gave up:\n{worker.log()[-3000:]}"
            return "cannot connect" in worker.log().lower()

        wait_for(retrying, "the worker to report that Redis is not there yet", 90)
        server.start()
        worker.wait_ready()
        photos = tmp_path / "photos"
        names = make_photos(photos, 3)
        job = submit(photos, tmp_path / "out", server.url)
        wait_until_done(job, server.url, timeout=120)
        assert_job_exact(job, server.url, photos, names, tmp_path / "out")
    finally:
        server.stop()
