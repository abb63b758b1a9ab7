"""A worker bootstep: the main process sends a heartbeat to Redis (worker/presence.py), so
``submit``, ``status`` and ``watch`` can tell a person that no worker is running."""

import logging

import redis
from celery import bootsteps

from worker.presence import HEARTBEAT_S, beat, leave
from worker.settings import broker_url

log = logging.getLogger(__name__)

#: Seconds a heartbeat may block the worker's event loop, at most.
HEARTBEAT_SOCKET_TIMEOUT_S = 2.0


class Heartbeat(bootsteps.StartStopStep):
    """Beat at start, then every HEARTBEAT_S seconds; leave at a clean shutdown."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.client = None

    def start(self, worker):
        self.client = redis.Redis.from_url(
            worker.app.conf.broker_url or broker_url(),
            socket_connect_timeout=HEARTBEAT_SOCKET_TIMEOUT_S,
            socket_timeout=HEARTBEAT_SOCKET_TIMEOUT_S,
        )
        self._beat(worker.hostname)
        self.timer_ref = worker.timer.call_repeatedly(
            HEARTBEAT_S, self._beat, (worker.hostname,), priority=10
        )

    def _beat(self, node: str) -> None:
        try:
            beat(self.client, node)
        except redis.RedisError as exc:  # Redis down: the next beat tries again
            log.debug("heartbeat skipped: %r", exc)

    def stop(self, worker):
        if self.timer_ref is not None:
            self.timer_ref.cancel()
        try:
            leave(self.client, worker.hostname)
        except (redis.RedisError, AttributeError):
            pass
