"""Fixtures of the fault tests: the harness's redis-servers (AOF on) and workers, with a short
visibility timeout, and the standard photo job."""

import pytest

from harness.fixtures import (  # noqa: F401 (pytest finds fixtures by name here)
    redis_factory,
    redis_server,
    worker_factory,
)
from tests.faults.faultkit import VISIBILITY_TIMEOUT_S, photo_job  # noqa: F401


@pytest.fixture
def worker_env() -> dict:
    """Workers of the fault tests give a lost message back after a few seconds."""
    return {"COLORQUANT_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_S)}
