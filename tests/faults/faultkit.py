"""Helpers and fixtures for the fault tests: real redis-server, real ``colorquant worker``s.

Independent of tests/integration on purpose, so both can evolve. Nothing here is mocked:
redis-server runs from its binary on a free loopback port (AOF with ``appendfsync everysec``, as
in the compose file) and can be killed and started again on the same port and directory; each
worker is ``colorquant worker`` started as a person would, in its own process group, with its
log captured to a file so tests can read it (and check that no password leaks into it).
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import sample_photo_path

REDIS_SERVER = shutil.which("redis-server")

#: Visibility timeout the workers run with: short, so a lost worker's tasks come back quickly.
VISIBILITY_TIMEOUT_S = 6

#: Images in the standard fault job: enough that it lasts several seconds on 2 cores.
JOB_IMAGES = 72

TEMP_MARKER = ".colorquant-tmp-"

#: The Celery queue (worker/settings.py QUEUE); kombu keeps its messages in a list of that name.
QUEUE = "colorquant"


def require_redis_server() -> str:
    """The redis-server binary; fail under CI (the suite must run there), else skip."""
    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed, and CI is set: the fault tests must run")
        pytest.skip("redis-server is not installed")
    return REDIS_SERVER


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval=0.05):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- redis-server --------------------------------------------------------------------------


class RedisStartError(RuntimeError):
    """redis-server exited while starting; the message carries the end of its log."""


class RedisServer:
    """One redis-server process on a fixed loopback port and data directory, restartable."""

    def __init__(self, directory: Path, *, password: str | None = None, tls: dict | None = None):
        self.binary = require_redis_server()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        self.tls = tls  # {"cert", "key", "ca"} paths: serve TLS only
        self.process: subprocess.Popen | None = None
        self.log_path = self.dir / "redis.log"

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return (
                f"rediss://{auth}127.0.0.1:{self.port}/0"
                f"?ssl_cert_reqs=required&ssl_ca_certs={self.tls['ca']}"
            )
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.tls:
            argv += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls["cert"]),
                "--tls-key-file",
                str(self.tls["key"]),
                "--tls-ca-cert-file",
                str(self.tls["ca"]),
                "--tls-auth-clients",
                "no",
            ]
        else:
            argv += ["--port", str(self.port)]
        return argv

    def start(self, timeout: float = 15) -> "RedisServer":
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = subprocess.Popen(
            self.argv(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers():
            if self.process.poll() is not None:
                raise RedisStartError(f"redis-server exited at start:\n{self.log_tail()}")
            try:
                return self.client(socket_timeout=1).ping()
            except Exception:
                return False

        wait_for(answers, timeout, f"redis-server on port {self.port}")
        # After an AOF restart, wait until the data set is loaded, not just the socket open.
        wait_for(lambda: self.client().info("persistence")["loading"] == 0, timeout, "AOF load")
        return self

    def client(self, **options):
        import redis

        return redis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2, **options
        )

    def kill(self) -> None:
        """SIGKILL, as a crash: no AOF rewrite, no final fsync."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def aof_files(self) -> list[Path]:
        return sorted((self.dir / "appendonlydir").glob("*.incr.aof"))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no redis log)"


@pytest.fixture
def redis_factory(tmp_path: Path):
    """Start redis-servers (each in its own data dir); all are stopped at teardown."""
    servers: list[RedisServer] = []

    def start(name: str = "redis", **options) -> RedisServer:
        server = RedisServer(tmp_path / name, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(redis_factory) -> RedisServer:
    return redis_factory()


# --- colorquant workers --------------------------------------------------------------------


def colorquant_command() -> list[str]:
    """The installed console script (same interpreter), else ``python -m cli``."""
    script = Path(sys.executable).with_name("colorquant")
    if script.exists():
        return [str(script)]
    found = shutil.which("colorquant")
    return [found] if found else [sys.executable, "-m", "cli"]


REPO = Path(__file__).resolve().parents[2]


def cli_env(extra: dict | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("COLORQUANT_")}
    env.update(
        {"PYTHONUNBUFFERED": "1", "COLORQUANT_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S)}
    )
    env.update(extra or {})
    return env


def cli(*args, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``colorquant ARGS`` as a person would; never with COLORQUANT_DEBUG."""
    return subprocess.run(
        [*colorquant_command(), *map(str, args)],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=timeout,
        cwd=REPO,
    )


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux)."""
    kids = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                kids += [int(kid) for kid in handle.read().split()]
        except FileNotFoundError:
            continue
    return sorted(set(kids))


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(fields[11]) + int(fields[12])


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


def is_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


class WorkerProcess:
    """``colorquant worker -c N --broker URL`` in its own process group, log in a file."""

    def __init__(self, broker: str, log_path: Path, concurrency: int, env: dict | None = None):
        self.broker = broker
        self.log_path = log_path
        self.concurrency = concurrency
        self.env = env or {}
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in reap)
        self.process = subprocess.Popen(
            [
                *colorquant_command(),
                "worker",
                "-c",
                str(self.concurrency),
                "--broker",
                self.broker,
                "--loglevel",
                "INFO",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=cli_env(self.env),
            cwd=REPO,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_pids(self) -> list[int]:
        return [pid for pid in children_of(self.pid) if is_alive(pid)]

    def wait_ready(self, timeout: float = 90) -> "WorkerProcess":
        def ready():
            if self.process.poll() is not None:
                pytest.fail(f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return " ready." in self.log() and len(self.pool_pids()) >= self.concurrency

        wait_for(ready, timeout, f"worker {self.pid} to be ready", interval=0.1)
        return self

    def tasks_since_last_connect(self) -> int:
        """Tasks this worker finished since it last (re)connected to the broker."""
        log = self.log()
        since = log.rfind("Connected to ")
        return log[since:].count("] succeeded in ") if since >= 0 else 0

    def busy_pool_pid(self, window: float = 0.15) -> int | None:
        """A pool process that is using CPU right now (so it is running a task), if any."""
        before = {pid: cpu_ticks(pid) for pid in self.pool_pids()}
        time.sleep(window)
        busy = [pid for pid, ticks in before.items() if cpu_ticks(pid) > ticks and is_alive(pid)]
        return busy[0] if busy else None

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def reap(self, graceful: bool = False, timeout: float = 30) -> int | None:
        """Stop the worker and its pool if still running; return its exit code.

        By default SIGKILL to the whole group (teardown needs no warm shutdown, and it is what
        keeps these tests fast); ``graceful`` sends SIGTERM first and waits for it.
        """
        if self.process is None:
            return None
        if graceful and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        if self.process.returncode is None:
            self.signal_group(signal.SIGKILL)  # the unreaped leader keeps the group id ours
        else:
            for pid in group_members(self.pid):  # pool processes that outlived their parent
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        return self.process.returncode


@pytest.fixture
def worker_factory(tmp_path: Path):
    """Start ``colorquant worker`` processes; every one (and its pool) is gone at teardown."""
    workers: list[WorkerProcess] = []

    def start(broker: str, concurrency: int = 2, env: dict | None = None, wait=True):
        log_path = tmp_path / f"worker-{len(workers)}.log"
        worker = WorkerProcess(broker, log_path, concurrency, env).start()
        workers.append(worker)
        return worker.wait_ready() if wait else worker

    yield start
    for worker in workers:
        worker.reap()


# --- photos and jobs -----------------------------------------------------------------------


def make_photos(folder: Path, count: int, seed: int = 0) -> list[str]:
    """``count`` real-photo JPEGs of 0.15–0.5 MP, cut from scikit-learn's two bundled photos
    and scaled, in three sub-folders. Returns their paths relative to ``folder``."""
    rng = random.Random(seed)
    sources = [
        Image.open(sample_photo_path(name)).convert("RGB") for name in ("china.jpg", "flower.jpg")
    ]
    names = []
    for index in range(count):
        source = sources[index % 2]
        width, height = source.size
        crop_w, crop_h = rng.randint(width // 2, width), rng.randint(height // 2, height)
        left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
        scale = rng.uniform(1.0, 1.5)
        image = source.crop((left, top, left + crop_w, top + crop_h)).resize(
            (int(crop_w * scale), int(crop_h * scale))
        )
        rel = f"set{index % 3}/photo{index:03d}.jpg"
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        image.save(folder / rel, quality=85)
        names.append(rel)
    return sorted(names)


@pytest.fixture(scope="session")
def photo_job(tmp_path_factory) -> tuple[Path, list[str]]:
    """A read-only folder of JOB_IMAGES photos shared by the tests, and their relative names."""
    folder = tmp_path_factory.mktemp("fault-photos") / "photos"
    return folder, make_photos(folder, JOB_IMAGES)


def submit(photos: Path, out: Path, broker: str, *extra, env: dict | None = None) -> str:
    """Submit a job; the broker goes both in the environment and in --broker (the security
    tests check --broker alone)."""
    done = cli(
        "submit",
        photos,
        "-o",
        out,
        "--broker",
        broker,
        "--json",
        *extra,
        env={"COLORQUANT_BROKER_URL": broker, **(env or {})},
    )
    assert done.returncode == 0, f"submit failed ({done.returncode}): {done.stderr}"
    return json.loads(done.stdout)["job"]


def job_status(job: str, broker: str) -> dict:
    """The status document, read in-process (the CLI's own function; no Celery import)."""
    from worker.client import status

    return status(job, broker)


def wait_until_started(job: str, broker: str, at_least: int = 3, timeout: float = 90) -> dict:
    """Wait until ``at_least`` images of the job are finished (so work is in flight)."""

    def started():
        document = job_status(job, broker)
        finished = document["done"] + document["failed"] + document["skipped"]
        return document if finished >= at_least else None

    return wait_for(started, timeout, f"job {job} to get going")


def wait_until_done(job: str, broker: str, timeout: float) -> dict:
    """Wait for the job to be done. Fail early, with a diagnosis, when it has stalled: images
    still pending while no message is left anywhere (queue empty, kombu's unacked hash empty)
    for a couple of visibility timeouts, so nothing will ever deliver them again."""
    import redis

    client = redis.Redis.from_url(broker, socket_connect_timeout=1, socket_timeout=2)
    deadline = time.monotonic() + timeout
    last: dict = {}
    idle_since = None
    while time.monotonic() < deadline:
        try:
            last = job_status(job, broker)
            if last["state"] == "done":
                return last
            idle = client.llen(QUEUE) == 0 and client.hlen("unacked") == 0
        except Exception:  # the broker may still be coming back
            idle = False
        now = time.monotonic()
        idle_since = (idle_since or now) if idle else None
        if idle_since is not None and now - idle_since > 2 * VISIBILITY_TIMEOUT_S + 2:
            pytest.fail(
                f"job {job} stalled: {last.get('pending')} of {last.get('total')} images pending "
                f"but no message is left in the queue or in kombu's unacked hash; nothing will "
                f"deliver them again (last status: {_counts(last)})"
            )
        time.sleep(0.1)
    pytest.fail(f"job {job} not done after {timeout:.0f} s; last status {_counts(last)}")


def _counts(document: dict) -> dict:
    return {key: document.get(key) for key in ("state", "total", "done", "failed", "skipped")}


def assert_struck_mid_job(document: dict, fraction: float = 0.4) -> None:
    """The fault landed while a good part of the job was still pending."""
    assert document["pending"] >= fraction * document["total"], (
        f"the fault struck too late: only {document['pending']} of {document['total']} pending"
    )


def output_files(out: Path) -> set[str]:
    return {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}


def assert_job_exact(job: str, broker: str, photos: Path, names: list[str], out: Path) -> dict:
    """Every image written once and counted once; nothing half-written; no temp file left.

    Checks the user-visible contract: ``colorquant status JOB --json`` and the files in OUT.
    """
    shown = cli("status", job, "--broker", broker, "--json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    counts = {key: document[key] for key in ("state", "total", "done", "failed", "skipped")}
    assert counts == {
        "state": "done",
        "total": len(names),
        "done": len(names),
        "failed": 0,
        "skipped": 0,
    }, document["failures"][:5]
    assert document["pending"] == 0 and document["failures"] == []

    files = output_files(out)
    temps = sorted(name for name in files if TEMP_MARKER in name)
    assert not temps, f"temp files left in OUT: {temps}"
    expected = set()
    for rel in names:
        stem = rel[: -len(".jpg")]
        expected |= {f"{stem}.png", f"{stem}.palette.json"}
    assert files == expected, (
        f"missing {sorted(expected - files)[:5]}, unexpected {sorted(files - expected)[:5]}"
    )
    for rel in names:
        stem = rel[: -len(".jpg")]
        with Image.open(out / f"{stem}.png") as png:
            png.load()  # a half-written PNG fails here
            assert png.mode == "P"
            with Image.open(photos / rel) as source:
                assert png.size == source.size
            entries = len(png.getpalette() or []) // 3
            highest_index = png.getextrema()[1]
            pixels = png.size[0] * png.size[1]
        palette = json.loads((out / f"{stem}.palette.json").read_text())  # a half file fails
        assert palette["source"] == rel and palette["output"] == f"{stem}.png"
        assert palette["produced_by"]["job"] == job
        assert len(palette["colors"]) == entries > highest_index
        assert sum(color["count"] for color in palette["colors"]) == pixels
    return document


# --- the AOF, for crashes that lose its tail -----------------------------------------------


def aof_commands(path: Path) -> list[tuple[int, list[bytes]]]:
    """The commands of an AOF file (RESP arrays), each with the byte offset where it ends."""
    data = path.read_bytes()
    commands, at = [], 0
    while at < len(data):
        line_end = data.index(b"\r\n", at)
        count, at = int(data[at + 1 : line_end]), line_end + 2
        parts = []
        for _ in range(count):
            line_end = data.index(b"\r\n", at)
            length, at = int(data[at + 1 : line_end]), line_end + 2
            parts.append(data[at : at + length])
            at += length + 2
        commands.append((at, parts))
    return commands


def cut_after_acked_pop(path: Path, queue: str = QUEUE) -> float | None:
    """Truncate the AOF right after the last pop from ``queue`` whose message a worker went on
    to finish and ack: a valid prefix (what a crash with ``appendfsync everysec`` may leave)
    in which that message has left the queue but is not yet in kombu's unacked hash. Only pops
    after the submit sealed its job count, so the cut never reaches back into the submit.

    Returns how many seconds of deliveries the cut took away, or None when there was no such
    pop (nothing cut).
    """
    commands = aof_commands(path)
    sealed = max(
        (
            i
            for i, (_, p) in enumerate(commands)
            if p[0].upper() == b"HSET" and p[2:3] == [b"enqueued"]
        ),
        default=len(commands),
    )
    acked = {p[2] for _, p in commands if p[0].upper() == b"HDEL" and p[1] == b"unacked"}
    delivered_at = [
        float(p[2]) for _, p in commands if p[0].upper() == b"ZADD" and p[1] == b"unacked_index"
    ]
    for index in range(len(commands) - 2, sealed, -1):
        end, parts = commands[index]
        if parts[0].upper() != b"RPOP" or parts[1] != queue.encode():
            continue
        following = [p for _, p in commands[index + 1 : index + 5]]
        tags = [p[2] for p in following if p[0].upper() == b"HSET" and p[1] == b"unacked"]
        moments = [
            float(p[2]) for p in following if p[0].upper() == b"ZADD" and p[1] == b"unacked_index"
        ]
        if tags and tags[0] in acked:
            os.truncate(path, end)
            return max(delivered_at) - moments[0] if moments else 0.0
    return None
