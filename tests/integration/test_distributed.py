"""colorquant on Celery, end to end: real redis-server, real worker processes, real images."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from harness.images import write_generated_images
from harness.processes import free_port, wait_for
from tests.conftest import check_output_against_source, file_digests
from tests.odd_files import make_good_files

pytestmark = [pytest.mark.integration]

STATUS_FIELDS = {
    "job": str,
    "state": str,
    "total": int,
    "done": int,
    "failed": int,
    "skipped": int,
    "pending": int,
    "failures": list,
    "rate": float,
}
REPO = Path(__file__).parents[2]


def image_count(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.suffix in (".jpg", ".png"))


def palettes(out: Path) -> dict[str, dict]:
    """Every palette JSON below OUT, by its source path."""
    documents = (json.loads(path.read_text()) for path in out.rglob("*.palette.json"))
    return {document["source"]: document for document in documents}


@pytest.fixture(scope="module")
def finished_job(cluster, photo_folder, tmp_path_factory):
    """One job of photo_folder, submitted to the two workers and followed to its end."""
    out = tmp_path_factory.mktemp("distributed") / "out"
    receipt = json.loads(
        cluster.cli("submit", photo_folder, "-o", out, "--json", check=True).stdout
    )
    final = cluster.wait_until_final(receipt["job"])
    return receipt, final, out


@pytest.mark.slow
def test_submit_reaches_done_with_exact_counts(finished_job, photo_folder):
    receipt, final, out = finished_job
    images = image_count(photo_folder)
    assert receipt["total"] == images
    assert final["state"] == "done"
    assert (final["total"], final["done"], final["failed"], final["skipped"]) == (
        images,
        images,
        0,
        0,
    )
    assert final["pending"] == 0 and final["ignored"] == 1 and final["failures"] == []
    assert len(palettes(out)) == images
    assert not [path for path in out.rglob("*") if ".colorquant-tmp-" in path.name]


@pytest.mark.slow
def test_palettes_name_both_workers(finished_job, cluster):
    _, _, out = finished_job
    pids = {document["produced_by"]["pid"] for document in palettes(out).values()}
    pool_of = {pid: worker for worker in cluster.workers for pid in worker.pool_pids()}
    assert pids <= set(pool_of), "every palette names a pool process of our workers"
    assert {pool_of[pid].node for pid in pids} == {worker.node for worker in cluster.workers}
    jobs = {document["produced_by"]["job"] for document in palettes(out).values()}
    assert jobs == {finished_job[0]["job"]}


@pytest.mark.slow
def test_outputs_as_good_as_embedded_run(finished_job, photo_folder, tmp_path):
    _, _, out = finished_job
    embedded = tmp_path / "embedded"
    subprocess.run(
        [sys.executable, "-m", "cli", "run", photo_folder, "-o", embedded, "-j", "2", "--json"],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    distributed, local = palettes(out), palettes(embedded)
    assert distributed.keys() == local.keys()
    for source, document in distributed.items():
        assert document["metrics"]["psnr"] >= local[source]["metrics"]["psnr"] - 1e-9, source
        assert document["colors"] == local[source]["colors"], source
        with Image.open(out / document["output"]) as image:
            assert image.mode == "P" and len(image.getpalette()) // 3 <= 64
        # From the files alone, not from the same code's embedded run.
        check_output_against_source(photo_folder / source, out / document["output"], document)
        # Dithered by default, and deterministic: a worker writes the very bytes `run` does.
        assert document["dither"] == local[source]["dither"] > 0, source
        written = (out / document["output"]).read_bytes()
        assert written == (embedded / document["output"]).read_bytes(), source


@pytest.mark.slow
def test_submit_leaves_every_input_byte_for_byte_the_same(cluster, tmp_path):
    """Workers read the inputs and never write them: not their pixels, not their metadata."""
    folder = tmp_path / "in"
    make_good_files(folder)
    before = file_digests(folder)
    done = cluster.cli("submit", folder, "-o", tmp_path / "out", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == len(before)
    assert file_digests(folder) == before


@pytest.mark.slow
def test_status_json_shape(finished_job, cluster):
    receipt, _, _ = finished_job
    document = cluster.status(receipt["job"])
    for name, kind in STATUS_FIELDS.items():
        assert isinstance(document[name], kind), name
    assert document["eta_s"] == 0.0
    assert document["done"] + document["failed"] + document["skipped"] == document["total"]
    listed = json.loads(cluster.cli("jobs", "--json", check=True).stdout)
    assert receipt["job"] in [job["job"] for job in listed]


@pytest.mark.slow
def test_resubmit_skips_existing_outputs(finished_job, cluster, photo_folder):
    receipt, final, out = finished_job
    again = cluster.cli("submit", photo_folder, "-o", out, "--wait", "--json")
    report = json.loads(again.stdout)
    assert again.returncode == 0
    assert set(report) == {
        "job",
        "total",
        "done",
        "failed",
        "skipped",
        "ignored",
        "failures",
        "elapsed_s",
    }
    assert (report["skipped"], report["done"], report["failed"]) == (final["total"], 0, 0)


@pytest.mark.slow
def test_inspect_ping_answers_from_both_workers(cluster):
    ping = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.app", "inspect", "ping", "--timeout", "5"],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert ping.returncode == 0, ping.stderr
    for worker in cluster.workers:
        assert worker.node.replace("%h", "") in ping.stdout


@pytest.mark.slow
def test_cancel_skips_what_is_left(cluster, tmp_path):
    """Workers stop consuming while the job is submitted and cancelled, so every image is still
    pending when the cancel lands; once they consume again they drop the job's messages."""
    write_generated_images(tmp_path / "in", 12)
    with cluster.consumers_paused():
        job = cluster.cli("submit", tmp_path / "in", "-o", tmp_path / "out", check=True).stdout
        job = job.strip()
        cancelled = cluster.cli("cancel", job)
    assert cancelled.returncode == 0, cancelled.stderr
    wait_for(cluster.queue_drained, "the cancelled job's messages to be dropped")
    document = cluster.status(job)
    assert document["state"] == "cancelled"
    counts = ("done", "pending", "cancelled", "total")
    assert tuple(document[name] for name in counts) == (0, 0, 12, 12)
    assert not list((tmp_path / "out").rglob("*.png"))
    assert cluster.cli("watch", job).returncode == 1
    # The workers say it once per pool process, not once per image or message.
    said = [line for w in cluster.workers for line in w.log().splitlines() if job in line]
    assert 1 <= len(said) <= len(cluster.workers), said


@pytest.mark.slow
def test_retry_moves_fixed_failures_to_done(cluster, tmp_path):
    folder = tmp_path / "in"
    write_generated_images(folder, 3)
    broken = folder / "broken.jpg"
    broken.write_text("this is text, not a JPEG")
    first = cluster.cli("submit", folder, "-o", tmp_path / "out", "--wait", "--json")
    report = json.loads(first.stdout)
    assert first.returncode == 1
    assert (report["done"], report["failed"]) == (3, 1)
    assert report["failures"][0]["path"] == "broken.jpg" and report["failures"][0]["error"]

    shutil.copy(folder / "gen-000.png", broken)  # fixed: a real image (PNG bytes, .jpg name)
    assert cluster.cli("retry", report["job"]).returncode == 0
    assert cluster.cli("watch", report["job"]).returncode == 0
    document = cluster.status(report["job"])
    assert document["state"] == "done"
    assert (document["done"], document["failed"], document["total"]) == (4, 0, 4)
    assert document["failures"] == []
    assert (tmp_path / "out" / "broken.palette.json").is_file()


@pytest.mark.slow
def test_forged_paths_write_nothing(cluster, tmp_path):
    """A message naming paths outside the job's roots writes nothing. Sent alone, it is refused
    whole (its rows are in none of the job's open chunks) and the job's counts do not move;
    even with a forged ledger entry too, every row is refused by the path checks."""
    from worker.app import make_app
    from worker.jobs import job_keys
    from worker.settings import CHUNK_TASK

    folder, out = tmp_path / "in", tmp_path / "out"
    write_generated_images(folder, 1)
    secret = tmp_path / "secret.png"
    shutil.copy(folder / "gen-000.png", secret)
    job = cluster.cli("submit", folder, "-o", out, check=True).stdout.strip()
    before = cluster.wait_until_final(job)
    forged = [
        [0, "../secret.png", "forged-a", "forged-a.png"],
        [0, str(secret), "forged-b", "forged-b.png"],
        [7, "gen-000.png", "forged-c", "forged-c.png"],
        [0, "gen-000.png", "forged-d", "../../escaped.png"],
    ]
    app = make_app(cluster.redis.url)
    app.send_task(CHUNK_TASK, (job, forged), queue="colorquant")
    app.send_task(CHUNK_TASK, (job, forged, "made-up-chunk"), queue="colorquant")
    wait_for(cluster.queue_drained, "the forged messages to be handled")
    wait_for(
        lambda: "".join(w.log() for w in cluster.workers).count("refused a message") >= 2,
        "both forged messages to be refused",
    )
    counts = ("total", "done", "failed", "skipped")
    assert {key: cluster.status(job)[key] for key in counts} == {key: before[key] for key in counts}

    # Someone who can also write the ledger still gets nothing past the path checks.
    cluster.redis.client().hset(job_keys(job)["chunks"], "forged-ledger", json.dumps(forged))
    app.send_task(CHUNK_TASK, (job, forged, "forged-ledger"), queue="colorquant")
    wait_for(cluster.queue_drained, "the forged message to be handled")
    document = wait_for(lambda: (d := cluster.status(job))["failed"] == 4 and d, "4 refusals")
    assert {failure["path"] for failure in document["failures"]} == {
        "forged-a",
        "forged-b",
        "forged-c",
        "forged-d",
    }
    assert sorted(path.name for path in out.rglob("*")) == ["gen-000.palette.json", "gen-000.png"]
    # "../../escaped.png" below OUT (tmp_path / "out") would land in tmp_path's parent.
    escaped = (out / "../../escaped.png").resolve()
    assert escaped == tmp_path.parent / "escaped.png"
    assert not escaped.exists(), f"a forged output path wrote {escaped}"


def test_unreachable_broker_is_one_line_with_password_masked(tmp_path):
    folder = tmp_path / "in"
    write_generated_images(folder, 1)
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    env = {**os.environ, "COLORQUANT_BROKER_URL": url}
    for args in (["submit", folder, "-o", tmp_path / "out"], ["status", "abc"], ["jobs"]):
        done = subprocess.run(
            [sys.executable, "-m", "cli", *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "127.0.0.1" in lines[0] and "***" in lines[0]
        assert "hunter2" not in done.stderr + done.stdout
        assert "Traceback" not in done.stderr


def test_compose_file_is_valid():
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed")
    env = {**os.environ, "FLOWER_BASIC_AUTH": "admin:test-only"}
    done = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
def test_only_pool_processes_load_the_quantizer(cluster, finished_job):
    """The worker's main process forks the pool, so it must never load scikit-learn or the
    quantizer's compiled loops (GNU OpenMP is not fork-safe, nor is an LLVM JIT); each pool
    process loads the compiled loops (numba's LLVM) before its first task, and after a job it
    still runs a single thread (no BLAS/OpenMP thread pool)."""
    for worker in cluster.workers:
        wait_for(lambda w=worker: "warmed up" in w.log(), "the pool to warm up")
        main = mapped_files(worker.process.pid)
        assert "/sklearn/" not in main and "/llvmlite/" not in main
        assert "libgomp" not in main
        pool = worker.pool_pids()
        assert pool
        for pid in pool:
            assert "/llvmlite/" in mapped_files(pid)
            assert "Threads:\t1\n" in Path(f"/proc/{pid}/status").read_text()


@pytest.mark.parametrize(
    ("command", "exit_code"),
    [
        (["status", "nojob"], 2),
        (["jobs"], 0),
        (["watch", "nojob"], 2),
        (["cancel", "nojob"], 2),
        (["--help"], 0),
    ],
)
def test_job_commands_do_not_import_numpy_or_sklearn(redis_server, command, exit_code):
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", *command],
        env={**os.environ, "COLORQUANT_BROKER_URL": redis_server.url},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    # The command ran to its answer (not an import error that would list no imports at all).
    assert done.returncode == exit_code, (done.returncode, said[-5:])
    assert "Traceback" not in done.stderr
    if exit_code == 2:
        assert said and said[-1].startswith("error: no job nojob"), said
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert {"typer", "cli"} <= imported
    assert not {name for name in imported if name.split(".")[0] in ("numpy", "sklearn", "scipy")}


def test_submit_imports_neither_celery_nor_numpy(redis_server, tmp_path):
    """``submit`` builds Celery's messages itself (worker/messages.py), so neither Celery's
    import (a tenth of a second of every submit) nor numpy's is in it."""
    photos = tmp_path / "in"
    photos.mkdir()
    for index in range(2):
        Image.new("RGB", (2, 2), (index, 0, 0)).save(photos / f"p{index}.png")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli", "submit", photos, "-o", tmp_path / "out"],
        # A database no worker reads: the job is only queued.
        env={**os.environ, "COLORQUANT_BROKER_URL": redis_server.database_url(7)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert {"redis", "worker.publish"} <= imported
    heavy = ("numpy", "sklearn", "scipy", "celery", "kombu")
    assert not {name for name in imported if name.split(".")[0] in heavy}


@pytest.mark.slow
def test_job_keys_expire_after_the_retention(finished_job, cluster):
    from worker.jobs import job_keys
    from worker.settings import DEFAULT_RETENTION_S

    client = cluster.redis.client()
    keys = job_keys(finished_job[0]["job"])
    present = {name for name, key in keys.items() if client.exists(key)}
    # A finished job without failures keeps at least its counts and its per-image records.
    assert present >= {"meta", "items"}, present
    for name in present:
        assert 0 < client.ttl(keys[name]) <= DEFAULT_RETENTION_S, name


@pytest.mark.slow
def test_broker_option_wins_over_environment(cluster, tmp_path):
    folder = tmp_path / "in"
    write_generated_images(folder, 2)
    env = {**cluster.env, "COLORQUANT_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "submit", folder, "-o", tmp_path / "out"]
        + ["--broker", cluster.redis.url, "--wait", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["done"] == 2


def test_empty_folder_is_refused_before_a_job_exists(redis_server, tmp_path):
    """A folder without images is a usage error (exit 2): no job, no OUT, one line."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no images here")
    done = subprocess.run(
        [sys.executable, "-m", "cli", "submit", tmp_path / "in", "-o", tmp_path / "out"]
        + ["--wait", "--json"],
        env={**os.environ, "COLORQUANT_BROKER_URL": redis_server.url},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith("error: no images in") and done.stdout == ""
    assert "1 file ignored (.txt ×1)" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_message_delivered_twice_is_counted_once(cluster, tmp_path):
    """Twice the same chunk: the second delivery changes no count and rewrites nothing. And an
    item whose count was lost (Redis restarted from an AOF a second behind) but whose output
    this job wrote is counted again exactly once, as done."""
    from worker.app import make_app
    from worker.jobs import job_keys
    from worker.settings import CHUNK_TASK

    folder, out = tmp_path / "in", tmp_path / "out"
    write_generated_images(folder, 3)
    job = cluster.cli("submit", folder, "-o", out, check=True).stdout.strip()
    before = cluster.wait_until_final(job)
    written = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    rows = [[0, f"gen-00{i}.png", f"gen-00{i}.png", f"gen-00{i}.png"] for i in range(3)]

    client = cluster.redis.client()
    keys = job_keys(job)
    # An AOF a second behind loses the item's record and, written after it, the strike-off of
    # its chunk from the ledger: the chunk is open again.
    client.hdel(keys["items"], "gen-001.png")
    client.hincrby(keys["meta"], "done", -1)
    client.hset(keys["chunks"], "replayed", json.dumps(rows))
    app = make_app(cluster.redis.url)
    for _ in range(2):
        app.send_task(CHUNK_TASK, (job, rows, "replayed"), queue="colorquant")
    wait_for(cluster.queue_drained, "both copies to be handled")
    after = wait_for(lambda: (d := cluster.status(job))["done"] == 3 and d, "the recount")
    assert {key: after[key] for key in ("total", "done", "failed", "skipped")} == {
        key: before[key] for key in ("total", "done", "failed", "skipped")
    }
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == written


@pytest.mark.slow
def test_pickled_message_is_refused(cluster, tmp_path):
    from worker.app import make_app
    from worker.settings import CHUNK_TASK

    folder, out = tmp_path / "in", tmp_path / "out"
    write_generated_images(folder, 1)
    job = cluster.cli("submit", folder, "-o", out, check=True).stdout.strip()
    cluster.wait_until_final(job)
    shutil.rmtree(out)
    app = make_app(cluster.redis.url)
    app.conf.accept_content = ["json", "pickle"]  # only this producer may write pickle
    app.send_task(CHUNK_TASK, (job, [[0, "gen-000.png", "x", "x.png"]]), serializer="pickle")
    wait_for(cluster.queue_drained, "the pickled message to be handled")
    assert not out.exists()
    logs = "".join(worker.log() for worker in cluster.workers)
    assert "Refusing to deserialize untrusted content of type pickle" in logs
    assert cluster.status(job)["total"] == 1 and cluster.status(job)["failed"] == 0
    ping = app.control.ping(destination=[w.node for w in cluster.workers], timeout=5)
    assert len(ping) == len(cluster.workers)


@pytest.mark.slow
def test_messages_lost_by_the_broker_are_sent_again(cluster, tmp_path):
    """Every message of a job vanishes from Redis (as after a crash that kept kombu's pops but not
    its unacked copies): the job's chunk ledger brings them back, and the job finishes exactly."""
    write_generated_images(tmp_path / "in", 4)
    with cluster.consumers_paused():
        job = cluster.cli("submit", tmp_path / "in", "-o", tmp_path / "out", check=True).stdout
        assert cluster.redis.client().delete("colorquant") == 1
    final = cluster.wait_until_final(job.strip())
    assert (final["state"], final["done"], final["total"], final["failed"]) == ("done", 4, 4, 0)
    assert len(list((tmp_path / "out").glob("*.png"))) == 4
    logs = "".join(worker.log() for worker in cluster.workers)
    assert f"job {job.strip()} has pending images but no message left" in logs
