"""Dithering side by side with pngquant's default: perceived quality, file size and cost.

``python -m benchmarks.dither`` (about 15 minutes; ``--quick``: K=64 and three photos;
``--timing-only``: the steady-state time alone, about a minute) prints a
Markdown summary and writes ``results/dither.json``. On every photo :func:`inputs.real_photos`
gives, at K = 16, 64 and 256:

* SSIMULACRA2 and PNG bytes of pngquant's default (``pngquant K --speed 1``, dithered), of
  colorquant without dithering, and of colorquant at each dithering level (one k-means fit
  per photo and K, then the same palette labelled at every level, so the levels differ only in
  the dithering);
* then, on the benchmark mix at K=64, the steady-state time per photo (quantize + PNG write of
  decoded images, one thread) of the seed's method, colorquant at the default level and
  colorquant ``--dither 0``, taking turns round by round so a burst of load hits all alike.
"""

import argparse
import io
import json
import statistics
import time
from pathlib import Path

from PIL import Image

from benchmarks import inputs, methods
from pipeline.metrics import ssimulacra2_score
from pipeline.params import QuantizeParams
from pipeline.quantize import label_image, quantize_image
from pipeline.save import png_bytes
from pipeline.settings import DEFAULT_DITHER
from pipeline.threads import limit_threads_now

#: Palette sizes of the perceptual-quality target (K = 16, 64, 256).
KS = (16, 64, 256)

#: Dithering levels measured side by side (0 is colorquant without dithering).
LEVELS = (0.0, 0.5, 0.75, DEFAULT_DITHER)

#: Rounds of the timing comparison (the median is kept).
TIMING_ROUNDS = 5

RESULTS = Path(__file__).parent / "results" / "dither.json"

#: The rendered section, which ``benchmarks.run`` includes in benchmarks/README.md.
SECTION = RESULTS.with_name("dithering.md")


def quality(photos: dict, ks, levels) -> list[dict]:
    """One row per photo and K: SSIMULACRA2 and bytes of pngquant's default and each level."""
    rows = []
    for k in ks:
        for name, image in photos.items():
            row = {"photo": name, "k": k, "pixels": image.width * image.height}
            theirs = methods.pngquant_png(image, k, dithered=True)
            with Image.open(io.BytesIO(theirs)) as result:
                row["pngquant"] = _measure(image, result.convert("RGB"), len(theirs))
            palette = quantize_image(image, QuantizeParams(k=k, dither=0)).palette
            for level in levels:
                result = label_image(image, palette, dither=level).indexed
                row[str(level)] = _measure(image, result, len(png_bytes(result)))
            rows.append(row)
            print(_row_line(row, levels), flush=True)
    return rows


def _measure(source, result, size: int) -> dict:
    return {"ssimulacra2": round(ssimulacra2_score(source, result), 3), "bytes": size}


def _row_line(row: dict, levels) -> str:
    scores = " ".join(f"{level}:{row[str(level)]['ssimulacra2']:.1f}" for level in levels)
    return (
        f"  k={row['k']} {row['photo']:22s} pngquant {row['pngquant']['ssimulacra2']:.1f} {scores}"
    )


def steady_state(paths: list[Path], k: int, rounds: int) -> dict:
    """CPU seconds per photo of quantize + write, per method; the median over rounds. CPU time
    of this process (one thread): the shared machine's other work does not inflate it."""
    from pipeline.load import load_image

    images = [load_image(path, path.parent).image for path in paths]
    contenders = {
        "seed": lambda image: methods.seed(image, k),
        "default": lambda image: quantize_image(image, QuantizeParams(k=k)).indexed,
        "dither0": lambda image: quantize_image(image, QuantizeParams(k=k, dither=0)).indexed,
    }
    samples = {name: [] for name in contenders}
    for method in contenders.values():
        png_bytes(method(images[0]))  # imports and first-call costs
    for _ in range(rounds):
        for name, method in contenders.items():
            started = time.process_time()
            for image in images:
                png_bytes(method(image))
            samples[name].append((time.process_time() - started) / len(images))
    return {name: statistics.median(values) for name, values in samples.items()}


def summarise(rows: list[dict], levels) -> list[str]:
    """Per K: mean SSIMULACRA2, photos won against pngquant, total bytes against pngquant's."""
    lines = [
        "| K | method | mean SSIMULACRA2 | photos above pngquant | bytes vs pngquant |",
        "|---|---|---|---|---|",
    ]
    for k in sorted({row["k"] for row in rows}):
        at_k = [row for row in rows if row["k"] == k]
        their_bytes = sum(row["pngquant"]["bytes"] for row in at_k)
        theirs = statistics.mean(row["pngquant"]["ssimulacra2"] for row in at_k)
        lines.append(f"| {k} | {methods.PNGQUANT_DEFAULT_LABEL} | {theirs:.2f} | | 1.00× |")
        for level in levels:
            key = str(level)
            mean = statistics.mean(row[key]["ssimulacra2"] for row in at_k)
            wins = sum(row[key]["ssimulacra2"] > row["pngquant"]["ssimulacra2"] for row in at_k)
            ratio = sum(row[key]["bytes"] for row in at_k) / their_bytes
            name = f"colorquant --dither {level:g}" + (
                " (default)" if level == DEFAULT_DITHER else ""
            )
            lines.append(f"| {k} | {name} | {mean:.2f} | {wins}/{len(at_k)} | {ratio:.3f}× |")
    return lines


def per_photo(rows: list[dict]) -> list[str]:
    """The default level against pngquant on each photo."""
    key = str(DEFAULT_DITHER)
    lines = ["| photo | K | pngquant | colorquant | bytes vs pngquant |", "|---|---|---|---|---|"]
    for row in rows:
        ours, theirs = row[key], row["pngquant"]
        lines.append(
            f"| {row['photo']} | {row['k']} | {theirs['ssimulacra2']:.2f} | "
            f"{ours['ssimulacra2']:.2f} | {ours['bytes'] / theirs['bytes']:.3f}× |"
        )
    return lines


def render_dithering(path: Path = RESULTS) -> list[str]:
    """The Dithering section of benchmarks/README.md, from ``results/dither.json``."""
    lines = ["## Dithering (from benchmarks/results/dither.json)", ""]
    if not path.exists():
        return lines + ["Not measured yet: run `python -m benchmarks.dither`.", ""]
    data = json.loads(path.read_text())
    rows, timing = data["rows"], data["steady_s"]
    levels = [float(key) for key in rows[0] if key not in ("photo", "k", "pixels", "pngquant")]
    lines += [
        f"Measured {data['measured']} on {len(rows) // len({row['k'] for row in rows})} real "
        "photos that scikit-learn, scikit-image and matplotlib ship. One k-means fit per photo "
        "and K; every level labels that same palette. SSIMULACRA2: higher is better.",
        "",
        *summarise(rows, levels),
        "",
        f"Per photo, the default level ({DEFAULT_DITHER:g}):",
        "",
        *per_photo(rows),
        "",
        "Steady-state time per photo, benchmark mix, K=64, one thread (quantize + PNG write, "
        f"decoded images; {data.get('steady_clock', 'wall clock')}, measured "
        f"{data.get('steady_measured', data['measured'])}):",
        "",
        "| method | ms per photo | ratio to seed |",
        "|---|---|---|",
    ]
    for name, seconds in timing.items():
        lines.append(
            f"| {TIMING_LABELS[name]} | {seconds * 1000:.1f} | {seconds / timing['seed']:.2f} |"
        )
    return lines + [""] + targets(rows, timing) + [""]


#: The targets for the default output: total bytes against pngquant's default, and
#: steady-state time against the seed's method.
BYTES_TARGET, TIME_TARGET = 1.1, 0.8


def targets(rows: list[dict], timing: dict) -> list[str]:
    """The dithering targets, met or not, from the figures above."""
    key, lines = str(DEFAULT_DITHER), ["Targets:", ""]
    for k in sorted({row["k"] for row in rows}):
        at_k = [row for row in rows if row["k"] == k]
        wins = sum(row[key]["ssimulacra2"] > row["pngquant"]["ssimulacra2"] for row in at_k)
        ours = sum(row[key]["bytes"] for row in at_k)
        ratio = ours / sum(row["pngquant"]["bytes"] for row in at_k)
        met = wins == len(at_k) and ratio <= BYTES_TARGET
        lines.append(
            f"- K={k}: the default beats pngquant's default on {wins}/{len(at_k)} photos at "
            f"{ratio:.2f}× its bytes (target: every photo, ≤ {BYTES_TARGET}×): "
            f"{'met' if met else 'missed'}."
        )
    ratio = timing["default"] / timing["seed"]
    lines.append(
        f"- Steady-state time with dithering: {ratio:.2f}× the seed's (target ≤ {TIME_TARGET}×): "
        f"{'met' if ratio <= TIME_TARGET else 'missed'}."
    )
    return lines


#: How the steady-state time is measured (see :func:`steady_state`).
CLOCK = "CPU time"


def timing_only() -> None:
    """Re-measure the steady-state time into ``results/dither.json``, keeping its quality rows,
    and re-render this section and the README."""
    from benchmarks import run

    data = json.loads(RESULTS.read_text())
    data["steady_s"] = steady_state(inputs.mix(), 64, TIMING_ROUNDS)
    data["steady_clock"] = CLOCK
    data["steady_measured"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    SECTION.write_text("\n".join(render_dithering(RESULTS)) + "\n")
    run.README.write_text(run.render(json.loads((run.RESULTS / "performance.json").read_text())))


TIMING_LABELS = {
    "seed": "seed (1,000 px KMeans + predict)",
    "default": "colorquant default (dithered)",
    "dither0": "colorquant --dither 0",
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K=64 and three photos only")
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="re-measure only the steady-state time (keep the quality rows)",
    )
    args = parser.parse_args(argv)
    limit_threads_now()
    if args.timing_only:
        return timing_only()
    photos = {path.stem: Image.open(path).convert("RGB") for path in inputs.real_photos()}
    ks = (64,) if args.quick else KS
    if args.quick:
        photos = {name: photos[name] for name in list(photos)[:3]}
    rows = quality(photos, ks, LEVELS)
    timing = steady_state(inputs.mix(), 64, 2 if args.quick else TIMING_ROUNDS)
    measured = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    data = {"measured": measured, "rows": rows, "steady_s": timing, "steady_clock": CLOCK}
    path = RESULTS.with_name("dither-quick.json") if args.quick else RESULTS
    path.write_text(json.dumps(data, indent=1) + "\n")
    section = "\n".join(render_dithering(path))
    if not args.quick:
        SECTION.write_text(section + "\n")
    print(section)


if __name__ == "__main__":
    main()
