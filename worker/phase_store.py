"""The phases of a shared-palette job in Redis: count → fit → label.

A ``--palette shared`` job keeps the ledger of any job (worker/jobs.py) plus a phase:

- ``colorquant:{J}:meta`` field ``phase``: ``count``, ``fit`` or ``label`` (absent for a
  one-phase job); ``counted``: images whose colour counts are stored; ``shared_colors``: the
  fitted palette as JSON once the job labels (at most 256 rows: small).
- ``colorquant:{J}:counting``  hash: count chunk id → its message rows, written before the
  message is published and deleted once the chunk's counts are in its file (the count phase's
  counterpart of the ``chunks`` ledger; the lost-message sweep re-sends from it).
- ``colorquant:{J}:counted``   hash: count chunk id → ``<images>:<rows>`` of the chunks whose
  counts are stored. The fit merges exactly their files, ``OUT/.colorquant/J/counts/CHUNK.npz``,
  so the counts are exact however often a chunk was delivered: a chunk is in the hash once, and
  its file is rewritten with the same bytes by a redelivery. The rows are kept so that a chunk
  whose file the fit cannot read (deleted or damaged under OUT) goes back on the count ledger
  and is counted again (``recount``); the hash is deleted when the job enters the label phase.

Redis holds only rows and ids, never colour counts: its memory does not grow with the colours
of the images. Every phase switch is one Lua script (beside this module; each header documents
its KEYS and ARGV) that switches only from the phase before, so a repeat changes nothing.
"""

import json
import time
from dataclasses import dataclass

from worker.jobs import JobStore, job_keys, lua_script

#: The phases of a shared-palette job, in order.
COUNT, FIT, LABEL = "count", "fit", "label"

#: Label chunks written to the ledger per script call: bounds the size of one call.
STAGE_BATCH = 64

BEGIN_COUNT, MARK_COUNTED, RECOUNT, STAGE_LABEL, ENTER_LABEL = (
    lua_script(name)
    for name in ("begin_count", "mark_counted", "recount", "stage_label", "enter_label")
)


def phase_keys(job: str) -> dict[str, str]:
    """The keys a shared-palette job has beyond those of :func:`worker.jobs.job_keys`."""
    prefix = f"colorquant:{{{job}}}"
    return {part: f"{prefix}:{part}" for part in ("counting", "counted")}


@dataclass(frozen=True)
class CountStart:
    """The answer of ``begin_count``: ``verdict`` go/unknown/cancelled/counted, the chunk's
    deliveries begun (this one included) and the rows the ledger holds for it."""

    verdict: str
    deliveries: int
    rows: list


class PhaseStore:
    """The phase transitions of shared-palette jobs, on a :class:`JobStore`'s Redis client."""

    def __init__(self, store: JobStore):
        self.store = store
        self.redis = store.redis
        self._begin_count = self.redis.register_script(BEGIN_COUNT)
        self._mark_counted = self.redis.register_script(MARK_COUNTED)
        self._recount = self.redis.register_script(RECOUNT)
        self._stage_label = self.redis.register_script(STAGE_LABEL)
        self._enter_label = self.redis.register_script(ENTER_LABEL)

    def _keys(self, job: str) -> list[str]:
        keys, phases = job_keys(job), phase_keys(job)
        return [keys["meta"], keys["attempts"], phases["counting"], phases["counted"]]

    def begin_count(self, job: str, chunk: str) -> CountStart:
        reply = self._begin_count(
            keys=self._keys(job)[:3], args=[chunk, time.time(), self.store.retention_s]
        )
        rows = json.loads(reply[2]) if reply[2] else []
        return CountStart(reply[0], int(reply[1]), rows)

    def mark_counted(self, job: str, chunk: str, images: int) -> bool:
        """Strike a counted chunk off; True when this call moved the job to the fit phase."""
        reply = self._mark_counted(
            keys=self._keys(job), args=[chunk, images, time.time(), self.store.retention_s]
        )
        return bool(reply)

    def count_phase_over(self, job: str) -> bool:
        """After the seal: True when this call moved the job to the fit phase (every chunk was
        counted before the submit sealed it)."""
        return self.mark_counted(job, "", 0)

    def counted_chunks(self, job: str) -> list[str]:
        """The count chunks whose counts are stored, sorted (the fit's merge order)."""
        return sorted(self.redis.hkeys(phase_keys(job)["counted"]))

    def recount(self, job: str, chunks: list[str]) -> dict[str, list] | None:
        """Put counted ``chunks`` whose files are lost back on the count ledger and the job back
        in the count phase. Returns the count chunks to send again (those chunks, with their
        rows), or None when the job is not in the fit phase (another fit did it, or cancelled)."""
        keys, phases = job_keys(job), phase_keys(job)
        moved = self._recount(
            keys=[keys["meta"], phases["counting"], phases["counted"]],
            args=[time.time(), self.store.retention_s, *chunks],
        )
        if not moved:
            return None
        return {chunk: rows for chunk, rows in self.pending_counts(job).items() if chunk in chunks}

    def stage_label(self, job: str, chunks: dict[str, list]) -> bool:
        """Write the label chunks into the job's ledger; False when the job left the fit phase
        (a repeat of the fit after the switch: the ledger is left as it is)."""
        meta, ledger = job_keys(job)["meta"], job_keys(job)["chunks"]
        items = list(chunks.items())
        for start in range(0, max(1, len(items)), STAGE_BATCH):
            pairs = []
            for chunk, rows in items[start : start + STAGE_BATCH]:
                pairs += [chunk, json.dumps(rows, ensure_ascii=False)]
            if not self._stage_label(keys=[meta, ledger], args=[self.store.retention_s, *pairs]):
                return False
        return True

    def enter_label(self, job: str, colors: list) -> bool:
        """Switch the job from fit to label with its palette; True for the call that did."""
        reply = self._enter_label(
            keys=[job_keys(job)["meta"], phase_keys(job)["counted"]],
            args=[json.dumps(colors), time.time()],
        )
        return bool(reply)

    def phase_of(self, job: str) -> tuple[str | None, bool]:
        """The job's phase (None for a one-phase or unknown job) and whether it is cancelled."""
        phase, cancelled = self.redis.hmget(job_keys(job)["meta"], "phase", "cancelled")
        return phase, cancelled is not None

    def shared_colors(self, job: str) -> list | None:
        """The fitted palette a label chunk uses; None before the job labels."""
        raw = self.redis.hget(job_keys(job)["meta"], "shared_colors")
        return None if raw is None else json.loads(raw)

    def pending_counts(self, job: str) -> dict[str, list]:
        """The count chunks not counted yet, for the lost-message sweep."""
        return {
            chunk: json.loads(rows)
            for chunk, rows in self.redis.hgetall(phase_keys(job)["counting"]).items()
        }

    def add_count_chunks(self, job: str, chunks: dict[str, list]) -> None:
        """Note count chunks before their messages are published."""
        key = phase_keys(job)["counting"]
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={c: json.dumps(r, ensure_ascii=False) for c, r in chunks.items()})
        pipe.expire(key, self.store.retention_s)
        pipe.execute()

    def forget(self, job: str) -> None:
        """Delete the phase keys (a submit abandoned midway)."""
        self.redis.delete(*phase_keys(job).values())
