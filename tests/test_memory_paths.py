"""The memory-saving paths of the quantizer give the same results as the plain ones.

Peak memory itself is measured in benchmarks/ (benchmarks/README.md, 24 MP rows); these tests
check only what the savings must not change.
"""

import subprocess
import sys

#: Quantizes a 256×256 image (large enough for the compiled histogram pass and the k-means
#: steps), then reports whether scipy.linalg was loaded, and that it can still be imported.
QUANTIZE_THEN_REPORT = """
import sys
import numpy as np
from PIL import Image
from pipeline.params import QuantizeParams
from pipeline.quantize import quantize_image
pixels = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
quantize_image(Image.fromarray(pixels), QuantizeParams(k=16))
print("scipy.linalg" in sys.modules)
import scipy.linalg
print(float(scipy.linalg.norm(np.ones(4))))
"""


def test_quantizing_does_not_load_scipy_linalg_and_leaves_it_importable():
    """numba's BLAS probe would import all of scipy.linalg (pipeline/compiled.py)."""
    done = subprocess.run(
        [sys.executable, "-c", QUANTIZE_THEN_REPORT], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "2.0"]
