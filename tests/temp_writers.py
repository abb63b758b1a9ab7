"""Writers of temp files for the tests: one killed mid-write, one that holds its temp file."""

import signal
import subprocess
import sys
from pathlib import Path

from pipeline.save import TEMP_MARKER, temp_path

#: A writer that claims the temp file of argv[1] the way pipeline.save does, writes half a
#: file, says so, then waits for a line on stdin (holding the lock) or, with argv[2] == "kill",
#: dies of SIGKILL at once, as the OOM killer would strike it.
WRITER = """
import os, signal, sys
from pathlib import Path
from pipeline.discover import InputWalk, resolve_roots
from pipeline.params import QuantizeParams
from pipeline.process import quantize_file
from pipeline.save import claim_temp, temp_path
fd = claim_temp(temp_path(Path(sys.argv[1])))
os.write(fd, b"\\x89PNG half")
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
print("holding", flush=True)
sys.stdin.readline()
"""


def start_writer(final: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(final), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[1],
    )


def killed_writer(final: Path) -> Path:
    """Leave the temp file of ``final`` as a writer killed mid-write leaves it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    writer = start_writer(final, "kill")
    assert writer.wait(60) == -signal.SIGKILL
    assert temp_path(final).read_bytes() == b"\x89PNG half"
    return temp_path(final)


def temps_in(out: Path) -> list[str]:
    return sorted(path.name for path in out.rglob("*") if TEMP_MARKER in path.name)
