"""``colorquant run`` as a process a person starts and stops: Ctrl-C, its summary, its inputs."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from pipeline.settings import TEMP_MARKER
from tests.conftest import colorquant_launcher, file_digests, psnr, run_cli
from tests.odd_files import photo

#: Images in the interrupted run: enough that it is still going when the first output lands.
INTERRUPTED_IMAGES = 48

#: Longest a test waits for a process event, in seconds. Generous: it only bounds a hang.
PATIENCE_S = 120


def wait_for(condition, what: str, timeout: float = PATIENCE_S, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
    return value


def photo_files(folder: Path, count: int, size=(480, 360)) -> Path:
    for index in range(count):
        path = folder / f"part{index % 3}" / f"photo{index:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(size=size, seed=index)).save(path)
    return folder


def finished_outputs(out: Path) -> list[Path]:
    return sorted(out.rglob("*.palette.json"))


@pytest.mark.slow  # a real run of 48 photos, interrupted
def test_ctrl_c_stops_run_cleanly(tmp_path):
    """Ctrl-C (SIGINT to the terminal's process group) mid-run: exit 130 and no traceback,
    every child process ends, and no temp file is left in OUT, not even one an earlier killed
    run left beside an image this run never reached."""
    photos = photo_files(tmp_path / "in", INTERRUPTED_IMAGES)
    out = tmp_path / "out"
    planted = [out / f"part{part}" / f".ghost.png{TEMP_MARKER}killed{part}" for part in range(3)]
    for temp in planted:
        temp.parent.mkdir(parents=True, exist_ok=True)
        temp.write_bytes(b"\x89PNG half")
    running = subprocess.Popen(
        [*colorquant_launcher(), "run", photos, "-o", out, "-j", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a foreground job
    )
    try:
        wait_for(lambda: finished_outputs(out), "the first image to be written")
        children = psutil.Process(running.pid).children(recursive=True)
        assert children, "run started no worker processes"
        os.killpg(running.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        stdout, stderr = running.communicate(timeout=PATIENCE_S)
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait()
    assert running.returncode == 130, (running.returncode, stderr)
    assert "Traceback" not in stderr + stdout, stderr
    assert "interrupted:" in stderr and "run the same command again to resume" in stderr, stderr
    _, alive = psutil.wait_procs(children, timeout=PATIENCE_S)
    assert alive == [], f"child processes outlived the interrupted run: {alive}"

    written = finished_outputs(out)
    assert len(written) < INTERRUPTED_IMAGES, "the run ended before Ctrl-C; nothing was tested"
    # The images running at Ctrl-C finish; the summary counts them with the rest.
    counted = re.search(r"interrupted: (\d+) done, (\d+) skipped", stderr)
    assert counted and int(counted[1]) + int(counted[2]) == len(written), (stderr, len(written))
    temps = [path.name for path in out.rglob("*") if TEMP_MARKER in path.name]
    assert temps == [], f"temp files left in OUT after Ctrl-C: {temps}"
    for palette in written:  # what was written is whole
        document = json.loads(palette.read_text())
        with Image.open(out / document["output"]) as image:
            image.load()


def test_run_prints_a_human_summary_with_its_failures(tmp_path):
    """Without --json, run tells a person on stderr what happened: the counts, where the outputs
    went, and each failure with its reason; stdout stays empty for pipes."""
    folder = photo_files(tmp_path / "in", 3, size=(64, 48))
    (folder / "broken.jpg").write_text("not a picture at all\n")
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    first = run_cli("run", folder, "-o", out, "-k", "8")
    assert first.returncode == 1, first.stderr
    assert first.stdout == ""
    lines = first.stderr.strip().splitlines()
    assert lines[0].startswith("3 done, 0 skipped, 1 failed, 1 ignored (not images) of 4 in ")
    assert lines[0].endswith(f" s → {out}"), lines[0]
    assert lines[1].strip().startswith("failed broken.jpg: not an image"), lines
    assert len(lines) == 2, first.stderr

    again = run_cli("run", folder, "-o", out, "-k", "8")
    assert again.stderr.startswith("0 done, 3 skipped, 1 failed, 1 ignored (not images) of 4 in ")


def test_run_leaves_every_input_byte_for_byte_the_same(tmp_path):
    """Quantizing reads the inputs and never writes them: not their pixels, not their metadata
    (EXIF orientation applied on load, never saved back), not a sidecar file."""
    from tests.odd_files import make_good_files

    folder = tmp_path / "in"
    make_good_files(folder)
    before = file_digests(folder)
    completed = run_cli("run", folder, "-o", tmp_path / "out", "-k", "8", "-j", "2")
    assert completed.returncode == 0, completed.stderr
    assert file_digests(folder) == before


def test_rerun_redoes_an_edit_that_keeps_size_and_mtime_and_skips_the_rest(tmp_path):
    """The skip rule looks at the source's bytes: an edit that keeps the size and carries the
    old mtime (``cp -p``, ``rsync -t``, any uncompressed BMP or PPM) is redone; a ``touch``
    that changes nothing is skipped; every skipped output stays byte for byte the same."""
    folder = tmp_path / "in"
    folder.mkdir()
    for index, suffix in enumerate((".bmp", ".ppm", ".png")):
        Image.fromarray(photo(seed=index)).save(folder / f"photo{index}{suffix}")
    out = tmp_path / "out"
    assert run_cli("run", folder, "-o", out, "-k", "8", "-j", "1").returncode == 0
    first = file_digests(out)

    edited = folder / "photo0.bmp"
    old = edited.stat()
    Image.fromarray(255 - photo(seed=0)).save(edited)  # a negative: same size, new pixels
    os.utime(edited, ns=(old.st_atime_ns, old.st_mtime_ns))  # what cp -p leaves
    assert edited.stat().st_size == old.st_size
    touched = folder / "photo1.ppm"
    os.utime(touched)  # a newer mtime, the same bytes

    again = run_cli("run", folder, "-o", out, "-k", "8", "-j", "1", "--json")
    report = json.loads(again.stdout)
    assert (report["done"], report["skipped"], report["failed"]) == (1, 2, 0), report
    second = file_digests(out)
    changed = sorted(name for name in first if second[name] != first[name])
    assert changed == ["photo0.palette.json", "photo0.png"]
    with Image.open(out / "photo0.png") as result:
        negative = np.asarray(result.convert("RGB"), dtype=np.float64)
    assert psnr(255 - photo(seed=0), negative) > 25, "the output is not of the edited source"
