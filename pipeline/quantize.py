"""Stages 2–5 on a decoded image: sample, fit, label, reconstruct.

``quantize_image`` turns an upright RGB or RGBA Pillow image into an indexed (mode P) image and
its palette, with per-entry pixel counts, the error metrics and the time of each stage: its own
palette, fitted on its own colours. ``label_image`` does the same with a palette given from
outside (a shared palette, a palette file): no fit at all.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageChops

from pipeline.fit import (
    check_space,
    finish_palette,
    fit_distinct,
    fit_histogram_bounded,
    fit_random,
    fit_sample,
    palette_positions,
    round_centres,
)
from pipeline.flatness import flatness_floor, weighted_bins, weighted_colours
from pipeline.heap import release_free_memory
from pipeline.histogram import ColorHistogram, build_histogram
from pipeline.label import make_labeler, squared_error
from pipeline.params import QuantizeParams
from pipeline.pixels import CACHE_PIXELS, PixelSource, unpack
from pipeline.settings import DEFAULT_DITHER, DITHERED_INFO, SPACES, STRIP_PIXELS
from pipeline.space import to_working


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
    def colors(self) -> np.ndarray:
        """The palette as (n, 3) RGB, or (n, 4) RGBA when the image has transparency."""
        if self.alphas is None:
            return self.palette
        return np.column_stack([self.palette, self.alphas])

    @property
    def psnr(self) -> float | None:
        """PSNR in dB on the 0–255 scale; None when lossless (JSON has no infinity)."""
        return None if self.mse == 0 else 10.0 * math.log10(255.0**2 / self.mse)


def quantize_image(image: Image.Image, params: QuantizeParams) -> QuantizedImage:
    """Reduce ``image`` (mode RGB or RGBA) to at most ``params.k`` colours."""
    source = PixelSource(image)
    timer = _StageTimer()
    histogram = build_histogram(source)
    release_free_memory(source.count)
    timer.lap("sample")
    palette, fitted = _choose_palette(source, histogram, params)
    release_free_memory(source.count)
    timer.lap("fit")
    return _labelled(source, histogram, palette, timer, params.space, params.dither, fitted)


def label_image(
    image: Image.Image,
    palette: np.ndarray,
    *,
    space: str = SPACES[0],
    dither: float = DEFAULT_DITHER,
) -> QuantizedImage:
    """Map every pixel of ``image`` to the given palette ((n, 3) or (n, 4) uint8, n ≤ 256).

    The result's palette is ``palette`` itself, except that an RGB palette applied to an image
    with fully transparent pixels gains one transparent entry (when there is room), and a
    transparent entry moves last. An RGB image given an RGBA palette is labelled as opaque RGBA.
    """
    check_space(space)
    palette = np.asarray(palette, dtype=np.uint8)
    if palette.ndim != 2 or palette.shape[1] not in (3, 4) or not 1 <= len(palette) <= 256:
        raise ValueError(f"a palette is 1–256 RGB or RGBA colours, got shape {palette.shape}")
    if palette.shape[1] == 4 and image.mode == "RGB":
        image = image.convert("RGBA")
    source = PixelSource(image)
    timer = _StageTimer()
    histogram = build_histogram(source)
    release_free_memory(source.count)
    timer.lap("sample")
    palette = _palette_for(palette, source.channels, histogram.transparent_count > 0)
    timer.laps["fit"] = 0.0  # nothing fitted: the palette was given
    return _labelled(source, histogram, palette, timer, space, dither)


def _palette_for(palette: np.ndarray, channels: int, has_clear_pixels: bool) -> np.ndarray:
    """A given palette in the layout the labelling expects: the image's channels, and the one
    fully transparent entry (if any) last."""
    if channels == 4 and palette.shape[1] == 3:
        palette = np.column_stack([palette, np.full(len(palette), 255, np.uint8)])
        if has_clear_pixels and len(palette) < 256:
            palette = np.vstack([palette, np.zeros(4, np.uint8)])
    if channels == 4:
        clear = np.flatnonzero(palette[:, 3] == 0)[:1]
        keep = np.setdiff1d(np.arange(len(palette)), clear)
        palette = palette[np.concatenate([keep, clear])]
    return palette


def _labelled(
    source: PixelSource,
    histogram: ColorHistogram,
    palette,
    timer,
    space: str,
    dither: float,
    fitted=None,
) -> QuantizedImage:
    if dither > 0:
        labels, counts, error = _dither_all(source, palette, space, dither)
    else:
        labels, counts, error = _label_all(source, histogram, palette, space, fitted)
    timer.lap("label")
    alphas = palette[:, 3].copy() if source.channels == 4 else None
    indexed = _indexed_image(labels, source.image.size, palette[:, :3], alphas)
    if dither > 0:
        indexed.info[DITHERED_INFO] = True  # the PNG writer compresses it more cheaply
    timer.lap("reconstruct")
    mse = error / (source.count * source.channels)
    return QuantizedImage(
        indexed, palette[:, :3], alphas, counts, mse, _colors_in(histogram), timer.laps
    )


def _colors_in(histogram: ColorHistogram) -> int:
    return histogram.distinct_count + (1 if histogram.transparent_count else 0)


def _choose_palette(source: PixelSource, histogram: ColorHistogram, params: QuantizeParams):
    """The integer palette (n, channels), n ≤ k, duplicates removed, transparent entry last;
    and, when the fit's last steps ran on the histogram's distinct colours (RGB), what labels
    them cheaply (:class:`FittedColours`; None otherwise)."""
    n_colors = params.k - (1 if histogram.transparent_count else 0)
    space, seed = params.space, params.seed
    bounds = None
    if histogram.has_distinct and histogram.distinct_count <= n_colors:
        raw = histogram.colors()
    elif params.method == "random":
        raw = round_centres(fit_random(source, n_colors, seed, space), space)
    elif params.sample is not None:
        raw = round_centres(fit_sample(source, n_colors, params.sample, seed, space), space)
    else:
        centres, bounds = _fit_all_pixels(source, histogram, n_colors, params)
        raw = round_centres(centres, space)
    palette = finish_palette(raw, histogram.transparent_count, histogram.transparent_sum)
    if bounds is None or source.channels != 3:
        return palette, None
    return palette, FittedColours(*bounds, palette_positions(raw, palette))


@dataclass
class FittedColours:
    """What the fit's last Lloyd steps on an RGB image's distinct colours (the histogram's
    list, in its order) leave for labelling them: the steps' bounds, each colour's pixel
    count, and where each centre's rounded colour sits in the palette."""

    bounds: object  # pipeline.lloyd.LloydBounds (numba loads only where images are fitted)
    counts: np.ndarray
    positions: np.ndarray


def _fit_all_pixels(source, histogram, n_colors, params):
    """Palette centres (working coordinates) fitted on all pixels; and, when the fit's last
    steps ran on ``histogram.distinct`` itself, their bounds and the colours' pixel counts
    (else None)."""
    space, seed = params.space, params.seed
    occupied = len(histogram.keys)
    if occupied >= 4 * n_colors or not histogram.has_distinct:
        fitted, ratio = histogram, None  # fitted: the bins the fit sees (flatness-weighted)
        floor = flatness_floor(space, params.dither, source.count)
        if floor is not None:
            fitted, ratio = weighted_bins(source, histogram, floor)
        exact = None
        if (
            _ends_on_exact_colours(space, params.dither)
            and source.count <= EXACT_COUNTS_MAX_PIXELS
            and histogram.has_distinct
        ):
            colors, counts = _distinct_with_counts(source, histogram)
            weights = counts
            if ratio is not None:
                weights = weighted_colours(histogram, ratio, colors, counts)
            if colors is histogram.distinct:
                exact = histogram.distinct_working(space), weights, colors
            else:
                exact = to_working(unpack(colors, source.channels), space), weights
        centres, bounds = fit_histogram_bounded(fitted, n_colors, seed, space, exact)
        on_distinct = exact is not None and colors is histogram.distinct
        return centres, ((bounds, counts) if on_distinct else None)
    colors, counts = _distinct_with_counts(source, histogram)
    return fit_distinct(unpack(colors, source.channels), counts, n_colors, seed, space), None


#: Up to this many pixels, the fit ends on the exact distinct colours with their exact counts;
#: beyond it, on the histogram's bins.
EXACT_COUNTS_MAX_PIXELS = 1 << 22


def _ends_on_exact_colours(space: str, dither: float) -> bool:
    """Whether the fit ends with Lloyd steps on the image's exact colours (see
    :data:`pipeline.fit.EXACT_ITERATIONS`): in the PSNR mode (``rgb``), and whenever the
    labels are exact (no dithering). A dithered result does without them: they cost more than
    the rest of the fit (exact counts, the colours' coordinates, Lloyd steps on 10^5–10^6
    points) and buy nothing the eye sees through the dither: on the 10-photo quality mix at
    K=64, dithered SSIMULACRA2 69.26 without them vs 69.04 with 12 steps."""
    return space == "rgb" or dither == 0


def _distinct_with_counts(source: PixelSource, histogram: ColorHistogram):
    """Exact distinct colours (packed, sorted) and their pixel counts: as the histogram counted
    them (small images); for a larger RGB image, one compiled counting pass over its pixels;
    otherwise one sort of the packed pixels."""
    if histogram.colour_counts is not None:
        return histogram.distinct, histogram.colour_counts
    if source.channels == 3 and histogram.distinct is not None:
        from pipeline.lloyd import rgb_colour_counts  # numba only where images are fitted

        distinct = histogram.distinct
        return distinct, rgb_colour_counts(distinct, source.strips())
    parts = []
    for strip in source.strips():
        if source.channels == 4:
            strip = strip[(strip >> 24) != 0]
        parts.append(strip & source.color_mask)
    return np.unique(np.concatenate(parts), return_counts=True)


def _label_all(
    source: PixelSource, histogram: ColorHistogram, palette: np.ndarray, space: str, fitted=None
):
    """Label every pixel; return labels (uint8, flat), per-entry counts and the squared error.
    ``fitted``: see :func:`_choose_palette`."""
    channels = source.channels
    has_clear = channels == 4 and histogram.transparent_count > 0 and palette[-1, 3] == 0
    opaque_palette = palette[:-1] if has_clear else palette
    labeler = make_labeler(opaque_palette, space)
    table = _colour_labels(histogram, labeler, space, fitted) if channels == 3 else None
    release_free_memory(source.count)  # what labelling the colours left, before the labels
    labels = np.empty(source.count, dtype=np.uint8)
    counts = np.zeros(len(palette), dtype=np.int64)
    error = 0
    start = 0
    for strip in source.strips():
        if table is not None:
            strip_labels = table(strip)
        elif has_clear:
            strip_labels = np.full(len(strip), len(palette) - 1, dtype=np.uint8)
            opaque = (strip >> 24) != 0
            strip_labels[opaque] = labeler(strip[opaque])
        else:
            strip_labels = labeler(strip)
        if channels == 4:
            error += squared_error(strip, strip_labels, palette)
            counts += np.bincount(strip_labels, minlength=len(palette))
        labels[start : start + len(strip)] = strip_labels
        start += len(strip)
    if channels == 3 and fitted is not None and table is not None:
        error, counts = _colour_error_and_counts(histogram, table.labels, fitted.counts, palette)
    elif channels == 3:
        error, counts = _error_and_counts(source.image, labels, palette)
    return labels, counts, error


def _colour_error_and_counts(histogram, colour_labels, colour_counts, palette):
    """Exact squared error and per-entry counts of an RGB result from its distinct colours'
    labels and pixel counts: one term per colour, not per pixel (0.3 vs 4 ms a photo)."""
    from pipeline.lloyd import colour_error_and_counts  # numba only where images are fitted

    return colour_error_and_counts(histogram.distinct, colour_labels, colour_counts, palette)


def _dither_all(source: PixelSource, palette: np.ndarray, space: str, level: float):
    """Labels by error diffusion, with their per-entry counts and squared error."""
    from pipeline.dither import dither  # numba loads only where pixels are dithered

    return dither(source, palette, level, space)


#: Rough costs (ns) that pick how RGB pixels are labelled: per colour × palette entry of the
#: matrix product (plus per colour of its set-up), and per pixel of the lookup by colour. The
#: histogram pass has already listed the distinct colours.
_COST_PRODUCT, _COST_ROW, _COST_LOOKUP = 0.4, 3.0, 1.5

#: Rough cost (ns) per distinct colour of its label from the fit's Lloyd bounds (about 20 at
#: K=64 on the timing mix, in either space).
_COST_BOUNDED = 20.0


def _colour_labels(histogram: ColorHistogram, labeler, space: str, fitted=None):
    """The labels of the image's distinct colours, looked up per pixel by colour
    (:class:`pipeline.colour_ranks.RankedLabels`), when that is cheaper than labelling every
    pixel with the matrix product (it is, unless the image is small; in a space other than RGB,
    each pixel would first have to be converted, so it always is, except for images small
    enough to have sorted their pixels, whose colours are few anyway). None: label directly.

    When the fit's last Lloyd steps ran on the distinct colours (``fitted``, see
    :func:`_choose_palette`), their bounds give the colours' exact labels for about a Lloyd
    step, against a search of every colour (K=64 timing mix: 3.5 vs 6 ms a photo in Oklab,
    3 vs 7.5 ms for RGB's matrix product)."""
    if histogram.present is None or histogram.colour_counts is not None:
        return None
    pixels, k = histogram.pixels, len(labeler.palette)
    per_colour = k * _COST_PRODUCT + _COST_ROW
    direct = pixels * per_colour
    per_listed = per_colour if fitted is None else _COST_BOUNDED
    tabled = histogram.distinct_count * per_listed + pixels * _COST_LOOKUP
    if space == "rgb" and direct <= tabled:
        return None
    from pipeline.colour_ranks import RankedLabels  # numba only where pixels are labelled

    if fitted is not None:
        return RankedLabels(histogram.present, labeler.label_fitted(fitted))
    converted = histogram.converted(space) if space != "rgb" else None
    if converted is not None:  # the fit's last steps converted the colours already
        return RankedLabels(histogram.present, labeler.label_points(converted))
    return RankedLabels(histogram.present, labeler(histogram.distinct, distinct=True))


#: Pixels per strip of the error computation on big images (smaller ones go in one piece):
#: Pillow works on whole strips in C, so larger strips cost a little less; its three RGB
#: strips (4 bytes a pixel) add 3 MB to the peak memory of a 24 MP photo.
ERROR_STRIP_PIXELS = STRIP_PIXELS


def _error_and_counts(image: Image.Image, labels: np.ndarray, palette: np.ndarray):
    """Exact squared error and per-entry counts of an RGB result, computed by Pillow in C:
    the per-channel histogram of |source − result| gives the sum of squares."""
    indexed = _indexed_image(labels, image.size, palette, None)
    counts = np.array(indexed.histogram()[: len(palette)], dtype=np.int64)
    squares = np.arange(256, dtype=np.int64) ** 2
    error = 0
    width, height = image.size
    strip = ERROR_STRIP_PIXELS if width * height > CACHE_PIXELS else CACHE_PIXELS
    rows = max(1, strip // width)
    for top in range(0, height, rows):
        box = (0, top, width, min(height, top + rows))
        whole = rows >= height
        result = (indexed if whole else indexed.crop(box)).convert("RGB")
        difference = ImageChops.difference(image if whole else image.crop(box), result)
        error += int(
            (np.array(difference.histogram(), dtype=np.int64).reshape(3, 256) @ squares).sum()
        )
    return error, counts


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
