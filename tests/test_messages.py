"""The publisher's own task messages are Celery's: a chunk message and its "task-sent" event,
built by worker/messages.py, match what ``app.send_task`` pushes through kombu's Redis transport
to a real redis-server, field by field (only ids, clocks and times differ)."""

import base64
import json
import time

import redis

from worker.jobs import JobStore
from worker.publish import ChunkPublisher
from worker.settings import CHUNK_TASK, QUEUE

#: Fields that differ between any two messages: fresh ids, the sender's clock and time, and
#: the results channel (Celery derives it from its app object; nothing reads it here).
VOLATILE = {"id", "root_id", "correlation_id", "delivery_tag", "reply_to", "uuid", "clock"}


def published(client: redis.Redis, publish) -> tuple[dict, dict, str]:
    """What ``publish()`` pushed onto the queue and sent on the event channels: the message,
    the event, and the event's channel."""
    events = client.pubsub()
    # Channels are global to the server: only this database's events, not those of workers
    # that other tests run on database 0.
    events.psubscribe(f"/{client.connection_pool.connection_kwargs['db']}.celeryev/*")
    assert events.get_message(timeout=5)["type"] == "psubscribe"
    publish()
    raw_event = events.get_message(timeout=5)
    events.close()
    assert raw_event is not None, "no event on this database's event channels"
    message = client.rpop(QUEUE)
    assert client.llen(QUEUE) == 0, "one message per chunk"
    return json.loads(message), json.loads(raw_event["data"]), raw_event["channel"].decode()


def opened(envelope: dict) -> dict:
    """The envelope with its body decoded and the volatile fields blanked."""
    envelope = {**envelope, "body": base64.b64decode(envelope["body"]).decode()}
    body = json.loads(envelope["body"])
    if isinstance(body, dict):  # an event: its fields are compared, not its text
        envelope["body"] = {key: value for key, value in body.items() if key != "timestamp"}
    for part in ("headers", "properties", "body"):
        if isinstance(envelope[part], dict):
            envelope[part] = {
                key: "…" if key in VOLATILE else value for key, value in envelope[part].items()
            }
    return envelope


def test_chunk_messages_and_events_are_what_celery_sends(ledger_url):
    from worker.app import make_app

    client = redis.Redis.from_url(ledger_url)
    store = JobStore(ledger_url, retention_s=60)
    rows = [[0, "été/ü 1.jpg", "été/ü 1.jpg", "été/ü 1.png"], [0, "b.png", "b.png", "b.png"]]
    argsrepr = "(job='j0', chunk='s0', images=2)"
    app = make_app(ledger_url)

    def by_celery():
        with app.connection_for_write() as connection:
            producer = app.amqp.Producer(connection)
            app.send_task(CHUNK_TASK, ("j0", rows, "s0"), producer=producer, argsrepr=argsrepr)

    def by_publisher():
        ChunkPublisher(store, "j0").send_all({"s0": rows})

    started = time.time()
    celery_message, celery_event, celery_channel = published(client, by_celery)
    own_message, own_event, own_channel = published(client, by_publisher)

    assert own_channel == celery_channel == "/5.celeryev/task.sent"
    # The body text is compared as it is, so its JSON encoding is kombu's too.
    assert opened(own_message) == opened(celery_message)
    assert opened(own_event) == opened(celery_event)
    sent = json.loads(base64.b64decode(own_event["body"]))
    assert sent["uuid"] == own_message["headers"]["id"] == own_message["headers"]["root_id"]
    assert started <= sent["timestamp"] <= time.time()
