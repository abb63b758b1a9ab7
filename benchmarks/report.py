"""How long ``colorquant report`` takes on 1,000 and 10,000 outputs, and how heavy its page is.

Synthetic outputs are made quickly: a few distinct 640×480 photos (crops of scikit-learn's two)
and their quantized results, hard-linked under many names, each with its own palette JSON and
PSNR, plus the job record ``run`` leaves. Measured side by side in one run: a cold report (every
preview made) with one process and with all cores, and a warm re-run (every preview reused);
wall-clock and CPU seconds (this process and its pool).

    python -m benchmarks.report            # 1,000 and 10,000 outputs
    python -m benchmarks.report --quick    # 1,000 only
"""

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from pipeline.jobrecord import write_record
from pipeline.report import build_report, thumbs_folder

#: Distinct photos behind the synthetic outputs; the rest are hard links to them.
DISTINCT = 24

#: Size of each synthetic original, a typical web photo.
PHOTO_SIZE = (640, 480)

#: Outputs per folder, as in a camera's dump.
PER_FOLDER = 500

RESULTS = Path(__file__).parent / "results" / "report.json"
README = Path(__file__).parent / "README.md"
SECTION = "## HTML report (from benchmarks/results/report.json)"


def base_photos(folder: Path) -> list[tuple[Path, Path, dict]]:
    """DISTINCT originals (JPEG), their 64-colour results (PNG) and palette documents."""
    from sklearn.datasets import load_sample_image

    folder.mkdir(parents=True, exist_ok=True)
    sources = [Image.fromarray(load_sample_image(name)) for name in ("china.jpg", "flower.jpg")]
    made = []
    for index in range(DISTINCT):
        photo = sources[index % 2]
        left, top = (index * 7) % 100, (index * 5) % 80
        crop = photo.crop((left, top, left + 320, top + 240)).resize(PHOTO_SIZE)
        original, result = folder / f"base{index}.jpg", folder / f"base{index}.png"
        crop.save(original, quality=90)
        indexed = crop.quantize(64)
        indexed.save(result)
        palette = indexed.getpalette()[: 64 * 3]
        colors = [
            {"hex": "#{:02x}{:02x}{:02x}".format(*palette[i : i + 3]), "count": count}
            for i, count in zip(range(0, 192, 3), indexed.histogram()[:64], strict=True)
        ]
        made.append((original, result, {"colors": colors}))
    return made


def synthetic_outputs(root: Path, count: int) -> Path:
    """An input tree and OUT with ``count`` outputs; returns OUT."""
    inputs, out = root / "in", root / "out"
    bases = base_photos(root / "base")
    for index in range(count):
        original, result, palette = bases[index % DISTINCT]
        rel = f"day{index // PER_FOLDER:03d}/img{index:05d}"
        for source, target in ((original, inputs / f"{rel}.jpg"), (result, out / f"{rel}.png")):
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
        document = {
            "source": f"{rel}.jpg",
            "output": f"{rel}.png",
            "k": 64,
            "colors": palette["colors"],
            "metrics": {
                "psnr": 26 + (index * 37 % 100) / 10,
                "ssimulacra2": None,
                "bytes_in": original.stat().st_size,
                "bytes_out": result.stat().st_size,
            },
            "timings_ms": {"load": 10, "fit": 20, "label": 10, "save": 5},
            "produced_by": {"job": "bench"},
        }
        (out / f"{rel}.palette.json").write_text(json.dumps(document))
    write_record(out, "bench", "run", [["", str(inputs)]], {"k": 64})
    return out


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: on a shared machine wall-clock
    time says more about the neighbours than about the report."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    function()
    return round(time.perf_counter() - wall, 2), round(cpu_seconds() - cpu, 2)


def folder_bytes(folder: Path) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(folder))


def measure(count: int, workers: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="colorquant-report-bench-"))
    try:
        out = synthetic_outputs(root, count)
        page = out / "report.html"
        figures = {"outputs": count}
        runs = [("cold_1_process", 1), (f"cold_{workers}_processes", workers)]
        for name, processes in runs if count <= 1000 else runs[1:]:
            shutil.rmtree(thumbs_folder(page), ignore_errors=True)
            wall, cpu = timed(lambda n=processes: build_report(out, page, workers=n))
            figures[f"{name}_s"], figures[f"{name}_cpu_s"] = wall, cpu
        figures["warm_s"], figures["warm_cpu_s"] = timed(
            lambda: build_report(out, page, workers=workers)
        )
        figures["html_bytes"] = page.stat().st_size
        figures["thumbnail_bytes"] = folder_bytes(thumbs_folder(page))
        figures["thumbnails"] = len(os.listdir(thumbs_folder(page)))
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


def render_section() -> list[str]:
    """The README's section on the report, from the last measurement (for benchmarks.run too)."""
    lines = [SECTION, ""]
    if not RESULTS.exists():
        return lines + ["Not measured yet: run `python -m benchmarks.report`.", ""]
    data = json.loads(RESULTS.read_text())
    lines += [
        "| outputs | cold, 1 process | cold, all cores | warm (previews reused) | HTML | "
        "previews (count, total) |",
        "|---|---|---|---|---|---|",
    ]
    for run in data["runs"]:
        cold = [
            key.removesuffix("_cpu_s") for key in run if key.startswith("cold_") and "_cpu_" in key
        ]
        cells = {key: f"{run[key + '_s']} s ({run[key + '_cpu_s']} s CPU)" for key in cold}
        one = cells.pop("cold_1_process", "–")
        many = next(iter(cells.values()), "–")
        lines.append(
            f"| {run['outputs']:,} | {one} | {many} | {run['warm_s']} s ({run['warm_cpu_s']} s CPU)"
            f" | {run['html_bytes'] / 1e6:.2f} MB | {run['thumbnails']:,}, "
            f"{run['thumbnail_bytes'] / 1e6:.0f} MB |"
        )
    lines += [
        "",
        f"Measured {data['measured_at']} on {data['machine']} by `python -m benchmarks.report`",
        "(synthetic outputs: 640×480 JPEG originals and 64-colour PNG results). Two 256-pixel",
        "JPEG previews per image; the page draws 100 rows at a time and its images load lazily,",
        "so a browser fetches about 2 MB of previews per page whatever the folder's size.",
        "Wall-clock times on this shared machine move with the neighbours' load; CPU seconds",
        "(this process and its pool) are the steadier figure.",
        "",
    ]
    return lines


def update_readme() -> None:
    """Replace (or add, before "How it is measured") this section of benchmarks/README.md."""
    text = README.read_text()
    section = "\n".join(render_section())
    if SECTION in text:
        start = text.index(SECTION)
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    else:
        anchor = text.find("## How it is measured")
        anchor = anchor if anchor != -1 else len(text)
        text = text[:anchor] + section + "\n" + text[anchor:]
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 outputs only")
    args = parser.parse_args()
    workers = len(os.sched_getaffinity(0))
    sizes = (1000,) if args.quick else (1000, 10_000)
    results = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {workers} CPUs, Python {platform.python_version()}",
        "runs": [measure(count, workers) for count in sizes],
    }
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    update_readme()
    print("\n".join(render_section()))


if __name__ == "__main__":
    main()
