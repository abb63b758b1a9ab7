"""The Celery app, ``worker.app:app``: ``celery -A worker.app inspect ping`` and Flower use it.

Configured from the environment when imported (see worker/settings.py). ``colorquant worker
--broker URL`` sets COLORQUANT_BROKER_URL before importing this module.
"""

from celery import Celery

from worker.heartbeat import Heartbeat
from worker.settings import (
    QUEUE,
    broker_url,
    restore_sweep_interval,
    visibility_timeout,
)
from worker.sweep import LostMessageSweep


def make_app(broker: str | None = None) -> Celery:
    tasks = ["worker.tasks", "worker.phase_tasks"]
    celery = Celery("colorquant", broker=broker_url(broker), include=tasks)
    celery.conf.update(celery_settings())
    celery.steps["worker"].add(LostMessageSweep)
    celery.steps["worker"].add(Heartbeat)
    return celery


def celery_settings() -> dict:
    timeout = visibility_timeout()
    return {
        # JSON only: a pickled message is refused before it is decoded (a pickle runs code).
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # At-least-once: ack after the task returns, and put a task back when its process dies
        # (OOM kill, segfault). Tasks are idempotent (see worker/jobs.py), so a rerun is harmless.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message reserved per pool process: with late acks nothing waits in a prefetch
        # buffer while its visibility timeout runs out.
        "worker_prefetch_multiplier": 1,
        # Progress lives in our own Redis keys; storing a result per task only fills Redis.
        "task_ignore_result": True,
        "result_backend": None,
        # Events for Flower and `celery events`, including "sent" for queue-time figures.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_default_queue": QUEUE,
        "broker_transport_options": {
            "visibility_timeout": timeout,
            # kombu sweeps unacked messages only every interval × throttle seconds (100 s by
            # default, whatever the timeout); sweep a few times per timeout instead.
            "unacked_restore_interval": restore_sweep_interval(timeout),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,
            "health_check_interval": 10,
        },
        # After a broker connection loss the unacked messages are redelivered anyway; cancel
        # the in-flight copies instead of running each image twice in parallel.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # A pool process imports scikit-learn (about 1.4 s, more with several starting at once)
        # before it reports ready; Celery's default allows 4 s.
        "worker_proc_alive_timeout": 60,
        # A publish to a dead broker fails quickly instead of retrying for a long time.
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        "worker_hijack_root_logger": True,
        "broker_channel_error_retry": True,
    }


app = make_app()
