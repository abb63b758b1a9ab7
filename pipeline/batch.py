"""The embedded runner behind ``colorquant run``: a pool of local processes, no Redis.

The parent process only walks folders and collects results; every image is quantized in a
child started with ``spawn``, one BLAS/OpenMP thread each, so the parent never runs
scikit-learn and nothing forks a process that has.
"""

import functools
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.discover import InputItem, InputRoot, InputWalk
from pipeline.job import Status, new_job_id
from pipeline.jobrecord import roots_of, write_record
from pipeline.params import QuantizeParams
from pipeline.process import FileResult, quantize_file, settled_result
from pipeline.save import remove_temps_in
from pipeline.threads import limit_threads_env, warm_up

#: Tasks kept in flight per worker process: enough to hide scheduling gaps, few enough to stop
#: promptly on Ctrl-C.
IN_FLIGHT_PER_WORKER = 2


@dataclass
class BatchSummary:
    """The outcome of a batch: its counts and failures (the CLI prints them as its report)."""

    job: str
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    failures: list = field(default_factory=list)
    elapsed_s: float = 0.0

    def add(self, result: FileResult) -> None:
        if result.status == Status.DONE:
            self.done += 1
        elif result.status == Status.SKIPPED:
            self.skipped += 1
        else:
            self.failed += 1
            self.failures.append({"path": result.source, "error": result.error})


def collect_items(roots: list[InputRoot]) -> tuple[list[InputItem], int]:
    """Every image under the roots, and how many other files were ignored."""
    walk = InputWalk(roots)
    items = list(walk)
    return items, walk.ignored


def run_batch(
    items: list[InputItem],
    out_root: Path,
    params: QuantizeParams,
    *,
    workers: int,
    overwrite: bool = False,
    job: str | None = None,
    ignored: int = 0,
    on_result: Callable[[FileResult], None] | None = None,
    pool: ProcessPoolExecutor | None = None,
) -> BatchSummary:
    """Quantize ``items`` with ``workers`` processes; call ``on_result`` as each one ends.

    Images whose outcome is known without their pixels (up to date, refused) are settled here
    first, so a re-run with nothing left to do starts no process and never loads scikit-learn.

    ``pool`` is a running :func:`worker_pool` to use (a phased job reuses one for every phase).
    """
    summary = BatchSummary(job=job or new_job_id(), total=len(items), ignored=ignored)
    started = time.perf_counter()
    record = (out_root, summary.job, "run", roots_of(items), params.to_json())
    write_record(*record)

    def settle(result: FileResult) -> None:
        summary.add(result)
        if on_result:
            on_result(result)

    left = []
    for item in items:
        settled = settled_result(item, out_root, params, job=summary.job, overwrite=overwrite)
        if settled is None:
            left.append(item)
        else:
            settle(settled)
    quantize = functools.partial(
        quantize_file, out_root=str(out_root), params=params, job=summary.job, overwrite=overwrite
    )
    in_flight: set = set()
    try:
        if left:
            with nullcontext(pool) if pool is not None else worker_pool(workers) as running:
                for result in bounded_map(running, workers, quantize, left, in_flight):
                    settle(result)
    except BaseException:
        # Ctrl-C or a broken pool: the pool has let running images finish. Count what they
        # wrote (the summary must match OUT), then sweep, so no temp file is left in OUT.
        for result in finished_results(in_flight):
            settle(result)
        _sweep_temps(items, out_root)
        raise
    _sweep_temps(items, out_root)
    summary.elapsed_s = time.perf_counter() - started
    write_record(*record, summary=asdict(summary))
    return summary


@contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """``workers`` spawned processes with one BLAS thread each, warmed up, Ctrl-C safe."""
    limit_threads_env()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker) as pool:
        try:
            yield pool
        except BaseException:
            # Drop what has not started and let running images finish (they write whole files).
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def bounded_map(
    pool: ProcessPoolExecutor,
    workers: int,
    function: Callable,
    inputs: Iterable,
    running: set | None = None,
) -> Iterator:
    """``function(x)`` for each input, run in ``pool``, yielded as each finishes (in any
    order), with at most IN_FLIGHT_PER_WORKER calls per worker queued at a time.

    ``running``, when given, is the caller's set of the calls submitted and not yet yielded,
    so that after Ctrl-C it can still count the ones that finished."""
    pending = iter(inputs)
    running = set() if running is None else running
    while True:
        while len(running) < workers * IN_FLIGHT_PER_WORKER:
            argument = next(pending, _END)
            if argument is _END:
                break
            running.add(pool.submit(function, argument))
        if not running:
            return
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            running.discard(future)
            yield future.result()


def finished_results(futures: Iterable) -> list:
    """The results of the calls among ``futures`` that ended with one (not cancelled, not
    failed, not still running)."""
    return [
        future.result()
        for future in futures
        if future.done() and not future.cancelled() and future.exception() is None
    ]


#: Marks the end of the inputs of :func:`bounded_map` (None may be an input).
_END = object()


def _start_worker() -> None:
    # Ctrl-C is the parent's to handle; a child that died of it would print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads_env()
    warm_up()


def _sweep_temps(items: list[InputItem], out_root: Path) -> None:
    """Remove temp files an interrupted earlier run left beside this run's outputs."""
    for folder in {Path(out_root, item.output).parent for item in items}:
        remove_temps_in(folder)


__all__ = ["BatchSummary", "run_batch", "collect_items"]
