"""The vocabulary of a job, shared by the embedded runner and the Celery workers.

A job is one ``run`` or one ``submit``; each of its images ends in one :class:`Status`. The
values are also the field names of a job's counters in Redis and the strings its Lua scripts
compare, so they never change.
"""

import uuid
from enum import StrEnum


class Status(StrEnum):
    """What happened to one image of a job (a str, so it goes into JSON and Redis as is)."""

    #: Quantized and written by this job.
    DONE = "done"
    #: Its output existed, made with the same parameters, before the job began.
    SKIPPED = "skipped"
    #: Not quantized; the job keeps a one-line reason.
    FAILED = "failed"
    #: Failed before, and put back on the queue by ``colorquant retry`` (workers only).
    RETRYING = "retrying"


def new_job_id() -> str:
    """A fresh job id: 12 hex digits, short to type and unique enough to never collide."""
    return uuid.uuid4().hex[:12]
