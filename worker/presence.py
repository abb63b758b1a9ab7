"""Which workers are alive: each worker's main process notes the time in Redis every few
seconds, and the CLI counts the recent notes. One sorted-set read, so ``status`` stays fast, and
no Celery import (a ``control.ping`` broadcast would cost both).

The set lives in the broker's database, so workers of another database or Redis are not
counted.
"""

import time

import redis

#: Sorted set of worker node names, scored by the time of their last heartbeat.
WORKERS_KEY = "colorquant:workers"

#: Seconds between two heartbeats of a worker.
HEARTBEAT_S = 5

#: A worker whose last heartbeat is older than this is taken as gone (killed, frozen, cut off).
STALE_S = 3 * HEARTBEAT_S


def beat(client: redis.Redis, node: str, now: float | None = None) -> None:
    """Note that ``node`` is alive, and forget workers silent for long."""
    now = time.time() if now is None else now
    pipe = client.pipeline()
    pipe.zadd(WORKERS_KEY, {node: now})
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now - 10 * STALE_S)
    pipe.expire(WORKERS_KEY, int(10 * STALE_S))
    pipe.execute()


def leave(client: redis.Redis, node: str) -> None:
    """A worker that shuts down cleanly says so at once."""
    client.zrem(WORKERS_KEY, node)


def workers_alive(client: redis.Redis, now: float | None = None) -> int:
    """How many workers sent a heartbeat within STALE_S."""
    now = time.time() if now is None else now
    return client.zcount(WORKERS_KEY, now - STALE_S, "+inf")
