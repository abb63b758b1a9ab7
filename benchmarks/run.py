"""Every competitor side by side, in one run: ``python -m benchmarks.run [--quick]``.

Writes ``benchmarks/README.md`` (tables and the project's targets, met or not),
``benchmarks/psnr_vs_time.png`` and ``benchmarks/results/performance.json``.

* Photos: scikit-learn's china.jpg and flower.jpg (as lossless PNG copies), and a folder mix of
  ten 0.1–2 MP photos made from them (see benchmarks/inputs.py). Per method: the quantization
  time (median of repeats) and the PSNR against the source.
* Steady state on the mix: the whole per-file path (decode, quantize, indexed-PNG write) over N
  photos and over 5N photos in one process; the difference over 4N is the time per photo without
  start-up. The seed's method, the codec floor (Pillow's octree) and colorquant.
* The 24 MP photo: each method in a fresh process (benchmarks/big.py), after a warm-up, so the
  time excludes start-up; peak RSS is the process's VmHWM.
* The distributed figures (submit throughput, 1 vs 2 workers) from
  benchmarks/results/distributed.json, written by ``python -m benchmarks.distributed``.

One BLAS/OpenMP thread everywhere, as in a worker. Ratios, not absolute times, are the claims:
the machine is shared and noisy, and every figure in one table comes from the same run.
"""

from pipeline.threads import limit_threads_env

limit_threads_env()  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks import inputs, methods  # noqa: E402
from benchmarks import report as report_benchmark  # noqa: E402
from benchmarks.palettes import render_palettes  # noqa: E402
from pipeline.load import load_image  # noqa: E402
from pipeline.save import png_bytes  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE / "README.md"
PLOT = HERE / "psnr_vs_time.png"

#: The project's performance and quality targets.
STEADY_RATIO_TARGET = 0.8
PSNR_MARGIN_DB = 0.1
BIG_FLOOR_RATIO_TARGET = 1.5
BIG_RSS_TARGET_MB = 300

#: 24 MP targets of the perceptual modes at K=64: time against the codec floor, by method.
BIG_MODE_TARGETS = {"colorquant_default": 2.0, "colorquant_undithered": 1.5}

#: A method slower than this per call is timed once, not repeated.
SLOW_S = 2.0


def psnr(source: Image.Image, result: Image.Image) -> float:
    """PSNR (dB, 0–255 scale) over all pixels and RGB channels, computed in strips."""
    total, rows = 0, 256
    width, height = source.size
    result = result.convert("RGB")
    for top in range(0, height, rows):
        box = (0, top, width, min(height, top + rows))
        a = np.asarray(source.crop(box), dtype=np.int64)
        b = np.asarray(result.crop(box), dtype=np.int64)
        total += int(((a - b) ** 2).sum())
    mse = total / (width * height * 3)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def timed(call, repeats: int):
    """(median seconds, last result) over ``repeats`` calls; a slow call is made only once."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
        if times[-1] > SLOW_S:
            break
    return statistics.median(times), result


class Photos:
    """Decoded photos and, for pngquant, lossless PNG copies of them."""

    def __init__(self, paths: list[Path], folder: Path):
        self.paths = paths
        self.images = {p.name: load_image(p, p.parent).image for p in paths}
        self.png = {}
        for name, image in self.images.items():
            png = folder / (Path(name).stem + ".png")
            image.save(png, compress_level=1)
            self.png[name] = png


def _bind(function, *args):
    return lambda: function(*args)


#: Side of the crop each method runs on once, untimed, before any timing (see warm_up_methods).
WARM_UP_SIDE = 64


def warm_up_methods(photos: Photos, keys: list[str]) -> None:
    """Pay every start-up cost before anything is timed: colorquant's compiled loops (numba
    compiles them on their first call after a code change, 3-4 s, which ``timed`` would report
    as the first photo's time, since a call over SLOW_S is not repeated), then one call of each
    method on a small crop (its imports and first-call costs)."""
    from pipeline.threads import warm_up

    warm_up()
    crop = next(iter(photos.images.values())).crop((0, 0, WARM_UP_SIDE, WARM_UP_SIDE))
    for key in keys:
        methods.BY_KEY[key](crop, 16)


def per_photo(photos: Photos, keys: list[str], ks, repeats: int, full_on: dict, folder: Path):
    """{k: {method: {photo: {"s", "psnr"}}}}: quantization time and PSNR per photo, each method
    warmed up first."""
    warm_up_methods(photos, keys)
    table = {}
    for k in ks:
        table[k] = {}
        for key in keys:
            rows = {}
            for name, image in photos.images.items():
                if key == "full" and name not in full_on[k]:
                    continue
                call = _bind(methods.BY_KEY[key], image, k)
                seconds, indexed = timed(call, repeats)
                rows[name] = {"s": seconds, "psnr": psnr(image, indexed)}
                print(
                    f"  k={k} {key:18s} {name:22s} {seconds * 1000:9.1f} ms "
                    f"{rows[name]['psnr']:.3f} dB",
                    flush=True,
                )
            table[k][key] = rows
        if methods.pngquant_available():
            rows = {}
            for name, image in photos.images.items():
                out = folder / f"pq-{k}-{Path(name).stem}.png"
                seconds, _ = timed(_bind(methods.pngquant, photos.png[name], k, out), repeats)
                with Image.open(out) as result:
                    rows[name] = {"s": seconds, "psnr": psnr(image, result)}
            table[k]["pngquant"] = rows
    return table


def steady_state(
    paths: list[Path], keys: list[str], ks, rounds: int, folder: Path, cpu: dict | None = None
) -> dict:
    """{k: {method: seconds per photo}} from (time of 5N photos − time of N photos) / 4N.

    The methods take turns round by round, so a burst of load on the shared machine hits them
    alike; each figure is the median over the rounds. ``cpu``, when given, receives the same
    figures in this process's CPU time (per core, and less disturbed by other work).
    """

    def one_pass(method, k):
        for path in paths:
            image = load_image(path, path.parent).image
            (folder / "steady.png").write_bytes(png_bytes(method(image, k)))

    def timed_passes(method, k, count):
        wall, used = time.perf_counter(), time.process_time()
        for _ in range(count):
            one_pass(method, k)
        return time.perf_counter() - wall, time.process_time() - used

    out = {}
    for k in ks:
        samples = {key: [] for key in keys}
        cpu_samples = {key: [] for key in keys}
        for key in keys:
            one_pass(methods.BY_KEY[key], k)  # warm-up: imports and first-call costs
        for _ in range(rounds):
            for key in keys:
                method = methods.BY_KEY[key]
                small = timed_passes(method, k, 1)
                large = timed_passes(method, k, 5)
                samples[key].append((large[0] - small[0]) / (4 * len(paths)))
                cpu_samples[key].append((large[1] - small[1]) / (4 * len(paths)))
        out[k] = {key: statistics.median(values) for key, values in samples.items()}
        if cpu is not None:
            cpu[k] = {key: statistics.median(values) for key, values in cpu_samples.items()}
        for key, seconds in out[k].items():
            print(f"  steady k={k} {key:12s} {seconds * 1000:8.1f} ms/photo", flush=True)
    return out


def big_photo(path: Path, runs: list[tuple[str, int]]) -> dict:
    """{f"{method}@{k}": figures} from a fresh process each (benchmarks/big.py)."""
    fill_compile_cache()
    out = {}
    for key, k in runs:
        if key == "pngquant":
            if not methods.pngquant_available():
                continue
            png = path.with_suffix(".png")
            if not png.exists():
                Image.open(path).save(png, compress_level=1)
            target = png
        else:
            target = path
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.big", key, str(k), str(target)],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            check=True,
        )
        out[f"{key}@{k}"] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  24MP {key}@{k}: {out[f'{key}@{k}']}", flush=True)
    return out


def fill_compile_cache() -> None:
    """Load or compile the numba loops in a throwaway process, as a worker's warm-up does: the
    first process after a code change compiles them, and LLVM's memory would count in its peak
    (345 instead of 285 MB for the default on the 24 MP photo)."""
    warm = "from pipeline.threads import warm_up; warm_up()"
    subprocess.run([sys.executable, "-c", warm], cwd=HERE.parent, check=True)


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def label(key: str) -> str:
    plain = key.endswith("+plain-decode")
    key = key.removesuffix("+plain-decode")
    name = methods.PNGQUANT_LABEL if key == "pngquant" else methods.LABELS[key]
    return f"{name}, plain decode" if plain else name


def table_head(title: str, notes: list[str], header: str) -> list[str]:
    """The first lines of a README section: its title, notes, and a table's header row."""
    rule = "|" + "---|" * header.count(" | ") + "---|"
    return [title, "", *notes, *([""] if notes else []), header, rule]


def render(data: dict) -> str:
    """The README: targets first, then every table, the plot and the distributed figures."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m benchmarks.run` (about 10 minutes; `--quick`: K=64 only, fewer",
        "repeats, full-data KMeans on the smaller photos only; `--big-only`: re-measure the 24 MP",
        "photo and keep the rest of `results/performance.json`; `--samples-only`: the same for",
        "china.jpg and flower.jpg). Every figure below comes",
        f"from one run on this machine ({data['machine']}), measured {data['measured_at']}, one",
        "BLAS/OpenMP thread per process. The machine is shared and noisy: the claims are ratios",
        "within one run, not absolute times.",
        "",
        f"Mode: **{'quick' if data['quick'] else 'full'}**.",
        "",
    ]
    lines += render_targets(data)
    lines += render_steady(data)
    lines += render_mix(data)
    lines += render_samples(data)
    lines += render_big(data)
    lines += render_distributed()
    lines += included_sections()
    lines += report_benchmark.render_section()
    lines += render_palettes()
    lines += [
        "## How it is measured",
        "",
        "- Inputs (made by `benchmarks/inputs.py`, cached in the temp folder): china.jpg and",
        "  flower.jpg from scikit-learn (427×640, as lossless PNG copies); a mix of ten 0.1–2 MP",
        "  JPEG photos (crops and rescales of both); a 6000×4000 JPEG made from both.",
        "- seed = the scikit-learn example: `KMeans(n_clusters=k, random_state=0)` fitted",
        "  on `shuffle(pixels / 255, random_state=0, n_samples=1_000)`, then `predict` on every",
        "  pixel.",
        "  full-data KMeans = `KMeans(n_clusters=k, random_state=0)` on every pixel.",
        "  Pillow: `Image.quantize(k, method=MEDIANCUT)`, the same with `kmeans=1`, and",
        "  `FASTOCTREE`; the codec floor is decode + FASTOCTREE + the same indexed-PNG write.",
        "  pngquant: `pngquant --speed 1 --nofs k` on a PNG copy, timed as a whole process.",
        "- Per-photo times: the median of 3 calls (one, for a call over 2 s), after start-up:",
        "  colorquant's compiled loops are loaded (compiled, after a code change) and every method",
        "  runs once on a small crop before anything is timed.",
        "- PSNR: 10·log10(255²/MSE) over all pixels and the three channels, recomputed here from",
        "  the source and each method's output.",
        "- Steady state: (time of 5N photos − time of N photos) / 4N, in one process, N = the ten",
        "  photos of the mix; each photo is decoded with `pipeline.load.load_image`, quantized and",
        "  written with `pipeline.save.png_bytes`; median of the rounds.",
        "- 24 MP: `python -m benchmarks.big METHOD K PATH` in a fresh process, once a throwaway",
        "  process has filled numba's cache: it warms up on a",
        "  small image, then times decode, quantize and write; peak RSS is the process's VmHWM",
        "  (`ru_maxrss` would inherit the benchmark process's own peak through fork).",
        "",
    ]
    return "\n".join(lines) + "\n"


#: Sections other benchmarks write (markdown), shown in the README after this one's tables.
INCLUDED_SECTIONS = ("quality.md", "fit_stages.md", "dithering.md", "scale.md", "first_run.md")


def included_sections() -> list[str]:
    """The sections the quality, dithering and scale benchmarks write, when present."""
    lines = []
    for name in INCLUDED_SECTIONS:
        path = RESULTS / name
        if path.exists():
            lines += [path.read_text().rstrip("\n"), ""]
    return lines


def render_targets(data: dict) -> list[str]:
    lines = table_head(
        "## Targets",
        [],
        "| target | K | reached | met |",
    )
    for k in data["ks"]:
        steady = data["steady"].get(str(k)) or data["steady"].get(k)
        if steady and "seed" in steady:
            ratio = steady["colorquant"] / steady["seed"]
            lines.append(
                f"| steady-state time per photo ≤ {STEADY_RATIO_TARGET}× the seed's "
                f"(measured {data['measured_at'][:10]}; later figures: the quality section below) "
                f"| {k} | {ratio:.2f}× ({ms(steady['colorquant'])} vs {ms(steady['seed'])} ms) | "
                f"{'yes' if ratio <= STEADY_RATIO_TARGET else 'no'} |"
            )
        mix = data["mix"][str(k)]
        ours = mean(r["psnr"] for r in mix["colorquant"].values())
        full_names = list(mix.get("full", {}))
        if full_names:
            ours_same = mean(mix["colorquant"][n]["psnr"] for n in full_names)
            full = mean(mix["full"][n]["psnr"] for n in full_names)
            gap = ours_same - full
            lines.append(
                f"| mean PSNR ≥ full-data KMeans − {PSNR_MARGIN_DB} dB | {k} | {gap:+.3f} dB "
                f"({ours_same:.3f} vs {full:.3f}, {len(full_names)} photos) | "
                f"{'yes' if gap >= -PSNR_MARGIN_DB else 'no'} |"
            )
        if "pngquant" in mix:
            pq = mean(r["psnr"] for r in mix["pngquant"].values())
            lines.append(
                f"| mean PSNR ≥ pngquant --speed 1 --nofs | {k} | {ours - pq:+.3f} dB "
                f"({ours:.3f} vs {pq:.3f}) | {'yes' if ours >= pq else 'no'} |"
            )
        big = data["big"]
        if f"colorquant@{k}" in big and "octree@64" in big:
            floor = big["octree@64"]
            lines += big_target_rows(
                "", k, big[f"colorquant@{k}"], floor, BIG_FLOOR_RATIO_TARGET,
                f" (codec floor process: {floor['max_rss_mb']:.0f} MB)",
            )  # fmt: skip
    lines += render_big_modes(data["big"])
    plain = data["big"].get("colorquant+plain-decode@64")
    if plain:
        rss = plain["max_rss_mb"]
        lines.append(
            f"| 24 MP peak RSS ≤ {BIG_RSS_TARGET_MB} MB, bare decode instead of `load_image` "
            f"| 64 | {rss:.0f} MB | {'yes' if rss <= BIG_RSS_TARGET_MB else 'no'} |"
        )
        lines += [
            "",
            "Peak RSS of the 24 MP photo (`--space rgb --dither 0`, K=64, read from VmRSS at each",
            "stage): 30 MB the interpreter with NumPy and Pillow; 150 MB once warmed up, numba",
            "being 64 MB on import and about 55 MB more with its first compiled loops (LLVM; numba",
            "is loaded without scipy's BLAS, which took 18 MB more); 248 MB with the decoded photo",
            "(96 MB: Pillow keeps RGB in 4 bytes a pixel); 255 MB after the histogram and the fit;",
            "the peak while labelling ends, with the labels (24 MB, a byte per pixel: the result)",
            "and each distinct colour's label (under 4 MB). The dithered mode peaks as its",
            "dithering ends, the same way. Quantization works in strips, the decoded photo is",
            "freed before the PNG is written, and the default fit does not load scikit-learn",
            "(100 MB).",
            "The codec floor's peak is inside Pillow's octree quantizer: its process holds 137 MB",
            "with the decoded photo, 320 MB while quantizing.",
            "`pipeline.load.load_image` applies the EXIF orientation in place, so it costs no",
            "second copy: compare the “plain decode” row, which decodes with a bare",
            "`Image.open(...).load()`.",
        ]
    lines += ["", f"![PSNR against time per photo, mix, K=64]({PLOT.name})", ""]
    return lines


def render_big_modes(big: dict) -> list[str]:
    """Target rows of the perceptual modes on the 24 MP photo (time against the floor, RSS)."""
    floor = big.get("octree@64")
    lines = []
    for key, limit in BIG_MODE_TARGETS.items():
        row = big.get(f"{key}@64")
        if row and floor:
            lines += big_target_rows(f", {methods.LABELS[key]}", 64, row, floor, limit)
    return lines


def big_target_rows(mode: str, k: int, row: dict, floor: dict, limit: float, note: str = ""):
    """The two target rows of one 24 MP measurement: its time against the codec floor's, and
    its peak RSS (``mode``: the mode's name after the target, empty for the PSNR mode)."""
    ratio, rss = row["total_s"] / floor["total_s"], row["max_rss_mb"]
    return [
        f"| 24 MP time{mode} ≤ {limit}× the codec floor | {k} | {ratio:.2f}× "
        f"({row['total_s']:.2f} s vs {floor['total_s']:.2f} s) | "
        f"{'yes' if ratio <= limit else 'no'} |",
        f"| 24 MP peak RSS{mode} ≤ {BIG_RSS_TARGET_MB} MB | {k} | {rss:.0f} MB{note} "
        f"| {'yes' if rss <= BIG_RSS_TARGET_MB else 'no'} |",
    ]


def render_steady(data: dict) -> list[str]:
    lines = table_head(
        "## Steady-state time per photo (mix of ten 0.1–2 MP photos, decode + quantize + write)",
        [],
        "| K | method | ms per photo | ratio to seed |",
    )
    for k, row in data["steady"].items():
        for key, seconds in row.items():
            lines.append(f"| {k} | {label(key)} | {ms(seconds)} | {seconds / row['seed']:.2f} |")
    return lines + [""]


def render_mix(data: dict) -> list[str]:
    lines = table_head(
        "## Mix of ten 0.1–2 MP photos: quantization time and PSNR",
        [
            "Time is the quantization alone (decode and write excluded), mean over the",
            "photos of the median of repeats; pngquant is its whole process. The last column",
            "compares with full-data KMeans on the photos it ran on: all ten at K=16 and 64,",
            "the six smaller at K=256 and in a quick run (it costs 20–150× the seed's time).",
        ],
        "| K | method | mean ms per photo | ratio to seed | mean PSNR (dB) | PSNR − full KMeans "
        "(same photos) |",
    )
    for k, table in data["mix"].items():
        seed_s = mean(r["s"] for r in table["seed"].values())
        full = table.get("full", {})
        for key, rows in table.items():
            s = mean(r["s"] for r in rows.values())
            p = mean(r["psnr"] for r in rows.values())
            gap = ""
            if full and key != "full":
                gap = f"{mean(rows[n]['psnr'] - full[n]['psnr'] for n in full):+.3f}"
            elif key == "full":
                gap = f"({len(full)} photos)"
            lines.append(f"| {k} | {label(key)} | {ms(s)} | {s / seed_s:.2f} | {p:.3f} | {gap} |")
    return lines + [""]


def render_samples(data: dict) -> list[str]:
    header = "| K | method | china ms | china PSNR | flower ms | flower PSNR | time ratio to seed |"
    lines = table_head("## china.jpg and flower.jpg", [], header)
    for k, table in data["samples"].items():
        seed_s = mean(r["s"] for r in table["seed"].values())
        for key, rows in table.items():
            china, flower = rows.get("china.png"), rows.get("flower.png")
            if not china or not flower:
                continue
            ratio = mean(r["s"] for r in rows.values()) / seed_s
            lines.append(
                f"| {k} | {label(key)} | {ms(china['s'])} | {china['psnr']:.3f} | "
                f"{ms(flower['s'])} | {flower['psnr']:.3f} | {ratio:.2f} |"
            )
    if "samples_measured_at" in data:
        lines += [
            "",
            f"Re-measured {data['samples_measured_at']} by `python -m benchmarks.run "
            f"--samples-only`, load average {data.get('samples_load_average', '?')} at the end "
            "(other work shared the 2 cores).",
        ]
    return lines + [""]


def render_big(data: dict) -> list[str]:
    big = data["big"]
    if not big:
        return []
    floor = big.get("octree@64")
    lines = table_head(
        "## One 24-megapixel photo (6000×4000 JPEG), fresh process, beyond start-up",
        [],
        "| method | K | decode s | quantize s | write s | total s | ratio to floor | peak RSS MB |",
    )
    for name, row in big.items():
        key, k = name.split("@")
        ratio = f"{row['total_s'] / floor['total_s']:.2f}" if floor else ""

        def cell(field, row=row):
            return f"{row[field]:.2f}" if field in row else "—"

        lines.append(
            f"| {label(key)} | {k} | {cell('decode_s')} | {cell('quantize_s')} | {cell('write_s')}"
            f" | {row['total_s']:.2f} | {ratio} | {row['max_rss_mb']:.0f} |"
        )
    if "big_measured_at" in data:
        lines += [
            "",
            f"Re-measured {data['big_measured_at']} by `python -m benchmarks.run --big-only`, "
            f"load average {data.get('big_load_average', '?')} at the end (other work shared "
            "the 2 cores).",
        ]
    lines += [
        "",
        "pngquant reads a PNG copy of the photo and writes its own PNG (its time includes both).",
        "“plain decode” rows decode with a bare `Image.open(...).load()` instead of",
        "`pipeline.load.load_image` (format allowlist, pixel limit, EXIF orientation in place),",
        "to show what the safe loader costs.",
        "",
    ]
    return lines


def render_distributed() -> list[str]:
    path = RESULTS / "distributed.json"
    lines = ["## Distributed (from benchmarks/results/distributed.json)", ""]
    if not path.exists():
        return lines + ["Not measured yet: run `python -m benchmarks.distributed`.", ""]
    data = json.loads(path.read_text())
    submit, workers = data.get("submit", {}), data.get("workers", {})
    lines += ["| figure | value | target |", "|---|---|---|"]
    if submit:
        lines.append(
            f"| `submit` of {submit.get('files', '?'):,} files | "
            f"{submit.get('colorquant_submit_files_per_s', '?'):,} files/s "
            f"({submit.get('colorquant_submit_s', '?')} s, process start included) | ≥ 10,000/s |"
        )
        lines.append(
            f"| plain `apply_async` loop | {submit.get('apply_async_loop_files_per_s', '?'):,} "
            f"files/s (speed-up {submit.get('speedup', '?')}×) | anchor |"
        )
    if workers:
        lines.append(
            f"| 2 worker processes vs 1 ({workers.get('photos', '?')} photos) | "
            f"{workers.get('ratio', '?')}× ({workers.get('one_process_photos_per_s', '?')} → "
            f"{workers.get('two_processes_photos_per_s', '?')} photos/s) | ≥ 1.85× |"
        )
    lines += [
        "",
        f"Measured {data.get('measured_at', '?')} by `python -m benchmarks.distributed`.",
        "",
    ]
    return lines


def plot(data: dict, k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = data["mix"][str(k)]
    figure, axes = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    for key, rows in table.items():
        s = mean(r["s"] for r in rows.values()) * 1000
        p = mean(r["psnr"] for r in rows.values())
        colour = "tab:red" if key == "colorquant" else "tab:blue"
        axes.scatter([s], [p], s=50, color=colour, zorder=3)
        axes.annotate(label(key), (s, p), textcoords="offset points", xytext=(6, 4), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel(
        "mean time per photo (ms, log scale; quantization only, pngquant whole process)"
    )
    axes.set_ylabel("mean PSNR (dB)")
    axes.set_title(f"Mix of ten 0.1–2 MP photos, K={k}")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(PLOT)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="K=64 only, fewer repeats")
    parser.add_argument(
        "--big-only",
        action="store_true",
        help="re-measure only the 24 MP photo; keep the rest of results/performance.json",
    )
    parser.add_argument(
        "--samples-only",
        action="store_true",
        help="re-measure only china.jpg and flower.jpg; keep the rest of results/performance.json",
    )
    args = parser.parse_args(argv)
    if args.samples_only:
        _remeasure_samples()
        return
    if args.big_only:
        data = json.loads((RESULTS / "performance.json").read_text())
        ks = [int(k) for k in data["ks"]]
        data["big"] = big_photo(inputs.big_photo(), _big_runs(ks, data["quick"]))
        data["big_measured_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data["big_load_average"] = [round(x, 1) for x in __import__("os").getloadavg()]
        _write(data)
        return
    ks = (64,) if args.quick else (16, 64, 256)
    repeats, rounds = (3, 1) if args.quick else (3, 2)
    keys = list(methods.LABELS)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print("inputs", flush=True)
        mix_paths, sample_paths, big = inputs.mix(), inputs.samples(), inputs.big_photo()
        mix, samples = Photos(mix_paths, folder), Photos(sample_paths, folder)
        # Full-data KMeans costs 20-150× the seed: the quick run and K=256 use the smaller six.
        small_six = list(mix.images)[:6]
        full_on = {k: small_six if args.quick or k == 256 else list(mix.images) for k in ks}
        print("samples", flush=True)
        everything = {k: list(samples.images) for k in ks}
        sample_table = per_photo(samples, keys, ks, repeats, everything, folder)
        print("mix", flush=True)
        mix_table = per_photo(mix, keys, ks, repeats, full_on, folder)
        print("steady state", flush=True)
        steady = steady_state(mix_paths, ["seed", "octree", "colorquant"], ks, rounds, folder)
        print("24 MP", flush=True)
        big_table = big_photo(big, _big_runs(ks, args.quick))
    data = {
        "benchmark": "performance",
        "quick": args.quick,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "ks": list(ks),
        "steady": {str(k): v for k, v in steady.items()},
        "mix": {str(k): v for k, v in mix_table.items()},
        "samples": {str(k): v for k, v in sample_table.items()},
        "big": big_table,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    _write(data)


def _remeasure_samples() -> None:
    """The china.jpg and flower.jpg table alone, every method side by side in one run."""
    data = json.loads((RESULTS / "performance.json").read_text())
    ks = [int(k) for k in data["ks"]]
    repeats = 3
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        samples = Photos(inputs.samples(), folder)
        everything = {k: list(samples.images) for k in ks}
        table = per_photo(samples, list(methods.LABELS), ks, repeats, everything, folder)
    data["samples"] = {str(k): v for k, v in table.items()}
    data["samples_measured_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    data["samples_load_average"] = [round(x, 1) for x in __import__("os").getloadavg()]
    _write(data)


def _big_runs(ks, quick: bool) -> list[tuple[str, int]]:
    runs = [("octree", 64)] + [("colorquant", k) for k in ks]
    runs += [(key, 64) for key in BIG_MODE_TARGETS]
    runs += [("octree+plain-decode", 64), ("colorquant+plain-decode", 64)]
    if not quick:
        runs += [("seed", 64), ("pngquant", 64)]
    return runs


def _write(data: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "performance.json").write_text(json.dumps(data, indent=1) + "\n")
    plot(data, 64)
    README.write_text(render(data))
    print(f"wrote {README} and {PLOT}")


if __name__ == "__main__":
    main()
