"""A stable argsort as a plain compiled loop, for the k-means and dithering loops.

``np.argsort(kind="mergesort")`` inside a numba function compiles numba's generic sort, more
than a second of every machine's first run; this merge sort compiles in a fraction of that
and gives the same order (ascending, equal values in index order).
"""

import numpy as np

from pipeline.compiled import njit


@njit(cache=True)
def argsort_stable(values, order):
    """Fill ``order`` (int64, len(values)) with the indices of ``values`` in ascending order,
    equal values in index order, as ``np.argsort(values, kind="stable")``."""
    n = values.shape[0]
    for i in range(n):
        order[i] = i
    source, target = order, np.empty(n, np.int64)
    in_order = True
    width = 1
    while width < n:
        for low in range(0, n, 2 * width):
            middle, high = min(low + width, n), min(low + 2 * width, n)
            i, j = low, middle
            for t in range(low, high):
                # Left first on ties: that keeps equal values in index order.
                if i < middle and (j >= high or values[source[i]] <= values[source[j]]):
                    target[t] = source[i]
                    i += 1
                else:
                    target[t] = source[j]
                    j += 1
        source, target = target, source
        in_order = not in_order
        width *= 2
    if not in_order:
        for i in range(n):
            order[i] = source[i]
