"""The publisher: a job's items go out as chunk messages, each noted in the job's ledger first.

Used by ``submit`` and ``retry`` on the CLI side and by the lost-message sweep inside a worker,
so it depends on neither: it sends by task name through whichever Celery app it is given, and
never imports the task module (a worker's app would otherwise import itself).
"""

import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from pipeline.discover import InputItem
from pipeline.job import Status
from worker.jobs import JobStore, item_row
from worker.settings import CHUNK_TASK, max_chunk

#: The tail of a walk is cut into chunks of remaining / TAIL_SPREAD images, so the last
#: messages are small and spread over all workers (guided self-scheduling).
TAIL_SPREAD = 16

#: Chunks whose ledger entries a submit writes in one round trip to Redis before it publishes
#: them: fewer round trips, and still at most LEDGER_BATCH × the largest chunk items in memory.
LEDGER_BATCH = 16

#: Redis commands kombu buffers at most before it runs them (two per message: the LPUSH and
#: the "sent" event's PUBLISH), so a ledger batch's messages go out in one pipeline.
PUBLISH_BATCH_COMMANDS = 1000


def guided_chunks(items: Iterable, largest: int, spread: int = TAIL_SPREAD) -> Iterator[list]:
    """Cut a stream into chunks of ``largest`` items, shrinking towards the end of the stream.

    Only ``largest × spread`` items are held at a time, so memory stays bounded on any folder.
    """
    stream = iter(items)
    window: deque = deque()
    exhausted = False
    while True:
        while not exhausted and len(window) < largest * spread:
            try:
                window.append(next(stream))
            except StopIteration:
                exhausted = True
        if not window:
            return
        size = largest if not exhausted else min(largest, math.ceil(len(window) / spread))
        yield [window.popleft() for _ in range(min(size, len(window)))]


class ChunkPublisher:
    """Publishes a job's items as chunk messages over one shared producer connection.

    ``app`` is any Celery app configured like ``worker.app`` (serializer, queue); the messages
    go to the job's own broker, ``store.url``.
    """

    def __init__(
        self,
        app,
        store: JobStore,
        job: str,
        roots: list[str] | None = None,
        chunk_prefix: str = "s",
        task: str = CHUNK_TASK,
    ):
        self.app = app
        self.task = task
        self.store = store
        self.job = job
        self.roots = list(roots or [])
        self.root_index = {root: index for index, root in enumerate(self.roots)}
        self.chunk_ids = (f"{chunk_prefix}{number}" for number in itertools.count())
        self.sent = 0

    def rows(self, items: list[InputItem]) -> tuple[list, bool]:
        """Message rows for the items, and whether the job gained a new input root."""
        new_root = False
        rows = []
        for item in items:
            if item.root not in self.root_index:
                self.root_index[item.root] = len(self.roots)
                self.roots.append(item.root)
                new_root = True
            rows.append(item_row(self.root_index[item.root], item))
        return rows, new_root

    @contextmanager
    def producer(self):
        """One producer on one connection to the job's broker, shared by every message."""
        with self.app.connection_for_write(self.store.url) as connection:
            yield self.app.amqp.Producer(connection)

    def publish_all(self, items: Iterable[InputItem]) -> int:
        """Count then publish each chunk, so ``done`` never runs ahead of ``total``. The ledger
        entries of LEDGER_BATCH chunks go to Redis in one round trip."""
        total = 0
        chunks_in = guided_chunks(items, max_chunk())
        with self.producer() as producer:
            while batch := list(itertools.islice(chunks_in, LEDGER_BATCH)):
                chunks, refused, gained_root = {}, [], False
                for chunk in batch:
                    rows, new_root = self.rows([item for item in chunk if not item.error])
                    gained_root |= new_root
                    if rows:
                        chunks[next(self.chunk_ids)] = rows
                    refused += [item for item in chunk if item.error]
                count = sum(map(len, batch))
                self.note_chunks(count, chunks, self.roots if gained_root else None)
                for item in refused:  # refused by the walk (a link out of the tree): never sent
                    self.store.record(self.job, item.source, Status.FAILED, item.error, None)
                self.send_all(chunks, producer)
                total += count
        return total

    def note_chunks(self, count: int, chunks: dict[str, list], roots: list | None) -> None:
        """Count ``count`` more items and write ``chunks`` into the job's ledger before they
        are published (a phased job's count phase writes them to its own ledger)."""
        self.store.add_items(self.job, count, chunks, roots)

    def publish_rows(self, rows: list) -> int:
        """Publish rows of items already counted (``retry``), in order; ``self.sent`` says how
        many went out if it fails midway."""
        self.sent = 0
        with self.producer() as producer:
            for chunk in guided_chunks(rows, max_chunk()):
                chunks = {next(self.chunk_ids): chunk}
                self.store.add_chunks(self.job, chunks)
                self.send_all(chunks, producer)
                self.sent += len(chunk)
        return self.sent

    def send_all(self, chunks: dict[str, list], producer) -> None:
        """Publish the chunks' messages, each a normal Celery message with its "sent" event,
        in one round trip to Redis: kombu's publish batch buffers the LPUSH and PUBLISH commands
        its Redis transport would send one by one, and runs them in one pipeline on leaving."""
        with producer.batch(max_size=PUBLISH_BATCH_COMMANDS):
            for chunk_id, rows in chunks.items():
                self.app.send_task(
                    self.task,
                    (self.job, rows, chunk_id),
                    producer=producer,
                    argsrepr=f"(job={self.job!r}, chunk={chunk_id!r}, images={len(rows)})",
                )
