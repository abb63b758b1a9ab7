"""Where the undithered modes' fit spends its time: ``python -m benchmarks.fit_stages``.

A profile (cProfile on the process CPU clock, one thread) of ``quantize_image`` over the
timing mix of ``benchmarks.run`` at K=64, in the two undithered modes (``--dither 0`` in
Oklab and ``--space rgb --dither 0``), after one pass that loads the compiled loops. The
fit's parts are read off as the cumulative time of the functions that do them; each figure is
CPU ms per photo. Writes ``results/fit_stages.md``, which the README includes. About a minute.
"""

from pipeline.threads import limit_threads_env

limit_threads_env()  # before numpy is imported

import cProfile  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from benchmarks import inputs, run  # noqa: E402
from pipeline.load import load_image  # noqa: E402
from pipeline.params import QuantizeParams  # noqa: E402
from pipeline.quantize import quantize_image  # noqa: E402

SECTION = run.RESULTS / "fit_stages.md"

#: Palette size profiled (the steady-state target's).
K = 64

#: The modes profiled: label → quantize settings.
MODES = {
    "--dither 0 (Oklab)": {"dither": 0.0},
    "--space rgb --dither 0": {"space": "rgb", "dither": 0.0},
}

#: The parts shown, in order: label → (module file, function) whose cumulative time it is.
PARTS = {
    "quantize (all)": ("quantize.py", "quantize_image"),
    "histogram": ("histogram.py", "build_histogram"),
    "fit (all)": ("quantize.py", "_choose_palette"),
    "flatness weights (Oklab)": ("flatness.py", "weighted_bins"),
    "exact colour counts": ("quantize.py", "_distinct_with_counts"),
    "colours to Oklab": ("histogram.py", "distinct_working"),
    "k-means++ seedings": ("lloyd.py", "kmeans_plusplus"),
    "seedings with their coarse Lloyd steps": ("fit.py", "_best_seeding"),
    "Lloyd steps, all": ("fit.py", "weighted_lloyd"),
    "label (nearest colour, exact)": ("quantize.py", "_label_all"),
}


#: The same profile at commit ba91a0e (before the fit's speed-ups of 2026-12-05: squared-distance
#: search, vectorised seeding, insertion-sorted neighbours, runner-up bounds, compiled flatness
#: weights), measured 2026-12-05T16:14Z by this script, load average about 2: label → (Oklab,
#: RGB) CPU ms per photo. Kept to show what changed; not re-measured.
BEFORE = {
    "quantize (all)": (119.3, 182.4),
    "fit (all)": (96.2, 155.5),
    "flatness weights (Oklab)": (13.1, 0.0),
    "k-means++ seedings": (13.1, 13.1),
    "seedings with their coarse Lloyd steps": (25.5, 25.9),
    "Lloyd steps, all": (53.4, 132.3),
    "label (nearest colour, exact)": (14.1, 17.6),
}


def profile(paths, settings: dict) -> dict[str, float]:
    """CPU ms per photo of each of PARTS for one mode."""
    params = QuantizeParams(k=K, **settings)
    images = [load_image(path, path.parent).image for path in paths]
    for image in images:  # load the compiled loops and warm the caches
        quantize_image(image, params)
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for image in images:
        quantize_image(image, params)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    cumulative = {}
    for (filename, _, name), (_, _, _, total, _) in stats.items():
        key = (os.path.basename(filename), name)
        cumulative[key] = cumulative.get(key, 0.0) + total
    return {
        label: cumulative.get(where, 0.0) * 1000 / len(images) for label, where in PARTS.items()
    }


def render(rows: dict[str, dict[str, float]], measured: str, load: list) -> str:
    modes = list(rows)
    lines = [
        f"### Where the fit's time goes (K={K}, timing mix, CPU ms per photo)",
        "",
        f"Measured {measured} by `python -m benchmarks.fit_stages` (cProfile on the CPU clock, "
        f"load average {load} at the end). Cumulative times: a part includes the parts it "
        "calls (the seedings include their Lloyd steps; “Lloyd steps, all” counts those too, "
        "and the last steps on the exact distinct colours). Decode and PNG write are outside.",
        "",
        "The “at ba91a0e” columns are the same profile before the fit's speed-ups of 2026-12-05 "
        "(measured once, not re-measured).",
        "",
        "| part | " + " | ".join(f"{m} | at ba91a0e" for m in modes) + " |",
        "|---|" + "---|" * 2 * len(modes),
    ]
    for label in PARTS:
        before = BEFORE.get(label)
        cells = [
            f"{rows[m][label]:.1f} | " + (f"{before[i]:.1f}" if before else "")
            for i, m in enumerate(modes)
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    paths = inputs.mix()
    rows = {label: profile(paths, settings) for label, settings in MODES.items()}
    measured = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    section = render(rows, measured, [round(x, 1) for x in os.getloadavg()])
    SECTION.write_text(section)
    print(section)


if __name__ == "__main__":
    main()
