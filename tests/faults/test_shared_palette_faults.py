"""A shared-palette job (count → fit → label) losing a whole worker and then its redis-server
(killed and started again from its AOF) while it counts, and another whole worker while it
labels: it still ends exact, with the palette a fit of the merged counts gives.

One job takes all three faults, so the test pays for one redis-server and three worker start-ups.
"""

import json
import signal

import pytest

from tests.faults.faultkit import (
    QUEUE,
    TEMP_MARKER,
    VISIBILITY_TIMEOUT_S,
    cli,
    job_status,
    output_files,
    submit,
    wait_for,
    wait_until_done,
)
from tests.photo_sets import check_shared_outputs, small_photo_folder

pytestmark = [pytest.mark.slow, pytest.mark.integration]

#: Photos of the job, and their widths and heights: enough pixels (about 19 MP) that its label
#: phase lasts a second or more on two processes, so the test sees it under way and kills the
#: labeller there.
IMAGES, SIZES = 200, ((300, 421), (220, 301))

#: Palette size: small, so the test's own fit is quick.
K = 16


def merged_counts_of(folder):
    """The merged colour counts of every photo, counted here, image by image."""
    from pipeline.counts import count_colors, merge_counts
    from pipeline.load import load_image

    return merge_counts(
        count_colors(load_image(path, folder).image) for path in sorted(folder.rglob("*.png"))
    )


def stored_counts(out, job):
    """The merged counts the job's fit kept (OUT/.colorquant/JOB/merged-counts.npz) and the
    rows of the images in them; the chunk files they were merged from must be gone."""
    from pipeline.chunk_counts import COUNTS_DIR, merged_counts_path, read_chunk_counts

    assert not (out / ".colorquant" / job / COUNTS_DIR).exists()
    return read_chunk_counts(merged_counts_path(out, job))


def test_shared_palette_job_survives_a_lost_worker_and_redis_counting_and_a_killed_pool_labelling(
    redis_server, worker_factory, tmp_path
):
    from pipeline.fit import fit_palette

    photos = small_photo_folder(tmp_path / "in", IMAGES, seed=11, sizes=SIZES)
    out, url = tmp_path / "out", redis_server.url
    broker = redis_server.client()
    # Submitted before any worker runs, so every count chunk waits in the queue.
    job = submit(photos, out, url, "-k", str(K), "--palette", "shared")
    doomed = worker_factory(url, concurrency=1, wait=False)

    # The doomed worker holds a count message while more wait: the count phase is under way.
    wait_for(
        lambda: broker.hlen("unacked") >= 1 and broker.llen(QUEUE) > 0,
        "the doomed worker to take a count chunk",
        90,
        poll=0.005,
    )
    doomed.signal_group(signal.SIGKILL)  # the whole machine: main process and pool
    doomed.process.wait(timeout=10)
    at_kill = job_status(job, url)
    assert at_kill["phase"] == "count" and at_kill["counted"] < IMAGES, at_kill
    assert broker.hlen("unacked") >= 1  # the dead worker's message: only a restore brings it
    redis_server.kill()  # a crash: no final fsync, no AOF rewrite
    redis_server.start()
    broker = redis_server.client()
    after_restart = job_status(job, url)
    assert (after_restart["phase"], after_restart["counted"]) == ("count", at_kill["counted"])

    labeller = worker_factory(url, concurrency=2)

    def labelling_held():
        document = job_status(job, url)
        held = broker.hlen("unacked") >= 1
        return document["phase"] == "label" and document["done"] >= 1 and held and document

    # The labeller holds a label chunk while more wait: the label phase is under way. A
    # SIGKILL of the whole worker freezes the job there (no other worker runs), so the check
    # after it sees exactly what the kill left.
    wait_for(labelling_held, "the label phase to get going", 10 * VISIBILITY_TIMEOUT_S + 60, 0.005)
    labeller.signal_group(signal.SIGKILL)
    labeller.process.wait(timeout=10)
    at_label_kill = job_status(job, url)
    assert at_label_kill["phase"] == "label" and at_label_kill["pending"] > 0, at_label_kill
    assert broker.hlen("unacked") >= 1  # the dead labeller's chunk: only a restore brings it
    worker_factory(url, concurrency=2)

    wait_until_done(job, url, timeout=10 * VISIBILITY_TIMEOUT_S + 60)
    shown = cli("status", job, "--broker", url, "--json")  # the user-visible contract
    assert shown.returncode == 0, shown.stderr
    shown = json.loads(shown.stdout)
    counts = {key: shown[key] for key in ("state", "phase", "counted", "total", "done", "failed")}
    assert counts == {
        "state": "done", "phase": "label", "counted": IMAGES, "total": IMAGES, "done": IMAGES,
        "failed": 0,
    }, shown["failures"]  # fmt: skip

    # Exact counts: the kept counts hold every image once, and equal the test's own.
    merged, rows = stored_counts(out, job)
    assert sorted(row[2] for row in rows) == sorted(
        path.relative_to(photos).as_posix() for path in photos.rglob("*.png")
    )
    expected_counts = merged_counts_of(photos)
    assert merged == expected_counts
    check_shared_outputs(out, fit_palette(expected_counts, K, space="oklab", seed=0), IMAGES)
    assert not [name for name in output_files(out) if TEMP_MARKER in name]
