"""Stage 4, label with dithering: serpentine error diffusion towards a given palette.

A palette of K colours cannot show a smooth sky: exact labelling turns it into bands. Error
diffusion spreads each pixel's colour error onto the neighbours still to be labelled
(Floyd–Steinberg's 7/16, 3/16, 5/16, 1/16, in alternating row directions so the error does not
drift one way), so the average colour of an area matches the source and the bands dissolve.

Done naively it also costs: dots on flat colours and bigger files, jagged edges, and stray bright
pixels. So, like libimagequant's remapper:

* errors too small to see are not diffused (a flat colour stays flat, files stay small);
* large errors are damped, so one pixel's big miss does not spray odd colours around;
* it is selective: the error a pixel takes in is scaled down where the source has edges or
  fine texture (measured by second differences to the neighbours), since dithering there
  makes edges ragged and adds nothing to texture that already breaks up bands;
* it is alpha-aware: fully transparent pixels take the one clear palette entry and neither take
  nor pass on error; opaque pixels ignore alpha error, so they stay opaque.

The error lives in the working space (Oklab, or sRGB scaled to 0–1). Pixels are converted inside
the compiled loop (a 256-entry table for the sRGB transfer function, a two-step Halley cube root)
so no per-pixel float image is ever held, and the image is fed strip by strip, so memory stays
flat on big photos. Images without alpha take a faster route: a grid over the working space
whose cells list, on first use, the only entries that can be nearest somewhere in the cell
(usually two to five: a dithered pixel's target lies between palette colours, so the cells it
visits are near the borders between them), and a row loop that leaves out the alpha channel,
with each pixel's selectivity weight computed beforehand for the whole row. Images with alpha
search from the previous pixel's colour outwards through that colour's neighbours sorted by
distance, stopping once the triangle inequality rules the rest out. Both searches are exact.

Everything is deterministic: the same pixels, palette and settings give the same labels.

numba compiles the loop once per machine and caches it on disk (:mod:`pipeline.compiled`);
:func:`warm_up` loads it in worker processes before their first image. This module imports
numba, so only code that quantizes imports it.
"""

import numpy as np

from pipeline.compiled import njit
from pipeline.oklab import LINEAR_TO_LMS, LMS_TO_OKLAB, srgb_to_linear
from pipeline.settings import DEFAULT_DITHER, SPACES

#: Default strength: the fraction of each pixel's error passed on (0 = exact labelling).
DEFAULT_LEVEL = DEFAULT_DITHER

#: An error (Euclidean, working-space units) below this is not diffused: about one sRGB step
#: of a mid grey in Oklab lightness. Flat colours stay flat and files stay small.
MIN_ERROR = 0.004

#: An outgoing error above this is damped by DAMPING (libimagequant's fix for stray pixels).
MAX_ERROR, DAMPING = 0.08, 0.75

#: Each channel of the error a pixel takes in is clipped to ±CLIP, so an error that built up
#: where the palette cannot follow (a saturated colour at the gamut's edge) cannot run away.
CLIP = 0.08

#: Selectivity: the incoming error is scaled by max(FLOOR, 1 − GAIN·contrast)², where contrast
#: is the largest second difference of the source to its neighbours (working-space units).
#: Measured (benchmarks/dither.py's photos): SSIMULACRA2 rewards dithering nearly everywhere
#: and selectivity mostly saves bytes (K=16, 11 photos: 37.2 at gain 3, 36.5 at 6, 35.4 at 12;
#: china.jpg at K=64: 58.3 without selectivity, 57.2 at 1.5, 56.4 at 3) so it is kept mild.
EDGE_GAIN, EDGE_FLOOR = 1.5, 0.0

#: Nearest-colour grid (images without alpha): cell edge in working-space units, the box every
#: source colour lies in per space (Oklab's sRGB gamut; sRGB's unit cube), and the number of
#: candidate entries all filled cells may list together before the search goes without it.
#: Measured on the timing mix at K=64: cells of 1/16 and 1/64 cost 7% more than 1/32.
GRID_CELL = 1.0 / 32.0
GRID_SCALE = 1.0 / GRID_CELL  # a power of two: multiplying by it is exact, and cheaper
GRID_BOUNDS = {
    "oklab": ((0.0, -0.234, -0.312), (1.0, 0.277, 0.199)),
    "rgb": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}
GRID_POOL = 1 << 20

#: Cells per axis the grid's index leaves room for (a power of two, so a cell's index is
#: built by shifts): at least the most any space needs (38).
GRID_SIDE_BITS = 6

#: An entry is left out of a cell's list when it is farther than another entry from every point
#: of the cell by more than this (squared working-space units): a margin far above rounding, so
#: an entry that might tie is always kept.
DOMINATED_MARGIN = 1e-12

#: Weight of alpha against colour in the distance of semi-transparent pixels (libimagequant
#: weighs alpha 0.625 against green 1.0).
ALPHA_WEIGHT = 0.625


@njit(cache=True, error_model="numpy")  # no zero-divisor checks: the loops vectorise
def _convert(packed, has_alpha, lut, m1, m2, oklab, scratch, out):
    """Packed pixels → (4, n) working-space coordinates, one row per channel: colour
    (premultiplied by alpha) and alpha × ALPHA_WEIGHT. ``scratch``: :func:`_scratch`'s.

    The cube roots of Oklab start from a bit-level guess (the exponent divided by three) and
    take two Halley steps (relative error ≈ 1e-14). Each stage is a plain loop over the row,
    channel by channel in separate rows (no interleaved reads or writes), so the compiler
    vectorises them all.
    """
    n = packed.shape[0]
    lms, lms_bits, flat_lms, guess, guess_bits = scratch
    if oklab:
        _to_lms(packed, lut, m1, lms)
        _cube_root_guess(lms_bits, guess_bits)
        _cube_root(flat_lms, guess)
        if not has_alpha:  # the common case, without the alpha of 1 (×1 changes no bits)
            _lms_to_oklab(lms, m2, out)
            return
    for i in range(n):
        p = packed[i]
        alpha = ((p >> 24) & 255) / 255.0 if has_alpha else 1.0
        if oklab:
            s0, s1, s2 = lms[0, i], lms[1, i], lms[2, i]
            for c in range(3):
                out[c, i] = (m2[c, 0] * s0 + m2[c, 1] * s1 + m2[c, 2] * s2) * alpha
        else:
            for c in range(3):
                out[c, i] = ((p >> (8 * c)) & 255) / 255.0 * alpha
        out[3, i] = alpha * ALPHA_WEIGHT


@njit(cache=True, error_model="numpy")
def _lms_to_oklab(lms, m2, out):
    """Cube-rooted LMS → Oklab of opaque pixels, and their alpha coordinate (as
    :func:`_to_lms`, the matrix in locals)."""
    a0, a1, a2 = m2[0, 0], m2[0, 1], m2[0, 2]
    b0, b1, b2 = m2[1, 0], m2[1, 1], m2[1, 2]
    c0, c1, c2 = m2[2, 0], m2[2, 1], m2[2, 2]
    l_row, m_row, s_row = lms[0], lms[1], lms[2]
    o0, o1, o2, o3 = out[0], out[1], out[2], out[3]
    for i in range(l_row.shape[0]):
        s0, s1, s2 = l_row[i], m_row[i], s_row[i]
        o0[i] = a0 * s0 + a1 * s1 + a2 * s2
        o1[i] = b0 * s0 + b1 * s1 + b2 * s2
        o2[i] = c0 * s0 + c1 * s1 + c2 * s2
        o3[i] = ALPHA_WEIGHT


@njit(cache=True, error_model="numpy")
def _to_lms(packed, lut, m1, lms):
    """Linear light of each pixel's channels (the table) → LMS, one row per component."""
    # The matrix in locals and a row per component: the stores could alias the matrix as far
    # as the compiler knows, so it would read all nine coefficients again for every pixel.
    a0, a1, a2 = m1[0, 0], m1[0, 1], m1[0, 2]
    b0, b1, b2 = m1[1, 0], m1[1, 1], m1[1, 2]
    c0, c1, c2 = m1[2, 0], m1[2, 1], m1[2, 2]
    l_row, m_row, s_row = lms[0], lms[1], lms[2]
    for i in range(packed.shape[0]):
        p = packed[i]
        lr, lg, lb = lut[p & 255], lut[(p >> 8) & 255], lut[(p >> 16) & 255]
        l_row[i] = a0 * lr + a1 * lg + a2 * lb
        m_row[i] = b0 * lr + b1 * lg + b2 * lb
        s_row[i] = c0 * lr + c1 * lg + c2 * lb


@njit(cache=True, error_model="numpy")
def _cube_root_guess(bits, out):
    """A first guess of each cube root: the float's bits (exponent and all) divided by three."""
    for i in range(bits.shape[0]):
        out[i] = bits[i] // 3 + 709921077


@njit(cache=True, error_model="numpy")
def _cube_root(values, guess):
    """Two Halley steps from ``guess`` towards each value's cube root, in place."""
    for i in range(values.shape[0]):
        x, y = np.float64(values[i]), np.float64(guess[i])
        y3 = y * y * y
        y = y * (y3 + 2.0 * x) / (2.0 * y3 + x)
        y3 = y * y * y
        values[i] = y * (y3 + 2.0 * x) / (2.0 * y3 + x)


@njit(cache=True, inline="always")
def _distance(pal, c, t0, t1, t2, t3):
    d0, d1, d2, d3 = pal[c, 0] - t0, pal[c, 1] - t1, pal[c, 2] - t2, pal[c, 3] - t3
    return d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3


@njit(cache=True, inline="always")
def _nearest_outwards(pal, order, gaps, allowed, guess, t0, t1, t2, t3):
    """Exact nearest palette entry to t among the ``allowed`` ones, searched outwards from
    entry ``guess`` (which need not be allowed).

    ``order[g]`` lists the entries by distance from entry g and ``gaps[g]`` those distances.
    An entry c at distance D from g is at least D − |t − g| from t, so once D reaches
    |t − g| + |t − best| no entry further out can be nearer. Images without alpha use it where
    the grid cannot serve (a point off it, a full pool); the row loop of images with alpha has
    the same search written out (see :func:`_diffuse_opaque_row` for why).
    """
    from_guess = np.sqrt(_distance(pal, guess, t0, t1, t2, t3))
    best, best_d, bound = -1, np.inf, np.inf
    for j in range(order.shape[1]):
        if gaps[guess, j] >= bound:
            break
        c = order[guess, j]
        if not allowed[c]:
            continue
        d = _distance(pal, c, t0, t1, t2, t3)
        if d < best_d or (d == best_d and c < best):
            best, best_d = c, d
            bound = from_guess + np.sqrt(d)
    return best


@njit(cache=True)
def _fill_cell(pal, cell, lo, shape, cells, pool, used):
    """List the palette entries that can be nearest to some point of grid cell ``cell``, in
    index order.

    First, an entry whose smallest distance to the cell's box exceeds the smallest of the
    entries' largest distances to it is never nearest there; then so is one that another
    listed entry beats everywhere in the box (:func:`_undominated`). Colour channels only: the
    grid serves images without alpha, whose alpha coordinate is the same for every pixel and
    entry. Returns False when the pool is full (the caller then searches without the grid).
    """
    side = (1 << GRID_SIDE_BITS) - 1
    index = (cell >> (2 * GRID_SIDE_BITS), (cell >> GRID_SIDE_BITS) & side, cell & side)
    k = pal.shape[0]
    near = np.empty(k)
    bound = np.inf
    for c in range(k):
        low = high = 0.0
        for axis in range(3):
            edge = lo[axis] + index[axis] * GRID_CELL
            below, above = edge - pal[c, axis], pal[c, axis] - edge - GRID_CELL
            gap = max(below, above, 0.0)
            far = max(abs(below), abs(above))
            low += gap * gap
            high += far * far
        near[c] = low
        bound = min(bound, high)
    listed = np.empty(k, np.int64)
    count = 0
    for c in range(k):  # element by element: a fancy index compiles numba's shape checks
        if near[c] <= bound:
            listed[count] = c
            count += 1
    count = _undominated(pal, index, lo, listed, count)
    first = used[0]
    if 4 * (first + count) > pool.shape[0]:
        return False
    for n in range(count):
        c, at = listed[n], 4 * (first + n)
        pool[at], pool[at + 1], pool[at + 2], pool[at + 3] = pal[c, 0], pal[c, 1], pal[c, 2], c
    used[0] = first + count
    cells[cell] = (first << 16) | count
    return True


@njit(cache=True)
def _undominated(pal, index, lo, listed, count):
    """Keep, in place and in order, the first ``count`` entries of ``listed`` that no other of
    them beats everywhere in the cell's box; return how many are kept.

    Entry b beats c at point p when |p − c|² − |p − b|² = |c|² − |b|² + 2 p·(b − c) > 0, a
    linear function of p, so it beats c everywhere in the box when that holds at the box's
    corner where the function is least (per axis, the low or high edge by the sign of b − c).
    """
    beaten = np.zeros(count, np.bool_)
    for a in range(count):
        c = listed[a]
        for m in range(count):
            b = listed[m]
            margin = 0.0
            for axis in range(3):
                edge = lo[axis] + index[axis] * GRID_CELL
                slope = 2.0 * (pal[b, axis] - pal[c, axis])
                margin += pal[c, axis] * pal[c, axis] - pal[b, axis] * pal[b, axis]
                margin += min(slope * edge, slope * (edge + GRID_CELL))
            if b != c and margin > DOMINATED_MARGIN:
                beaten[a] = True
                break
    kept = 0
    for a in range(count):
        if not beaten[a]:
            listed[kept] = listed[a]
            kept += 1
    return kept


@njit(cache=True, inline="always")
def _cell_of(t0, t1, t2, lo0, lo1, lo2, shape0, shape1, shape2):
    """The grid cell that point t lies in, or −1 off the grid (scalars only, see
    :func:`_diffuse_opaque_row`)."""
    i = int((t0 - lo0) * GRID_SCALE)
    j = int((t1 - lo1) * GRID_SCALE)
    k = int((t2 - lo2) * GRID_SCALE)
    if not (0 <= i < shape0 and 0 <= j < shape1 and 0 <= k < shape2):
        return -1
    return (((i << GRID_SIDE_BITS) | j) << GRID_SIDE_BITS) | k


@njit(cache=True)
def _flatness_weights(above, row, below, level, selective, out):
    """The share of its incoming error each pixel of ``row`` takes: ``level``, scaled down by
    max(EDGE_FLOOR, 1 − EDGE_GAIN·contrast)² where the source has edges or fine texture (the
    contrast: the largest absolute second difference of any channel of the source at x,
    horizontally and vertically; an end pixel's missing neighbour is itself).

    One plain loop over the row's inner pixels, all three channels at once (plain neighbours,
    few arrays: it vectorises), apart from the serial error diffusion: a loop per channel,
    each reading and writing the weights again, took 40% longer (24 MP photo: 33 vs 24 ms).
    """
    width = row.shape[1]
    if not selective:
        flat = max(EDGE_FLOOR, 1.0)
        for x in range(width):
            out[x] = level * (flat * flat)
        return
    r0, r1, r2, u0, u1, u2 = row[0], row[1], row[2], above[0], above[1], above[2]
    d0, d1, d2 = below[0], below[1], below[2]
    for x in range(1, width - 1):
        c0, c1, c2 = 2.0 * r0[x], 2.0 * r1[x], 2.0 * r2[x]
        contrast = max(0.0, abs(r0[x - 1] + r0[x + 1] - c0), abs(u0[x] + d0[x] - c0))
        contrast = max(contrast, abs(r1[x - 1] + r1[x + 1] - c1), abs(u1[x] + d1[x] - c1))
        contrast = max(contrast, abs(r2[x - 1] + r2[x + 1] - c2), abs(u2[x] + d2[x] - c2))
        flat = max(EDGE_FLOOR, 1.0 - EDGE_GAIN * contrast)
        out[x] = level * (flat * flat)
    _end_weight(above, row, below, level, 0, out)
    _end_weight(above, row, below, level, width - 1, out)


@njit(cache=True, inline="always")
def _end_weight(above, row, below, level, x, out):
    """:func:`_flatness_weights` at an end pixel x, whose missing neighbour is itself."""
    width = row.shape[1]
    left, right = max(x - 1, 0), min(x + 1, width - 1)
    contrast = 0.0
    for c in range(3):
        centre = 2.0 * row[c, x]
        across = abs(row[c, left] + row[c, right] - centre)
        contrast = max(contrast, across, abs(above[c, x] + below[c, x] - centre))
    flat = max(EDGE_FLOOR, 1.0 - EDGE_GAIN * contrast)
    out[x] = level * (flat * flat)


@njit(cache=True)
def _diffuse_opaque_row(y, packed, row, weights, palette, grid, err, out, tally):
    """Label row y of an image without alpha, taking its incoming error from ``err[y % 2]``
    and passing error on; colour channels only (alpha is the same for every pixel and entry,
    so its error is always zero). Labels exactly as :func:`_diffuse_row` would, and tallies
    as it does.

    The nearest entry is the best of the pixel's grid-cell candidates, all measured without
    branches that depend on the distances (the processor could not predict them). The cell
    lists its candidates in index order, so keeping the first of equal distances gives ties
    to the lower index, as everywhere. The search and the spreading are written out here rather
    than in inlined helpers: numba counts references to every array an inlined helper takes,
    a dozen atomic operations per pixel that cost more than the rest of the loop.

    The loop waits on each pixel's error before it can search the next, so that path is kept
    short: the error passed to the next pixel and the three shares of the row below stay in
    registers, in float64 like the error rows (no conversions: float32 rows cost about 4 ns a
    pixel more, and changed no output of the quality mix), and the winner's differences to
    the target, kept with its index, give the error and its size without reading the palette
    again.
    """
    pal, order, gaps, opaque, _ = palette
    lo, shape, cells, pool, used = grid
    colours, counts, error = tally
    squares = 0
    lo0, lo1, lo2, shape0, shape1, shape2 = lo[0], lo[1], lo[2], shape[0], shape[1], shape[2]
    # Pool and cell indices are unsigned: numba then adds no test for negative ones.
    one, two, three, four = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4)
    width = row.shape[1]
    here, ahead = err[y % 2], err[(y + 1) % 2]
    forward = y % 2 == 0
    side = 1 if forward else -1
    found = 0
    i = 1 if forward else width  # error rows have one cell of padding at each end
    # The error this pixel takes in, and the row below's shares so far behind it and under it.
    h0, h1, h2 = here[i, 0], here[i, 1], here[i, 2]
    b0 = b1 = b2 = m0 = m1 = m2 = 0.0
    full = False  # the pool has no room for another cell's list
    step = 0
    while step < width:
        x = i - 1
        weight = weights[x]
        e0, e1, e2 = h0 * weight, h1 * weight, h2 * weight
        r0, r1, r2 = np.float64(row[0, x]), np.float64(row[1, x]), np.float64(row[2, x])
        keep = e0 * e0 + e1 * e1 + e2 * e2 >= MIN_ERROR * MIN_ERROR
        t0 = r0 + min(max(e0, -CLIP), CLIP) if keep else r0
        t1 = r1 + min(max(e1, -CLIP), CLIP) if keep else r1
        t2 = r2 + min(max(e2, -CLIP), CLIP) if keep else r2
        nearest = -1
        a0 = a1 = a2 = best = 0.0
        cell = _cell_of(t0, t1, t2, lo0, lo1, lo2, shape0, shape1, shape2)
        listing = cells[np.uint64(cell)] if cell >= 0 else 0
        if cell >= 0 and listing == 0 and not full:
            # List the cell's candidates, then take this pixel again. The call is made out
            # here, not in the pixel's path: values the loop holds in registers would
            # otherwise be saved around it on every pixel.
            full = not _fill_cell(pal, cell, lo, shape, cells, pool, used)
            continue
        if listing > 0:
            at, count = np.uint64(listing >> 16) * np.uint64(4), listing & 0xFFFF
            nearest = np.int64(pool[at + three])
            a0, a1, a2 = pool[at] - t0, pool[at + one] - t1, pool[at + two] - t2
            best = a0 * a0 + a1 * a1 + a2 * a2
            for _ in range(count - 1):
                at += four
                d0, d1, d2 = pool[at] - t0, pool[at + one] - t1, pool[at + two] - t2
                d = d0 * d0 + d1 * d1 + d2 * d2
                closer = d < best
                # A blend, not a select: LLVM turns a select into a branch here.
                nearest += np.int64(closer) * (np.int64(pool[at + three]) - nearest)
                a0 = d0 if closer else a0
                a1 = d1 if closer else a1
                a2 = d2 if closer else a2
                best = min(best, d)
        if nearest < 0:
            t3 = np.float64(row[3, x])  # the same for every pixel and entry
            nearest = _nearest_outwards(pal, order, gaps, opaque, found, t0, t1, t2, t3)
            a0, a1, a2 = pal[nearest, 0] - t0, pal[nearest, 1] - t1, pal[nearest, 2] - t2
            best = a0 * a0 + a1 * a1 + a2 * a2
        found = nearest
        out[x] = found
        counts[found] += 1  # the tally is off the error's path from pixel to pixel: it is free
        p = packed[x]
        for c in range(3):
            miss = np.int64((p >> (8 * c)) & 255) - colours[found, c]
            squares += miss * miss
        # The error is target − entry = −a; damped when large (|a|² is the winner's best).
        damp = DAMPING if best > MAX_ERROR * MAX_ERROR else 1.0
        q0, q1, q2 = -a0 * damp, -a1 * damp, -a2 * damp
        # Floyd–Steinberg: 7/16 ahead on this row; 3/16, 5/16, 1/16 behind, below and ahead.
        ahead[i - side, 0] = b0 + q0 * (3.0 / 16.0)
        ahead[i - side, 1] = b1 + q1 * (3.0 / 16.0)
        ahead[i - side, 2] = b2 + q2 * (3.0 / 16.0)
        b0 = m0 + q0 * (5.0 / 16.0)
        b1 = m1 + q1 * (5.0 / 16.0)
        b2 = m2 + q2 * (5.0 / 16.0)
        m0 = q0 * (1.0 / 16.0)
        m1 = q1 * (1.0 / 16.0)
        m2 = q2 * (1.0 / 16.0)
        i += side
        step += 1
        h0 = here[i, 0] + q0 * (7.0 / 16.0)
        h1 = here[i, 1] + q1 * (7.0 / 16.0)
        h2 = here[i, 2] + q2 * (7.0 / 16.0)
    ahead[i - side, 0], ahead[i - side, 1], ahead[i - side, 2] = b0, b1, b2
    ahead[i, 0], ahead[i, 1], ahead[i, 2] = m0, m1, m2
    error[0] += squares


@njit(cache=True)
def _diffuse_row(y, packed, row, weights, palette, settings, err, out, tally):
    """Label row y of an image with alpha, taking its incoming error from ``err[y % 2]`` and
    passing error on; add each pixel's label to ``tally``'s counts and its squared miss from
    the source (0–255 channels, alpha included) to its error.

    The nearest entry is searched outwards from the previous pixel's (as
    :func:`_nearest_outwards`), and the spreading is Floyd–Steinberg's (7/16 ahead on this
    row; 3/16, 5/16, 1/16 below), both written out for the reason
    :func:`_diffuse_opaque_row` gives.
    """
    pal, order, gaps, opaque, anything = palette
    clear = settings[1]
    colours, counts, error = tally
    squares = 0
    width = packed.shape[0]
    here, ahead = err[y % 2], err[(y + 1) % 2]
    ahead[:, :] = 0.0
    forward = y % 2 == 0
    side = 1 if forward else -1
    guess = 0
    for step in range(width):
        x = step if forward else width - 1 - step
        p = packed[x]
        alpha = p >> 24
        if alpha == 0 and clear >= 0:
            out[x] = clear  # neither takes nor passes on error
            counts[clear] += 1
            for c in range(4):
                miss = np.int64((p >> (8 * c)) & 255) - colours[clear, c]
                squares += miss * miss
            continue
        weight = weights[x]
        i = x + 1  # error rows have one cell of padding at each end
        e0, e1, e2 = here[i, 0] * weight, here[i, 1] * weight, here[i, 2] * weight
        e3 = here[i, 3] * weight if alpha < 255 else 0.0
        if e0 * e0 + e1 * e1 + e2 * e2 + e3 * e3 < MIN_ERROR * MIN_ERROR:
            e0 = e1 = e2 = e3 = 0.0
        t0 = row[0, x] + min(max(e0, -CLIP), CLIP)
        t1 = row[1, x] + min(max(e1, -CLIP), CLIP)
        t2 = row[2, x] + min(max(e2, -CLIP), CLIP)
        t3 = row[3, x] + min(max(e3, -CLIP), CLIP)
        # Opaque pixels stay opaque: they take opaque entries only (if there are any).
        allowed = opaque if alpha == 255 else anything
        d0, d1 = pal[guess, 0] - t0, pal[guess, 1] - t1
        d2, d3 = pal[guess, 2] - t2, pal[guess, 3] - t3
        from_guess = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3)
        found, best_d, bound = -1, np.inf, np.inf
        for j in range(order.shape[1]):
            if gaps[guess, j] >= bound:
                break
            c = order[guess, j]
            if not allowed[c]:
                continue
            d0, d1, d2, d3 = pal[c, 0] - t0, pal[c, 1] - t1, pal[c, 2] - t2, pal[c, 3] - t3
            d = d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
            if d < best_d or (d == best_d and c < found):
                found, best_d = c, d
                bound = from_guess + np.sqrt(d)
        guess = found
        out[x] = found
        counts[found] += 1
        for c in range(4):
            miss = np.int64((p >> (8 * c)) & 255) - colours[found, c]
            squares += miss * miss
        q0, q1 = t0 - pal[found, 0], t1 - pal[found, 1]
        q2, q3 = t2 - pal[found, 2], t3 - pal[found, 3]
        damp = 1.0
        if q0 * q0 + q1 * q1 + q2 * q2 + q3 * q3 > MAX_ERROR * MAX_ERROR:
            damp = DAMPING
        q0, q1, q2, q3 = q0 * damp, q1 * damp, q2 * damp, q3 * damp
        here[i + side, 0] += q0 * (7.0 / 16.0)
        here[i + side, 1] += q1 * (7.0 / 16.0)
        here[i + side, 2] += q2 * (7.0 / 16.0)
        here[i + side, 3] += q3 * (7.0 / 16.0)
        ahead[i - side, 0] += q0 * (3.0 / 16.0)
        ahead[i - side, 1] += q1 * (3.0 / 16.0)
        ahead[i - side, 2] += q2 * (3.0 / 16.0)
        ahead[i - side, 3] += q3 * (3.0 / 16.0)
        ahead[i, 0] += q0 * (5.0 / 16.0)
        ahead[i, 1] += q1 * (5.0 / 16.0)
        ahead[i, 2] += q2 * (5.0 / 16.0)
        ahead[i, 3] += q3 * (5.0 / 16.0)
        ahead[i + side, 0] += q0 * (1.0 / 16.0)
        ahead[i + side, 1] += q1 * (1.0 / 16.0)
        ahead[i + side, 2] += q2 * (1.0 / 16.0)
        ahead[i + side, 3] += q3 * (1.0 / 16.0)
    error[0] += squares


@njit(cache=True)
def _feed(strip, last, packed, rows, scratch, err, received, table, palette, grid, settings, out):
    """Take the next whole rows of the image and label every row whose next row is known.

    Row y is labelled once row y + 1 has arrived (its contrast needs the row below), and the
    last row when ``last`` is set. ``received[0]`` counts the rows taken so far. ``out``: the
    labels, and the tally (:func:`dither`).
    """
    lut, m1, m2, oklab = table
    has_alpha = settings[0]
    width = packed.shape[1]
    for top in range(0, strip.shape[0], width):
        y = received[0]
        for x in range(width):  # not a slice assignment: its shape checks compile for seconds
            packed[y % 3, x] = strip[top + x]
        _convert(packed[y % 3], has_alpha, lut, m1, m2, oklab, scratch, rows[y % 3])
        received[0] = y + 1
        if y >= 1:
            _label_row(y - 1, y, packed, rows, palette, grid, settings, err, out)
    if last and received[0] > 0:
        _label_row(
            received[0] - 1, received[0] - 1, packed, rows, palette, grid, settings, err, out
        )


@njit(cache=True)
def _label_row(y, below, packed, rows, palette, grid, settings, err, out):
    """Label row y of the three rows held (y − 1, y and ``below``)."""
    width = packed.shape[1]
    above, row = rows[max(y - 1, 0) % 3], rows[y % 3]
    labels, tally = out[0][y * width : (y + 1) * width], out[1:]
    has_alpha, _, level, selective = settings
    weights = np.empty(width)
    _flatness_weights(above, row, rows[below % 3], level, selective, weights)
    if has_alpha:
        _diffuse_row(y, packed[y % 3], row, weights, palette, settings, err, labels, tally)
        return
    _diffuse_opaque_row(y, packed[y % 3], row, weights, palette, grid, err, labels, tally)


def _conversion_table(space: str):
    """What the compiled conversion needs: sRGB code → linear light, Oklab's matrices, and
    whether to use them (else the working space is sRGB scaled to 0–1)."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    lut = srgb_to_linear(np.arange(256) / 255.0)
    m1, m2 = np.ascontiguousarray(LINEAR_TO_LMS), np.ascontiguousarray(LMS_TO_OKLAB)
    return lut, m1, m2, space == "oklab"


def _scratch(width: int):
    """The conversion's scratch: LMS (3, width) float32, and views of it (its bits, and
    flat), and the cube roots' first guesses (float32 and their bits), made here rather than
    in compiled code (numba's reshape compiles slowly)."""
    lms, guess = np.empty((3, width), np.float32), np.empty(3 * width, np.float32)
    flat = lms.reshape(-1)
    return lms, flat.view(np.int32), flat, guess, guess.view(np.int32)


def working_coordinates(packed: np.ndarray, has_alpha: bool, space: str) -> np.ndarray:
    """(n, 4) working-space coordinates of packed pixels, exactly as the dithering loop sees
    them: colour premultiplied by alpha, then alpha × ALPHA_WEIGHT."""
    lut, m1, m2, oklab = _conversion_table(space)
    packed = np.ascontiguousarray(packed, dtype=np.uint32)
    out = np.empty((4, len(packed)), dtype=np.float32)
    _convert(packed, has_alpha, lut, m1, m2, oklab, _scratch(len(packed)), out)
    return out.T


def neighbour_table(coordinates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each palette entry, every entry sorted by distance from it, and those distances."""
    coordinates = coordinates.astype(np.float64)
    diff = coordinates[:, None, :] - coordinates[None, :, :]
    distances = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    order = np.argsort(distances, axis=1, kind="stable")
    return order.astype(np.int64), np.take_along_axis(distances, order, axis=1)


def _grid(space: str):
    """An empty, lazily filled grid over every point a dithered pixel can reach in ``space``:
    per cell (index (i << 2B | j << B) | k, B = GRID_SIDE_BITS), where its candidate list
    starts in the pool times 2¹⁶ plus its length (0: not listed yet); the pool lists each
    candidate's coordinates and palette index, four floats."""
    lo, hi = GRID_BOUNDS[space]
    lo, hi = np.array(lo) - CLIP, np.array(hi) + CLIP
    shape = np.ceil((hi - lo) / GRID_CELL).astype(np.int64)
    assert shape.max() <= 1 << GRID_SIDE_BITS
    # Zeros (not listed yet): pages the search never touches are never even allocated.
    cells = np.zeros(1 << (3 * GRID_SIDE_BITS), dtype=np.int64)
    pool = np.empty(4 * GRID_POOL, dtype=np.float64)
    return lo, shape, cells, pool, np.zeros(1, dtype=np.int64)


def dither_labels(source, palette: np.ndarray, level: float, space: str = "oklab") -> np.ndarray:
    """Palette index of every pixel of ``source`` (a PixelSource), by error diffusion.

    ``palette`` is (n, channels) uint8 in palette order; for RGBA a final entry with alpha 0 is
    the clear entry every fully transparent pixel takes (and no other pixel does).
    """
    return dither(source, palette, level, space)[0]


def dither(source, palette: np.ndarray, level: float, space: str = "oklab"):
    """:func:`dither_labels`' labels, with the pixels of each palette entry and the squared
    error of the result (summed over pixels and channels, 0–255, alpha included), counted in
    the same pass: the loop waits on each pixel's error anyway, so the tally costs nothing
    there, where a pass of its own over the image would."""
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"dither level must be between 0 and 1, got {level!r}")
    palette = np.asarray(palette, dtype=np.uint8)
    has_alpha = source.channels == 4
    clear = len(palette) - 1 if has_alpha and palette[-1, 3] == 0 else -1
    searched = palette[:clear] if clear >= 0 else palette
    coordinates = working_coordinates(pack_colors(searched), has_alpha, space).astype(np.float64)
    width, height = source.image.size
    state = (
        np.zeros((3, width), dtype=np.uint32),  # the packed rows held
        np.zeros((3, 4, width), dtype=np.float32),  # and their working-space coordinates
        _scratch(width),
        np.zeros((2, width + 2, 4), dtype=np.float64),  # error of this row and the next
        np.zeros(1, dtype=np.int64),  # rows received
    )
    table = _conversion_table(space)
    opaque = searched[:, 3] == 255 if has_alpha else np.ones(len(searched), bool)
    opaque |= not opaque.any()  # opaque pixels take opaque entries, if there are any
    palette_arrays = (coordinates, *neighbour_table(coordinates), opaque, np.ones_like(opaque))
    grid = _grid(space)
    settings = (has_alpha, clear, float(level), True)
    colours = palette[:, : source.channels].astype(np.int64)
    counts, error = np.zeros(len(palette), np.int64), np.zeros(1, np.int64)
    out = (np.empty(width * height, dtype=np.uint8), colours, counts, error)
    strips = source.strips()
    strip = next(strips, None)
    while strip is not None:
        following = next(strips, None)
        last = following is None
        _feed(np.ascontiguousarray(strip), last, *state, table, palette_arrays, grid, settings, out)
        strip = following
    return out[0], counts, int(error[0])


def pack_colors(colors: np.ndarray) -> np.ndarray:
    """(n, 3 or 4) uint8 colours → packed pixels, opaque where no alpha is given."""
    padded = np.full((len(colors), 4), 255, dtype=np.uint8)
    padded[:, : colors.shape[1]] = colors
    return padded.view(np.uint32).ravel()


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the dithering loop on a tiny image."""
    from PIL import Image

    from pipeline.pixels import PixelSource

    for mode in ("RGB", "RGBA"):
        image = Image.linear_gradient("L").resize((8, 8)).convert(mode)
        palette = np.array([[0] * len(mode), [255] * len(mode)], dtype=np.uint8)
        for space in SPACES:
            dither_labels(PixelSource(image), palette, DEFAULT_LEVEL, space)
