"""docker-compose.yml, checked as far as this machine can without a container engine."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def compose(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose is not installed")
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    return subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_needs_no_flower_password_for_the_worker():
    """``docker compose run --rm worker ...``, ``logs`` and ``down`` work without it."""
    assert compose("config", "-q").returncode == 0
    services = compose("config", "--services")
    assert services.returncode == 0, services.stderr
    assert {"redis", "worker", "flower"} <= set(services.stdout.split())


def test_config_settles_the_deployment_details():
    shown = compose("config").stdout
    flower = shown[shown.index("\n  flower:") : shown.index("\n  redis:")]
    worker = shown[shown.index("\n  worker:") :]
    assert "127.0.0.1" in flower and "build:" in flower, "bound to loopback, built locally"
    assert "FLOWER_BASIC_AUTH" in flower and "exit 2" in flower, "refuses to start without auth"
    assert "healthcheck:" in worker and "inspect ping" in worker
    for service in (flower, worker):
        assert "COLORQUANT_CHUNK_SIZE" in service and "COLORQUANT_MAX_PIXELS" in service
        assert "user: 1000:1000" in service
