"""The palette a label chunk of a shared-palette job uses: the one its fit stored in Redis.

A label chunk is an ordinary chunk (worker/execute.py); only its parameters differ, carrying the
fitted palette as a fixed palette, as ``--palette FILE`` does. No fit runs per image.
"""

import os
from dataclasses import replace
from functools import lru_cache

from worker.jobs import JobSettings, JobStore
from worker.phase_store import PhaseStore


def label_settings(jobs: JobStore, settings: JobSettings) -> JobSettings | None:
    """The settings a label chunk runs with: a shared-palette job's fitted palette as a fixed
    palette. None when that job has no palette (a message from before the switch, or no image
    of the job could be read)."""
    if not settings.params.shared or settings.params.colors is not None:
        return settings
    colors = _shared_colors(jobs, settings.job, os.getpid())
    if colors is None or len(colors) == 0:
        _shared_colors.cache_clear()  # not fitted yet: do not remember the miss
        return None
    return replace(settings, params=settings.params.with_colors(colors))


@lru_cache(maxsize=64)
def _shared_colors(jobs: JobStore, job: str, pid: int):
    """A job's palette never changes once fitted, so each process reads it once."""
    colors = PhaseStore(jobs).shared_colors(job)
    import numpy as np

    return None if colors is None else np.array(colors, dtype=np.uint8)
