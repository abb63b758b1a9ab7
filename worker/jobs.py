"""A job's bookkeeping in Redis: exact counts, kept failures, a cancel flag, and expiry.

Keys of job ``J`` (the ``{J}`` hash tag keeps them in one Redis Cluster slot, as Lua needs):

- ``colorquant:{J}:meta``      hash: settings (out, params, roots, overwrite), counters (total,
  done, failed, skipped, ignored, retrying, retried) and moments (created_at, started_at,
  updated_at, retried_at, finished_at); flags ``enqueued`` (the submit published every
  message) and ``cancelled``.
- ``colorquant:{J}:items``     hash: source → its final status (done/skipped/failed), or
  ``retrying`` while ``colorquant retry`` runs it again. This is the idempotency marker: an item
  is counted once however often its message is delivered.
- ``colorquant:{J}:failures``  hash: source → {"path", "error", "item"} (enough to retry it).
- ``colorquant:{J}:attempts``  hash: source → deliveries begun but not finished, which catches an
  image that kills its worker process every time; and NUL + chunk id → deliveries of that chunk
  begun. A chunk's clean first delivery is counted in batches (a few script calls per chunk,
  not two per image); a chunk delivered again, or holding an image some delivery began and
  never finished, is run image by image, so the image that killed the first delivery is found
  and, after MAX_UNFINISHED_DELIVERIES more deaths, failed.
- ``colorquant:{J}:chunks``    hash: chunk id → its message rows, written before the message is
  published and deleted once every item of it has a final status. A message the broker lost
  (Redis restarted from an AOF that kept the pop but not the unacked copy) is sent again from
  here by the lost-message sweep (worker/sweep.py).
- ``colorquant:jobs``          sorted set of job ids by creation time, for ``colorquant jobs``.
- ``colorquant:active``        set of sealed jobs not yet finished, for the sweep.

A ``--palette shared`` job also has a phase and keys of its own: see worker/phase_store.py.

Every transition is one Lua script (a ``.lua`` file beside this module), so two workers, a
redelivery and a retry never race. Status reads one hash: constant time at any job size.
docs/architecture.md describes the ledger, its scripts and what they guarantee.
"""

import json
import time
from dataclasses import dataclass
from importlib import resources
from urllib.parse import unquote, urlsplit

import redis

from pipeline.discover import InputItem
from pipeline.job import Status
from pipeline.params import QuantizeParams
from worker.presence import workers_alive
from worker.settings import CONNECT_TIMEOUT_S, FAILURES_SHOWN, SUBMIT_LEASE_S, masked_url

JOBS_INDEX = "colorquant:jobs"
ACTIVE_JOBS = "colorquant:active"

#: How the Redis client turns str to bytes and back: a file name that is not valid UTF-8 holds
#: lone surrogates once decoded (os.fsdecode), and surrogateescape carries its exact bytes into
#: Redis (ledger fields, failure records, chunk rows) and back to the same str.
ENCODING_ERRORS = "surrogateescape"

#: Deliveries of one image that began and never finished before it counts as failed: an image
#: that crashes its worker process (segfault, OOM kill) must not loop forever.
MAX_UNFINISHED_DELIVERIES = 3


class BrokerUnreachable(Exception):
    """Redis cannot be reached. The message names the URL with its password masked."""


def job_keys(job: str) -> dict[str, str]:
    prefix = f"colorquant:{{{job}}}"
    parts = ("meta", "items", "failures", "attempts", "chunks")
    return {part: f"{prefix}:{part}" for part in parts}


#: Lua put in front of every ledger script: the helpers mark_finished and keep.
LUA_HELPERS = "ledger_helpers.lua"


def lua_script(name: str) -> str:
    """The source of ledger script ``name`` (a ``.lua`` file beside this module, whose header
    documents its KEYS and ARGV), preceded by the shared helpers."""
    folder = resources.files(__package__)
    return folder.joinpath(LUA_HELPERS).read_text() + folder.joinpath(f"{name}.lua").read_text()


#: Every transition of a job's ledger, read from the package once at import.
BEGIN_ITEM, RECORD_ITEM, BEGIN_CHUNK, RECORD_CHUNK, SEAL_JOB, RETRY_FAILED = (
    lua_script(name)
    for name in (
        "begin_item",
        "record_item",
        "begin_chunk",
        "record_chunk",
        "seal_job",
        "retry_failed",
    )
)


@dataclass(frozen=True)
class JobSettings:
    """What a worker needs to know about a job; taken from Redis, never from the message."""

    job: str
    out: str
    params: QuantizeParams
    roots: tuple[str, ...]
    overwrite: bool

    def item(self, row: list) -> InputItem:
        """Rebuild an item from a message row; ValueError when it names no root of this job."""
        root_index, rel, source, output = row
        if not isinstance(root_index, int) or not 0 <= root_index < len(self.roots):
            raise ValueError("message names an input root this job does not have; nothing read")
        if not all(isinstance(text, str) for text in (rel, source, output)):
            raise ValueError("malformed message row; nothing read")
        return InputItem(self.roots[root_index], rel, source, output)


@dataclass(frozen=True)
class ChunkStart:
    """The answer of ``begin_chunk``: ``verdict`` go/cancelled/unknown, the chunk's deliveries
    begun (this one included), how many of its images have deliveries that began and never
    finished, and each source's current status."""

    verdict: str
    deliveries: int
    unfinished: int
    statuses: list

    @property
    def first(self) -> bool:
        """A clean first delivery: nothing of it ever began before, so it may run batched."""
        return self.deliveries == 1 and self.unfinished == 0


@dataclass(frozen=True)
class Outcome:
    """One item's result, to be counted: its source, status, failure reason and message row."""

    source: str
    status: Status
    error: str = ""
    row: list | None = None


def item_row(root_index: int, item: InputItem) -> list:
    """The compact form of an item in a message: ``[root index, rel, source, output]``."""
    return [root_index, item.rel, item.source, item.output]


def failure_record(item_row_: list | None, source: str, error: str) -> str:
    return json.dumps({"path": source, "error": error, "item": item_row_}, ensure_ascii=False)


class JobStore:
    """Reads and writes job bookkeeping in one Redis database (the broker's)."""

    def __init__(self, url: str, retention_s: int, *, socket_timeout: float = 30):
        self.url = url
        self.retention_s = retention_s
        self.redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=min(CONNECT_TIMEOUT_S, socket_timeout),
            socket_timeout=socket_timeout,
            health_check_interval=30,
            decode_responses=True,
            encoding_errors=ENCODING_ERRORS,
        )
        self._begin = self.redis.register_script(BEGIN_ITEM)
        self._record = self.redis.register_script(RECORD_ITEM)
        self._begin_chunk = self.redis.register_script(BEGIN_CHUNK)
        self._record_chunk = self.redis.register_script(RECORD_CHUNK)
        self._seal = self.redis.register_script(SEAL_JOB)
        self._retry = self.redis.register_script(RETRY_FAILED)

    def check_reachable(self) -> None:
        """Raise BrokerUnreachable with a one-line reason, password masked."""
        try:
            self.redis.ping()
        except redis.RedisError as exc:
            raise BrokerUnreachable(unreachable_message(self.url, exc)) from None

    # --- submit side -----------------------------------------------------------------------

    def create(self, job: str, out: str, params: QuantizeParams, overwrite: bool) -> None:
        """A new job with no items yet. It expires by itself unless the submit keeps it alive."""
        now = time.time()
        meta = job_keys(job)["meta"]
        pipe = self.redis.pipeline()
        pipe.hset(
            meta,
            mapping={
                "job": job,
                "out": out,
                "params": json.dumps(params.to_json()),
                "roots": "[]",
                "overwrite": int(overwrite),
                "total": 0,
                "done": 0,
                "failed": 0,
                "skipped": 0,
                "retrying": 0,
                "ignored": 0,
                "created_at": now,
                # A shared-palette job runs in phases (worker/phase_store.py); it counts first.
                **({"phase": "count"} if params.shared else {}),
            },
        )
        pipe.expire(meta, SUBMIT_LEASE_S)
        pipe.zadd(JOBS_INDEX, {job: now})
        # Index entries of jobs created two retentions ago: their keys are long gone.
        pipe.zremrangebyscore(JOBS_INDEX, "-inf", now - 2 * self.retention_s)
        pipe.execute()

    @property
    def db(self) -> int:
        """The Redis database number of the broker URL (kombu names its event channels by it)."""
        return int(self.redis.connection_pool.connection_kwargs.get("db") or 0)

    def add_items(
        self,
        job: str,
        count: int,
        chunks: dict[str, list],
        roots: list[str] | None = None,
        pipe=None,
    ) -> None:
        """Count ``count`` more items and note their chunks before the messages are published;
        renew the lease. With ``pipe`` the commands join that pipeline (the publisher's
        transaction, which holds the messages too) instead of running at once."""
        keys = job_keys(job)
        own = pipe is None
        pipe = self.redis.pipeline() if own else pipe
        if roots is not None:
            pipe.hset(keys["meta"], "roots", json.dumps(roots))
        pipe.hincrby(keys["meta"], "total", count)
        if chunks:
            pipe.hset(keys["chunks"], mapping=_encoded(chunks))
            pipe.expire(keys["chunks"], self.retention_s)
        pipe.expire(keys["meta"], SUBMIT_LEASE_S)
        if own:
            pipe.execute()

    def add_chunks(self, job: str, chunks: dict[str, list], pipe=None) -> None:
        """Note chunks re-sent by ``retry``, before their messages are published (or in the
        same transaction, ``pipe``)."""
        key = job_keys(job)["chunks"]
        own = pipe is None
        pipe = self.redis.pipeline() if own else pipe
        pipe.hset(key, mapping=_encoded(chunks))
        pipe.expire(key, self.retention_s)
        pipe.sadd(ACTIVE_JOBS, job)
        if own:
            pipe.execute()

    def chunk_done(self, job: str, chunk: str) -> None:
        """Every item of the chunk has its final status: no need to ever send it again."""
        keys = job_keys(job)
        pipe = self.redis.pipeline()
        pipe.hdel(keys["chunks"], chunk)
        pipe.hdel(keys["attempts"], f"\0{chunk}")
        pipe.execute()

    def chunk_rows(self, job: str, chunk: str) -> list | None:
        """The rows the ledger holds for ``chunk``; None once it is finished, or if it never was."""
        raw = self.redis.hget(job_keys(job)["chunks"], chunk)
        return None if raw is None else json.loads(raw)

    def pending_chunks(self, job: str) -> dict[str, list]:
        return {
            chunk: json.loads(rows)
            for chunk, rows in self.redis.hgetall(job_keys(job)["chunks"]).items()
        }

    def seal(self, job: str, ignored: int) -> None:
        """Every message is published: the job can now finish, and it lives for the retention."""
        keys = job_keys(job)
        self.redis.hset(keys["meta"], "ignored", ignored)
        self._seal(keys=list(keys.values()), args=[time.time(), self.retention_s])
        self.redis.sadd(ACTIVE_JOBS, job)

    def abandon(self, job: str) -> None:
        """A submit that failed midway: delete the half-made job so nothing looks alive."""
        self.redis.delete(*job_keys(job).values())
        self.redis.zrem(JOBS_INDEX, job)
        self.redis.srem(ACTIVE_JOBS, job)

    # --- worker side -----------------------------------------------------------------------

    def settings(self, job: str) -> JobSettings | None:
        raw = self.redis.hmget(job_keys(job)["meta"], "out", "params", "roots", "overwrite")
        if raw[0] is None:
            return None
        return JobSettings(
            job=job,
            out=raw[0],
            params=QuantizeParams.from_json(json.loads(raw[1])),
            roots=tuple(json.loads(raw[2])),
            overwrite=raw[3] == "1",
        )

    def roots(self, job: str) -> tuple[str, ...]:
        return tuple(json.loads(self.redis.hget(job_keys(job)["meta"], "roots") or "[]"))

    def begin(self, job: str, source: str, earlier_deaths: int = 0) -> str:
        """Begin one delivery of an image: 'go', or 'poison' once it began more than
        MAX_UNFINISHED_DELIVERIES deliveries that never finished, counting ``earlier_deaths``
        the ledger could not see (a batched delivery that died notes no image)."""
        keys = job_keys(job)
        return self._begin(
            keys=[keys["meta"], keys["items"], keys["attempts"]],
            args=[
                source,
                time.time(),
                self.retention_s,
                MAX_UNFINISHED_DELIVERIES - earlier_deaths,
            ],
        )

    def record(self, job: str, source: str, status: Status, error: str = "", row=None) -> str:
        """Count one item's outcome; a second report of the same item changes nothing."""
        keys = job_keys(job)
        failure = failure_record(row, source, error) if status == Status.FAILED else ""
        return self._record(
            keys=list(keys.values()),
            args=[source, status, failure, time.time(), self.retention_s],
        )

    def begin_chunk(self, job: str, chunk: str, sources: list[str]) -> ChunkStart:
        """Start a delivery of ``chunk``: may it go on, how many deliveries it had, and the
        current status of each source (None when it has none yet)."""
        keys = job_keys(job)
        reply = self._begin_chunk(
            keys=[keys["meta"], keys["items"], keys["attempts"]],
            args=[chunk, time.time(), self.retention_s, *sources],
        )
        statuses = [status or None for status in reply[3:]]
        return ChunkStart(reply[0], int(reply[1]), int(reply[2]), statuses or [None] * len(sources))

    def record_chunk(
        self, job: str, outcomes: list[Outcome], finished_chunk: str | None = None
    ) -> tuple[list[bool], bool]:
        """Count several items' outcomes in one call; ``finished_chunk`` is struck off the
        ledger. Returns whether each was counted now (not before), and whether the job is
        cancelled; ([], True) for an unknown job (expired: nothing more to do)."""
        keys = job_keys(job)
        triples = []
        for outcome in outcomes:
            failure = ""
            if outcome.status == Status.FAILED:
                failure = failure_record(outcome.row, outcome.source, outcome.error)
            triples += [outcome.source, outcome.status, failure]
        reply = self._record_chunk(
            keys=list(keys.values()),
            args=[time.time(), self.retention_s, finished_chunk or "", *triples],
        )
        if reply[0] == "unknown":
            return [], True
        return [bool(flag) for flag in reply[1:]], bool(reply[0])

    def forget_attempt(self, job: str, source: str) -> None:
        """An item put back for a transient retry did not crash its worker."""
        self.redis.hdel(job_keys(job)["attempts"], source)

    # --- status and control ----------------------------------------------------------------

    def meta(self, job: str) -> dict | None:
        meta = self.redis.hgetall(job_keys(job)["meta"])
        return meta or None

    def failures(self, job: str, limit: int = FAILURES_SHOWN) -> list[dict]:
        shown = []
        for _, record in self.redis.hscan_iter(job_keys(job)["failures"], count=limit):
            failure = json.loads(record)
            shown.append({"path": failure["path"], "error": failure["error"]})
            if len(shown) >= limit:
                break
        return sorted(shown, key=lambda failure: failure["path"])

    def workers_alive(self) -> int:
        """Workers that sent a heartbeat lately (worker/presence.py)."""
        return workers_alive(self.redis)

    def cancel(self, job: str) -> None:
        self.redis.hset(job_keys(job)["meta"], "cancelled", time.time())

    def take_failed_for_retry(self, job: str) -> list[dict] | None:
        """Move the failed items to 'retrying'; return their records (None: unknown job)."""
        records = self._retry(
            keys=list(job_keys(job).values()), args=[time.time(), self.retention_s]
        )
        if records is None:
            return None
        return [json.loads(record) for record in records]

    def recent_jobs(self, limit: int) -> list[dict]:
        """The newest jobs' meta, dropping index entries whose job has expired."""
        ids = self.redis.zrevrange(JOBS_INDEX, 0, limit - 1)
        pipe = self.redis.pipeline()
        for job in ids:
            pipe.hgetall(job_keys(job)["meta"])
        metas = pipe.execute()
        expired = [job for job, meta in zip(ids, metas, strict=True) if not meta]
        if expired:
            self.redis.zrem(JOBS_INDEX, *expired)
        return [meta for meta in metas if meta]


def _encoded(chunks: dict[str, list]) -> dict[str, str]:
    return {chunk: json.dumps(rows, ensure_ascii=False) for chunk, rows in chunks.items()}


def unreachable_message(url: str, exc: Exception) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return hide_password(url, f"cannot reach the broker at {masked_url(url)}: {reason}")


def hide_password(url: str, text: str) -> str:
    """Belt and braces: no error text from a client library may carry the password either."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return text
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, "***")
    return text
