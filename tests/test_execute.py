"""``worker.execute``: what a worker does with one chunk message, without Celery, against a
real redis-server and real images. The task in worker/tasks.py only wraps this."""

import json
from pathlib import Path

import pytest

from harness.images import write_generated_images
from pipeline.discover import InputItem
from pipeline.job import Status, new_job_id
from pipeline.params import QuantizeParams
from worker.execute import POISON_REASON, run_chunk
from worker.jobs import MAX_UNFINISHED_DELIVERIES, JobStore, item_row

IMAGES = 3


@pytest.fixture
def store(ledger_url) -> JobStore:
    return JobStore(ledger_url, 3600)


@pytest.fixture
def job(store, tmp_path) -> tuple[str, list, Path]:
    """A sealed job of IMAGES generated images in one ledger chunk ``s0``: (id, rows, OUT)."""
    root = tmp_path / "in"
    names = [path.name for path in write_generated_images(root, IMAGES)]
    items = [InputItem(str(root), name, name, name.replace(".png", ".q.png")) for name in names]
    rows = [item_row(0, item) for item in items]
    job = new_job_id()
    out = tmp_path / "out"
    store.create(job, str(out), QuantizeParams(k=8), overwrite=False)
    store.add_items(job, len(rows), {"s0": rows}, [str(root)])
    store.seal(job, ignored=0)
    return job, rows, out


def outputs(out: Path) -> list[str]:
    return sorted(path.name for path in out.glob("*.q.png"))


def test_a_chunk_is_quantized_counted_and_struck_off_the_ledger(store, job, ledger_url):
    job_id, rows, out = job
    outcome = run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    assert dict(outcome.counts) == {Status.DONE: IMAGES} and outcome.retry_rows == []
    assert len(outputs(out)) == IMAGES
    meta = store.meta(job_id)
    assert (meta["done"], "finished_at" in meta) == (str(IMAGES), True)
    assert store.chunk_rows(job_id, "s0") is None


def test_a_second_delivery_of_a_finished_chunk_is_refused(store, job, ledger_url):
    job_id, rows, out = job
    run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    again = run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    assert dict(again.counts) == {"refused": IMAGES}
    assert store.meta(job_id)["done"] == str(IMAGES)


def test_a_redelivery_before_the_chunk_was_struck_counts_nothing_twice(store, job, ledger_url):
    job_id, rows, out = job
    # The first delivery counted one image, then its worker died before finishing the chunk.
    store.begin(job_id, rows[0][2])
    store.record(job_id, rows[0][2], Status.DONE)
    outcome = run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    assert dict(outcome.counts) == {"finished": 1, Status.DONE: IMAGES - 1}
    assert store.meta(job_id)["done"] == str(IMAGES)


@pytest.mark.parametrize("chunk", [None, "s9", 7])
def test_rows_in_no_open_chunk_of_the_job_touch_nothing(store, job, ledger_url, chunk):
    job_id, rows, out = job
    outcome = run_chunk(job_id, rows, chunk, final_try=False, broker=ledger_url)
    assert dict(outcome.counts) == {"refused": IMAGES}
    assert outputs(out) == [] and store.meta(job_id)["done"] == "0"


def test_forged_rows_inside_a_real_chunk_id_are_refused(store, job, ledger_url):
    job_id, rows, out = job
    forged = [[0, "../../etc/passwd", "x", "x.png"]]
    outcome = run_chunk(job_id, forged, "s0", final_try=False, broker=ledger_url)
    assert dict(outcome.counts) == {"refused": 1}


@pytest.mark.parametrize(
    ("message_job", "rows", "verdict"),
    [(None, [], "malformed"), ("abc", "not a list", "malformed"), ("nosuchjob", [[0]], "unknown")],
)
def test_malformed_and_unknown_messages_are_dropped(ledger_url, message_job, rows, verdict):
    outcome = run_chunk(message_job, rows, "s0", final_try=False, broker=ledger_url)
    assert set(outcome.counts) == {verdict}


def test_a_cancelled_job_stops_at_its_next_image_and_says_so_once(store, job, ledger_url, caplog):
    job_id, rows, out = job
    caplog.set_level("INFO", logger="worker.execute")
    store.cancel(job_id)
    for _ in range(2):
        outcome = run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
        assert dict(outcome.counts) == {"cancelled": IMAGES}
    assert outputs(out) == []
    said = [record for record in caplog.records if job_id in record.getMessage()]
    assert len(said) == 1 and "cancelled" in said[0].getMessage()


def test_a_failed_image_is_a_warning_naming_job_file_and_reason(store, job, ledger_url, caplog):
    job_id, rows, out = job
    root = Path(store.settings(job_id).roots[0])
    (root / rows[0][1]).write_bytes(b"not an image at all")
    run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (failure,) = store.failures(job_id)
    assert warnings == [f"job {job_id}: {rows[0][2]} failed: {failure['error']}"]


def test_an_image_that_killed_its_worker_too_often_fails_as_poison(store, job, ledger_url):
    job_id, rows, out = job
    poison = rows[0][2]
    for _ in range(MAX_UNFINISHED_DELIVERIES):
        store.begin(job_id, poison)  # deliveries that began and never reported
    outcome = run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    assert dict(outcome.counts) == {Status.FAILED: 1, Status.DONE: IMAGES - 1}
    assert store.failures(job_id) == [{"path": poison, "error": POISON_REASON}]
    assert f"{Path(poison).stem}.q.png" not in outputs(out)


def test_an_image_that_killed_a_batched_delivery_fails_after_the_same_deaths(
    store, job, ledger_url
):
    """The first delivery runs batched and notes no image, so its death is charged to the
    image that dies again: the killer fails after MAX_UNFINISHED_DELIVERIES deaths in all."""
    job_id, rows, out = job
    killer, sources = rows[0][2], [row[2] for row in rows]
    assert store.begin_chunk(job_id, "s0", sources).first  # delivery 1, batched: it dies
    for _ in range(MAX_UNFINISHED_DELIVERIES - 1):  # careful deliveries, each dying on it
        assert not store.begin_chunk(job_id, "s0", sources).first
        assert store.begin(job_id, killer, earlier_deaths=1) == "go"
    outcome = run_chunk(job_id, rows, "s0", final_try=False, broker=ledger_url)
    assert store.failures(job_id) == [{"path": killer, "error": POISON_REASON}]
    assert dict(outcome.counts) == {Status.FAILED: 1, Status.DONE: IMAGES - 1}


def test_a_row_naming_a_root_the_job_lacks_fails_with_a_reason(store, job, ledger_url):
    job_id, rows, out = job
    bad = [5, *rows[0][1:]]
    store.add_chunks(job_id, {"r1": [bad]})
    outcome = run_chunk(job_id, [bad], "r1", final_try=False, broker=ledger_url)
    assert dict(outcome.counts) == {Status.FAILED: 1}
    (failure,) = store.failures(job_id)
    assert "input root" in failure["error"]
    assert (
        json.loads(store.redis.hget(f"colorquant:{{{job_id}}}:failures", rows[0][2]))["item"]
        is None
    )
