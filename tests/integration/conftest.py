"""Real parts for the distributed tests, from the shared harness: a redis-server on a free
loopback port and real ``colorquant worker`` processes. No fakes, no eager mode.

One redis-server and one pair of workers serve the whole session, because a worker takes a few
seconds to start (each pool process loads the quantizer's compiled loops). Every test uses its
own job and folders, so they do not interfere.
"""

import shutil
from pathlib import Path

import pytest

from harness.cluster import Cluster
from harness.images import sample_photo_path, write_generated_images
from harness.workers import WorkerProcess

#: COLORQUANT_VISIBILITY_TIMEOUT of the session's workers: far above any chunk's run time here,
#: and short, so the lost-message sweep acts within seconds (it runs every timeout / 4).
VISIBILITY_TIMEOUT_S = 10


@pytest.fixture(scope="session")
def redis_server(session_redis):
    return session_redis


@pytest.fixture(scope="session")
def cluster(redis_server, tmp_path_factory) -> Cluster:
    """Two ``colorquant worker -c 1`` processes, both ready (pool processes warmed up)."""
    cluster = Cluster(redis_server)
    logs = tmp_path_factory.mktemp("workers")
    env = {"COLORQUANT_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S)}
    try:
        for index in range(2):
            worker = WorkerProcess(redis_server.url, logs / f"w{index}.log", 1, env)
            cluster.workers.append(worker.start())
        for worker in cluster.workers:
            worker.wait_ready()
        yield cluster
    finally:
        for worker in cluster.workers:
            worker.reap(graceful=True, timeout=15)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """scikit-learn's two photos, generated images in a subfolder, and a non-image file."""
    folder = tmp_path_factory.mktemp("photos") / "in"
    (folder / "sample").mkdir(parents=True)
    for name in ("china.jpg", "flower.jpg"):
        shutil.copy(sample_photo_path(name), folder / "sample" / name)
    write_generated_images(folder / "generated", 16)
    (folder / "notes.txt").write_text("not an image; ignored, not failed\n")
    return folder
