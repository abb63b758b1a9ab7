"""A job's record in OUT: where its inputs came from and how it ended.

Palette JSONs name their source relative to the input root, which is all a user needs, but a
report that shows the original beside the result must find that original again. Each ``run`` and
``submit`` therefore leaves a small record in OUT's hidden folder, ``OUT/.colorquant/JOB/job.json``:
the input roots (as pairs of a source-name prefix and the folder it stands for), the parameters,
and, for ``run``, the end summary with its failures. Its size depends on the number of input
roots and failures, never on the number of images that succeeded.
"""

import json
import time
from collections.abc import Iterable
from pathlib import Path

from pipeline.discover import InputItem
from pipeline.save import json_bytes, write_atomic

#: OUT's hidden folder for colorquant's own bookkeeping; walks of OUT skip it.
STATE_DIR = ".colorquant"

#: File name of a job's record inside ``OUT/.colorquant/JOB/``.
RECORD_NAME = "job.json"


def record_path(out: str | Path, job: str) -> Path:
    return Path(out, STATE_DIR, job, RECORD_NAME)


def source_root(item: InputItem) -> tuple[str, str] | None:
    """The (prefix, folder) pair that turns this item's ``source`` back into its path:
    ``folder / source[len(prefix):]``. None when the names do not line up."""
    if not item.source.endswith(item.rel):
        return None
    return item.source[: len(item.source) - len(item.rel)], item.root


def roots_of(items: Iterable[InputItem]) -> list[list[str]]:
    """The distinct (prefix, folder) pairs the items' sources use, in order of first use."""
    pairs = dict.fromkeys(pair for item in items if (pair := source_root(item)))
    return [list(pair) for pair in pairs]


def write_record(
    out: str | Path,
    job: str,
    kind: str,
    roots: list[list[str]],
    params: dict,
    summary: dict | None = None,
) -> bool:
    """Write (or rewrite) the job's record atomically; False when it cannot be written (the
    record only serves reports, so a full disk must not fail the job for it). ``summary`` is
    the ``run --json`` document once the job has ended, None while it runs."""
    path = record_path(out, job)
    previous = read_json(path) or {}
    document = {
        "job": job,
        "kind": kind,
        "roots": roots,
        "params": params,
        "started_at": previous.get("started_at", time.time()),
        "finished_at": time.time() if summary is not None else None,
        "summary": summary,
    }
    try:
        write_atomic(path, json_bytes(document))
    except OSError:
        return False
    return True


def read_records(out: str | Path) -> list[dict]:
    """Every readable job record in OUT, oldest first."""
    records = []
    state = Path(out, STATE_DIR)
    try:
        folders = sorted(state.iterdir())
    except OSError:
        return []
    for folder in folders:
        record = read_json(folder / RECORD_NAME)
        if isinstance(record, dict) and isinstance(record.get("job"), str):
            records.append(record)
    return sorted(records, key=lambda record: record.get("started_at") or 0)


def read_json(path: Path):
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
