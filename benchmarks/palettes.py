"""Palettes and formats, side by side in one run: ``python -m benchmarks.palettes [--photos N]``.

* Formats: every photo of the benchmark mix (and the two samples) quantized with the default
  settings, then encoded as PNG, lossless WebP and GIF; bytes per photo and in total.
* Shared palette vs per-image fitting, embedded: ``colorquant run`` over a folder of N photos
  (default 1,000 small crops of the samples) with ``--palette shared`` and with the default
  ``per-image``, alternated, each timed as a whole process; the figure is the ratio of medians.

Writes ``benchmarks/results/palettes.json`` and prints it.
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
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
        "",
        f"Measured {data.get('measured_at', '?')} by `python -m benchmarks.palettes`. The shared",
        "job decodes each photo twice (count, then label) but fits once; per-image fitting",
        "decodes once and fits every photo.",
        "",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="photos of the shared job")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="timing rounds")
    args = parser.parse_args()
    limit_threads_env()
    results = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "formats": format_sizes(),
        "shared": shared_vs_per_image(args.photos, args.rounds),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
