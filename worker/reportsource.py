"""What ``colorquant report`` reads from Redis about submitted jobs: their status with the
failures, and the input folders, so the report can show each original beside its result.

Palette JSONs name the job that wrote them; a job's input folders live in its meta hash for the
retention. One hash read per job, never per image.
"""

from collections.abc import Callable

import redis

from worker.client import open_store, status
from worker.jobs import BrokerUnreachable


def job_for_report(job: str, broker: str | None = None) -> dict:
    """The job's status document (failures included) plus its input ``roots``."""
    store = open_store(broker)
    document = status(job, store=store)
    document["roots"] = list(store.roots(job))
    return document


def roots_lookup(broker: str | None = None) -> Callable[[str], list[str] | None]:
    """A function giving a job's input folders, or None when Redis does not know the job.

    Redis is asked only when the report meets a job it has no record of, and an unreachable
    broker just means the originals of that job are not shown: the first failure stops asking.
    """
    state: dict = {}

    def lookup(job: str) -> list[str] | None:
        if state.get("down"):
            return None
        try:
            store = state.get("store") or state.setdefault("store", open_store(broker))
            return list(store.roots(job)) or None
        except (BrokerUnreachable, redis.RedisError, ValueError):
            state["down"] = True
            return None

    return lookup
