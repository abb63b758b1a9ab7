"""A distributed job ends with no temp file in OUT: neither the one a killed writer of one of its
outputs left (found directly by the next writer), nor one of another name (swept once per folder
and job)."""

import json

import pytest

from harness.images import write_generated_images
from pipeline.save import TEMP_MARKER
from tests.temp_writers import killed_writer, temps_in

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_no_temp_file_is_left_when_a_distributed_job_ends(cluster, tmp_path):
    inputs = tmp_path / "in"
    write_generated_images(inputs, 4)
    out = tmp_path / "out"
    stale = killed_writer(out / "gen-000.png")
    older = out / f".gen-001.png{TEMP_MARKER}from-an-older-version"
    older.write_bytes(b"half")

    submitted = cluster.cli("submit", inputs, "-o", out, "--json", check=True)
    document = cluster.wait_until_final(json.loads(submitted.stdout)["job"])

    assert (document["state"], document["done"], document["failed"]) == ("done", 4, 0)
    assert not stale.exists() and not older.exists()
    assert temps_in(out) == []
