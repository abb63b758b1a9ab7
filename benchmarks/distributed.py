"""Distributed figures, side by side in one run (not a test):

(a) ``colorquant submit`` of a 20,000-file folder, process start included, against a plain loop
    of one ``apply_async`` per file (the anchor, about 1,700 files/s on this machine);
(b) one worker process against two on the same photo set: the throughput ratio (ideal 2.0).

Starts its own redis-server on a free loopback port and its own workers; writes
benchmarks/results/distributed.json. Run: ``python -m benchmarks.distributed``.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from harness.commands import clean_env, colorquant_command, run_colorquant
from harness.processes import scheduler_ns
from harness.redis_server import RedisServer, ToolMissing
from harness.workers import WorkerProcess

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "distributed.json"

#: Files in the submit benchmark's folder (tiny PNGs: submit never reads them).
SUBMIT_FILES = 20_000

#: Photos in the worker-scaling set: crops and rescales of scikit-learn's two photos.
SCALING_PHOTOS = 96

#: Repeats of each timing; the median is reported.
REPEATS = 3

#: Undisturbed runs wanted per side of the scaling figure, and the most runs tried for them:
#: other programs may share the machine, and a run they slowed down says nothing about us.
SCALING_REPEATS, MAX_SCALING_RUNS = 3, 12

#: A run is disturbed when its pool processes waited for a CPU more than this share of the time.
DISTURBED_WAIT_SHARE = 0.05

#: Before each scaling run, wait up to QUIET_PATIENCE_S for the CPUs to be this idle, so other
#: programs on a shared machine disturb the ratio as little as possible.
QUIET_IDLE_SHARE, QUIET_PATIENCE_S = 0.9, 30

APPLY_ASYNC_LOOP = """
import sys, time
started = time.perf_counter()
from pipeline.discover import InputWalk, resolve_roots
from worker.tasks import quantize_chunk
roots = resolve_roots([sys.argv[1]], sys.argv[2])
count = 0
for item in InputWalk(roots):
    quantize_chunk.apply_async(("bench-loop", [[0, item.rel, item.source, item.output]]))
    count += 1
print(count)
"""


def flush(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def timed(command: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def make_tiny_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    data = _tiny_png()
    for index in range(count):
        (folder / f"img-{index:05d}.png").write_bytes(data)


def _tiny_png() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def bench_submit(work: Path, url: str, env: dict) -> dict:
    folder = work / "tiny"
    make_tiny_folder(folder, SUBMIT_FILES)
    submit, loop = [], []
    idle = []
    for run in range(REPEATS):
        flush(url)
        out = work / f"tiny-out-{run}"
        idle.append(wait_for_quiet_cpus())
        submit.append(timed([*colorquant_command(), "submit", str(folder), "-o", str(out)], env))
        flush(url)
        loop.append(timed([sys.executable, "-c", APPLY_ASYNC_LOOP, str(folder), str(out)], env))
    flush(url)
    return {
        "files": SUBMIT_FILES,
        "colorquant_submit_s": round(statistics.median(submit), 3),
        "colorquant_submit_files_per_s": round(SUBMIT_FILES / statistics.median(submit)),
        "apply_async_loop_s": round(statistics.median(loop), 3),
        "apply_async_loop_files_per_s": round(SUBMIT_FILES / statistics.median(loop)),
        "speedup": round(statistics.median(loop) / statistics.median(submit), 2),
        "colorquant_submit_best_files_per_s": round(SUBMIT_FILES / min(submit)),
        "apply_async_loop_best_files_per_s": round(SUBMIT_FILES / min(loop)),
        "cpus_idle_share_before_runs": idle,
        "runs_s": {"submit": [round(t, 3) for t in submit], "loop": [round(t, 3) for t in loop]},
        "note": "wall time of the whole command, process start included; no worker consuming",
    }


def make_photo_set(folder: Path, count: int) -> None:
    """Crops and rescales of china.jpg and flower.jpg, 0.1–0.6 MP, saved as JPEG."""
    from sklearn.datasets import load_sample_image

    sources = [load_sample_image(name) for name in ("china.jpg", "flower.jpg")]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for index in range(count):
        source = sources[index % 2]
        height, width = source.shape[:2]
        crop_h, crop_w = int(height * rng.uniform(0.5, 1)), int(width * rng.uniform(0.5, 1))
        top, left = rng.integers(0, height - crop_h + 1), rng.integers(0, width - crop_w + 1)
        crop = Image.fromarray(source[top : top + crop_h, left : left + crop_w])
        scale = np.sqrt(rng.uniform(0.1, 0.6) * 1e6 / (crop_h * crop_w))
        size = (max(8, int(crop_w * scale)), max(8, int(crop_h * scale)))
        crop.resize(size, Image.Resampling.LANCZOS).save(
            folder / f"photo-{index:03d}.jpg", quality=90
        )


def start_worker(concurrency: int, url: str, log: Path) -> WorkerProcess:
    """A ``colorquant worker -c N``, ready: every pool process has imported scikit-learn."""
    return WorkerProcess(url, log, concurrency).start().wait_ready(timeout=120)


def pool_schedstat(worker: WorkerProcess) -> tuple[int, int]:
    """Nanoseconds the worker's pool processes ran and waited for a CPU."""
    times = [scheduler_ns(pid) for pid in worker.pool_pids()]
    return sum(ran for ran, _ in times), sum(waited for _, waited in times)


def idle_share(seconds: float = 1.0) -> float:
    """Share of all CPUs idle over the next ``seconds`` (from /proc/stat)."""

    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)

    idle_before, total_before = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle_before) / max(1, total_after - total_before)


def wait_for_quiet_cpus(patience_s: float = QUIET_PATIENCE_S) -> float:
    """The machine may be shared: wait (a while) until other programs leave the CPUs idle."""
    deadline = time.monotonic() + patience_s
    idle = idle_share()
    while idle < QUIET_IDLE_SHARE and time.monotonic() < deadline:
        idle = idle_share()
    return round(idle, 3)


def job_run(photos: Path, out: Path, env: dict, worker: WorkerProcess, processes: int) -> dict:
    """One job's time from first image started to last finished (as Redis recorded it), and how
    busy the pool was: a low ratio with a high CPU wait share means other programs took the CPUs."""
    idle_before = wait_for_quiet_cpus()
    ran_before, waited_before = pool_schedstat(worker)
    done = run_colorquant("submit", photos, "-o", out, "--wait", "--json", env=env)
    ran_after, waited_after = pool_schedstat(worker)
    job = json.loads(done.stdout)["job"]
    status = run_colorquant("status", job, "--json", env=env)
    document = json.loads(status.stdout)
    assert document["done"] == SCALING_PHOTOS, document
    seconds = document["finished_at"] - document["started_at"]
    capacity_ns = seconds * processes * 1e9
    return {
        "seconds": seconds,
        "cpus_idle_share_before": idle_before,
        "pool_cpu_share": round((ran_after - ran_before) / capacity_ns, 3),
        "pool_wait_for_cpu_share": round((waited_after - waited_before) / capacity_ns, 3),
    }


def undisturbed(run: dict) -> bool:
    return run["pool_wait_for_cpu_share"] <= DISTURBED_WAIT_SHARE


def scaling_runs(photos: Path, work: Path, env: dict, processes: int) -> list[dict]:
    """Runs until SCALING_REPEATS of them were undisturbed, or MAX_SCALING_RUNS in all."""
    worker = start_worker(processes, env["COLORQUANT_BROKER_URL"], work / f"w{processes}.log")
    runs = []
    try:
        while len(runs) < MAX_SCALING_RUNS:
            out = work / f"out-c{processes}-{len(runs)}"
            runs.append(job_run(photos, out, env, worker, processes))
            if sum(map(undisturbed, runs)) >= SCALING_REPEATS:
                break
    finally:
        worker.reap(graceful=True)
    return runs


def bench_scaling(work: Path, url: str, env: dict) -> dict:
    photos = work / "photos"
    make_photo_set(photos, SCALING_PHOTOS)
    runs = {processes: scaling_runs(photos, work, env, processes) for processes in (1, 2)}
    clean = {n: [run for run in runs[n] if undisturbed(run)] or runs[n] for n in runs}
    seconds = {n: statistics.median(run["seconds"] for run in clean[n]) for n in runs}
    adjusted = {
        n: statistics.median(
            run["seconds"] * (1 - run["pool_wait_for_cpu_share"]) for run in runs[n]
        )
        for n in runs
    }
    return {
        "photos": SCALING_PHOTOS,
        "one_process_s": round(seconds[1], 3),
        "two_processes_s": round(seconds[2], 3),
        "one_process_photos_per_s": round(SCALING_PHOTOS / seconds[1], 2),
        "two_processes_photos_per_s": round(SCALING_PHOTOS / seconds[2], 2),
        "ratio": round(seconds[1] / seconds[2], 3),
        "ratio_from_undisturbed_runs": all(any(map(undisturbed, runs[n])) for n in runs),
        "ratio_without_cpu_wait": round(adjusted[1] / adjusted[2], 3),
        "runs": {f"c{n}": runs[n] for n in runs},
        "note": "one `colorquant worker -c 1` vs one `-c 2`, warmed up; job time from first "
        "image started to last finished (status started_at/finished_at); ratio = median over "
        f"undisturbed runs (pool waited for a CPU at most {DISTURBED_WAIT_SHARE:.0%} of the "
        "time; all runs if none was); pool_cpu_share = CPU time of the pool / (time × "
        "processes); pool_wait_for_cpu_share = time its processes were runnable but waited "
        "for a CPU (other programs on a shared machine); ratio_without_cpu_wait = medians of "
        "time × (1 − wait share) over all runs",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scaling", action="store_true", help="only the submit figure")
    parser.add_argument("--skip-submit", action="store_true", help="only the scaling figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="colorquant-bench-dist-") as temp:
        work = Path(temp)
        try:
            server = RedisServer(work / "redis", appendonly=False).start()
        except ToolMissing as missing:
            sys.exit(str(missing))
        url = server.url
        env = clean_env({"COLORQUANT_BROKER_URL": url})
        try:
            results = {
                "benchmark": "distributed",
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            if not args.skip_submit:
                results["submit"] = bench_submit(work, url, env)
            if not args.skip_scaling:
                results["workers"] = bench_scaling(work, url, env)
        finally:
            server.stop()
    save_results(RESULTS, results)


def save_results(path: Path, results: dict) -> None:
    """Write ``results`` over the figures already in ``path`` (a partial run keeps the others),
    and print them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text()) if path.is_file() else {}
    results = {**previous, **results}
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
