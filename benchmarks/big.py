"""One method on the 24 MP photo, in a fresh process: ``python -m benchmarks.big METHOD K PATH``.

METHOD is a key of ``benchmarks.methods.BY_KEY`` or ``pngquant``; a ``+plain-decode`` suffix
decodes with Pillow directly instead of ``pipeline.load.load_image`` (to show what that costs).

The process first warms up (imports and one small quantization), so the figures exclude
start-up; then it decodes the photo, quantizes it, frees the decoded photo (as the pipeline does
before encoding) and writes the indexed PNG, and prints one JSON
line with the time of each step and the peak resident memory of the whole process (VmHWM).
pngquant is timed as its own process (its input is a PNG copy of the photo); its memory is that
child's VmHWM, sampled while it runs.
"""

import os

from pipeline.threads import limit_threads_env

limit_threads_env()  # one BLAS/OpenMP thread, as in a worker; before numpy is imported

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks import methods  # noqa: E402
from pipeline.load import load_image  # noqa: E402
from pipeline.save import png_bytes  # noqa: E402


def plain_decode(path: Path) -> Image.Image:
    """A bare decode, without pipeline.load's checks, to show what the safe loader costs."""
    image = Image.open(path)
    image.load()
    return image if image.mode == "RGB" else image.convert("RGB")


def peak_rss_mb(pid: int | str = "self") -> float:
    """VmHWM of a process, in MB. Unlike ru_maxrss it starts afresh at exec, so it does not
    inherit the high-water mark of the (large) benchmark process this one was forked from."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise OSError("no VmHWM")


def pngquant_peak(path: Path, k: int, out: Path) -> float:
    """Run pngquant like methods.pngquant, sampling its VmHWM until it exits."""
    command = ["pngquant", "--speed", "1", "--nofs", "--force", "--output", str(out), str(k)]
    process = subprocess.Popen([*command, "--", str(path)], stdout=subprocess.DEVNULL)
    peak = 0.0
    while process.poll() is None:
        try:
            peak = max(peak, peak_rss_mb(process.pid))
        except OSError:
            pass
        time.sleep(0.01)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return peak


def measure(name: str, k: int, path: Path) -> dict:
    plain = name.endswith("+plain-decode")
    name = name.removesuffix("+plain-decode")
    if name == "pngquant":
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            methods.pngquant(path, k, Path(folder) / "out.png")
            total = time.perf_counter() - started
            peak = pngquant_peak(path, k, Path(folder) / "again.png")  # timed run above
        return {"total_s": total, "max_rss_mb": peak}
    method = methods.BY_KEY[name]
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    method(Image.fromarray(noise), k)  # warm up: imports and first-call costs
    started = time.perf_counter()
    image = plain_decode(path) if plain else load_image(path, path.parent).image
    decoded = time.perf_counter()
    indexed = method(image, k)
    quantized = time.perf_counter()
    del image  # freed before encoding, as pipeline/process.py does
    data = png_bytes(indexed)
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    written = time.perf_counter()
    return {
        "decode_s": decoded - started,
        "quantize_s": quantized - decoded,
        "write_s": written - quantized,
        "total_s": written - started,
        "max_rss_mb": peak_rss_mb(),
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))))
