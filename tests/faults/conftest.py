"""Fixtures of the fault tests (defined in faultkit.py, shared with nothing else)."""

from tests.faults.faultkit import (  # noqa: F401 (pytest finds fixtures by name here)
    photo_job,
    redis_factory,
    redis_server,
    worker_factory,
)
