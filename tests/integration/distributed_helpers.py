"""Helpers of the distributed tests: real processes started, waited for and stopped."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import redis
from PIL import Image

#: Longest a test waits for a job or a process, in seconds. Generous: CI machines are slow.
PATIENCE_S = 180

#: COLORQUANT_VISIBILITY_TIMEOUT of the session's workers: far above any chunk's run time here.
VISIBILITY_TIMEOUT_S = 10

READY_LINE = re.compile(r"(colorquant-[0-9a-f]+@\S+) ready\.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what: str, timeout: float = PATIENCE_S, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_process_group(process: subprocess.Popen, grace_s: float = 15) -> None:
    """SIGTERM (a warm shutdown), then SIGKILL the group this fixture started."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True)


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path
    node: str = ""

    def pool_pids(self) -> set[int]:
        return {pid for pid in all_pids() if parent_pid(pid) == self.process.pid}


@dataclass
class Cluster:
    """The session's redis-server and workers, and a way to run the CLI against them."""

    redis: RedisServer
    workers: list[Worker] = field(default_factory=list)

    @property
    def env(self) -> dict:
        return {**os.environ, "COLORQUANT_BROKER_URL": self.redis.url, "PYTHONUNBUFFERED": "1"}

    def cli(self, *args, check: bool = False) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *map(str, args)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=PATIENCE_S,
            cwd=Path(__file__).parents[2],
        )
        if check and done.returncode != 0:
            raise AssertionError(f"colorquant {args} exited {done.returncode}: {done.stderr}")
        return done

    def status(self, job: str) -> dict:
        return json.loads(self.cli("status", job, "--json", check=True).stdout)

    def wait_until_final(self, job: str) -> dict:
        return wait_for(
            lambda: (doc := self.status(job))["state"] in ("done", "cancelled") and doc,
            f"job {job} to end",
            poll=0.3,
        )

    def queue_drained(self) -> bool:
        client = self.redis.client()
        return client.llen("colorquant") == 0 and client.hlen("unacked") == 0


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def start_worker(redis_url: str, log: Path, env: dict) -> Worker:
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "-c", "1", "--broker", redis_url],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        cwd=Path(__file__).parents[2],
    )
    return Worker(process, log)


# --- images ----------------------------------------------------------------------------------


def sample_photo(name: str) -> Path:
    from sklearn.datasets import __file__ as datasets_init

    return Path(datasets_init).parent / "images" / name


def write_generated_images(folder: Path, count: int, size=(96, 128), seed: int = 0) -> list[Path]:
    """Smooth gradients with noise: photo-like enough to quantize, quick to make."""
    rng = np.random.default_rng(seed)
    height, width = size
    rows, cols = np.mgrid[0:height, 0:width]
    paths = []
    for index in range(count):
        phase = rng.random(3) * 6
        image = np.stack(
            [np.sin(rows / (9 + c * 4) + cols / (13 + index) + phase[c]) for c in range(3)], -1
        )
        image = (image + 1) * 110 + rng.normal(0, 12, image.shape)
        path = folder / f"gen-{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths
