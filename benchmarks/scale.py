"""Scale figures, side by side in one run (not a test): does the cost of an image grow with the
folder or the job, and how much of one Redis does an image take?

(a) Per-image time of ``quantize_file`` in one warmed-up process (one BLAS thread), for 1×1 PNGs
    and for the 0.1–2 MP mix (benchmarks/inputs.py), into an empty OUT and into an OUT whose
    folder already holds FILLER_FILES empty files; the two sides alternate, median of repeats.
(b) Redis per image in a real distributed job (real redis-server, real ``colorquant worker``):
    commands and microseconds from ``INFO commandstats``, and Redis CPU from ``INFO cpu``, over
    the whole job (submit, Celery messages, events, bookkeeping).
(c) ``colorquant submit`` of flat folders of SUBMIT_FILES files: files/s with process start
    included, peak RSS (``/usr/bin/time -v``) and Redis commands; ``--baseline DIR`` times a
    checkout of another commit alternately with this one.

Writes benchmarks/results/scale.json (a quick run scale-quick.json; ``--tag T`` adds ``-T``).
Run: ``python -m benchmarks.scale`` (``--quick``: fewer images and repeats; ``--only a,b,c``).
"""

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.distributed import flush, make_tiny_folder, save_results, start_worker
from harness.commands import clean_env
from harness.redis_server import RedisServer

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"

#: Empty files already in the crowded OUT folder (a flat camera dump of 100,000 photos).
FILLER_FILES = 100_000

#: 1×1 PNGs timed per side and repeat (full, quick).
TINY_IMAGES = {False: 400, True: 150}

#: Repeats of each side of the per-image figure; the median is reported.
REPEATS = {False: 5, True: 3}

#: 1×1 PNGs in the distributed job whose Redis cost is measured.
JOB_IMAGES = {False: 3000, True: 1000}

#: Files in the submit benchmark's flat folders: design.md's 20,000-file folder and the
#: issue's 100,000 (full, quick).
SUBMIT_FILES = {False: (20_000, 100_000), True: (20_000,)}

#: Seconds Redis is watched, idle with the worker connected, to subtract its idle CPU (timers,
#: heartbeats, the worker's blocking pops) from the job's.
IDLE_SAMPLE_S = 5

#: Redis commands a poll of the job's progress costs (one HMGET), subtracted from the job's.
POLL_COMMANDS = 1


def one_pixel_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def make_one_pixel_folder(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = one_pixel_png()
    for index in range(count):
        (folder / f"px-{index:06d}.png").write_bytes(data)
    return folder


def fill_folder(folder: Path, count: int) -> None:
    """``count`` empty files, as a crowded OUT folder holds (made once, quickly)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        os.close(os.open(folder / f"filler-{index:06d}.dat", os.O_CREAT | os.O_WRONLY, 0o644))


# --- (a) per-image time against the size of OUT --------------------------------------------


def time_per_image(items, out: Path, params) -> float:
    """Milliseconds per image of ``quantize_file`` over ``items`` into ``out`` (overwrite)."""
    from pipeline.process import quantize_file

    started = time.perf_counter()
    for item in items:
        result = quantize_file(item, out, params, overwrite=True)
        assert result.status == "done", result
    return (time.perf_counter() - started) * 1000.0 / len(items)


def side_by_side(items, empty: Path, crowded: Path, params, repeats: int) -> dict:
    time_per_image(items[: max(1, len(items) // 10)], empty, params)  # warm caches
    empty_ms, crowded_ms = [], []
    for _ in range(repeats):
        empty_ms.append(time_per_image(items, empty, params))
        crowded_ms.append(time_per_image(items, crowded, params))
    empty_median, crowded_median = statistics.median(empty_ms), statistics.median(crowded_ms)
    return {
        "images": len(items),
        "empty_out_ms_per_image": round(empty_median, 3),
        "crowded_out_ms_per_image": round(crowded_median, 3),
        "ratio_crowded_to_empty": round(crowded_median / empty_median, 3),
        "runs_ms": {
            "empty": [round(t, 3) for t in empty_ms],
            "crowded": [round(t, 3) for t in crowded_ms],
        },
    }


def bench_per_image(work: Path, quick: bool) -> dict:
    from benchmarks.inputs import mix
    from pipeline.discover import InputWalk, resolve_roots
    from pipeline.params import QuantizeParams
    from pipeline.threads import limit_threads_now, warm_up

    limit_threads_now()
    warm_up()
    params = QuantizeParams(k=64)
    tiny = make_one_pixel_folder(work / "tiny-in", TINY_IMAGES[quick])
    photos = mix()
    empty, crowded = work / "out-empty", work / "out-crowded"
    fill_folder(crowded, FILLER_FILES)
    results = {}
    for name, folder in (("one_pixel_png", tiny), ("mix_0.1_2mp", photos[0].parent)):
        items = list(InputWalk(resolve_roots([folder], empty)))
        results[name] = side_by_side(items, empty, crowded, params, REPEATS[quick])
    results["filler_files_in_crowded_out"] = FILLER_FILES
    results["note"] = (
        "quantize_file in one warmed-up process, one BLAS thread, K=64, overwrite; the crowded "
        f"OUT folder holds {FILLER_FILES:,} empty files beside the outputs; median of repeats"
    )
    return results


# --- (b) Redis per image in a distributed job ----------------------------------------------


def command_stats(client) -> dict[str, dict]:
    """``INFO commandstats`` as {command: {calls, usec}}."""
    stats = {}
    for key, value in client.info("commandstats").items():
        stats[key.removeprefix("cmdstat_")] = {"calls": value["calls"], "usec": value["usec"]}
    return stats


def redis_cpu_s(client) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def wait_for_job(client, images: int, timeout_s: float = 600) -> int:
    """Poll the job's counters until every image is final; return how many polls it took."""
    polls = 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.zrange("colorquant:jobs", 0, 0)
        if job:
            meta = client.hmget(f"colorquant:{{{job[0]}}}:meta", "done", "failed", "skipped")
            polls += 1
            if sum(int(value or 0) for value in meta) >= images:
                return polls
        time.sleep(0.5)
    raise RuntimeError("the distributed job did not finish in time")


def bench_redis(work: Path, url: str, env: dict, images: int) -> dict:
    import redis

    folder = make_one_pixel_folder(work / "job-in", images)
    client = redis.Redis.from_url(url, decode_responses=True)
    worker = start_worker(1, url, work / "worker.log")
    try:
        flush(url)
        time.sleep(3)  # let the worker's start-up chatter settle before counting
        idle_before = redis_cpu_s(client)
        time.sleep(IDLE_SAMPLE_S)
        idle_per_s = (redis_cpu_s(client) - idle_before) / IDLE_SAMPLE_S
        client.config_resetstat()
        cpu_before = redis_cpu_s(client)
        started = time.perf_counter()
        subprocess.run(
            ["colorquant", "submit", str(folder), "-o", str(work / "job-out")],
            env=env,
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        polls = wait_for_job(client, images)
        seconds = time.perf_counter() - started
        stats = command_stats(client)
        cpu = redis_cpu_s(client) - cpu_before
    finally:
        worker.reap(graceful=True)
    stats["hmget"]["calls"] -= polls * POLL_COMMANDS
    stats["zrange"]["calls"] -= polls
    calls = sum(entry["calls"] for entry in stats.values())
    usec = sum(entry["usec"] for entry in stats.values())
    return {
        "images": images,
        "job_s": round(seconds, 2),
        "commands_per_image": round(calls / images, 2),
        "commandstats_usec_per_image": round(usec / images, 2),
        "redis_cpu_usec_per_image": round(cpu * 1e6 / images, 2),
        "redis_cpu_above_idle_usec_per_image": round(
            (cpu - idle_per_s * seconds) * 1e6 / images, 2
        ),
        "scripts_usec_per_image": round(stats["evalsha"]["usec"] / images, 2),
        "by_command": {
            name: {"calls_per_image": round(e["calls"] / images, 3), "usec": e["usec"]}
            for name, e in sorted(stats.items(), key=lambda kv: -kv[1]["calls"])
            if e["calls"] > 0
        },
        "note": "one `colorquant worker -c 1`, 1×1 PNGs, from submit to the last image counted; "
        "every command Redis ran (submit, Celery messages and events, bookkeeping; commands "
        "inside Lua scripts are counted as well as the script call, as INFO commandstats "
        "does); the benchmark's own progress polls are subtracted; redis_cpu is the change "
        "of used_cpu_user + used_cpu_sys (INFO cpu) over the job",
    }


# --- (c) submit of a flat folder ----------------------------------------------------------


def time_v(command: list[str], env: dict) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (kB) and CPU seconds (user + system) of a command, from GNU
    time -v. The CPU time varies less with the machine's load than the wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, cwd=REPO
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    cpu = sum(
        float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr).group(1))
        for kind in ("User", "System")
    )
    return seconds, peak, cpu


def submit_once(folder: Path, out: Path, url: str, env: dict) -> dict:
    """One ``colorquant submit`` on an empty broker: wall seconds, peak RSS, Redis commands."""
    import redis

    flush(url)
    client = redis.Redis.from_url(url)
    client.config_resetstat()
    seconds, peak_kb, cpu = time_v(["colorquant", "submit", str(folder), "-o", str(out)], env)
    commands = int(client.info("stats")["total_commands_processed"]) - 1  # minus this INFO
    flush(url)
    return {
        "s": round(seconds, 3),
        "cpu_s": round(cpu, 2),
        "peak_rss_kb": peak_kb,
        "redis_commands": commands,
    }


def summarise(files: int, runs: list[dict]) -> dict:
    seconds = statistics.median(run["s"] for run in runs)
    return {
        "files": files,
        "submit_s": round(seconds, 3),
        "files_per_s": round(files / seconds),
        "cpu_s": statistics.median(run["cpu_s"] for run in runs),
        "peak_rss_mb": round(max(run["peak_rss_kb"] for run in runs) / 1024, 1),
        "redis_commands": runs[0]["redis_commands"],
        "runs": runs,
    }


def bench_submit(work: Path, url: str, env: dict, quick: bool, baseline: Path | None) -> dict:
    """Each folder size in turn; with ``baseline`` (a checkout of another commit) its submit
    runs alternately with this one's, so both see the same machine load."""
    sides = {"this": env}
    if baseline is not None:
        sides["baseline"] = {**env, "PYTHONPATH": str(baseline.resolve())}
    results = {}
    for files in SUBMIT_FILES[quick]:
        folder = work / f"flat-{files}"
        make_tiny_folder(folder, files)
        runs: dict[str, list] = {side: [] for side in sides}
        for run in range(REPEATS[quick]):
            for side, side_env in sides.items():
                out = work / f"flat-out-{side}-{files}-{run}"
                runs[side].append(submit_once(folder, out, url, side_env))
        figures = {side: summarise(files, side_runs) for side, side_runs in runs.items()}
        if baseline is not None:
            figures["speed_up"] = round(
                figures["baseline"]["submit_s"] / figures["this"]["submit_s"], 2
            )
        results[str(files)] = figures
        shutil.rmtree(folder)
    results["baseline"] = str(baseline) if baseline else None
    results["note"] = (
        "wall time of `colorquant submit FOLDER -o OUT` of a flat folder of 8×8 PNGs, process "
        "start included, no worker consuming; median of repeats (sides alternate); peak RSS "
        "and CPU (user + system) from /usr/bin/time -v; redis_commands from INFO stats "
        "(total_commands_processed)"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and repeats")
    parser.add_argument("--only", default="a,b,c", help="which figures: a, b, c (comma list)")
    parser.add_argument("--tag", default="", help="results go to scale[-quick][-TAG].json")
    parser.add_argument(
        "--job-images",
        type=int,
        help="(b) images in the distributed job (default 3000, quick 1000)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="(c) also time the submit of this checkout of another commit, alternately "
        "(e.g. made by `git archive COMMIT | tar -x -C DIR`)",
    )
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    results = {
        "benchmark": "scale",
        "mode": "quick" if args.quick else "full",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory(prefix="colorquant-bench-scale-") as temp:
        work = Path(temp)
        if "a" in wanted:
            results["per_image"] = bench_per_image(work, args.quick)
        if wanted & {"b", "c"}:
            server = RedisServer(work / "redis", appendonly=False).start()
            url = server.url
            env = clean_env({"COLORQUANT_BROKER_URL": url})
            try:
                if "b" in wanted:
                    images = args.job_images or JOB_IMAGES[args.quick]
                    results["redis"] = bench_redis(work, url, env, images)
                if "c" in wanted:
                    results["submit"] = bench_submit(work, url, env, args.quick, args.baseline)
            finally:
                server.stop()
    results["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    name = "scale" + ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
    save_results(RESULTS / f"{name}.json", results)


if __name__ == "__main__":
    sys.exit(main())
