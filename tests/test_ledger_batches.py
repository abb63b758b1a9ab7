"""The batched job ledger on a real redis-server: a chunk's outcomes are counted in one script
call, each image exactly once however often it is reported, and a chunk delivered again takes
the careful image-by-image path without counting anything twice."""

import itertools

import pytest

from harness.images import write_generated_images
from pipeline.job import Status
from pipeline.params import QuantizeParams
from worker.execute import run_chunk
from worker.jobs import JobStore, Outcome, job_keys

_jobs = (f"ledger{number}" for number in itertools.count())


def new_job(store: JobStore, chunks: dict[str, list], root: str = "/nowhere") -> str:
    job = next(_jobs)
    store.create(job, "/nowhere-out", QuantizeParams(k=8), overwrite=False)
    store.add_items(job, sum(map(len, chunks.values())), chunks, [root])
    store.seal(job, ignored=0)
    return job


def row(name: str) -> list:
    return [0, name, name, name.rsplit(".", 1)[0] + ".png"]


def counts(store: JobStore, job: str) -> dict:
    meta = store.meta(job)
    return {key: int(meta.get(key, 0)) for key in ("done", "failed", "skipped", "retrying")}


@pytest.fixture
def store(ledger_url) -> JobStore:
    return JobStore(ledger_url, retention_s=600)


def test_each_outcome_is_counted_once_however_often_it_is_reported(store):
    job = new_job(store, {"s0": [row("a.jpg"), row("b.jpg"), row("c.jpg")]})
    start = store.begin_chunk(job, "s0", ["a.jpg", "b.jpg", "c.jpg"])
    assert (start.verdict, start.first, start.statuses) == ("go", True, [None] * 3)

    first = [Outcome("a.jpg", Status.DONE), Outcome("b.jpg", Status.FAILED, "bad", row("b.jpg"))]
    assert store.record_chunk(job, first) == ([True, True], False)
    again = [*first, Outcome("c.jpg", Status.SKIPPED)]
    assert store.record_chunk(job, again, "s0") == ([False, False, True], False)

    assert counts(store, job) == {"done": 1, "failed": 1, "skipped": 1, "retrying": 0}
    assert store.failures(job) == [{"path": "b.jpg", "error": "bad"}]
    assert store.chunk_rows(job, "s0") is None  # struck off: never sent again
    assert store.redis.hget(job_keys(job)["attempts"], "\0s0") is None
    assert store.meta(job).get("finished_at")
    assert store.begin_chunk(job, "s1", ["a.jpg"]).statuses == ["done"]


def test_a_retried_failure_moves_to_its_new_status(store):
    job = new_job(store, {"s0": [row("a.jpg"), row("b.jpg")]})
    store.record_chunk(
        job,
        [Outcome("a.jpg", Status.FAILED, "disk", row("a.jpg")), Outcome("b.jpg", Status.DONE)],
        "s0",
    )
    assert [record["path"] for record in store.take_failed_for_retry(job)] == ["a.jpg"]
    assert counts(store, job) == {"done": 1, "failed": 0, "skipped": 0, "retrying": 1}
    assert store.record_chunk(job, [Outcome("a.jpg", Status.DONE)], "r0") == ([True], False)
    assert counts(store, job) == {"done": 2, "failed": 0, "skipped": 0, "retrying": 0}
    assert store.failures(job) == []


def test_a_cancel_is_reported_and_an_unknown_job_counts_nothing(store):
    job = new_job(store, {"s0": [row("a.jpg")]})
    store.cancel(job)
    assert store.begin_chunk(job, "s0", ["a.jpg"]).verdict == "cancelled"
    assert store.record_chunk(job, [Outcome("a.jpg", Status.DONE)]) == ([True], True)
    assert store.record_chunk("no-such-job", [Outcome("a.jpg", Status.DONE)]) == ([], True)
    assert not store.redis.exists(job_keys("no-such-job")["items"])


def test_a_chunk_delivered_again_counts_nothing_twice(store, ledger_url, tmp_path):
    inputs = tmp_path / "in"
    write_generated_images(inputs, 3, size=(24, 32))
    rows = [row(f"gen-{index:03d}.png") for index in range(3)]
    job = next(_jobs)
    store.create(job, str(tmp_path / "out"), QuantizeParams(k=8), overwrite=False)
    store.add_items(job, 3, {"s0": rows}, [str(inputs)])
    store.seal(job, ignored=0)

    first = run_chunk(job, rows, "s0", final_try=False, broker=ledger_url)
    assert first.counts == {"done": 3}
    assert counts(store, job)["done"] == 3

    store.add_chunks(job, {"s0": rows})  # as if the lost-message sweep had sent it again
    second = run_chunk(job, rows, "s0", final_try=False, broker=ledger_url)
    assert second.counts == {"finished": 3}
    assert counts(store, job) == {"done": 3, "failed": 0, "skipped": 0, "retrying": 0}
    assert store.chunk_rows(job, "s0") is None


def test_only_a_clean_first_delivery_runs_batched(store):
    job = new_job(store, {"s0": [row("a.jpg")], "s1": [row("b.jpg")]})
    assert store.begin_chunk(job, "s0", ["a.jpg"]).first
    again = store.begin_chunk(job, "s0", ["a.jpg"])
    assert (again.deliveries, again.first) == (2, False)
    store.begin(job, "b.jpg")  # a careful delivery began this image and never reported
    other = store.begin_chunk(job, "s1", ["b.jpg"])
    assert (other.deliveries, other.unfinished, other.first) == (1, 1, False)
