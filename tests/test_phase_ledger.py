"""The phases of a shared-palette job on a real redis-server, run in this process: a count
chunk counted once however often it is delivered, a bad image failed once, an image that kills
its deliveries failed as poison, one switch to fit, and a fit whose repeat changes nothing."""

import itertools
import json

import pytest

from harness.images import write_generated_images
from pipeline.chunk_counts import counts_path, merged_counts_path, read_chunk_counts
from pipeline.params import QuantizeParams
from pipeline.settings import SHARED
from worker.app import make_app
from worker.execute import POISON_REASON
from worker.jobs import JobStore
from worker.phase_store import PhaseStore
from worker.phases import run_count_chunk, run_fit

_jobs = (f"phased{number}" for number in itertools.count())


@pytest.fixture
def store(ledger_url) -> JobStore:
    return JobStore(ledger_url, retention_s=600)


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "in"
    names = [path.name for path in write_generated_images(folder, 5, size=(24, 32))]
    (folder / "broken.png").write_bytes(b"not a PNG")
    return folder, [*names, "broken.png"]


def rows_of(names: list[str]) -> list[list]:
    return [[0, name, name, name.rsplit(".", 1)[0] + ".png"] for name in names]


def new_job(store: JobStore, folder, out, chunks: dict[str, list]) -> str:
    job = next(_jobs)
    store.create(job, str(out), QuantizeParams(k=4, palette=SHARED), overwrite=False)
    store.add_items(job, sum(map(len, chunks.values())), {}, [str(folder)])
    PhaseStore(store).add_count_chunks(job, chunks)
    store.seal(job, ignored=0)
    return job


def test_counts_once_fails_bad_and_killer_images_once_and_fits_once(store, photos, tmp_path):
    folder, names = photos
    url, out, app = store.url, tmp_path / "out", make_app(store.url)
    chunks = {"s0": rows_of(names[:3]), "s1": rows_of(names[3:])}  # s1 holds broken.png
    job = new_job(store, folder, out, chunks)
    phases = PhaseStore(store)
    assert not phases.count_phase_over(job)  # chunks are left: no switch

    first = run_count_chunk(job, "s0", broker=url, app=app)
    written = counts_path(out, job, "s0").read_bytes()
    assert first == {"counted": 3, "failed": 0}
    assert run_count_chunk(job, "s0", broker=url, app=app) == {"finished": 1}  # redelivered
    assert counts_path(out, job, "s0").read_bytes() == written

    # s1's first (batched) delivery died, then two careful ones died on its first image.
    killer = names[3]
    for _ in range(3):
        phases.begin_count(job, "s1")
    for _ in range(2):
        assert store.begin(job, killer, earlier_deaths=1) == "go"
    assert run_count_chunk(job, "s1", broker=url, app=app) == {"counted": 1, "failed": 2}
    failures = {failure["path"]: failure["error"] for failure in store.failures(job)}
    assert failures[killer] == POISON_REASON and set(failures) == {killer, "broken.png"}
    meta = store.meta(job)
    assert (meta["phase"], meta["counted"], meta["failed"]) == ("fit", "4", "2")
    assert not phases.count_phase_over(job)  # switched once, by the last chunk

    assert run_fit(job, broker=url) == {"fitted": 4, "label_chunks": 2}
    # The chunk files give way to one file of the merged counts, with every counted image.
    assert not counts_path(out, job, "s0").parent.exists()
    kept, kept_rows = read_chunk_counts(merged_counts_path(out, job))
    assert kept.images == 4 and kept_rows == chunks["s0"] + rows_of(names[4:5])
    palette = json.loads((out / "palette.json").read_text())
    assert palette["images"] == 4 and len(palette["colors"]) == 4
    assert phases.shared_colors(job) == [entry["rgb"] for entry in palette["colors"]]
    labels = store.pending_chunks(job)
    assert labels == {"Ls0": chunks["s0"], "Ls1": rows_of(names[4:5])}  # no failed image
    assert run_fit(job, broker=url) == {"skipped": "label"}  # a repeat changes nothing
    assert store.pending_chunks(job) == labels


def test_a_job_none_of_whose_images_could_be_read_ends_without_a_palette(store, photos, tmp_path):
    from worker.client import retry, status

    folder, _ = photos
    url, out, app = store.url, tmp_path / "out", make_app(store.url)
    job = new_job(store, folder, out, {"s0": rows_of(["broken.png"])})
    assert run_count_chunk(job, "s0", broker=url, app=app) == {"counted": 0, "failed": 1}
    assert run_fit(job, broker=url) == {"fitted": 0, "label_chunks": 0}
    final = status(job, url)
    assert (final["state"], final["phase"], final["failed"]) == ("done", "label", 1)
    assert not (out / "palette.json").exists()
    with pytest.raises(ValueError, match="no shared palette"):
        retry(job, url)
    assert status(job, url)["failed"] == 1  # nothing was taken for a retry
