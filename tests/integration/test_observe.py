"""Seeing submitted jobs: the Prometheus exporter scraped while two real workers run a job on a
real redis-server, and the HTML report of that job with its failures read from Redis."""

import json
import subprocess
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.commands import REPO, clean_env, colorquant_command
from harness.images import write_generated_images
from harness.processes import free_port, stop_group, wait_for
from harness.redis_server import RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # real workers and a real job

IMAGES = 12


def scrape(port: int) -> dict[tuple, float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def job_series(samples: dict, job: str) -> dict[str, float]:
    """The per-job figures of one scrape: done, failed, skipped, pending, total, rate, state."""
    figures = {}
    for (name, labels), value in samples.items():
        labels = dict(labels)
        if labels.get("job") != job:
            continue
        if name == "colorquant_job_images":
            figures[labels["status"]] = value
        elif name == "colorquant_job_state" and value == 1:
            figures["state"] = labels["state"]
        elif name == "colorquant_job_total_images":
            figures["total"] = value
        elif name == "colorquant_job_rate_images_per_second":
            figures["rate"] = value
    return figures


@pytest.fixture
def exporter(cluster, tmp_path):
    port = free_port()
    log = (tmp_path / "exporter.log").open("w")
    process = subprocess.Popen(
        [*colorquant_command(), "exporter", "--port", str(port), "--host", "127.0.0.1"],
        env=cluster.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO,
    )

    def serving():
        try:
            return scrape(port)[("colorquant_broker_up", ())] == 1
        except OSError:
            return False

    try:
        wait_for(serving, "the exporter to serve /metrics", timeout=60, poll=0.3)
        yield port
    finally:
        stop_group(process, grace_s=5)


@pytest.fixture
def job_folder(tmp_path) -> Path:
    folder = tmp_path / "in"
    write_generated_images(folder, IMAGES - 1)
    (folder / "broken.png").write_bytes(b"not a PNG at all")
    return folder


def test_exporter_series_move_from_pending_to_done_and_match_status(
    cluster, exporter, job_folder, tmp_path
):
    with cluster.consumers_paused():  # what is submitted here stays pending
        receipt = json.loads(
            cluster.cli("submit", job_folder, "-o", tmp_path / "out", "--json", check=True).stdout
        )
        job = receipt["job"]
        queued = scrape(exporter)
    before = job_series(queued, job)
    assert before["state"] == "queued"
    assert (before["total"], before["pending"], before["done"], before["failed"]) == (
        IMAGES,
        IMAGES,
        0,
        0,
    )
    assert queued[("colorquant_queue_messages", (("queue", "colorquant"),))] >= 1

    final = cluster.wait_until_final(job)
    after = wait_for(
        lambda: (figures := job_series(scrape(exporter), job))["state"] == "done" and figures,
        "the exporter to show the job done",
    )
    assert final["state"] == "done" and (final["done"], final["failed"]) == (IMAGES - 1, 1)
    for name in ("total", "done", "failed", "skipped", "pending", "rate"):
        assert after[name] == pytest.approx(final[name]), name
    alive = wait_for(
        lambda: scrape(exporter)[("colorquant_workers_alive", ())] == len(cluster.workers),
        "both workers to answer the exporter's ping",
    )
    assert alive


def test_report_of_a_submitted_job_reads_failures_and_inputs_from_redis(
    cluster, job_folder, tmp_path
):
    from tests.report_helpers import page_data, palettes

    out = tmp_path / "out"
    job = cluster.cli("submit", job_folder, "-o", out, check=True).stdout.strip()
    cluster.wait_until_final(job)
    made = cluster.cli("report", out, "--job", job, check=True)
    page = Path(made.stdout.strip())
    rows = page_data(page)["rows"]
    assert {row["s"] for row in rows} == set(palettes(out)) and len(rows) == IMAGES - 1
    assert all(row["to"] and row["tr"] for row in rows), "originals found from the job's roots"
    text = page.read_text()
    assert "broken.png" in text.split('<table id="failures">')[1]
    assert f"{job} done" in text


def test_the_exporter_starts_before_redis_and_shows_it_once_it_answers(tmp_path):
    """Compose may start the exporter first: it serves broker_up 0 with a one-line warning,
    then broker_up 1 as soon as Redis answers, without a restart."""
    server = RedisServer(tmp_path / "redis", appendonly=False)
    port = free_port()
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(
            [*colorquant_command(), "exporter", "--port", str(port), "--host", "127.0.0.1"],
            env=clean_env({"COLORQUANT_BROKER_URL": server.url}),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
            cwd=REPO,
        )
    try:
        serving = lambda: broker_up(port) == 0 or process.poll() is not None  # noqa: E731
        wait_for(serving, "broker_up 0 with Redis down", timeout=60)
        assert process.poll() is None, (tmp_path / "stderr").read_text()
        lines = (tmp_path / "stderr").read_text().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("warning: cannot reach the broker"), lines
        server.start()
        wait_for(lambda: broker_up(port) == 1, "broker_up 1 once Redis answers", timeout=60)
    finally:
        stop_group(process, grace_s=5)
        server.stop()


def broker_up(port: int) -> float | None:
    """colorquant_broker_up of one scrape; None while nothing serves /metrics."""
    try:
        return scrape(port)[("colorquant_broker_up", ())]
    except OSError:
        return None
