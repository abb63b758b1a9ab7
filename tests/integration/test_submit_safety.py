"""The worker side of "never destroy what colorquant did not write", on real workers."""

import json
import os
import shutil

import pytest
from PIL import Image

from harness.commands import clean_env, run_colorquant
from harness.images import sample_photo_path, write_generated_images

#: The broker URL's environment variable.
BROKER = "COLORQUANT_BROKER_URL"

#: A database of the session's redis-server no worker consumes from: nothing gets through.
REFUSING_DB = 8


@pytest.mark.slow
def test_a_worker_never_replaces_a_file_colorquant_did_not_write(cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copyfile(sample_photo_path("china.jpg"), folder / "china.jpg")
    shutil.copyfile(sample_photo_path("flower.jpg"), folder / "flower.jpg")
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "china.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(mine)
    original = mine.read_bytes()
    waited = cluster.cli("submit", folder, "-o", out, "--wait", "--json", "-k", "8")
    assert waited.returncode == 1, waited.stderr
    report = json.loads(waited.stdout)
    assert (report["done"], report["failed"]) == (1, 1)
    assert report["failures"][0]["path"] == "china.jpg"
    assert str(mine) in report["failures"][0]["error"]
    assert mine.read_bytes() == original


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_is_submitted_as_run_handles_it(cluster, tmp_path):
    """``caf\\xe9.png`` (Latin-1 bytes) goes through Redis and a Celery message and back: the
    job runs, its outputs are byte for byte those of ``run``, and status names the file."""
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (24, 16), (40, 90, 160)).save(folder / name)
    Image.new("RGB", (24, 16), (200, 40, 30)).save(folder / "plain.png")
    (folder / os.fsdecode(b"bro\xefen.png")).write_bytes(b"not a PNG")
    waited = cluster.cli("submit", folder, "-o", tmp_path / "out", "--wait", "--json", "-k", "4")
    assert waited.returncode == 1, waited.stderr  # the broken file fails, nothing else
    report = json.loads(waited.stdout)
    assert (report["done"], report["failed"]) == (2, 1)
    assert [os.fsencode(f["path"]) for f in report["failures"]] == [b"bro\xefen.png"]
    shown = cluster.cli("status", report["job"])
    assert shown.returncode == 0 and os.fsdecode(b"bro\xefen.png") in shown.stdout, shown.stderr
    ran = cluster.cli("run", folder, "-o", tmp_path / "ran", "-k", "4")
    assert ran.returncode == 1, ran.stderr
    for made in (tmp_path / "ran").glob("*.png"):
        assert (tmp_path / "out" / made.name).read_bytes() == made.read_bytes(), made.name
    for made in (tmp_path / "ran").glob("*.palette.json"):
        submitted = json.loads((tmp_path / "out" / made.name).read_bytes())
        for field in ("source", "output", "colors", "metrics"):
            assert submitted[field] == json.loads(made.read_bytes())[field], made.name
    # run keeps its job record in OUT/.colorquant; a submitted job keeps it in Redis.
    names = [sorted((tmp_path / out).glob("[!.]*")) for out in ("out", "ran")]
    assert [path.name for path in names[0]] == [path.name for path in names[1]]


def test_a_submit_refused_midway_leaves_no_output_folder_behind(redis_server, tmp_path):
    """Redis answers the reachability check, then refuses the first message (an ACL user
    without LPUSH): the submit fails with one line, and the OUT it had just created is gone."""
    user, password = "nolpush", "test-only"
    admin = redis_server.client()
    admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    admin.execute_command("ACL", "SETUSER", user, "-lpush")
    try:
        folder, out = tmp_path / "in", tmp_path / "new" / "out"
        write_generated_images(folder, 1)
        url = f"redis://{user}:{password}@127.0.0.1:{redis_server.port}/{REFUSING_DB}"
        done = run_colorquant("submit", folder, "-o", out, env=clean_env({BROKER: url}))
    finally:
        admin.execute_command("ACL", "DELUSER", user)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")
    assert not out.exists() and not out.parent.exists(), "an empty OUT was left behind"
