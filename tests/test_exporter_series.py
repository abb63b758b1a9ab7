"""The exporter's per-job series add up: a job's images by status sum to its total, in every
state, cancelled included (as ``status`` counts them)."""

import pytest

from worker.client import status_document
from worker.exporter import job_families

#: Ledger meta hashes as Redis holds them (all strings), one per state.
METAS = {
    "queued": {"total": "5", "enqueued": "1"},
    "running": {"total": "5", "enqueued": "1", "started_at": "1", "done": "2", "failed": "1"},
    "cancelled": {"total": "5", "enqueued": "1", "started_at": "1", "done": "2", "cancelled": "3"},
    "done": {"total": "5", "enqueued": "1", "done": "3", "skipped": "1", "failed": "1"},
}


@pytest.mark.parametrize("state", METAS)
def test_a_jobs_images_by_status_add_up_to_its_total(state):
    meta = {"job": "j", "created_at": "1", **METAS[state]}
    document = status_document(meta, [], now=10.0)
    assert document["state"] == state
    families = {family.name: family for family in job_families([document])}
    by_status = {s.labels["status"]: s.value for s in families["colorquant_job_images"].samples}
    assert sum(by_status.values()) == 5
    assert by_status["cancelled"] == document["cancelled"] == (3 if state == "cancelled" else 0)
