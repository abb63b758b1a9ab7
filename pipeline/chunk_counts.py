"""A count chunk's merged colour counts on disk, for the shared-palette job on workers.

Each count chunk of job ``J`` writes one file, ``OUT/.colorquant/J/counts/CHUNK.npz``: the
merged :class:`pipeline.counts.ColorCounts` of the chunk's images that could be read, and their
message rows (the fit turns them into label chunks). The file is written atomically under a
name fixed by the chunk, so a redelivered chunk writes the same bytes again: harmless. Redis
holds only which chunks are counted (worker/phase_store.py), never the counts themselves.
"""

import io
import json
from pathlib import Path

import numpy as np

from pipeline.jobrecord import STATE_DIR
from pipeline.save import write_atomic

#: Folder of a job's chunk counts inside ``OUT/.colorquant/JOB/``.
COUNTS_DIR = "counts"

#: Format tag of a chunk counts file, so anything else is refused clearly.
CHUNK_COUNTS_FORMAT = "colorquant-chunk-counts-1"


def counts_path(out: str | Path, job: str, chunk: str) -> Path:
    """Where the counts of ``chunk`` of ``job`` live; ValueError for a chunk id that is not a
    plain file name (the id comes from a message)."""
    if not chunk or "/" in chunk or "\0" in chunk or chunk.startswith("."):
        raise ValueError(f"malformed chunk id {chunk!r}")
    return Path(out, STATE_DIR, job, COUNTS_DIR, f"{chunk}.npz")


def write_chunk_counts(path: Path, counts, rows: list) -> None:
    """Write a chunk's merged counts (None when no image of it could be read) and its rows."""
    buffer = io.BytesIO()
    data = counts.to_bytes() if counts is not None else b""
    np.savez(
        buffer,
        format=np.array(CHUNK_COUNTS_FORMAT),
        counts=np.frombuffer(data, dtype=np.uint8),
        rows=np.array(json.dumps(rows, ensure_ascii=False, sort_keys=True)),
    )
    write_atomic(path, buffer.getvalue())


def read_chunk_counts(path: Path):
    """(counts or None, rows) of a chunk file; ValueError when it is not one, OSError when it
    cannot be read."""
    from pipeline.counts import ColorCounts

    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["format"]) != CHUNK_COUNTS_FORMAT:
                raise ValueError(f"{path.name} is not a chunk counts file")
            data = stored["counts"].tobytes()
            rows = json.loads(str(stored["rows"]))
    except (KeyError, EOFError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable chunk counts {path.name}: {exc}") from None
    return (ColorCounts.from_bytes(data) if data else None), rows
