"""Helpers of the fault tests: a standard photo job, its submit and the checks that it came out
exact, and the AOF tools that stage a crash losing its tail.

The processes themselves (redis-server with AOF, ``colorquant worker``) come from the shared
harness (harness/); nothing here is mocked.
"""

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from harness.cluster import QUEUE, queue_drained
from harness.commands import clean_env, colorquant_command, run_colorquant
from harness.fixtures import require_redis_server
from harness.images import make_photos
from harness.processes import free_port, wait_for
from harness.redis_server import RedisStartError
from pipeline.settings import TEMP_MARKER
from tests.conftest import check_output_against_source
from worker.jobs import job_keys

__all__ = [
    "QUEUE",
    "RedisStartError",
    "colorquant_command",
    "free_port",
    "make_photos",
    "require_redis_server",
    "wait_for",
]

#: Visibility timeout the workers run with: short, so a lost worker's tasks come back quickly.
VISIBILITY_TIMEOUT_S = 6

#: Images in the standard fault job: enough that it lasts several seconds on 2 cores.
JOB_IMAGES = 72


def cli_env(extra: dict | None = None) -> dict:
    """A clean environment with the fault tests' short visibility timeout, plus ``extra``."""
    return clean_env({"COLORQUANT_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S), **(extra or {})})


def cli(*args, env: dict | None = None, timeout: float = 120):
    """Run ``colorquant ARGS`` as a person would; never with COLORQUANT_DEBUG."""
    return run_colorquant(*args, env=cli_env(env), timeout=timeout)


# --- photos and jobs -----------------------------------------------------------------------


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

    return wait_for(started, f"job {job} to get going", timeout, poll=0.05)


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
            idle = queue_drained(client)
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
        check_output_against_source(photos / rel, out / f"{stem}.png", palette)
    return document


# --- the AOF, for crashes that lose its tail -----------------------------------------------


def aof_commands(path: Path) -> list[tuple[int, list[bytes]]]:
    """The complete commands of an AOF file (RESP arrays), each with the byte offset where it
    ends. A command Redis is still writing (the file is read while it runs) is left out."""
    data = path.read_bytes()
    commands, at = [], 0
    try:
        while at < len(data):
            line_end = data.index(b"\r\n", at)
            count, cursor = int(data[at + 1 : line_end]), line_end + 2
            parts = []
            for _ in range(count):
                line_end = data.index(b"\r\n", cursor)
                length, cursor = int(data[cursor + 1 : line_end]), line_end + 2
                if cursor + length + 2 > len(data):
                    return commands
                parts.append(data[cursor : cursor + length])
                cursor += length + 2
            commands.append((cursor, parts))
            at = cursor
    except ValueError:  # a header line not fully written yet
        pass
    return commands


def ledger_records(path: Path, job: str, after: int = 0, until: int | None = None) -> set[str]:
    """Images whose outcome the job's ledger recorded (``HSET items SOURCE STATUS ...``, one
    pair per image, written by record_item.lua and record_chunk.lua) in the AOF commands that
    end in ``(after, until]`` bytes: kombu's own writes (queue, unacked hash) are not counted,
    only the job's bookkeeping."""
    items = job_keys(job)["items"].encode()
    return {
        source.decode()
        for end, parts in aof_commands(path)
        if after < end
        and (until is None or end <= until)
        and parts[0].upper() == b"HSET"
        and parts[1] == items
        for source, status in zip(parts[2::2], parts[3::2], strict=True)
        if status in (b"done", b"skipped", b"failed")
    }


def finished_chunks(path: Path, job: str, until: int | None = None) -> set[str]:
    """Chunks struck off the job's ledger (record_chunk.lua's ``HDEL chunks ID``: every image
    of the chunk is final) in the AOF commands that end by ``until`` bytes, each as the
    attempts field of its deliveries (NUL + chunk id)."""
    chunks = job_keys(job)["chunks"].encode()
    return {
        "\0" + chunk.decode()
        for end, parts in aof_commands(path)
        if (until is None or end <= until) and parts[0].upper() == b"HDEL" and parts[1] == chunks
        for chunk in parts[2:]
    }


def ledger_begins(path: Path, job: str, until: int | None = None) -> Counter:
    """How often each image of the job was begun (begin_item.lua's ``HINCRBY attempts SOURCE
    1``: a delivery about to quantize it), and each chunk (begin_chunk.lua's ``HINCRBY attempts
    NUL+ID 1``: a delivery about to quantize its images, which on a first delivery begins no
    single image), in the AOF commands that end by ``until`` bytes."""
    attempts = job_keys(job)["attempts"].encode()
    return Counter(
        parts[2].decode()
        for end, parts in aof_commands(path)
        if (until is None or end <= until)
        and parts[0].upper() == b"HINCRBY"
        and parts[1] == attempts
    )


def in_flight(path: Path, job: str, until: int) -> set[str]:
    """Images and chunks (NUL + id) begun and not yet recorded or finished in the AOF's first
    ``until`` bytes."""
    begun = set(ledger_begins(path, job, until))
    return begun - ledger_records(path, job, until=until) - finished_chunks(path, job, until)


def cut_after_acked_pop(path: Path, queue: str = QUEUE) -> int | None:
    """Where to truncate the AOF so that it ends right after the last pop from ``queue`` whose
    message a worker went on to finish and ack: a valid prefix (what a crash with
    ``appendfsync everysec`` may leave) in which that message has left the queue but is not yet
    in kombu's unacked hash. Only pops after the submit sealed its job count, so the cut never
    reaches back into the submit.

    Returns the byte offset to keep, or None when there was no such pop.
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
    for index in range(len(commands) - 2, sealed, -1):
        end, parts = commands[index]
        if parts[0].upper() != b"RPOP" or parts[1] != queue.encode():
            continue
        following = [p for _, p in commands[index + 1 : index + 5]]
        tags = [p[2] for p in following if p[0].upper() == b"HSET" and p[1] == b"unacked"]
        if tags and tags[0] in acked:
            return end
    return None


def assert_ledger_lost_in_tail(aof: Path, job: str, kept_bytes: int) -> set[str]:
    """The part of the AOF after ``kept_bytes`` holds ledger records of the job (images counted
    as finished) that the kept prefix does not: cutting it really loses bookkeeping, not just
    kombu's writes. Returns those images."""
    lost = ledger_records(aof, job, after=kept_bytes) - ledger_records(aof, job, until=kept_bytes)
    assert lost, "the cut-off tail holds no ledger record of the job: no bookkeeping was lost"
    return lost


def assert_ledger_recovered(broker: str, job: str, images: set[str]) -> None:
    """Each image whose record was lost is recorded again, as done."""
    import redis

    client = redis.Redis.from_url(broker, decode_responses=True)
    names = sorted(images)
    recorded = dict(zip(names, client.hmget(job_keys(job)["items"], names), strict=True))
    assert set(recorded.values()) == {"done"}, recorded
