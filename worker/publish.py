"""The publisher: a job's items go out as chunk messages, each noted in the job's ledger first.

Used by ``submit`` and ``retry`` on the CLI side and by the lost-message sweep inside a worker,
so it depends on neither: it builds the messages itself (worker/messages.py), by task name,
and imports neither Celery nor the task module.
"""

import itertools
import math
from collections import deque
from collections.abc import Iterable, Iterator

from pipeline.discover import InputItem
from pipeline.job import Status
from worker.jobs import JobStore, item_row
from worker.messages import TaskMessages
from worker.settings import CHUNK_TASK, QUEUE, max_chunk

#: The tail of a walk is cut into chunks of remaining / TAIL_SPREAD images, so the last
#: messages are small and spread over all workers (guided self-scheduling).
TAIL_SPREAD = 16

#: Chunks whose ledger entries and messages a submit sends to Redis in one round trip (one
#: transaction): few round trips, and still at most LEDGER_BATCH × the largest chunk items, a
#: few MB, in memory.
LEDGER_BATCH = 64


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
    """Publishes a job's items as chunk messages to the job's own broker (``store``'s Redis).

    Each message is a normal Celery task message with its "task-sent" event (worker/messages.py
    builds them as Celery would); the messages of up to LEDGER_BATCH chunks go out in one
    MULTI/EXEC transaction together with their ledger entries: Redis applies all of it or none,
    so a submit that dies or loses Redis midway never leaves a message without its entry.
    """

    def __init__(
        self,
        store: JobStore,
        job: str,
        roots: list[str] | None = None,
        chunk_prefix: str = "s",
        task: str = CHUNK_TASK,
    ):
        self.task = task
        self.store = store
        self.job = job
        self.roots = list(roots or [])
        self.root_index = {root: index for index, root in enumerate(self.roots)}
        self.chunk_ids = (f"{chunk_prefix}{number}" for number in itertools.count())
        self.messages = TaskMessages(db=store.db)
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

    def publish_all(self, items: Iterable[InputItem]) -> int:
        """Count then publish each chunk, so ``done`` never runs ahead of ``total``: the ledger
        entries and the messages of LEDGER_BATCH chunks go to Redis in one transaction."""
        total = 0
        chunks_in = guided_chunks(items, max_chunk())
        while batch := list(itertools.islice(chunks_in, LEDGER_BATCH)):
            chunks, refused, gained_root = {}, [], False
            for chunk in batch:
                rows, new_root = self.rows([item for item in chunk if not item.error])
                gained_root |= new_root
                if rows:
                    chunks[next(self.chunk_ids)] = rows
                refused += [item for item in chunk if item.error]
            count = sum(map(len, batch))
            transaction = self.store.redis.pipeline(transaction=True)
            roots = self.roots if gained_root else None
            self.note_chunks(count, chunks, roots, transaction)
            self.queue_messages(chunks, transaction)
            transaction.execute()
            for item in refused:  # refused by the walk (a link out of the tree): never sent
                self.store.record(self.job, item.source, Status.FAILED, item.error, None)
            total += count
        return total

    def note_chunks(self, count: int, chunks: dict[str, list], roots: list | None, pipe) -> None:
        """Count ``count`` more items and write ``chunks`` into the job's ledger, in the
        transaction ``pipe`` that then publishes them (a phased job's count phase writes them
        to its own ledger)."""
        self.store.add_items(self.job, count, chunks, roots, pipe=pipe)

    def publish_rows(self, rows: list) -> int:
        """Publish rows of items already counted (``retry``), in order; ``self.sent`` says how
        many went out if it fails midway."""
        self.sent = 0
        for chunk in guided_chunks(rows, max_chunk()):
            chunks = {next(self.chunk_ids): chunk}
            transaction = self.store.redis.pipeline(transaction=True)
            self.store.add_chunks(self.job, chunks, pipe=transaction)
            self.queue_messages(chunks, transaction)
            transaction.execute()
            self.sent += len(chunk)
        return self.sent

    def send_all(self, chunks: dict[str, list]) -> None:
        """Publish the messages of chunks already in the ledger (the lost-message sweep), in
        one round trip."""
        pipe = self.store.redis.pipeline(transaction=False)
        self.queue_messages(chunks, pipe)
        pipe.execute()

    def queue_messages(self, chunks: dict[str, list], pipe) -> None:
        """Add each chunk's message (LPUSH onto the queue's list, as kombu's Redis transport
        does) and its "task-sent" event (PUBLISH, for Flower) to ``pipe``."""
        for chunk_id, rows in chunks.items():
            argsrepr = f"(job={self.job!r}, chunk={chunk_id!r}, images={len(rows)})"
            task_id, message = self.messages.task(self.task, [self.job, rows, chunk_id], argsrepr)
            pipe.lpush(QUEUE, message)
            event = self.messages.sent_event(task_id, self.task, argsrepr)
            pipe.publish(self.messages.event_channel, event)
