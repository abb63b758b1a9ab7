"""A redis-server and the workers consuming from it, with the CLI pointed at them."""

import json
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field

from harness.commands import clean_env, run_colorquant
from harness.processes import PATIENCE_S, wait_for
from harness.redis_server import RedisServer
from harness.workers import WorkerProcess

#: The Celery queue (worker/settings.py QUEUE); kombu keeps its messages in a list of that name.
QUEUE = "colorquant"

#: kombu's hash of delivered, not yet acknowledged messages.
UNACKED = "unacked"


@dataclass
class Cluster:
    """A redis-server and its workers, and the ``colorquant`` command run against them."""

    redis: RedisServer
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def env(self) -> dict:
        return clean_env({"COLORQUANT_BROKER_URL": self.redis.url})

    def cli(self, *args, check: bool = False) -> subprocess.CompletedProcess:
        done = run_colorquant(*args, env=self.env, timeout=PATIENCE_S)
        if check and done.returncode != 0:
            raise AssertionError(f"colorquant {args} exited {done.returncode}: {done.stderr}")
        return done

    def status(self, job: str) -> dict:
        return json.loads(self.cli("status", job, "--json", check=True).stdout)

    def wait_until_final(self, job: str) -> dict:
        return wait_for(
            lambda: (doc := self.status(job))["state"] in ("done", "cancelled") and doc,
            f"job {job} to end",
            poll=0.3,
        )

    def queue_drained(self) -> bool:
        return queue_drained(self.redis.client())

    @contextmanager
    def consumers_paused(self):
        """Inside the block the workers take no message (Celery's ``cancel_consumer``), so what
        is submitted there stays queued; afterwards they consume again."""
        from worker.app import make_app

        control = make_app(self.redis.url).control
        nodes = [worker.node for worker in self.workers]
        control.cancel_consumer(QUEUE, destination=nodes, reply=True)
        try:
            yield
        finally:
            control.add_consumer(QUEUE, destination=nodes, reply=True)


def queue_drained(client) -> bool:
    """No message queued, and none delivered but unacknowledged."""
    return client.llen(QUEUE) == 0 and client.hlen(UNACKED) == 0
