"""Flatness weights for the perceptual (Oklab) fit: colours of flat areas count more.

A palette too coarse for a smooth area (a sky, a studio backdrop, a wall) shows as bands,
which the eye (and SSIMULACRA2) punishes far more than the same error in texture, where the
pattern hides it. Plain k-means spends its colours by squared error alone, so a wide-ranging
textured area (a face, a uniform, foliage) takes the colours a narrow but flat gradient needed
(grace_hopper.png at K=16: two blues for the whole backdrop, where pngquant has four). Like
libimagequant's importance map, each pixel is weighted by how flat its neighbourhood is before
the fit, so the fit gives flat areas the finer steps. The RGB mode is the PSNR mode and stays
plain k-means.

Measured on the 10-photo quality mix (SSIMULACRA2 margin over pngquant, mean and worst photo;
harness kept out of the repository), before → after:

* ``--dither 0`` against ``--nofs``: K=16 mean +5.8 → +7.7, wins 8 → 9 of 10 (grace_hopper
  −8.0 → −1.2); K=64 +6.6 → +8.5, wins 9 → 10 (china −0.6 → +7.5); K=256 still 10 of 10.
* default (dithered) against its default: K=16 +4.8 → +6.4, wins 9 → 10 (grace_hopper −2.3 →
  +2.0); K=64 +6.7 → +7.8 (worst +1.2 → +2.1); K=256 worst +2.8, 10 of 10. Bytes unchanged
  (K=16 0.98×, K=64 1.01×, K=256 0.98× pngquant's).

A pixel's contrast is the 3×3 mean of the 3×3 maximum of the absolute Laplacian of its luma
(0–1); its weight is max(floor, 1 − GAIN·contrast)². A histogram bin takes its pixels' summed
weight in place of their count (its mean colour is unchanged), and each exact distinct colour
its bin's mean weight per pixel. It costs about 15 ms per megapixel (2 MP retina.png: 22 ms
for the weights, 8 ms to sum them per bin).
"""

import dataclasses
import functools

import numpy as np
from PIL import Image

from pipeline.pixels import bin_keys

#: Weight of a pixel: max(floor, 1 − FLATNESS_GAIN · contrast)². A gain of 3 halves the weight
#: of a pixel whose luma curves by about 0.1 (a visible texture).
FLATNESS_GAIN = 3.0

#: The floor, undithered and dithered. Undithered, textured colours keep at least 0.3² ≈ a
#: tenth of their count's weight. Dithered, bands matter less (the dither breaks them up) and
#: the colours of texture more (a large textured area built from distant colours shows the
#: dither's noise): the floor of 0.3 cost K=16 astronaut 27.8 → 17.6, 0.6 gains on every photo.
FLOOR_UNDITHERED, FLOOR_DITHERED = 0.3, 0.6

#: Largest image weighted, in pixels: the weights need about 14 bytes per pixel of temporary
#: arrays (56 MB here); larger photos fit on plain counts.
FLATNESS_MAX_PIXELS = 1 << 22


def flatness_floor(space: str, dither: float, pixels: int) -> float | None:
    """The weight floor the fit uses in ``space`` at ``dither`` for an image of ``pixels``
    pixels; None when colours are not weighted (the RGB mode, the PSNR mode, minimises plain
    squared error, and big photos go without)."""
    if space != "oklab" or pixels > FLATNESS_MAX_PIXELS:
        return None
    return FLOOR_DITHERED if dither > 0 else FLOOR_UNDITHERED


def pixel_weights(image: Image.Image, floor: float = FLOOR_UNDITHERED) -> np.ndarray:
    """(height, width) float32 weight of every pixel: near 1 where the image is flat, down to
    ``floor``² on edges and texture.

    Integer arithmetic on 8-bit luma (nine Laplacians of up to 4 × 255), then one table
    lookup: the weight of each possible 3×3 sum of the Laplacian's 3×3 maxima; compiled, in
    one function (:func:`pipeline.flatness_pass.contrast_weights`)."""
    from pipeline.flatness_pass import contrast_weights  # numba only where images are fitted

    luma = np.asarray(image.convert("L"))
    out = np.empty(luma.shape, dtype=np.float32)
    contrast_weights(luma, _weight_table(floor), out)
    return out


@functools.cache
def _weight_table(floor: float) -> np.ndarray:
    """Weight of a pixel by the 3×3 sum of its maxima (units of 1/255 luma): the sum over 9
    is its contrast; beyond the table's end the weight is the floor."""
    scale = 9 * 255.0
    last = int(np.ceil((1.0 - floor) * scale / FLATNESS_GAIN))
    contrast = np.arange(last + 1) / scale
    return (np.maximum(floor, 1.0 - FLATNESS_GAIN * contrast) ** 2).astype(np.float32)


def weighted_bins(source, histogram, floor: float):
    """The histogram reweighted by flatness, and each bin's weight per pixel.

    ``source`` is the image's PixelSource and ``histogram`` its ColorHistogram. The returned
    histogram's bins weigh their pixels' summed weights (same mean colours; everything else,
    distinct colours included, shared with ``histogram``). Fully transparent pixels are in no
    bin and weigh nothing.
    """
    from pipeline.flatness_pass import bin_weights  # numba only where images are fitted

    weights = pixel_weights(source.image, floor).ravel()
    size = 1 << (histogram.bits * source.channels)
    per_bin, strip_sums = np.zeros(size), np.empty(size)
    start = 0
    for strip in source.strips():  # strip by strip: no second full-size copy of the pixels
        strip_weights = weights[start : start + len(strip)]
        start += len(strip)
        if source.channels == 4:
            opaque = (strip >> 24) != 0
            strip, strip_weights = strip[opaque], strip_weights[opaque]
        strip_sums.fill(0.0)  # summed per strip, then added: the order np.bincount gave
        bin_weights(strip, strip_weights, histogram.bits, source.channels, strip_sums)
        per_bin += strip_sums
    per_bin = per_bin[histogram.keys]
    ratio = per_bin / histogram.counts
    reweighted = dataclasses.replace(
        histogram, counts=per_bin, bin_sums=histogram.bin_sums * ratio[:, None]
    )
    return reweighted, ratio


def weighted_colours(histogram, ratio: np.ndarray, colors: np.ndarray, counts: np.ndarray):
    """The exact distinct colours' weights (float64): each colour's count times its bin's
    weight per pixel (``ratio``, from :func:`weighted_bins`). ``colors`` are packed."""
    # A dense table of every bin's ratio: one gather per colour, several times faster than a
    # binary search of each colour's bin among the occupied ones.
    dense = np.zeros(1 << (histogram.bits * histogram.channels))
    dense[histogram.keys] = ratio
    return counts * dense[bin_keys(colors, histogram.bits, histogram.channels)]
