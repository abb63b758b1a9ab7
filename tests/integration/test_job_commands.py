"""The job commands explain themselves on a real redis-server: with no worker running, when a
person stops watching, when a job was cancelled or skipped everything, and in the worker log."""

import json
import signal
import subprocess
import time

import pytest

from harness.commands import clean_env, colorquant_command, run_colorquant
from harness.images import write_generated_images
from harness.processes import wait_for

pytestmark = [pytest.mark.integration]

#: A database of the session's redis-server that no worker consumes from.
NO_WORKER_DB = 7

NO_WORKER = "no colorquant worker is running"


@pytest.fixture
def lonely_env(redis_server) -> dict:
    """The CLI pointed at a broker database where no worker runs, emptied first."""
    url = redis_server.database_url(NO_WORKER_DB)
    client = redis_server.client()
    client.execute_command("SELECT", NO_WORKER_DB)
    client.flushdb()
    return clean_env({"COLORQUANT_BROKER_URL": url})


@pytest.fixture
def queued_job(lonely_env, tmp_path) -> str:
    write_generated_images(tmp_path / "in", 2)
    done = run_colorquant("submit", tmp_path / "in", "-o", tmp_path / "out", env=lonely_env)
    assert done.returncode == 0, done.stderr
    assert NO_WORKER in done.stderr and "colorquant worker" in done.stderr
    return done.stdout.strip()


def test_status_says_no_worker_is_running_and_how_to_start_one(queued_job, lonely_env):
    document = json.loads(run_colorquant("status", queued_job, "--json", env=lonely_env).stdout)
    assert (document["state"], document["workers"], document["pending"]) == ("queued", 0, 2)
    shown = run_colorquant("status", queued_job, env=lonely_env)
    assert shown.returncode == 0
    assert NO_WORKER in shown.stdout + shown.stderr
    assert "start one with: colorquant worker" in shown.stdout + shown.stderr


def test_ctrl_c_in_watch_says_the_job_waits_for_a_worker(queued_job, lonely_env):
    watching = subprocess.Popen(
        [*colorquant_command(), "watch", queued_job],
        env=lonely_env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        first = watching.stderr.readline()  # the no-worker warning comes before any progress
        assert NO_WORKER in first, first
        watching.send_signal(signal.SIGINT)
        rest = watching.communicate(timeout=30)[1]
    finally:
        watching.kill()
    assert watching.returncode == 130
    assert f"job {queued_job} waits in the queue" in rest and NO_WORKER in rest  # none runs
    assert f"colorquant watch {queued_job}" in rest and f"colorquant cancel {queued_job}" in rest
    assert "Traceback" not in rest


def test_a_cancelled_job_has_nothing_pending_and_a_second_cancel_says_so(queued_job, lonely_env):
    first = run_colorquant("cancel", queued_job, env=lonely_env)
    # "up to": an image a worker had begun still finishes, so status may then count fewer.
    assert first.returncode == 0 and "cancelled: up to 2 images left unprocessed" in first.stderr
    again = run_colorquant("cancel", queued_job, env=lonely_env)
    assert again.returncode == 0 and "already cancelled" in again.stderr
    earlier = json.loads(run_colorquant("status", queued_job, "--json", env=lonely_env).stdout)
    assert (earlier["pending"], earlier["cancelled"]) == (0, 2)
    time.sleep(1.5)  # a running clock would move elapsed_s by this much
    later = json.loads(run_colorquant("status", queued_job, "--json", env=lonely_env).stdout)
    assert later["elapsed_s"] == earlier["elapsed_s"]


@pytest.mark.slow
def test_submit_wait_json_names_the_job_on_stderr_and_workers_are_seen(cluster, tmp_path):
    write_generated_images(tmp_path / "in", 2)
    done = cluster.cli("submit", tmp_path / "in", "-o", tmp_path / "out", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert f"job {report['job']}: 2 images queued" in done.stderr.splitlines()[0]
    assert NO_WORKER not in done.stderr
    assert cluster.status(report["job"])["workers"] == len(cluster.workers)
    again = cluster.cli("submit", tmp_path / "in", "-o", tmp_path / "out", "--wait", "--json")
    job = json.loads(again.stdout)["job"]
    listed = cluster.cli("jobs", check=True).stdout
    (row,) = [line for line in listed.splitlines() if line.split()[:1] == [job]]
    assert "2/2" in row.split()  # all skipped is finished, not "0/2"


@pytest.mark.slow
def test_a_failed_image_is_a_warning_in_the_worker_log(cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    report = json.loads(
        cluster.cli("submit", folder, "-o", tmp_path / "out", "--wait", "--json").stdout
    )
    assert report["failed"] == 1
    line = f"job {report['job']}: broken.jpg failed: "
    logs = wait_for(
        lambda: [
            entry
            for worker in cluster.workers
            for entry in worker.log().splitlines()
            if line in entry
        ],
        "the failure in a worker log",
    )
    assert len(logs) == 1 and "WARNING" in logs[0]


@pytest.mark.slow
def test_retry_of_a_job_with_no_failures_says_so_and_changes_nothing(cluster, tmp_path):
    write_generated_images(tmp_path / "in", 1)
    done = cluster.cli("submit", tmp_path / "in", "-o", tmp_path / "out", "--wait", "--json")
    job = json.loads(done.stdout)["job"]
    before = cluster.status(job)
    retried = cluster.cli("retry", job)
    assert retried.returncode == 0, retried.stderr
    assert retried.stderr.strip() == f"job {job} has no failed images to retry"
    after = cluster.status(job)
    assert {key: after[key] for key in ("state", "done", "failed", "elapsed_s")} == {
        key: before[key] for key in ("state", "done", "failed", "elapsed_s")
    }
