"""The job ledger (``worker.jobs``) against a real redis-server: every transition is one Lua
script, so these tests drive the scripts through JobStore and read the keys back."""

import json
import re
from importlib import resources

import pytest
import redis

from pipeline.discover import InputItem
from pipeline.job import Status, new_job_id
from pipeline.params import QuantizeParams
from worker.jobs import (
    ACTIVE_JOBS,
    JOBS_INDEX,
    MAX_UNFINISHED_DELIVERIES,
    JobSettings,
    JobStore,
    item_row,
    job_keys,
    unreachable_message,
)
from worker.settings import SUBMIT_LEASE_S

#: Retention of the jobs made here, in seconds (long: nothing may expire during a test).
RETENTION_S = 3600

LUA_FILES = (
    "begin_item.lua",
    "record_item.lua",
    "begin_chunk.lua",
    "record_chunk.lua",
    "seal_job.lua",
    "retry_failed.lua",
)


@pytest.fixture
def store(ledger_url) -> JobStore:
    return JobStore(ledger_url, RETENTION_S)


def new_job(store: JobStore, sources: list[str], *, seal: bool = True) -> str:
    """A job of ``sources`` as the submitter makes it: created, counted with one chunk, sealed."""
    job = new_job_id()
    store.create(job, "/out", QuantizeParams(k=8), overwrite=False)
    rows = [item_row(0, InputItem("/in", name, name, f"{name}.png")) for name in sources]
    store.add_items(job, len(sources), {"s0": rows}, ["/in"])
    if seal:
        store.seal(job, ignored=1)
    return job


def counts(store: JobStore, job: str) -> dict:
    meta = store.meta(job)
    return {name: int(meta[name]) for name in ("total", "done", "failed", "skipped", "retrying")}


def test_a_submit_counts_then_seals_and_only_then_lives_for_the_retention(store):
    job = new_job(store, ["a.jpg", "b.jpg"], seal=False)
    keys = job_keys(job)
    assert 0 < store.redis.ttl(keys["meta"]) <= SUBMIT_LEASE_S
    assert "enqueued" not in store.meta(job) and job not in store.redis.smembers(ACTIVE_JOBS)
    store.seal(job, ignored=1)
    meta = store.meta(job)
    assert (meta["enqueued"], meta["ignored"], meta["total"]) == ("1", "1", "2")
    assert store.redis.ttl(keys["meta"]) > SUBMIT_LEASE_S
    assert job in store.redis.smembers(ACTIVE_JOBS)
    assert job in store.redis.zrange(JOBS_INDEX, 0, -1)


def test_settings_come_back_from_the_record(store):
    job = new_job(store, ["a.jpg"])
    settings = store.settings(job)
    assert settings == JobSettings(job, "/out", QuantizeParams(k=8), ("/in",), False)
    assert settings.item([0, "a.jpg", "a.jpg", "a.jpg.png"]).path.as_posix() == "/in/a.jpg"
    with pytest.raises(ValueError, match="input root"):
        settings.item([1, "a.jpg", "a.jpg", "a.jpg.png"])
    with pytest.raises(ValueError, match="malformed"):
        settings.item([0, None, "a.jpg", "a.jpg.png"])
    assert store.settings("nosuchjob") is None


def test_begin_says_whether_to_go_on(store):
    job = new_job(store, ["a.jpg", "b.jpg"])
    assert store.begin("nosuchjob", "a.jpg") == "unknown"
    assert store.begin(job, "a.jpg") == "go"
    assert "started_at" in store.meta(job)
    store.record(job, "a.jpg", Status.DONE)
    assert store.begin(job, "a.jpg") == "finished"
    store.cancel(job)
    assert store.begin(job, "b.jpg") == "cancelled"


def test_an_image_that_keeps_killing_its_worker_becomes_poison(store):
    job = new_job(store, ["bomb.jpg"])
    verdicts = [store.begin(job, "bomb.jpg") for _ in range(MAX_UNFINISHED_DELIVERIES + 1)]
    assert verdicts == ["go"] * MAX_UNFINISHED_DELIVERIES + ["poison"]


def test_an_item_is_counted_once_however_often_it_is_reported(store):
    job = new_job(store, ["a.jpg", "b.jpg", "c.jpg"])
    assert store.record(job, "a.jpg", Status.DONE) == "counted"
    assert store.record(job, "a.jpg", Status.DONE) == "duplicate"
    assert store.record(job, "a.jpg", Status.FAILED, "late copy failed") == "duplicate"
    assert store.record(job, "b.jpg", Status.SKIPPED) == "counted"
    assert store.record("nosuchjob", "a.jpg", Status.DONE) == "unknown"
    assert counts(store, job) == {"total": 3, "done": 1, "failed": 0, "skipped": 1, "retrying": 0}
    assert "finished_at" not in store.meta(job)


def test_a_failure_keeps_its_reason_and_its_row_and_the_newest_reason_wins(store):
    job = new_job(store, ["a.jpg"])
    row = [0, "a.jpg", "a.jpg", "a.jpg.png"]
    store.record(job, "a.jpg", Status.FAILED, "cannot decode", row)
    store.record(job, "a.jpg", Status.FAILED, "cannot decode either", row)
    assert store.failures(job) == [{"path": "a.jpg", "error": "cannot decode either"}]
    record = json.loads(store.redis.hget(job_keys(job)["failures"], "a.jpg"))
    assert record["item"] == row
    assert counts(store, job)["failed"] == 1


def test_the_job_finishes_when_every_item_is_final_and_the_submit_sealed(store):
    job = new_job(store, ["a.jpg", "b.jpg"], seal=False)
    store.record(job, "a.jpg", Status.DONE)
    store.record(job, "b.jpg", Status.FAILED, "broken")
    assert "finished_at" not in store.meta(job)  # the submit may still add items
    store.seal(job, ignored=0)
    assert "finished_at" in store.meta(job)


def test_retry_takes_the_failures_back_and_they_move_to_their_new_status(store):
    job = new_job(store, ["a.jpg", "b.jpg"])
    row = [0, "b.jpg", "b.jpg", "b.jpg.png"]
    store.record(job, "a.jpg", Status.DONE)
    store.record(job, "b.jpg", Status.FAILED, "disk full", row)
    assert "finished_at" in store.meta(job)
    taken = store.take_failed_for_retry(job)
    assert taken == [{"path": "b.jpg", "error": "disk full", "item": row}]
    assert counts(store, job) == {"total": 2, "done": 1, "failed": 0, "skipped": 0, "retrying": 1}
    assert "finished_at" not in store.meta(job) and store.failures(job) == []
    assert store.begin(job, "b.jpg") == "go"  # a retrying item is not finished
    assert store.record(job, "b.jpg", Status.DONE) == "counted"
    assert counts(store, job) == {"total": 2, "done": 2, "failed": 0, "skipped": 0, "retrying": 0}
    assert "finished_at" in store.meta(job)
    assert store.take_failed_for_retry("nosuchjob") is None


def test_retry_of_a_job_with_no_failures_takes_nothing_and_changes_nothing(store):
    job = new_job(store, ["a.jpg"])
    store.record(job, "a.jpg", Status.DONE)
    before = store.meta(job)
    assert store.take_failed_for_retry(job) == []
    assert store.meta(job) == before


def test_a_file_name_that_is_not_utf8_keeps_its_bytes_through_the_ledger(store):
    """``caf\\xe9.jpg`` decodes to a lone surrogate: ledger fields, chunk rows and failure
    records hold its exact bytes and give back the same str."""
    name = "caf\udce9.jpg"
    job = new_job(store, [name])
    assert store.chunk_rows(job, "s0") == [[0, name, name, f"{name}.png"]]
    assert store.begin(job, name) == "go"
    store.record(job, name, Status.FAILED, f"cannot decode {name}", [0, name, name, "x.png"])
    assert store.failures(job) == [{"path": name, "error": f"cannot decode {name}"}]
    as_bytes = redis.Redis.from_url(store.url)  # the same database, read as bytes
    assert as_bytes.hkeys(job_keys(job)["items"]) == [b"caf\xe9.jpg"]
    assert store.take_failed_for_retry(job)[0]["item"] == [0, name, name, "x.png"]


def test_the_chunk_ledger_holds_what_is_not_finished(store):
    job = new_job(store, ["a.jpg"])
    store.add_chunks(job, {"r1": [[0, "b.jpg", "b.jpg", "b.jpg.png"]]})
    assert set(store.pending_chunks(job)) == {"s0", "r1"}
    assert store.chunk_rows(job, "s0") == [[0, "a.jpg", "a.jpg", "a.jpg.png"]]
    store.chunk_done(job, "s0")
    assert store.chunk_rows(job, "s0") is None
    assert set(store.pending_chunks(job)) == {"r1"}


def test_an_abandoned_submit_leaves_nothing(store):
    job = new_job(store, ["a.jpg"], seal=False)
    store.abandon(job)
    assert store.meta(job) is None
    assert not any(store.redis.exists(key) for key in job_keys(job).values())
    assert job not in store.redis.zrange(JOBS_INDEX, 0, -1)


def test_recent_jobs_lists_newest_first_and_forgets_expired_ones(store):
    first, second = new_job(store, ["a.jpg"]), new_job(store, ["a.jpg"])
    store.redis.delete(job_keys(first)["meta"])  # as if its retention ran out
    assert [meta["job"] for meta in store.recent_jobs(10)] == [second]
    assert store.redis.zrange(JOBS_INDEX, 0, -1) == [second]


def test_every_key_of_a_job_expires(store):
    job = new_job(store, ["a.jpg"])
    store.record(job, "a.jpg", Status.FAILED, "broken", [0, "a.jpg", "a.jpg", "a.jpg.png"])
    for name, key in job_keys(job).items():
        if store.redis.exists(key):
            assert 0 < store.redis.ttl(key) <= RETENTION_S, name


def test_the_status_values_are_the_ledger_field_names(store):
    job = new_job(store, ["a.jpg"])
    store.record(job, "a.jpg", Status.SKIPPED)
    assert store.redis.hget(job_keys(job)["items"], "a.jpg") == "skipped"
    assert set(store.meta(job)) >= {status.value for status in Status}


@pytest.mark.parametrize("name", LUA_FILES)
def test_each_lua_script_documents_every_key_and_argument_it_uses(name):
    text = resources.files("worker").joinpath(name).read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("--"))
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("--"))
    used = set(re.findall(r"(KEYS|ARGV)\[(\d)\]", body))
    documented = set(re.findall(r"(KEYS|ARGV)\[(\d)\]", header))
    documented |= {("KEYS", str(n)) for n in range(1, 6) if "KEYS[1..5]" in header}
    assert used and used <= documented, sorted(used - documented)
    assert "Returns" in header


def test_an_unreachable_broker_message_never_shows_the_password():
    message = unreachable_message(
        "redis://:s3cr%21t@10.0.0.1:6379/0", OSError("auth s3cr!t refused")
    )
    assert "s3cr" not in message and "***" in message
    assert message.startswith("cannot reach the broker at redis://:***@10.0.0.1:6379/0")
