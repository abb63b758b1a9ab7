"""Hostile messages and secrets, against real Redis and real workers.

- A pickled message is refused before it is decoded: its payload never runs.
- A forged JSON message for the real task, naming paths outside the job's roots or outside OUT,
  reads and writes nothing.
- A password in the broker URL works and never shows in CLI output or worker logs; so does TLS
  (``rediss://``) when this redis-server has it.
"""

import json
import pickle
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.faults.faultkit import (
    QUEUE,
    RedisStartError,
    assert_job_exact,
    cli,
    make_photos,
    output_files,
    require_redis_server,
    submit,
    wait_for,
    wait_until_done,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CHUNK_TASK = "colorquant.quantize_chunk"


class MakesMarker:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def publish_raw(url: str, body, *, serializer=None, content_type=None, headers=None) -> None:
    """Put a message straight on the colorquant queue, as anyone with broker access can."""
    from kombu import Connection, Exchange, Queue

    exchange = Exchange(QUEUE, "direct")
    queue = Queue(QUEUE, exchange, QUEUE)
    with Connection(url) as connection:
        producer = connection.Producer()
        options = {"serializer": serializer} if serializer else {"content_type": content_type}
        if content_type:
            options["content_encoding"] = "binary"
        producer.publish(
            body,
            exchange=exchange,
            routing_key=QUEUE,
            declare=[queue],
            headers=headers or {},
            **options,
        )


def queue_drained(client) -> bool:
    return client.llen(QUEUE) == 0 and client.hlen("unacked") == 0


def test_pickled_messages_are_refused_not_run(redis_server, worker_factory, tmp_path):
    url = redis_server.url
    worker = worker_factory(url, concurrency=1)
    marker = tmp_path / "pickle-ran"
    evil = MakesMarker(marker)
    task_id = str(uuid.uuid4())

    # 1. Protocol 2: task headers for the real task name, pickled arguments in the body.
    publish_raw(
        url,
        ((("job", [evil]), {}, {"callbacks": None, "errbacks": None, "chain": None}),),
        serializer="pickle",
        headers={"lang": "py", "task": CHUNK_TASK, "id": task_id, "root_id": task_id},
    )
    # 2. Protocol 1 (no task header): the whole body is a pickle, decoded by the consumer.
    publish_raw(
        url,
        {"task": CHUNK_TASK, "id": str(uuid.uuid4()), "args": [evil], "kwargs": {}},
        serializer="pickle",
    )
    # 3. Raw bytes of a pickle, announced as pickle.
    publish_raw(url, pickle.dumps(evil), content_type="application/x-python-serialize")

    client = redis_server.client()
    wait_for(lambda: queue_drained(client), "the worker to take the pickled messages", 60)
    wait_for(
        lambda: (
            worker.log().count("ContentDisallowed") >= 3
            or worker.log().lower().count("refusing to deserialize") >= 3
        ),
        "the worker to log that it refused three pickles",
        30,
    )
    assert not marker.exists(), "a pickled message was executed"

    # The worker is still there and still serves real jobs.
    photos = tmp_path / "photos"
    names = make_photos(photos, 3)
    job = submit(photos, tmp_path / "out", url)
    wait_until_done(job, url, timeout=60)
    assert_job_exact(job, url, photos, names, tmp_path / "out")
    assert not marker.exists()
    assert worker.process.poll() is None


def snapshot(folder: Path, skip: tuple[str, ...]) -> dict[str, int]:
    """Every file below ``folder`` with its mtime (ns), leaving out the named top-level dirs."""
    files = {}
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if rel.parts[0] in skip or path.is_dir():
            continue
        files[rel.as_posix()] = path.lstat().st_mtime_ns
    return files


def test_forged_paths_write_nothing(redis_server, worker_factory, tmp_path):
    url = redis_server.url
    worker = worker_factory(url, concurrency=1)
    photos = tmp_path / "photos"
    names = make_photos(photos, 2)
    outside = tmp_path / "outside"
    make_photos(outside, 1)  # a real photo next to the input root: a worker must never read it
    secret = outside / "set0" / "photo000.jpg"
    out = tmp_path / "out"
    job = submit(photos, out, url)
    wait_until_done(job, url, timeout=60)
    assert_job_exact(job, url, photos, names, out)

    # A link planted in the input tree after the submit, pointing out of it.
    (photos / "planted.jpg").symlink_to(secret)
    before = snapshot(tmp_path, skip=("redis",))
    inside = names[0]
    forged_rows = [
        [0, "../outside/set0/photo000.jpg", "../outside/set0/photo000.jpg", "stolen-1.png"],
        [0, str(secret), "abs-source.jpg", "stolen-2.png"],
        [0, "planted.jpg", "planted.jpg", "stolen-3.png"],
        [0, inside, "dotdot-out.jpg", "../escaped-1.png"],
        [0, inside, "abs-out.jpg", str(tmp_path / "escaped-2.png")],
        [0, inside, "deep-out.jpg", "set0/../../escaped-3.png"],
        [7, inside, "no-such-root.jpg", "stolen-4.png"],
    ]
    sources = {row[2] for row in forged_rows}

    from celery import Celery

    from tests.faults.faultkit import job_status

    sender = Celery("forger", broker=url)
    sender.conf.update(task_serializer="json", accept_content=["json"])

    # 1. Messages alone: their rows are in none of the job's open chunks, so each is refused
    #    whole and the job's counts do not move.
    for index, row in enumerate(forged_rows):
        chunk = () if index % 2 else (f"made-up-{index}",)
        sender.send_task(CHUNK_TASK, args=(job, [row], *chunk), queue=QUEUE)
    # A message for a job that does not exist is dropped as well.
    sender.send_task(CHUNK_TASK, args=("ffffffffffff", [forged_rows[0]]), queue=QUEUE)
    wait_for(
        lambda: (
            worker.log().count("refused a message") >= len(forged_rows)
            and queue_drained(redis_server.client())
        ),
        "the worker to refuse every forged message",
        60,
    )
    assert_job_exact(job, url, photos, names, out)

    # 2. With forged ledger entries too (someone who can write any Redis key): the path checks
    #    still refuse every row, with a reason, and nothing is read or written.
    from worker.jobs import job_keys

    ledger = job_keys(job)["chunks"]
    for index, row in enumerate(forged_rows):
        redis_server.client().hset(ledger, f"forged-{index}", json.dumps([row]))
        sender.send_task(CHUNK_TASK, args=(job, [row], f"forged-{index}"), queue=QUEUE)

    def all_refused():
        failed = {failure["path"] for failure in job_status(job, url)["failures"]}
        return sources <= failed and queue_drained(redis_server.client())

    wait_for(all_refused, "the worker to refuse every forged row", 60)
    after = snapshot(tmp_path, skip=("redis",))
    new_files = sorted(set(after) - set(before))
    new_files = [name for name in new_files if not name.startswith("worker-")]
    assert new_files == [], f"forged messages wrote {new_files}"
    changed = [name for name in before if after.get(name) != before[name]]
    changed = [name for name in changed if not name.startswith("worker-")]
    assert changed == [], f"forged messages rewrote {changed}"
    assert output_files(out) == {
        f"{rel[:-4]}{suffix}" for rel in names for suffix in (".png", ".palette.json")
    }
    # Each forged row failed with a reason saying it was refused, not that a read went wrong.
    reasons = {f["path"]: f["error"] for f in job_status(job, url)["failures"]}
    for source in sources:
        assert "leaves" in reasons[source] or "root" in reasons[source], (source, reasons[source])


PASSWORD = "Pa55-w0rd-xyzzy-42"


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text, f"the password leaked: ...{text[-500:]}"


def test_password_in_broker_url_works_and_never_shows(redis_factory, worker_factory, tmp_path):
    server = redis_factory(password=PASSWORD)
    url = server.url
    assert PASSWORD in url
    worker = worker_factory(url, concurrency=1)  # --broker on the command line only
    photos = tmp_path / "photos"
    names = make_photos(photos, 3)
    out = tmp_path / "out"

    # --broker alone (no COLORQUANT_BROKER_URL): submit must publish to this broker.
    submitted = cli("submit", photos, "-o", out, "--broker", url, "--json", timeout=60)
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["job"]
    wait_until_done(job, url, timeout=60)
    assert_job_exact(job, url, photos, names, out)

    outputs = [submitted.stdout, submitted.stderr]
    for command in (["status", job], ["status", job, "--json"], ["jobs"], ["jobs", "--json"]):
        shown = cli(*command, "--broker", url)
        assert shown.returncode == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    watched = cli("watch", job, env={"COLORQUANT_BROKER_URL": url})
    assert watched.returncode == 0, watched.stderr
    outputs += [watched.stdout, watched.stderr]
    waited = cli("submit", photos, "-o", tmp_path / "out2", "--broker", url, "--wait", "--json")
    assert waited.returncode == 0, waited.stderr
    outputs += [waited.stdout, waited.stderr]

    # A wrong password and a missing one: one line, exit 2, and still no password shown.
    wrong = url.replace(PASSWORD, PASSWORD[::-1])
    for broker in (wrong, url.replace(f":{PASSWORD}@", "")):
        for command in (["status", job], ["submit", photos, "-o", tmp_path / "out3"]):
            refused = cli(*command, "--broker", broker)
            assert refused.returncode == 2, (refused.stdout, refused.stderr)
            assert "Traceback" not in refused.stderr
            assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
            assert PASSWORD[::-1] not in refused.stderr + refused.stdout
            outputs += [refused.stdout, refused.stderr]

    # The worker logs its broker URL when the connection drops; the password must not be in it.
    server.kill()
    wait_for(lambda: "Cannot connect" in worker.log() or "lost" in worker.log(), "a log line", 30)
    server.start()
    again = submit(photos, tmp_path / "out4", url)
    wait_until_done(again, url, timeout=90)
    worker.reap()
    log = worker.log()
    assert "127.0.0.1" in log
    assert_no_secret(*outputs, log)


def make_tls_files(folder: Path) -> dict:
    """A throw-away CA and a server certificate for 127.0.0.1, made with openssl."""
    folder.mkdir()

    def openssl(*args):
        done = subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True)
        if done.returncode != 0:
            skip_or_fail(f"openssl could not make test certificates: {done.stderr[-300:]}")

    new_key = ["-newkey", "rsa:2048", "-nodes"]
    openssl("req", "-x509", *new_key, "-days", "2", "-subj", "/CN=colorquant test CA",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", *new_key, "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    signing = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
    openssl("x509", "-req", "-in", "server.csr", *signing, "-extfile", "san.cnf",
            "-out", "server.crt")  # fmt: skip
    return {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}


#: Longest a plain-text client may take to give up on a TLS port: generous, it only tells a
#: hang from an answer.
PLAIN_TLS_PATIENCE_S = 120


def test_tls_broker_with_password(redis_factory, worker_factory, tmp_path):
    require_redis_server()
    if shutil.which("openssl") is None:
        skip_or_fail("openssl is not installed: cannot make test certificates")
    tls = make_tls_files(tmp_path / "tls")
    try:
        server = redis_factory(password=PASSWORD, tls=tls)
    except RedisStartError as exc:
        if "tls" in str(exc).lower():
            skip_or_fail(f"this redis-server cannot serve TLS: {str(exc).splitlines()[-1]}")
        raise
    url = server.url
    assert url.startswith("rediss://")
    worker = worker_factory(url, concurrency=1)
    photos = tmp_path / "photos"
    names = make_photos(photos, 3)
    out = tmp_path / "out"
    submitted = cli("submit", photos, "-o", out, "--broker", url, "--wait", "--json", timeout=90)
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)["job"]
    assert_job_exact(job, url, photos, names, out)
    shown = cli("status", job, "--broker", url)
    assert shown.returncode == 0, shown.stderr
    worker.reap()
    assert_no_secret(submitted.stdout, submitted.stderr, shown.stdout, shown.stderr, worker.log())
    # Plain redis:// against the TLS port fails cleanly, and ends by itself rather than hang.
    plain = url.replace("rediss://", "redis://").split("?")[0]
    try:
        refused = cli("status", job, "--broker", plain, timeout=PLAIN_TLS_PATIENCE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"status against the TLS port still hung after {PLAIN_TLS_PATIENCE_S} s")
    assert refused.returncode == 2, refused.stderr
    assert "Traceback" not in refused.stderr
    assert_no_secret(refused.stdout, refused.stderr)
