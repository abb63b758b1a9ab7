"""Palette files, formats and exports through ``submit`` on the real workers."""

import json

import numpy as np
import pytest

from harness.cluster import QUEUE
from harness.processes import wait_for
from pipeline.palette_files import export_bytes
from tests.photo_sets import (
    TINY_SIZES,
    check_shared_outputs,
    expected_shared_palette,
    output_colors,
    small_photo_folder,
)

pytestmark = [pytest.mark.integration]

BRAND = np.array([[250, 250, 245], [15, 15, 20], [190, 40, 40], [40, 80, 170], [100, 150, 70]])


@pytest.mark.slow  # a job on the session's two real workers
def test_submit_applies_a_palette_file_in_webp_with_exports(cluster, tmp_path):
    photos = small_photo_folder(tmp_path / "in", 12, seed=5)
    brand = tmp_path / "brand.ase"
    brand.write_bytes(export_bytes("ase", BRAND.astype(np.uint8), "brand"))
    out = tmp_path / "out"
    receipt = json.loads(
        cluster.cli(
            "submit", photos, "-o", out, "--palette", brand, "--format", "webp",
            "--export", "gpl,css", "--json", check=True,
        ).stdout
    )  # fmt: skip
    final = cluster.wait_until_final(receipt["job"])
    assert final["done"] == 12 and final["failed"] == 0
    allowed = {tuple(row) for row in BRAND.tolist()}
    documents = list(out.rglob("*.palette.json"))
    assert len(documents) == 12
    for path in documents:
        document = json.loads(path.read_text())
        assert document["format"] == "webp" and document["timings_ms"]["fit"] == 0
        assert output_colors(out / document["output"]) <= allowed
        assert path.with_name(path.name.replace(".palette.json", ".gpl")).is_file()
        assert path.with_name(path.name.replace(".palette.json", ".css")).is_file()


#: Palette size of the shared-palette job; small, so the test's own fit is quick.
SHARED_K = 16


@pytest.fixture(scope="module")
def shared_photos(tmp_path_factory):
    """200 tiny photos in three subfolders, and one file that is not the JPEG it claims."""
    folder = small_photo_folder(
        tmp_path_factory.mktemp("shared") / "in", 200, seed=9, sizes=TINY_SIZES
    )
    (folder / "set1" / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


@pytest.mark.slow  # 200 photos through run and through submit on the session's two workers
def test_shared_palette_on_workers_equals_run_and_the_fit_of_merged_counts(
    cluster, shared_photos, tmp_path
):
    expected = expected_shared_palette(shared_photos, SHARED_K)  # *.png only: broken.jpg out
    ran = cluster.cli(
        "run", shared_photos, "-o", tmp_path / "ran", "-k", SHARED_K, "--palette", "shared",
        "-j", "2", "--json",
    )  # fmt: skip
    assert ran.returncode == 1 and json.loads(ran.stdout)["failed"] == 1, ran.stderr
    out = tmp_path / "submitted"
    receipt = json.loads(
        cluster.cli(
            "submit", shared_photos, "-o", out, "-k", SHARED_K, "--palette", "shared", "--json",
            check=True,
        ).stdout
    )  # fmt: skip
    final = cluster.wait_until_final(receipt["job"])
    counts = {key: final[key] for key in ("state", "phase", "counted", "total", "done", "failed")}
    assert counts == {
        "state": "done", "phase": "label", "counted": 200, "total": 201, "done": 200, "failed": 1,
    }  # fmt: skip
    assert [failure["path"] for failure in final["failures"]] == ["set1/broken.jpg"]
    check_shared_outputs(tmp_path / "ran", expected, 200)
    check_shared_outputs(out, expected, 200)
    shared = [json.loads((path / "palette.json").read_text()) for path in (tmp_path / "ran", out)]
    assert shared[0]["colors"] == shared[1]["colors"] and shared[1]["images"] == 200
    shown = cluster.cli("status", receipt["job"], check=True).stdout
    assert any(line.split() == ["phase", "label"] for line in shown.splitlines()), shown
    # The count phase's failure is retried in the label phase: it fails again, counted once.
    cluster.cli("retry", receipt["job"], check=True)
    again = cluster.wait_until_final(receipt["job"])
    assert (again["done"], again["failed"], again["total"]) == (200, 1, 201)


@pytest.mark.slow  # waits for the workers' lost-message sweep (a few seconds)
def test_shared_palette_jobs_whose_count_or_fit_messages_were_lost_still_finish(cluster, tmp_path):
    """Redis lost the messages of a phase (a restart from an AOF that kept the pops but not the
    unacked copies): the sweep re-sends what the phase waits for, the count chunks of one job
    and the fit of another, and both end exact with the palette of their merged counts. A third
    job, cancelled while it counts, counts nothing more and never fits."""
    from worker.app import make_app
    from worker.phase_store import PhaseStore
    from worker.phases import run_count_chunk, store

    photos = small_photo_folder(tmp_path / "in", 12, seed=4, sizes=TINY_SIZES)
    expected = expected_shared_palette(photos, SHARED_K)
    outs = {phase: tmp_path / phase for phase in ("count", "fit")}
    with cluster.consumers_paused():
        jobs = {
            phase: json.loads(
                cluster.cli(
                    "submit", photos, "-o", out, "-k", SHARED_K, "--palette", "shared", "--json",
                    check=True,
                ).stdout
            )["job"]
            for phase, out in outs.items()
        }  # fmt: skip
        # The second job counts here, in this process, up to its fit, whose message goes out.
        app, phases = make_app(cluster.redis.url), PhaseStore(store(cluster.redis.url))
        for chunk in sorted(phases.pending_counts(jobs["fit"])):
            run_count_chunk(jobs["fit"], chunk, broker=cluster.redis.url, app=app)
        assert cluster.status(jobs["fit"])["phase"] == "fit"
        assert cluster.status(jobs["count"])["phase"] == "count"
        cluster.redis.client().delete(QUEUE)  # every queued message of both jobs is lost
        cancelled = json.loads(
            cluster.cli(
                "submit", photos, "-o", tmp_path / "cancelled", "--palette", "shared", "--json",
                check=True,
            ).stdout
        )["job"]  # fmt: skip
        cluster.cli("cancel", cancelled, check=True)
    for phase, job in jobs.items():
        final = cluster.wait_until_final(job)
        assert (final["state"], final["phase"], final["done"]) == ("done", "label", 12), phase
        check_shared_outputs(outs[phase], expected, 12)
    log = "".join(worker.log() for worker in cluster.workers)
    assert log.count("no message left in the broker") >= 2
    wait_for(cluster.queue_drained, "the cancelled job's count messages to be dropped", 30)
    dropped = cluster.status(cancelled)
    assert (dropped["state"], dropped["phase"], dropped["counted"]) == ("cancelled", "count", 0)
    assert dropped["cancelled"] == 12 and not (tmp_path / "cancelled" / "palette.json").exists()


@pytest.mark.slow  # a job on the session's two real workers
def test_a_shared_palette_job_whose_counts_files_were_damaged_before_the_fit_recounts_them(
    cluster, tmp_path
):
    """One count chunk's file is truncated and another's deleted under OUT before the fit reads
    them: the fit puts those chunks back on the count ledger and sends them again (retrying
    could never read them), and the job ends exact, with the palette of its merged counts."""
    from pipeline.chunk_counts import COUNTS_DIR, merged_counts_path, read_chunk_counts
    from worker.app import make_app
    from worker.phase_store import PhaseStore
    from worker.phases import run_count_chunk, store

    photos = small_photo_folder(tmp_path / "in", 12, seed=6, sizes=TINY_SIZES)
    out = tmp_path / "out"
    with cluster.consumers_paused():
        job = json.loads(
            cluster.cli(
                "submit", photos, "-o", out, "-k", SHARED_K, "--palette", "shared", "--json",
                check=True,
            ).stdout
        )["job"]  # fmt: skip
        app, phases = make_app(cluster.redis.url), PhaseStore(store(cluster.redis.url))
        chunks = sorted(phases.pending_counts(job))
        assert len(chunks) >= 2
        cluster.redis.client().delete(QUEUE)  # counted here instead, up to the fit's message
        for chunk in chunks:
            run_count_chunk(job, chunk, broker=cluster.redis.url, app=app)
        assert cluster.status(job)["phase"] == "fit"
        files = out / ".colorquant" / job / COUNTS_DIR
        damaged = files / f"{chunks[0]}.npz"
        damaged.write_bytes(damaged.read_bytes()[:40])
        (files / f"{chunks[-1]}.npz").unlink()
    final = cluster.wait_until_final(job)
    counts = {key: final[key] for key in ("state", "phase", "counted", "done", "failed")}
    assert counts == {"state": "done", "phase": "label", "counted": 12, "done": 12, "failed": 0}
    check_shared_outputs(out, expected_shared_palette(photos, SHARED_K), 12)
    kept, rows = read_chunk_counts(merged_counts_path(out, job))
    assert kept.images == 12 and len(rows) == 12 and not files.exists()
    log = "".join(worker.log() for worker in cluster.workers)
    assert f"job {job}: the counts of 2 chunk(s) were missing or unreadable" in log
