"""Compiled k-means steps for the fit: weighted Lloyd iterations, exact colour counts, and
an undithered result's error from them.

The fit runs Lloyd's steps on tens or hundreds of thousands of weighted points (histogram bins,
or an image's distinct colours) several times per image; in NumPy each step is a (K × n) matrix
product plus a dozen passes over n. Here each step is one compiled pass that, thanks to
Hamerly's bounds (Drake's for long runs), computes distances only for the few points that
may have changed cluster.

This module imports numba (through :mod:`pipeline.compiled`), so it is imported only where an
image is fitted, never by commands that do not quantize.
"""

from dataclasses import dataclass

import numpy as np

from pipeline.compiled import njit
from pipeline.sorting import argsort_stable

#: Lloyd runs of at least this many steps track each point's runner-up centre (see lloyd).
#: On an image's exact distinct colours, runs of EXACT_TIGHT_FROM_STEPS or more do: there the
#: runner-up pays from 5 steps on (K=16: 6% faster) but not in 2 or 3 (K=64, 2 steps: 2%
#: slower; K=256, 3 steps: 7% slower, with the labels from the bounds).
TIGHT_FROM_STEPS, EXACT_TIGHT_FROM_STEPS = 10, 5

#: A Lloyd run whose bounds are not kept measures every point's distance to every centre, with
#: no bounds, when K × points is at most this. Centre by centre, that loop vectorises over the
#: points; on histogram bins, whose clusters keep changing from step to step, it beats the
#: bounds' searches (the seedings' steps on 5-bit bins, timing mix: K=16 3.9×, K=64 2.3×,
#: K=256 3.2× faster; the 6-bit level's at K=64 1.4× faster, at K=256, 25,000 bins, 13%
#: slower).
ALL_CENTRES_MAX_WORK = 1 << 21


@njit(cache=True, inline="always")
def _squared(points, i, centres, c):
    """Squared distance of point i to centre c; three coordinates (colour without alpha) are
    summed without a loop, which LLVM does not unroll for a count it does not know: about 8%
    of the Lloyd steps. The same additions in the same order as the loop, so the same bits."""
    if points.shape[1] == 3:
        d0 = points[i, 0] - centres[c, 0]
        d1 = points[i, 1] - centres[c, 1]
        d2 = points[i, 2] - centres[c, 2]
        return d0 * d0 + d1 * d1 + d2 * d2
    total = 0.0
    for j in range(points.shape[1]):
        d = points[i, j] - centres[c, j]
        total += d * d
    return total


@njit(cache=True, inline="always")  # one caller, the first pass: no call per point
def _nearest_and_bound(points, i, centres, guess, first, order, gaps):
    """Nearest centre of point i, its distance, and its runner-up's distance (a lower bound on
    the distance to every other centre), searched outwards from centre ``guess``, whose
    distance ``first`` is known.

    ``order[g]`` lists the centres by distance from centre g and ``gaps[g]`` those distances.
    A centre c at distance D from g is at least D − |x − g| from x. The search stops as soon
    as the runner-up is certain (D beyond |x − g| + the runner-up's distance so far), not
    just the nearest: a few more distances here give a bound that spares the first step many
    searches (the Oklab mode's exact-colour run: about 6% faster; runs on bins 1% slower).
    Candidates are compared by squared distance: a root is taken only when the nearest
    changes (rarely) and at the end, which makes the search (most of a fit's time) cheaper.
    """
    best = guess
    best_squared, second_squared = first * first, np.inf
    reach = np.inf
    for j in range(1, centres.shape[0]):
        if gaps[guess, j] > reach:
            return best, np.sqrt(best_squared), np.sqrt(second_squared)
        c = order[guess, j]
        d = _squared(points, i, centres, c)
        if d < best_squared:
            best, second_squared, best_squared = c, best_squared, d
            reach = first + np.sqrt(second_squared)
        elif d < second_squared:
            second_squared = d
            reach = first + np.sqrt(d)
    return best, np.sqrt(best_squared), np.sqrt(second_squared)


@njit(cache=True)
def _neighbours(centres, order, gaps, half, distance, resort):
    """For each centre, every centre sorted by distance from it (itself first; equal
    distances in index order) and those distances; and half the distance to its nearest other
    centre, within which a point cannot be nearer to any other centre.

    ``distance`` is (K, K) scratch. With ``resort``, ``order`` still holds the order of a
    step ago: centres have moved little since, so each row is re-sorted from it by insertion,
    in a few passes over nearly sorted rows (a merge sort of every row from scratch took 3 ms
    at K=256, on every Lloyd step).
    """
    k = centres.shape[0]
    for a in range(k):
        distance[a, a] = np.sqrt(_squared(centres, a, centres, a))
        for b in range(a + 1, k):
            d = np.sqrt(_squared(centres, a, centres, b))
            distance[a, b] = d
            distance[b, a] = d
    ranked = np.empty(k, np.int64)
    for a in range(k):
        if resort:
            _insertion_sort(distance[a], order[a])
        else:
            argsort_stable(distance[a], ranked)
            # Element by element: a whole-row assignment or a fancy index compiles numba's
            # shape checks and their error messages, seconds of a cold start for nothing.
            for b in range(k):
                order[a, b] = ranked[b]
        for b in range(k):
            gaps[a, b] = distance[a, order[a, b]]
        half[a] = 0.5 * gaps[a, 1] if k > 1 else np.inf


@njit(cache=True)
def _insertion_sort(values, indices):
    """Reorder ``indices`` (in place) by ascending ``values[index]``, equal values by index:
    the order :func:`argsort_stable` gives, whatever order ``indices`` start in."""
    for j in range(1, indices.shape[0]):
        index = indices[j]
        value = values[index]
        i = j - 1
        while i >= 0 and (
            values[indices[i]] > value or (values[indices[i]] == value and indices[i] > index)
        ):
            indices[i + 1] = indices[i]
            i -= 1
        indices[i + 1] = index


@njit(cache=True)
def _reassign(points, weights, centres, labels, seconds, bounds, clusters, neighbours, moves):
    """Reassign the points after a centre update that moved the centres by ``moves`` (each
    centre's step, the largest, the runner-up, the fastest centre; see :func:`lloyd`).

    ``bounds`` are each point's upper, runner-up (near) and lower bounds; ``clusters`` the
    cluster totals and sums, updated as points change cluster; ``neighbours`` the order, gaps
    and half-gaps of :func:`_neighbours`; a point's runner-up is tracked (``seconds``) once
    ``tight``. The searches (as :func:`_nearest_and_bound`; when tracking, on until D is
    beyond |x − g| + the third-nearest distance so far, so that both bounds are exact
    distances, not barely above the nearest one) and the move between clusters are written
    out here rather than called: a call passes four arrays' descriptors per search, an
    inlined helper counts references to the arrays it takes; together about 8% of the steps.
    """
    upper, near, lower = bounds
    totals, sums = clusters
    order, gaps, half = neighbours
    step, largest, runner_up, fastest, tight = moves
    k, dims = centres.shape
    for i in range(points.shape[0]):
        own, other = labels[i], seconds[i]
        upper[i] += step[own]
        lower[i] -= runner_up if fastest == own or fastest == other else largest
        if other >= 0:
            near[i] -= step[other]
        bound = max(half[own], min(near[i], lower[i]))
        if upper[i] <= bound:
            continue
        first = np.sqrt(_squared(points, i, centres, own))
        upper[i] = first
        if first <= bound:
            continue
        best = -1
        if other >= 0 and first <= lower[i]:
            # Only the runner-up may be nearer: its distance settles it.
            near[i] = np.sqrt(_squared(points, i, centres, other))
            if first <= near[i]:
                continue
            if near[i] < lower[i]:
                best, seconds[i] = other, own
                upper[i], near[i] = near[i], first
        if best < 0 and tight:
            best, second = own, -1
            best_squared, second_squared, third_squared = first * first, np.inf, np.inf
            reach = np.inf
            for j in range(1, k):
                if gaps[own, j] > reach:
                    break
                c = order[own, j]
                d = _squared(points, i, centres, c)
                if d < best_squared:
                    third_squared = second_squared
                    second_squared, second = best_squared, best
                    best_squared, best = d, c
                elif d < second_squared:
                    third_squared = second_squared
                    second_squared, second = d, c
                elif d < third_squared:
                    third_squared = d
                else:
                    continue
                reach = first + np.sqrt(third_squared)
            seconds[i] = second
            upper[i], near[i] = np.sqrt(best_squared), np.sqrt(second_squared)
            lower[i] = np.sqrt(third_squared)
        elif best < 0:
            best = own
            best_squared, second_squared = first * first, np.inf
            reach, cut = first + first, np.inf
            for j in range(1, k):
                gap = gaps[own, j]
                if gap > reach:
                    cut = gap - first
                    break
                c = order[own, j]
                d = _squared(points, i, centres, c)
                if d < best_squared:
                    best, second_squared, best_squared = c, best_squared, d
                    reach = first + np.sqrt(d)
                elif d < second_squared:
                    second_squared = d
            upper[i], lower[i] = np.sqrt(best_squared), min(np.sqrt(second_squared), cut)
        if best != own:
            labels[i] = best
            w = weights[i]
            totals[own] -= w
            totals[best] += w
            for j in range(dims):
                sums[own, j] -= w * points[i, j]
                sums[best, j] += w * points[i, j]


@njit(cache=True)
def lloyd(
    points, weights, centres, iterations, tol, relax, min_gain, tight, state, columns, guesses
):
    """Weighted, over-relaxed Lloyd steps from ``centres`` (updated in place); returns them.

    Each step moves every non-empty cluster's centre ``relax`` times the way to its points'
    weighted mean (an empty cluster keeps its centre), until no centre moves ``tol``, or two
    steps in a row have each lowered the inertia by less than ``min_gain`` of it (measured at
    the clusters' means, which the cluster sums give for free), or after ``iterations``
    steps. The last step's new clusters are not formed: no step would use them.

    Hamerly's bounds (an upper bound on each point's distance to its own centre, a lower bound
    on its distance to any other) skip the points that cannot have changed cluster; cluster
    sums are kept up to date point by point. With ``tight`` the lower bound is split in two,
    as in Drake's algorithm: one for the runner-up centre, which loosens only by that centre's
    own move, and one for all the others, which loosens by the largest move but starts at the
    third-nearest distance. Most points near a boundary
    between two clusters then pass the test, or need just their runner-up's distance, instead
    of a search at every step (the RGB mode's 20 steps at K=64: about a fifth faster, 5 on
    the exact colours in Oklab a tenth; 2 or 3 steps, or 8 on histogram bins, lose more on
    the longer searches than they gain).

    ``state`` holds each point's cluster, runner-up, bounds, and the centres they hold for
    (``anchor``: the last step's clusters are not formed, so the centres a step earlier), for
    :meth:`LloydBounds.nearest` to use afterwards. Given ``columns`` (the points by coordinate,
    (dims, n); (dims, 0): not given), each step instead measures every point against every
    centre (:func:`_nearest_all`), and the bounds are left unset. ``guesses``, when given (one
    centre per point; else empty), start each point's first search instead of the previous
    point's nearest centre.
    """
    n, dims = points.shape
    k = centres.shape[0]
    # seconds: runner-up centre, -1 (as given): not tracked; near: lower bound on the distance
    # to the runner-up (given as inf); lower: on the distance to every other centre.
    labels, seconds, upper, near, lower, anchor = state
    totals = np.zeros(k)
    sums = np.zeros((k, dims))
    order = np.empty((k, k), np.int64)
    gaps = np.empty((k, k))
    half = np.empty(k)
    distance = np.empty((k, k))
    bounds, clusters, neighbours = (upper, near, lower), (totals, sums), (order, gaps, half)
    resort = iterations < 0  # False, but not the literal (see below)
    _neighbours(centres, order, gaps, half, distance, resort)
    search_all = columns.shape[1] == n and n > 0
    scratch = np.empty(n if search_all else 0)
    fresh = np.empty(n if search_all else 0, np.int64)
    if search_all:
        _nearest_all(columns, centres, scratch, labels)
    best = np.int64(0)  # not the literal 0: that would compile the search a second time
    squares = 0.0
    for i in range(n):
        if search_all:
            best = labels[i]
        else:
            # Neighbouring points (sorted colours, bins in key order) tend to share a centre.
            if guesses.shape[0] == n:
                best = guesses[i]
            first = np.sqrt(_squared(points, i, centres, best))
            best, upper[i], lower[i] = _nearest_and_bound(
                points, i, centres, best, first, order, gaps
            )
            labels[i] = best
        totals[best] += weights[i]
        for j in range(dims):
            sums[best, j] += weights[i] * points[i, j]
            squares += weights[i] * points[i, j] * points[i, j]
    _copy_rows(centres, anchor)
    step = np.empty(k)
    previous, slow_steps = np.inf, 0
    for done in range(iterations):
        # Inertia at the means of the current clusters: sum of w·|x|² less sum of |S|²/W.
        at_means = squares
        for c in range(k):
            if totals[c] > 0:
                for j in range(dims):
                    at_means -= sums[c, j] * sums[c, j] / totals[c]
        slow = min_gain > 0 and previous - at_means < min_gain * at_means
        slow_steps = slow_steps + 1 if slow else 0
        if slow_steps >= 2:
            break
        previous = at_means
        # np.int64 and a computed flag below, not literals: numba would compile _reassign
        # and _neighbours once more for each literal (a second of a machine's first run).
        largest, runner_up, fastest = 0.0, 0.0, np.int64(-1)
        for c in range(k):
            moved = 0.0
            if totals[c] > 0:
                for j in range(dims):
                    target = centres[c, j] + relax * (sums[c, j] / totals[c] - centres[c, j])
                    moved += (target - centres[c, j]) ** 2
                    centres[c, j] = target
            step[c] = np.sqrt(moved)
            if step[c] > largest:
                largest, runner_up, fastest = step[c], largest, c
            elif step[c] > runner_up:
                runner_up = step[c]
        if largest < tol or done == iterations - 1:
            break  # the last step's new clusters would serve no further step
        if search_all:
            _nearest_all(columns, centres, scratch, fresh)
            _move_points(points, weights, labels, fresh, totals, sums)
            continue
        _neighbours(centres, order, gaps, half, distance, not resort)
        moves = (step, largest, runner_up, fastest, tight)
        _reassign(points, weights, centres, labels, seconds, bounds, clusters, neighbours, moves)
        _copy_rows(centres, anchor)
    return centres


def weighted_lloyd(
    points,
    weights,
    centres,
    iterations: int,
    tol: float,
    relax: float,
    min_gain: float = 0.0,
    tight: bool | None = None,
    keep_bounds: bool = False,
    keep_labels: bool = False,
    guesses: np.ndarray | None = None,
):
    """:func:`lloyd` on float64 copies: the fitted centres, (K, dims) float64; with
    ``keep_bounds``, also the run's :class:`LloydBounds`, from which the points' exact labels
    against the final (rounded) palette come cheaply; with ``keep_labels``, also each point's
    cluster at the last step that formed them (int64). ``tight`` (runner-up bounds) defaults to
    runs of TIGHT_FROM_STEPS steps or more; ``guesses``: see :func:`lloyd`."""
    if tight is None:
        tight = iterations >= TIGHT_FROM_STEPS
    points = np.ascontiguousarray(points, dtype=np.float64)
    centres = np.array(centres, dtype=np.float64)
    n = len(points)
    bounds = LloydBounds(
        points,
        np.empty(n, np.int64),
        np.full(n, -1, np.int64),
        np.empty(n),
        np.full(n, np.inf),
        np.empty(n),
        np.empty_like(centres),
    )
    state = (bounds.labels, bounds.seconds, bounds.upper, bounds.near, bounds.lower)
    search_all = not keep_bounds and len(centres) * n <= ALL_CENTRES_MAX_WORK
    columns = np.ascontiguousarray(points.T) if search_all else np.empty((points.shape[1], 0))
    lloyd(
        points,
        np.ascontiguousarray(weights, dtype=np.float64),
        centres,
        int(iterations),
        float(tol),
        float(relax),
        float(min_gain),
        bool(tight),
        (*state, bounds.anchor),
        columns,
        np.empty(0, np.int64) if guesses is None else np.ascontiguousarray(guesses, np.int64),
    )
    if keep_labels:
        return centres, bounds.labels
    return (centres, bounds) if keep_bounds else centres


#: Slack (working units, 0–255 scale) a point's bounds must leave before they settle its label
#: without a search in :meth:`LloydBounds.nearest`. Bounds are sums and roots of a few dozen float64
#: values below 10^3, off by under 1e-11 in all; the slack keeps a rounding from ever passing
#: off a tie or a nearer colour as settled.
BOUND_SLACK = 1e-9


@dataclass
class LloydBounds:
    """What a Lloyd run knows of each point at its end (see :func:`lloyd`): its cluster, its
    runner-up (-1: not tracked), an upper bound on its distance to its own centre and lower
    bounds on the distance to its runner-up and to every other centre, all holding for the
    centres ``anchor``."""

    points: np.ndarray
    labels: np.ndarray
    seconds: np.ndarray
    upper: np.ndarray
    near: np.ndarray
    lower: np.ndarray
    anchor: np.ndarray

    def nearest(self, targets: np.ndarray) -> np.ndarray:
        """Index of the nearest of ``targets`` ((K, dims), one per centre: each centre's
        final palette colour in working coordinates) to each point, int64, the lowest index
        among exact ties: exactly :func:`nearest_centres`, most points settled by their bounds
        moved by each centre's distance to its target."""
        out = np.empty(len(self.points), np.int64)
        state = (self.labels, self.seconds, self.upper, self.near, self.lower, self.anchor)
        targets = np.ascontiguousarray(targets, dtype=np.float64)
        _bounded_labels(self.points, state, targets, BOUND_SLACK, out)
        return out


@njit(cache=True)
def _bounded_labels(points, state, targets, slack, out):
    """``out[i]``: the nearest target to point i (lowest index on an exact tie), where target
    c replaces centre c of a Lloyd run whose bounds (``state``) are given: a point whose
    bounds, loosened by the targets' moves, leave its own target nearer by ``slack`` keeps
    its cluster; any other is searched exactly, outwards from its own target."""
    labels, seconds, upper, near, lower, anchor = state
    k = targets.shape[0]
    step = np.empty(k)
    largest, runner_up, fastest = 0.0, 0.0, np.int64(-1)
    for c in range(k):
        step[c] = np.sqrt(_squared(targets, c, anchor, c))
        if step[c] > largest:
            largest, runner_up, fastest = step[c], largest, c
        elif step[c] > runner_up:
            runner_up = step[c]
    order, gaps, half = np.empty((k, k), np.int64), np.empty((k, k)), np.empty(k)
    _neighbours(targets, order, gaps, half, np.empty((k, k)), k < 0)  # False, not literal
    for i in range(points.shape[0]):
        own, other = labels[i], seconds[i]
        bound = lower[i] - (runner_up if fastest == own or fastest == other else largest)
        if other >= 0:
            bound = min(bound, near[i] - step[other])
        bound = max(half[own], bound) - slack
        if upper[i] + step[own] < bound:
            out[i] = own
            continue
        best_d = _squared(points, i, targets, own)
        first = np.sqrt(best_d)
        if first < bound:
            out[i] = own
            continue
        best, reach = own, 2.0 * first
        for j in range(k):  # from 0: a copy of own's target with a lower index comes first
            if gaps[own, j] > reach * (1.0 + 1e-12):  # margin: the bound is in floats too
                break
            c = order[own, j]
            d = _squared(points, i, targets, c)
            if d < best_d or (d == best_d and c < best):
                best, best_d = c, d
                reach = first + np.sqrt(d)
        out[i] = best


@njit(cache=True)
def _nearest_all(columns, centres, nearest, labels):
    """``labels[i]``: the nearest centre to point i (the lowest index on an exact tie), by its
    squared distance to every centre (``nearest``: scratch), centre by centre so that the loops
    over the points (``columns``: by coordinate, (dims, n)) vectorise. Three coordinates in
    one pass, as :func:`_squared` sums them."""
    dims, n = columns.shape
    for i in range(n):
        nearest[i] = np.inf
    for c in range(centres.shape[0]):
        if dims == 3:
            r0, r1, r2 = columns[0], columns[1], columns[2]
            t0, t1, t2 = centres[c, 0], centres[c, 1], centres[c, 2]
            for i in range(n):
                d0, d1, d2 = r0[i] - t0, r1[i] - t1, r2[i] - t2
                d = d0 * d0 + d1 * d1 + d2 * d2
                if d < nearest[i]:
                    nearest[i] = d
                    labels[i] = c
            continue
        for i in range(n):
            d = 0.0
            for j in range(dims):
                e = columns[j, i] - centres[c, j]
                d += e * e
            if d < nearest[i]:
                nearest[i] = d
                labels[i] = c


@njit(cache=True)
def _move_points(points, weights, labels, fresh, totals, sums):
    """Move each point whose cluster changed (``labels`` → ``fresh``) between the clusters'
    totals and sums, in point order, as :func:`_reassign` does."""
    for i in range(points.shape[0]):
        own, best = labels[i], fresh[i]
        if best != own:
            labels[i] = best
            w = weights[i]
            totals[own] -= w
            totals[best] += w
            for j in range(points.shape[1]):
                sums[own, j] -= w * points[i, j]
                sums[best, j] += w * points[i, j]


@njit(cache=True)
def _copy_rows(source, target):
    """``target[:, :] = source`` for 2-D arrays, without numba's shape checks."""
    for i in range(source.shape[0]):
        for j in range(source.shape[1]):
            target[i, j] = source[i, j]


@njit(cache=True, inline="always")
def _copy(source, target):
    """``target[:] = source`` without numba's shape checks, which take seconds to compile."""
    for i in range(source.shape[0]):
        target[i] = source[i]


@njit(cache=True, inline="always")
def _count_at_most(ascending, value):
    """How many of the ``ascending`` values are at most ``value``, by bisection: as
    ``np.searchsorted(ascending, value, side="right")``, which compiles for far longer."""
    low, high = 0, ascending.shape[0]
    while low < high:
        middle = (low + high) // 2
        if ascending[middle] <= value:
            low = middle + 1
        else:
            high = middle
    return low


@njit(cache=True)
def _to_point(columns, index, out):
    """``out[i]``: squared distance of point i to point ``index``, for points stored by
    coordinate (``columns``, (dims, n)), so that the loop over the points vectorises."""
    dims, n = columns.shape
    for i in range(n):
        out[i] = 0.0
    for j in range(dims):
        target = columns[j, index]
        row = columns[j]
        for i in range(n):
            d = row[i] - target
            out[i] += d * d


@njit(cache=True)
def _nearer(columns, index, closest, out):
    """``out[i]``: the lesser of ``closest[i]`` and point i's squared distance to point
    ``index`` (points by coordinate, as :func:`_to_point`). Three coordinates in one pass
    (the same additions in the same order, so the same bits): a third of the seeding's time
    went to the separate passes' loads and stores."""
    dims, n = columns.shape
    if dims == 3:
        r0, r1, r2 = columns[0], columns[1], columns[2]
        t0, t1, t2 = r0[index], r1[index], r2[index]
        for i in range(n):
            d0, d1, d2 = r0[i] - t0, r1[i] - t1, r2[i] - t2
            out[i] = min(closest[i], d0 * d0 + d1 * d1 + d2 * d2)
        return
    _to_point(columns, index, out)
    for i in range(n):
        out[i] = min(closest[i], out[i])


@njit(cache=True)
def _weighted_sum(weights, values):
    """Sum of ``weights * values`` in four interleaved partial sums: one running sum would
    wait on each addition before the next (a quarter of the speed)."""
    n = weights.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    whole = n - n % 4
    for i in range(0, whole, 4):
        s0 += weights[i] * values[i]
        s1 += weights[i + 1] * values[i + 1]
        s2 += weights[i + 2] * values[i + 2]
        s3 += weights[i + 3] * values[i + 3]
    for i in range(whole, n):
        s0 += weights[i] * values[i]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _seed(points, columns, weights, k, trials, draws, centres):
    """Greedy k-means++ (as scikit-learn's ``kmeans_plusplus``): the first centre drawn with
    probability ∝ weight, each next one the best of ``trials`` candidates drawn ∝ weight × the
    squared distance to the nearest centre so far, best meaning the lowest total weighted
    squared distance once added. ``draws`` holds the uniform numbers in [0, 1) it consumes;
    ``columns`` is ``points`` transposed."""
    n = points.shape[0]
    cumulative = np.empty(n)
    total = 0.0
    for i in range(n):  # as np.cumsum (sequential sums), which compiles for far longer
        total += weights[i]
        cumulative[i] = total
    first = min(_count_at_most(cumulative, draws[0] * cumulative[-1]), n - 1)
    closest = np.empty(n)
    _to_point(columns, first, closest)
    _copy(points[first], centres[0])
    candidate_closest = np.empty(n)
    best_closest = np.empty(n)
    used = 1
    for c in range(1, k):
        total = 0.0
        for i in range(n):
            total += weights[i] * closest[i]
            cumulative[i] = total
        best_potential, best_index = np.inf, 0
        for _ in range(trials):
            target = draws[used] * total
            used += 1
            index = min(_count_at_most(cumulative, target), n - 1)
            _nearer(columns, index, closest, candidate_closest)
            potential = _weighted_sum(weights, candidate_closest)
            if potential < best_potential:
                best_potential, best_index = potential, index
                _copy(candidate_closest, best_closest)
        _copy(points[best_index], centres[c])
        _copy(best_closest, closest)
    return centres


def kmeans_plusplus(points, weights, k: int, seed) -> np.ndarray:
    """k initial centres ((k, dims) float64) for weighted points, by greedy k-means++ with
    scikit-learn's number of local trials (2 + ln k); reproducible from ``seed`` (an int or a
    tuple of ints, as NumPy's generators take)."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    trials = 2 + int(np.log(k))
    draws = np.random.default_rng(seed).random(1 + (k - 1) * trials)
    centres = np.empty((k, points.shape[1]))
    columns = np.ascontiguousarray(points.T)
    return _seed(points, columns, weights, int(k), trials, draws, centres)


@njit(cache=True)
def _inertia(columns, weights, centres):
    """As :func:`inertia`, over points stored by coordinate (``columns``, (dims, n)), their
    nearest centres found by :func:`_nearest_all`."""
    n = columns.shape[1]
    nearest = np.empty(n)
    _nearest_all(columns, centres, nearest, np.empty(n, np.int64))
    total = 0.0
    for i in range(n):
        total += weights[i] * nearest[i]
    return total


def inertia(points, weights, centres) -> float:
    """Sum over the weighted points of weight × squared distance to the nearest centre."""
    return _inertia(
        np.ascontiguousarray(np.asarray(points, dtype=np.float64).T),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(centres, dtype=np.float64),
    )


@njit(cache=True)
def _nearest_each(points, centres, order, gaps, labels):
    """Nearest centre of every point (lowest index on an exact tie), searched outwards from the
    previous point's (neighbouring points tend to share it).

    :func:`_bounded_labels` ends with the same search, written out there too: one inlined
    helper for both made this function 13% slower (10^6 random points, K=64), and it labels
    every distinct colour of a big photo or of a given palette."""
    guess = 0
    for i in range(points.shape[0]):
        best = guess
        best_d = _squared(points, i, centres, guess)
        from_guess = np.sqrt(best_d)
        reach = 2.0 * from_guess
        for j in range(centres.shape[0]):
            if gaps[guess, j] > reach * (1.0 + 1e-12):  # margin: the bound is in floats too
                break
            c = order[guess, j]
            d = _squared(points, i, centres, c)
            if d < best_d or (d == best_d and c < best):
                best, best_d = c, d
                reach = from_guess + np.sqrt(d)
        labels[i] = best
        guess = best


def nearest_centres(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index (uint8, K ≤ 256) of the nearest of ``centres`` to each point, by exact float64
    squared distances; the lowest index among exact ties."""
    points = np.ascontiguousarray(points, dtype=np.float64)
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    k = len(centres)
    order, gaps, half = np.empty((k, k), np.int64), np.empty((k, k)), np.empty(k)
    _neighbours(centres, order, gaps, half, np.empty((k, k)), False)
    labels = np.empty(len(points), dtype=np.uint8)
    _nearest_each(points, centres, order, gaps, labels)
    return labels


@njit(cache=True)
def _rank_in_block(distinct, ranks, starts):
    """For sorted packed RGB colours: ``starts[c >> 8]``, the index of the first colour sharing
    c's top 16 bits, and ``ranks[c]``, c's place among them (below 256, so uint8 holds it)."""
    block = -1
    for i in range(distinct.shape[0]):
        c = np.int64(distinct[i])
        if (c >> 8) != block:
            block = c >> 8
            starts[block] = i
        ranks[c] = i - starts[block]


@njit(cache=True)
def _count_into(strip, ranks, starts, counts):
    for p in strip:
        c = np.int64(p) & 0xFFFFFF
        counts[starts[c >> 8] + ranks[c]] += 1


def rgb_colour_counts(distinct: np.ndarray, strips) -> np.ndarray:
    """Pixel count of each of an RGB image's distinct colours (``distinct``: sorted, packed),
    in one pass over the packed pixel ``strips``, without sorting them.

    A colour's index in ``distinct`` is where its 256-colour block starts plus its rank in the
    block. The rank table has an entry per possible colour but is never cleared: only the
    entries of present colours are written and read, so only their pages are ever touched.
    """
    ranks = np.empty(1 << 24, dtype=np.uint8)
    starts = np.empty(1 << 16, dtype=np.int64)
    _rank_in_block(distinct, ranks, starts)
    counts = np.zeros(len(distinct), dtype=np.int64)
    for strip in strips:
        _count_into(strip, ranks, starts, counts)
    return counts


@njit(cache=True)
def _colour_error(distinct, labels, counts, palette, per_entry):
    """Sum over the packed RGB colours ``distinct`` of count × squared distance to the palette
    colour of their label (int64, exact); each label's count added into ``per_entry``."""
    error = np.int64(0)
    for i in range(distinct.shape[0]):
        colour, entry, count = np.int64(distinct[i]), labels[i], counts[i]
        squared = np.int64(0)
        for channel in range(3):
            d = ((colour >> (8 * channel)) & 0xFF) - palette[entry, channel]
            squared += d * d
        error += count * squared
        per_entry[entry] += count
    return error


def colour_error_and_counts(distinct, labels, counts, palette):
    """Exact squared error (int) and per-entry pixel counts of an RGB image labelled by its
    distinct colours: ``distinct`` packed, ``labels`` their palette indices, ``counts`` their
    pixel counts; one term per colour, not per pixel."""
    per_entry = np.zeros(len(palette), dtype=np.int64)
    error = _colour_error(
        distinct,
        labels,
        np.ascontiguousarray(counts, dtype=np.int64),
        np.ascontiguousarray(palette, dtype=np.int64),
        per_entry,
    )
    return int(error), per_entry


@njit(cache=True)
def _by_bin(packed, bits, per_bin, out):
    """``out[i]``: ``per_bin`` of the histogram bin (``bits`` per channel, channel 0 lowest,
    as :func:`pipeline.pixels.bin_keys`) of packed RGB colour i."""
    drop, mask = 8 - bits, (1 << bits) - 1
    for i in range(packed.shape[0]):
        c = np.int64(packed[i])
        key = (c >> drop) & mask
        key |= ((c >> (8 + drop)) & mask) << bits
        key |= ((c >> (16 + drop)) & mask) << (2 * bits)
        out[i] = per_bin[key]


def labels_by_bin(packed: np.ndarray, bits: int, keys: np.ndarray, labels: np.ndarray):
    """The label (int64) of each packed RGB colour's bin at ``bits`` per channel, the bins
    being ``keys`` with ``labels``: what a fit on those bins says of each colour."""
    per_bin = np.zeros(1 << (3 * bits), np.int64)
    per_bin[keys] = labels
    out = np.empty(len(packed), np.int64)
    _by_bin(np.ascontiguousarray(packed, np.uint32), int(bits), per_bin, out)
    return out


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the kernels on a few points."""
    points = np.arange(12, dtype=np.float64).reshape(4, 3)
    _, bounds = weighted_lloyd(points, np.ones(4), points[:2], 2, 0.0, 1.0, keep_bounds=True)
    bounds.nearest(points[:2])
    distinct = np.array([1, 2, 300], dtype=np.uint32)
    counts = rgb_colour_counts(distinct, [distinct])
    guesses = labels_by_bin(distinct, 5, np.arange(4), np.array([0, 1, 1, 0]))
    weighted_lloyd(points[:3], np.ones(3), points[:2], 1, 0.0, 1.0, 0.0, True, True, False, guesses)
    colour_error_and_counts(distinct, np.zeros(3, np.uint8), counts, np.zeros((1, 3), np.uint8))
    nearest_centres(points, points[:2])
    inertia(points, np.ones(4), kmeans_plusplus(points, np.ones(4), 2, (0, 1)))
