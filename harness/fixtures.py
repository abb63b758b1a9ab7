"""pytest fixtures of the harness: redis-servers and workers stopped at teardown.

A conftest imports the ones it needs. Under CI (``CI`` set) a missing redis-server fails the
test instead of skipping it: the CI machine is set up to run everything.
"""

import os
from pathlib import Path

import pytest

from harness.redis_server import RedisServer, ToolMissing, redis_server_binary
from harness.workers import WorkerProcess


def skip_or_fail(reason: str) -> None:
    """Skip a test that lacks a tool or a privilege; under CI fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set: this test must run there")
    pytest.skip(reason)


def new_redis_server(directory: Path, **options) -> RedisServer:
    """A RedisServer, not started yet; skips (fails under CI) without redis-server."""
    try:
        return RedisServer(directory, **options)
    except ToolMissing as missing:
        skip_or_fail(str(missing))


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory):
    """One redis-server without AOF for the whole session: for the distributed tests' workers,
    and for tests that only need Redis (each on a database of its own)."""
    server = new_redis_server(tmp_path_factory.mktemp("redis"), appendonly=False)
    try:
        yield server.start(timeout=20)
    finally:
        server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path):
    """Start redis-servers (each in its own data dir, AOF on); all are stopped at teardown."""
    servers: list[RedisServer] = []

    def start(name: str = "redis", **options) -> RedisServer:
        server = new_redis_server(tmp_path / name, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(redis_factory) -> RedisServer:
    return redis_factory()


@pytest.fixture
def worker_env() -> dict:
    """Settings added to every worker's clean environment; a conftest may override it."""
    return {}


@pytest.fixture
def worker_factory(tmp_path: Path, worker_env: dict):
    """Start ``colorquant worker`` processes; every one (and its pool) is gone at teardown."""
    workers: list[WorkerProcess] = []

    def start(broker: str, concurrency: int = 2, env: dict | None = None, wait: bool = True):
        log_path = tmp_path / f"worker-{len(workers)}.log"
        settings = {**worker_env, **(env or {})}
        worker = WorkerProcess(broker, log_path, concurrency, settings).start()
        workers.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in workers:
        worker.reap()


def require_redis_server() -> str:
    """The redis-server binary; skips the test without it (fails under CI)."""
    try:
        return redis_server_binary()
    except ToolMissing as missing:
        skip_or_fail(str(missing))
