"""Palettes and formats, side by side in one run: ``python -m benchmarks.palettes [--photos N]``.

* Formats: every photo of the benchmark mix (and the two samples) quantized with the default
  settings, then encoded as PNG, lossless WebP and GIF; bytes per photo and in total.
* Shared palette vs per-image fitting, embedded: ``colorquant run`` over a folder of N photos
  (default 1,000 small crops of the samples) with ``--palette shared`` and with the default
  ``per-image``, alternated, each timed as a whole process; the figure is the ratio of medians.
* The same on workers (``--submit``): a redis-server and one ``colorquant worker -c 2`` of its
  own; ``submit --wait`` of the N photos with ``--palette shared`` and with ``per-image``,
  alternated, each timed from the submit to the job's end, while Redis's ``used_memory`` is
  sampled every SAMPLE_S against the idle broker's (workers connected, no job).

Writes ``benchmarks/results/palettes.json`` (a partial run keeps the other figures) and prints
it. ``--submit`` measures only the figures on workers.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pipeline.threads import limit_threads_env

RESULTS = Path(__file__).parent / "results" / "palettes.json"

#: Rounds of the shared-vs-per-image timing by default; each round runs both, in alternating
#: order.
ROUNDS = 2


def format_sizes() -> dict:
    from PIL import Image

    from benchmarks.inputs import mix, samples
    from pipeline.outputs import encode_image
    from pipeline.params import QuantizeParams
    from pipeline.quantize import quantize_image

    rows = []
    for path in [*samples(), *mix()]:
        image = Image.open(path).convert("RGB")
        indexed = quantize_image(image, QuantizeParams()).indexed
        row = {"photo": path.name, "megapixels": round(image.width * image.height / 1e6, 2)}
        for fmt in ("png", "webp", "gif"):
            started = time.perf_counter()
            row[fmt] = len(encode_image(indexed, fmt))
            row[f"{fmt}_ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["webp_vs_png"] = round(row["webp"] / row["png"], 3)
        rows.append(row)
    totals = {fmt: sum(row[fmt] for row in rows) for fmt in ("png", "webp", "gif")}
    return {
        "photos": rows,
        "total_bytes": totals,
        "webp_vs_png": round(totals["webp"] / totals["png"], 3),
        "gif_vs_png": round(totals["gif"] / totals["png"], 3),
        "webp_smaller_on": sum(row["webp"] < row["png"] for row in rows),
        "encode_ms": {fmt: sum(row[f"{fmt}_ms"] for row in rows) for fmt in ("png", "webp", "gif")},
    }


def photo_folder(folder: Path, count: int) -> Path:
    """``count`` photos of 0.02–0.1 MP cut from the samples (JPEG, as cameras write)."""
    import numpy as np

    from benchmarks.inputs import sample_photos

    rng = np.random.default_rng(0)
    photos = list(sample_photos().values())
    for index in range(count):
        photo = photos[index % 2]
        width, height = int(rng.integers(160, 380)), int(rng.integers(120, 270))
        left = int(rng.integers(0, photo.width - width))
        top = int(rng.integers(0, photo.height - height))
        target = folder / f"part{index % 10}" / f"photo{index:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        photo.crop((left, top, left + width, top + height)).save(target, quality=90)
    return folder


def timed_run(photos: Path, out: Path, *extra: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "cli", "run", str(photos), "-o", str(out), "-j", "2"]
    started = time.perf_counter()
    subprocess.run([*command, "--json", *extra], check=True, capture_output=True)
    return time.perf_counter() - started


def shared_vs_per_image(count: int, rounds: int = ROUNDS) -> dict:
    with tempfile.TemporaryDirectory(prefix="colorquant-palettes-") as temp:
        photos = photo_folder(Path(temp) / "photos", count)
        times = {"per-image": [], "shared": []}
        for round_index in range(rounds):
            order = ("per-image", "shared") if round_index % 2 == 0 else ("shared", "per-image")
            for palette in order:
                seconds = timed_run(photos, Path(temp) / "out", "--palette", palette)
                times[palette].append(round(seconds, 2))
    medians = {palette: statistics.median(values) for palette, values in times.items()}
    return {
        "photos": count,
        "seconds": times,
        "shared_vs_per_image": round(medians["shared"] / medians["per-image"], 3),
    }


#: Seconds between two samples of Redis's used_memory during a job on workers.
SAMPLE_S = 0.05

#: Photos of the untimed jobs that warm a fresh worker up before the timed ones.
WARM_UP_PHOTOS = 40


class MemorySampler:
    """Samples Redis's ``used_memory`` in a thread until stopped; keeps the peak."""

    def __init__(self, client):
        self.client = client
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, int(self.client.info("memory")["used_memory"]))
            time.sleep(SAMPLE_S)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def idle_memory(client, samples: int = 10) -> int:
    """The idle broker's used_memory (median of a few samples)."""
    values = []
    for _ in range(samples):
        values.append(int(client.info("memory")["used_memory"]))
        time.sleep(SAMPLE_S)
    return int(statistics.median(values))


def timed_submit(photos: Path, out: Path, env: dict, client, palette: str, count: int) -> dict:
    """One ``submit --wait`` of the photos; its seconds (whole command) and Redis's peak."""
    from harness.commands import run_colorquant

    shutil.rmtree(out, ignore_errors=True)
    with MemorySampler(client) as sampler:
        started = time.perf_counter()
        done = run_colorquant(
            "submit", photos, "-o", out, "--palette", palette, "--wait", "--json", env=env,
            timeout=1200,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["done"] == count, (done.stderr, report)
    return {"seconds": round(seconds, 2), "peak_used_memory": sampler.peak}


def shared_on_workers(count: int, rounds: int) -> dict:
    """``submit --palette shared`` vs per-image on one worker of two processes."""
    from harness.commands import clean_env
    from harness.redis_server import RedisServer
    from harness.workers import WorkerProcess

    with tempfile.TemporaryDirectory(prefix="colorquant-palettes-submit-") as temp:
        work = Path(temp)
        photos = photo_folder(work / "photos", count)
        server = RedisServer(work / "redis").start()  # AOF on, as the compose file runs it
        worker = WorkerProcess(server.url, work / "worker.log", 2)
        try:
            worker.start().wait_ready(timeout=180)
            client = server.client()
            env = clean_env({"COLORQUANT_BROKER_URL": server.url})
            warm = photo_folder(work / "warm-up", WARM_UP_PHOTOS)
            for palette in ("per-image", "shared"):  # the first jobs of a worker run slower
                timed_submit(warm, work / "out", env, client, palette, WARM_UP_PHOTOS)
            idle = idle_memory(client)
            runs = {"per-image": [], "shared": []}
            for round_index in range(rounds):
                order = ("shared", "per-image") if round_index % 2 else ("per-image", "shared")
                for palette in order:
                    run = timed_submit(photos, work / "out", env, client, palette, count)
                    runs[palette].append(run)
        finally:
            worker.reap(graceful=True, timeout=30)
            server.stop()
    medians = {p: statistics.median(r["seconds"] for r in v) for p, v in runs.items()}
    above_idle = {p: max(r["peak_used_memory"] for r in v) - idle for p, v in runs.items()}
    return {
        "photos": count,
        "worker_processes": 2,
        "seconds": {p: [r["seconds"] for r in v] for p, v in runs.items()},
        "shared_vs_per_image": round(medians["shared"] / medians["per-image"], 3),
        "per_round_ratios": round_ratios(runs),
        "idle_used_memory": idle,
        "peak_above_idle_bytes": above_idle,
    }


def round_ratios(runs: dict) -> list[float]:
    """Shared over per-image within each round (the two ran back to back): steadier than the
    ratio of medians on a machine whose load moves between rounds."""
    pairs = zip(runs["shared"], runs["per-image"], strict=True)
    return [round(shared["seconds"] / per_image["seconds"], 3) for shared, per_image in pairs]


def render_palettes() -> list[str]:
    """The README section of these figures (benchmarks.run puts it in benchmarks/README.md)."""
    lines = ["## Palettes and formats (from benchmarks/results/palettes.json)", ""]
    if not RESULTS.exists():
        return lines + ["Not measured yet: run `python -m benchmarks.palettes`.", ""]
    data = json.loads(RESULTS.read_text())
    formats, shared = data["formats"], data["shared"]
    totals = formats["total_bytes"]
    lines += [
        "| figure | value | target |",
        "|---|---|---|",
        f"| `--format webp` vs PNG, total bytes over {len(formats['photos'])} photos (mix and "
        f"samples, default settings) | {formats['webp_vs_png']}× ({totals['webp']:,} vs "
        f"{totals['png']:,} bytes; smaller on {formats['webp_smaller_on']} of "
        f"{len(formats['photos'])}) | < 1× |",
        f"| `--format gif` vs PNG | {formats['gif_vs_png']}× | (legacy) |",
        f"| `run --palette shared` vs per-image, {shared['photos']:,} photos, 2 processes, whole "
        f"command | {shared['shared_vs_per_image']}× (seconds: shared {shared['seconds']['shared']}"
        f", per-image {shared['seconds']['per-image']}) | ≤ 1.3× |",
        *submit_rows(data.get("submit")),
        "",
        f"Measured {data.get('measured_at', '?')} by `python -m benchmarks.palettes`; the figures",
        "on workers by `nice -n 5 python -m benchmarks.palettes --submit --photos 1000 --rounds 2`",
        "(3 min; its own redis-server with AOF, one `colorquant worker -c 2`, two untimed",
        "warm-up jobs; the timed jobs alternate their order per round). The shared job decodes",
        "each photo twice (count, then label) but fits once; per-image fitting decodes once and",
        "fits every photo. On workers the shared job also waits once for its slowest count chunk",
        "before the fit (the phases do not overlap). Redis holds the same per-image bookkeeping",
        "for both (rows, statuses); the shared job's colour counts live in",
        "`OUT/.colorquant/JOB/counts/`, not in Redis.",
        "",
    ]
    return lines


def submit_rows(submit: dict | None) -> list[str]:
    """The table rows of the figures on workers, when measured."""
    if not submit:
        return []
    above = {p: round(b / 2**20, 2) for p, b in submit["peak_above_idle_bytes"].items()}
    seconds = submit["seconds"]
    return [
        f"| `submit --palette shared` vs per-image, {submit['photos']:,} photos, one worker of "
        f"{submit['worker_processes']} processes, submit to end | {submit['shared_vs_per_image']}× "
        f"(per round: {submit['per_round_ratios']}; seconds: shared {seconds['shared']}, "
        f"per-image {seconds['per-image']}; measured "
        f"{submit['measured_at']}) | ≤ 1.3× |",
        f"| Redis `used_memory` during that job, peak above the idle broker | shared "
        f"{above['shared']} MiB (per-image {above['per-image']} MiB) | ≤ 20 MB |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos of the shared job")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timing rounds")
    parser.add_argument("--submit", action="store_true", help="only the figures on workers")
    args = parser.parse_args()
    limit_threads_env()
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.submit:
        results = {"submit": {**shared_on_workers(args.photos, args.rounds), "measured_at": now}}
    else:
        results = {
            "measured_at": now,
            "formats": format_sizes(),
            "shared": shared_vs_per_image(args.photos, args.rounds),
        }
    previous = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results = {**previous, **results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
