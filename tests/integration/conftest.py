"""Real parts for the distributed tests: a redis-server on a free loopback port and real
``colorquant worker`` processes. No fakes, no eager mode.

One redis-server and one pair of workers serve the whole session, because a worker takes a few
seconds to start (each pool process imports scikit-learn). Every test uses its own job and
folders, so they do not interfere.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import redis
from distributed_helpers import (
    READY_LINE,
    VISIBILITY_TIMEOUT_S,
    Cluster,
    RedisServer,
    free_port,
    sample_photo,
    start_worker,
    stop_process_group,
    wait_for,
    write_generated_images,
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--maxmemory-policy",
            "noeviction",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = RedisServer(port, process)
    client = server.client()

    def answers():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(answers, "redis-server to answer", timeout=20)
        yield server
    finally:
        stop_process_group(process, grace_s=5)


@pytest.fixture(scope="session")
def cluster(redis_server, tmp_path_factory) -> Cluster:
    """Two ``colorquant worker -c 1`` processes, both ready (pool processes warmed up)."""
    cluster = Cluster(redis_server)
    logs = tmp_path_factory.mktemp("workers")
    env = {key: value for key, value in cluster.env.items() if key != "COLORQUANT_BROKER_URL"}
    # Short, so the lost-message sweep acts within seconds (it runs every timeout / 4).
    env["COLORQUANT_VISIBILITY_TIMEOUT"] = str(VISIBILITY_TIMEOUT_S)
    try:
        for index in range(2):
            cluster.workers.append(start_worker(redis_server.url, logs / f"w{index}.log", env))
        for worker in cluster.workers:
            match = wait_for(lambda w=worker: READY_LINE.search(w.log.read_text()), "worker ready")
            worker.node = match.group(1)
        yield cluster
    finally:
        for worker in cluster.workers:
            stop_process_group(worker.process)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """scikit-learn's two photos, generated images in a subfolder, and a non-image file."""
    folder = tmp_path_factory.mktemp("photos") / "in"
    (folder / "sample").mkdir(parents=True)
    for name in ("china.jpg", "flower.jpg"):
        shutil.copy(sample_photo(name), folder / "sample" / name)
    write_generated_images(folder / "generated", 16)
    (folder / "notes.txt").write_text("not an image; ignored, not failed\n")
    return folder
