"""``colorquant exporter``: Prometheus metrics per job, of the queue and of the workers.

Flower's ``/metrics`` is per task and per worker; people watch jobs. Every scrape reads the same
Redis the jobs use: one pipeline of meta-hash reads for the newest jobs (O(jobs), never
O(images)), the queue's list lengths, and a Celery ``ping`` broadcast for the workers alive.
Nothing is cached between scrapes, so the figures are as fresh as ``colorquant status``.
"""

import threading
import time
from collections.abc import Callable

import redis
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily

from worker.client import status_document
from worker.jobs import BrokerUnreachable, JobStore
from worker.phase_store import COUNT, FIT, LABEL
from worker.settings import QUEUE, broker_url, retention_s

#: Default port: next to the range Prometheus' own exporters use.
DEFAULT_PORT = 9808

#: Jobs exported, newest first: bounds the series count whatever the retention.
JOBS_EXPORTED = 100

#: Seconds a scrape waits for workers to answer the ping broadcast.
PING_TIMEOUT_S = 1.0

#: kombu's Redis transport keeps one list per priority step: ``queue``, then
#: ``queue\x06\x16N`` for the higher steps (kombu.transport.redis.PRIORITY_STEPS).
PRIORITY_SEPARATOR, PRIORITY_STEPS = "\x06\x16", (3, 6, 9)

#: kombu's hash of delivered, unacknowledged messages (all queues).
UNACKED_KEY = "unacked"

STATES = ("queued", "running", "done", "cancelled")
#: Statuses of a job's images, as ``status`` counts them: they add up to its total.
COUNTS = ("done", "failed", "skipped", "pending", "cancelled")

#: The phases of a --palette shared job, each a series of its own.
PHASES = (COUNT, FIT, LABEL)


class JobCollector:
    """A prometheus_client collector that reads Redis and Celery at every scrape."""

    def __init__(self, store: JobStore, ping=None):
        self.store = store
        self.ping = ping
        self.lock = threading.Lock()  # one Celery control connection, concurrent scrapes

    def collect(self):
        up = GaugeMetricFamily("colorquant_broker_up", "1 when Redis answered this scrape.")
        try:
            documents, queued, unacked = self.read_redis()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from job_families(documents)
        depth = GaugeMetricFamily(
            "colorquant_queue_messages", "Messages waiting in the queue.", labels=["queue"]
        )
        depth.add_metric([QUEUE], queued)
        yield depth
        yield GaugeMetricFamily(
            "colorquant_unacked_messages",
            "Messages delivered to a worker and not yet acknowledged.",
            value=unacked,
        )
        yield from self.worker_families()

    def read_redis(self) -> tuple[list[dict], int, int]:
        now = time.time()
        metas = self.store.recent_jobs(JOBS_EXPORTED)
        documents = [status_document(meta, [], now=now) for meta in metas]
        pipe = self.store.redis.pipeline()
        for key in queue_keys(QUEUE):
            pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        *lengths, unacked = pipe.execute()
        return documents, sum(lengths), unacked

    def worker_families(self):
        if self.ping is None:
            return
        with self.lock:
            try:
                replies = self.ping()
            except Exception:  # a broken broadcast must not cost the job series
                replies = []
        nodes = sorted(name for reply in replies for name in reply)
        alive = GaugeMetricFamily(
            "colorquant_workers_alive", "Workers that answered a Celery ping during this scrape."
        )
        alive.add_metric([], len(nodes))
        yield alive
        worker_up = GaugeMetricFamily(
            "colorquant_worker_up", "1 per worker that answered the ping.", labels=["worker"]
        )
        for node in nodes:
            worker_up.add_metric([node], 1)
        yield worker_up


def queue_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]


def job_families(documents: list[dict]):
    """The per-job series from status documents."""
    images = GaugeMetricFamily(
        "colorquant_job_images",
        "Images of a job by status: done, failed, skipped, pending or cancelled.",
        labels=["job", "status"],
    )
    total = GaugeMetricFamily("colorquant_job_total_images", "Images in a job.", labels=["job"])
    rate = GaugeMetricFamily(
        "colorquant_job_rate_images_per_second",
        "Images finished per second since the job started.",
        labels=["job"],
    )
    state = GaugeMetricFamily(
        "colorquant_job_state",
        "1 for the job's current state (queued, running, done, cancelled), 0 for the others.",
        labels=["job", "state"],
    )
    created = GaugeMetricFamily(
        "colorquant_job_created_timestamp_seconds", "When the job was submitted.", labels=["job"]
    )
    phase = GaugeMetricFamily(
        "colorquant_job_phase",
        "For a --palette shared job, 1 for its current phase (count, fit, label), 0 for the "
        "others; one-phase jobs have no series.",
        labels=["job", "phase"],
    )
    for document in documents:
        job = document["job"]
        for name in COUNTS:
            images.add_metric([job, name], document[name])
        total.add_metric([job], document["total"])
        rate.add_metric([job], document["rate"])
        for name in STATES:
            state.add_metric([job, name], 1 if document["state"] == name else 0)
        if document.get("created_at"):
            created.add_metric([job], document["created_at"])
        if document.get("phase"):
            for name in PHASES:
                phase.add_metric([job, name], 1 if document["phase"] == name else 0)
    yield from (images, total, rate, state, created, phase)


def celery_ping(broker_url: str):
    """A function returning Celery's ping replies, ``[{node: {"ok": "pong"}}, ...]``."""
    from worker.app import make_app

    app = make_app(broker_url)

    def ping() -> list[dict]:
        return app.control.ping(timeout=PING_TIMEOUT_S) or []

    return ping


def make_registry(store: JobStore) -> CollectorRegistry:
    """A registry holding the collector of ``store``'s Redis (reached at each scrape)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobCollector(store, celery_ping(store.url)))
    return registry


def unreachable_at_start(store: JobStore) -> str | None:
    """Why Redis does not answer now, or None. The exporter starts anyway: compose may start
    it before Redis, and each scrape says colorquant_broker_up 0 until Redis answers."""
    try:
        store.check_reachable()
    except BrokerUnreachable as exc:
        return f"{exc}; serving colorquant_broker_up 0 until it answers"
    return None


def serve(
    port: int = DEFAULT_PORT,
    host: str = "0.0.0.0",
    broker: str | None = None,
    warn: Callable[[str], None] = print,
) -> None:
    """Serve ``/metrics`` on ``host:port`` until interrupted; ``warn`` gets a line when Redis
    does not answer at start."""
    from prometheus_client import start_http_server

    store = JobStore(broker_url(broker), retention_s())
    if (reason := unreachable_at_start(store)) is not None:
        warn(reason)
    server, thread = start_http_server(port, addr=host, registry=make_registry(store))
    try:
        thread.join()
    finally:
        server.shutdown()
