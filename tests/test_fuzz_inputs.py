"""Randomised inputs: broken bytes never crash the runner; each file ends done or failed."""

import io
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pipeline.discover import InputItem
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file


def _valid_bytes(fmt: str) -> bytes:
    rng = np.random.default_rng(5)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (12, 17, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


SEEDS = {
    name: _valid_bytes(fmt)
    for name, fmt in [
        ("x.png", "PNG"),
        ("x.jpg", "JPEG"),
        ("x.gif", "GIF"),
        ("x.bmp", "BMP"),
        ("x.tiff", "TIFF"),
        ("x.webp", "WEBP"),
    ]
}


def _run_one(folder: Path, name: str, data: bytes):
    (folder / name).write_bytes(data)
    item = InputItem(str(folder), name, name, Path(name).stem + ".png")
    result = quantize_file(item, folder / "out", QuantizeParams(k=4), overwrite=True)
    assert result.status in ("done", "failed")
    if result.status == "failed":
        assert result.error and "\n" not in result.error
        assert not result.error.startswith("internal error"), result.error
    return result


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=2048), name=st.sampled_from(sorted(SEEDS)))
def test_random_bytes_fail_cleanly(tmp_path, data, name):
    _run_one(tmp_path, name, data)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.integers(0, 10_000),
)
def test_corrupted_real_files_fail_cleanly_or_decode(tmp_path, name, edits, cut):
    data = bytearray(SEEDS[name])
    for position, value in edits:
        data[position % len(data)] = value
    _run_one(tmp_path, name, bytes(data[: max(1, len(data) - cut % len(data))]))
