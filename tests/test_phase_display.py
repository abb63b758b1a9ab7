"""How a shared-palette job's phase shows: ``status``, ``jobs`` and the exporter's series."""

from rich.console import Console

from cli.render import print_jobs, status_rows
from worker.exporter import job_families


def document(phase, state="running", counted=None) -> dict:
    return {
        "job": "abc", "state": state, "phase": phase, "counted": counted, "total": 200,
        "done": 0, "failed": 1, "skipped": 0, "pending": 199, "cancelled": 0, "retrying": 0,
        "ignored": 0, "rate": 0.0, "eta_s": None, "finished_at": None, "created_at": 1.0,
        "elapsed_s": 2.0, "params": {}, "inputs": [], "out": "/out",
    }  # fmt: skip


def test_status_shows_the_phase_and_how_far_the_count_got():
    rows = dict(status_rows(document("count", counted=120)))
    assert rows["phase"] == "count (120 of 200 images counted)"
    assert dict(status_rows(document("label")))["phase"] == "label"
    assert "phase" not in dict(status_rows(document(None)))


def test_jobs_table_shows_the_phase_of_a_job_under_way_only():
    console = Console(record=True, width=200)
    print_jobs([document("fit"), {**document("label", "done"), "job": "def"}], console)
    lines = [line.strip() for line in console.export_text().splitlines()]
    assert "running (fit)" in next(line for line in lines if line.startswith("abc"))
    assert "done " in next(line for line in lines if line.startswith("def"))
    assert "(label)" not in console.export_text()


def test_exporter_has_a_phase_series_for_phased_jobs_only():
    families = {f.name: f for f in job_families([document("fit"), {**document(None), "job": "x"}])}
    series = families["colorquant_job_phase"].samples
    samples = {(s.labels["job"], s.labels["phase"]): s.value for s in series}
    assert samples == {("abc", "count"): 0, ("abc", "fit"): 1, ("abc", "label"): 0}
