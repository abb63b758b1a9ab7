"""sorted_distinct: the same values as np.unique, whatever the number of distinct values."""

import numpy as np
import pytest

from pipeline.distinct import sorted_distinct


@pytest.mark.parametrize("size", [0, 1, 2, 1000, 200_000])
@pytest.mark.parametrize("distinct", [1, 7, 2**32])
def test_equals_numpy_unique(size, distinct):
    values = np.random.default_rng(size + distinct).integers(0, distinct, size, dtype=np.uint64)
    packed = values.astype(np.uint32)
    assert np.array_equal(sorted_distinct(packed), np.unique(packed))
    assert sorted_distinct(packed).dtype == np.uint32


def test_a_column_of_packed_pixels_is_flattened():
    pixels = np.array([[5], [3], [5], [0]], dtype=np.uint32)
    assert sorted_distinct(pixels).tolist() == [0, 3, 5]
