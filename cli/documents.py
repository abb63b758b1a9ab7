"""The JSON documents the commands print with ``--json``: one shape each, defined once."""

import json
import sys

#: The fields of the batch report of ``run --json`` and ``submit --wait --json``, in order.
BATCH_REPORT_FIELDS = ("job", "total", "done", "failed", "skipped", "ignored", "failures")


def batch_report(counts: dict) -> dict:
    """The batch report, from a finished local batch's summary or a finished job's status."""
    report = {key: counts[key] for key in BATCH_REPORT_FIELDS}
    elapsed = counts["elapsed_s"]
    report["elapsed_s"] = None if elapsed is None else round(elapsed, 3)
    return report


def print_json(document) -> None:
    """One JSON document on stdout; non-ASCII paths stay readable, and the bytes of a name that
    is not UTF-8 are written as JSON escapes (``\\udcff``), as in the palette files."""
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "backslashreplace"))
    sys.stdout.flush()
