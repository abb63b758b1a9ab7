"""Compile the quantizer's loops once per machine, not once per process, and say so.

numba compiles each loop on its first call and caches it on disk (:mod:`pipeline.compiled`).
On a machine whose cache is cold, every pool process of ``run -j N`` or of a worker would
compile the same loops at once, N times the CPU on shared cores, in silence. Instead the first
process to take a lock on the cache folder compiles, after one line on stderr; the others wait
on the lock, then load what it wrote. The lock is an ``flock``: the kernel releases it when its
holder dies, so a crashed compiler leaves the others to take over, never stuck.
"""

import fcntl
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from types import ModuleType

#: File, in numba's cache folder, whose lock the compiling process holds.
LOCK_NAME = "colorquant-compile.lock"

#: The line printed on stderr by the process that compiles (one per machine, the first time).
COMPILING_LINE = "colorquant: compiling the image loops for this machine, once (about 15 s)..."


def kernels(modules: Iterable[ModuleType]) -> list:
    """The compiled functions of ``modules`` that numba caches on their own: all but those
    inlined into their callers (``inline="always"``), which never get a cache entry."""
    from numba.core.registry import CPUDispatcher

    return [
        value
        for module in modules
        for value in vars(module).values()
        if isinstance(value, CPUDispatcher) and value.targetoptions.get("inline") != "always"
    ]


def is_cold(dispatchers: list) -> bool:
    """Whether some function has no usable cache entry (missing, or from other source).

    Reads each function's small index file only (numba's own check: source stamp and size)."""
    return any(not dispatcher._cache._cache_file._load_index() for dispatcher in dispatchers)


def cache_folder(dispatchers: list) -> str:
    """The folder numba caches these functions in (the same for all modules of a package)."""
    return dispatchers[0]._cache._cache_path


@contextmanager
def _locked(folder: str):
    """Hold an exclusive lock on the lock file in ``folder``; wait for it if another holds it.
    Without a lock file (a folder that cannot be written), go on unlocked."""
    try:
        os.makedirs(folder, exist_ok=True)
        handle = open(os.path.join(folder, LOCK_NAME), "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released on close, or by the kernel on death
        yield


def _say(line: str) -> None:
    # File descriptor 2, not sys.stderr: a Celery pool process redirects sys.stderr to its log.
    try:
        os.write(sys.__stderr__.fileno() if sys.__stderr__ else 2, (line + "\n").encode())
    except (OSError, ValueError):
        pass


def load_or_compile(modules: Iterable[ModuleType], run: Callable[[], None]) -> None:
    """Run ``run`` (which calls every kernel of ``modules`` once): loading the kernels from a
    warm cache at once; on a cold one, compiling them in one process at a time."""
    dispatchers = kernels(modules)
    if not dispatchers or not is_cold(dispatchers):
        run()
        return
    with _locked(cache_folder(dispatchers)):
        if is_cold(dispatchers):  # still cold: no process compiled while this one waited
            _say(COMPILING_LINE)
        run()


__all__ = ["COMPILING_LINE", "LOCK_NAME", "is_cold", "kernels", "load_or_compile"]
