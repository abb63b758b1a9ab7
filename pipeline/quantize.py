"""Stages 2–5 on a decoded image: sample, fit, label, reconstruct.

``quantize_image`` turns an upright RGB or RGBA Pillow image into an indexed (mode P) image and
its palette, with per-entry pixel counts, the error metrics and the time of each stage.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pipeline.fit import fit_distinct, fit_histogram, fit_random, fit_sample
from pipeline.histogram import ColorHistogram, build_histogram
from pipeline.label import Labeler, squared_error
from pipeline.params import QuantizeParams
from pipeline.pixels import PixelSource, bin_keys, pack, unpack


@dataclass
class QuantizedImage:
    """The result of quantizing one image, before anything is written."""

    indexed: Image.Image  # mode P, palette and transparency set
    palette: np.ndarray  # (n, 3) uint8 RGB, in palette order
    alphas: np.ndarray | None  # (n,) uint8 when the image has transparency
    counts: np.ndarray  # (n,) pixels per palette entry
    mse: float
    colors_in: int
    timings_ms: dict = field(default_factory=dict)

    @property
    def psnr(self) -> float | None:
        """PSNR in dB on the 0–255 scale; None when lossless (JSON has no infinity)."""
        return None if self.mse == 0 else 10.0 * math.log10(255.0**2 / self.mse)


def quantize_image(image: Image.Image, params: QuantizeParams) -> QuantizedImage:
    """Reduce ``image`` (mode RGB or RGBA) to at most ``params.k`` colours."""
    source = PixelSource(image)
    timer = _StageTimer()
    histogram = build_histogram(source)
    timer.lap("sample")
    palette = _choose_palette(source, histogram, params)
    timer.lap("fit")
    labels, counts, error = _label_all(source, histogram, palette)
    timer.lap("label")
    alphas = palette[:, 3].copy() if source.channels == 4 else None
    indexed = _indexed_image(labels, image.size, palette[:, :3], alphas)
    timer.lap("reconstruct")
    mse = error / (source.count * source.channels)
    return QuantizedImage(
        indexed, palette[:, :3], alphas, counts, mse, _colors_in(histogram), timer.laps
    )


def _colors_in(histogram: ColorHistogram) -> int:
    return histogram.distinct_count + (1 if histogram.transparent_count else 0)


def _choose_palette(
    source: PixelSource, histogram: ColorHistogram, params: QuantizeParams
) -> np.ndarray:
    """The integer palette (n, channels), n ≤ k, duplicates removed, transparent entry last."""
    clear = histogram.transparent_count > 0
    n_colors = params.k - (1 if clear else 0)
    if histogram.distinct is not None and histogram.distinct_count <= n_colors:
        palette = unpack(histogram.distinct, source.channels).copy()
    elif params.method == "random":
        palette = _round(fit_random(source, n_colors, params.seed))
    elif params.sample is not None:
        palette = _round(fit_sample(source, n_colors, params.sample, params.seed))
    else:
        palette = _round(_fit_all_pixels(source, histogram, n_colors, params.seed))
    if source.channels == 4:
        palette = palette[palette[:, 3] > 0] if clear else palette
        palette[:, 3] = np.maximum(palette[:, 3], 1)  # alpha 0 is kept for the one clear entry
    palette = _unique_rows(palette)
    if clear:
        mean_rgb = np.rint(histogram.transparent_sum / histogram.transparent_count)
        palette = np.vstack([palette, [*mean_rgb.astype(np.uint8), 0]]).astype(np.uint8)
    return palette


def _fit_all_pixels(source, histogram, n_colors, seed):
    occupied = np.count_nonzero(histogram.counts)
    if occupied >= 4 * n_colors or histogram.distinct is None:
        return fit_histogram(histogram, n_colors, seed)
    colors, counts = _distinct_with_counts(source)
    return fit_distinct(unpack(colors, source.channels), counts, n_colors, seed)


def _distinct_with_counts(source: PixelSource):
    """Exact distinct colours and counts; only used when an image has few of them."""
    parts = []
    for strip in source.strips():
        if source.channels == 4:
            strip = strip[(strip >> 24) != 0]
        parts.append(strip & source.color_mask)
    return np.unique(np.concatenate(parts), return_counts=True)


def _round(centres: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(centres), 0, 255).astype(np.uint8)


def _unique_rows(palette: np.ndarray) -> np.ndarray:
    """Drop repeated colours, keeping the first of each, so every entry is distinct."""
    _, first = np.unique(pack(palette), return_index=True)
    return palette[np.sort(first)]


def _label_all(source: PixelSource, histogram: ColorHistogram, palette: np.ndarray):
    """Label every pixel; return labels (uint8, flat), per-entry counts and the squared error."""
    channels = source.channels
    has_clear = channels == 4 and histogram.transparent_count > 0
    opaque_palette = palette[:-1] if has_clear else palette
    labeler = Labeler(opaque_palette, np.flatnonzero(histogram.counts), histogram.bits)
    labels = np.empty(source.count, dtype=np.uint8)
    counts = np.zeros(len(palette), dtype=np.int64)
    error = 0
    start = 0
    for strip in source.strips():
        strip_labels = np.full(len(strip), len(palette) - 1, dtype=np.int16)
        if has_clear:
            opaque = (strip >> 24) != 0
            strip_labels[opaque] = labeler(strip[opaque])
        else:
            strip_labels = labeler(strip)
        error += squared_error(strip, strip_labels, palette)
        counts += np.bincount(strip_labels, minlength=len(palette))
        labels[start : start + len(strip)] = strip_labels
        start += len(strip)
    return labels, counts, error


def _indexed_image(labels, size, rgb, alphas) -> Image.Image:
    indexed = Image.frombuffer("P", size, labels, "raw", "P", 0, 1)
    indexed.putpalette(rgb.astype(np.uint8).tobytes(), rawmode="RGB")
    if alphas is not None:
        indexed.info["transparency"] = alphas.astype(np.uint8).tobytes()
    return indexed


class _StageTimer:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000.0, 2)
        self._last = now


__all__ = ["QuantizedImage", "quantize_image", "bin_keys"]
