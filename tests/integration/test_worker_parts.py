"""The plain functions behind the job commands: URL masking, chunking, status arithmetic."""

import itertools

import pytest

from worker.client import job_state, status_document
from worker.publish import guided_chunks
from worker.settings import masked_url, restore_sweep_interval


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://alice:hunter2@host/1", "redis://alice:***@host/1"),
        (
            "rediss://:p%40ss@h:6380/0?ssl_cert_reqs=required",
            "rediss://:***@h:6380/0?ssl_cert_reqs=required",
        ),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
    ],
)
def test_masked_url_hides_only_the_password(url, shown):
    assert masked_url(url) == shown


def test_guided_chunks_keep_order_and_shrink_at_the_tail():
    chunks = list(guided_chunks(range(1000), largest=32, spread=4))
    assert list(itertools.chain.from_iterable(chunks)) == list(range(1000))
    assert max(map(len, chunks)) == 32
    assert [len(chunk) for chunk in chunks[-3:]] == [1, 1, 1]
    sizes = [len(chunk) for chunk in chunks]
    assert sizes == sorted(sizes, reverse=True), "never grows again once shrinking"


def test_guided_chunks_read_a_bounded_window_ahead():
    consumed = 0

    def counting():
        nonlocal consumed
        for number in itertools.count():
            consumed += 1
            yield number

    stream = guided_chunks(counting(), largest=10, spread=3)
    for _ in range(100):
        next(stream)
    assert consumed <= 100 * 10 + 10 * 3 + 1


def test_small_jobs_go_out_one_image_per_message():
    assert [len(chunk) for chunk in guided_chunks(range(5), largest=32)] == [1] * 5


def meta(**fields):
    return {"job": "j", "total": "10", "done": "0", "failed": "0", "skipped": "0", **fields}


@pytest.mark.parametrize(
    ("fields", "finished", "state"),
    [
        ({}, 0, "queued"),
        ({"started_at": "1"}, 0, "running"),
        ({"started_at": "1", "cancelled": "2", "enqueued": "1"}, 3, "cancelled"),
        ({"enqueued": "1"}, 10, "done"),
        ({}, 10, "running"),  # still being submitted: more may come
        ({"enqueued": "1", "retrying": "2"}, 10, "running"),
    ],
)
def test_job_state(fields, finished, state):
    assert job_state(meta(**fields), finished) == state


def test_status_document_rate_and_eta():
    fields = meta(done="4", failed="1", created_at="90", started_at="100", enqueued="1")
    document = status_document(fields, [], now=110.0)
    assert (document["state"], document["pending"]) == ("running", 5)
    assert document["rate"] == 0.5 and document["eta_s"] == 10.0


def test_visibility_sweep_runs_several_times_per_timeout():
    assert restore_sweep_interval(10) == 2
    assert restore_sweep_interval(3600) == 10
    assert restore_sweep_interval(1) == 1


def test_a_cancelled_job_has_nothing_pending_and_its_clock_stopped():
    fields = meta(done="3", created_at="90", started_at="100", cancelled="106", enqueued="1")
    early, late = (status_document(fields, [], now=now) for now in (110.0, 5000.0))
    assert (early["state"], early["pending"], early["cancelled"]) == ("cancelled", 0, 7)
    assert early["elapsed_s"] == late["elapsed_s"] == 16.0
    assert early["rate"] == late["rate"] == 0.5 and early["eta_s"] is None


def test_the_rate_after_a_retry_counts_only_the_retried_images_since_the_retry():
    fields = meta(
        done="9",
        failed="0",
        retrying="1",
        retried="2",
        created_at="0",
        started_at="1",
        retried_at="1000",
        enqueued="1",
    )
    document = status_document(fields, [], now=1004.0)
    assert document["state"] == "running"
    assert document["rate"] == 0.25 and document["eta_s"] == 4.0


def test_a_finished_job_shows_when_it_finished_not_an_eta():
    from cli.render import status_rows

    fields = meta(done="10", created_at="90", started_at="100", finished_at="105", enqueued="1")
    fields["params"] = '{"k": 16, "method": "kmeans", "space": "oklab"}'
    fields["roots"] = '["/photos/a", "/photos/b"]'
    rows = dict(status_rows({**status_document(fields, [], now=500.0), "workers": 0}))
    assert "ETA" not in rows and "workers" not in rows and rows["finished"]
    assert (rows["K"], rows["method"], rows["inputs"]) == (
        16,
        "kmeans oklab",
        "/photos/a, /photos/b",
    )
    assert rows["elapsed"] == "15 s"
