"""Compile the quantizer's loops once per machine, not once per process, and say so.

numba compiles each loop on its first call and caches it on disk (:mod:`pipeline.compiled`).
On a machine whose cache is cold, every pool process of ``run -j N`` or of a worker would
compile the same loops at once, N times the CPU on shared cores, in silence. Instead each
module's loops are compiled by the one process that takes its lock file in the cache folder
(one line on stderr says so); the others compile other modules meanwhile, or wait on the
lock, then load what was written. The lock is an ``flock``: the kernel releases it when its
holder dies, so a crashed compiler leaves the others to take over, never stuck.
"""

import fcntl
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from types import ModuleType

#: Lock file name, after the module name, in numba's cache folder: held while compiling that module.
LOCK_NAME = "colorquant-compile.lock"

#: The line printed on stderr by the process that compiles (one per machine, the first time).
COMPILING_LINE = "colorquant: compiling the image loops for this machine, once (about 10 s)..."


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

    Reads each function's small index file only (numba's own check: source stamp and size).
    Where numba keeps no such index (caching off, another numba), says warm: the loops then
    load or compile as numba decides, with neither the lock nor the line."""
    try:
        return any(not dispatcher._cache._cache_file._load_index() for dispatcher in dispatchers)
    except AttributeError:
        return False


def cache_folder(dispatchers: list) -> str:
    """The folder numba caches these functions in (the same for all modules of a package)."""
    return dispatchers[0]._cache._cache_path


@contextmanager
def _locked(folder: str, name: str = LOCK_NAME, wait: bool = True):
    """Hold an exclusive lock on the lock file ``name`` in ``folder``, waiting for it if
    another process holds it; yields True once held. With ``wait`` False, yields False at once
    instead of waiting. Without a lock file (a folder that cannot be written), yields True
    unlocked: compiling twice is only slower."""
    try:
        os.makedirs(folder, exist_ok=True)
        handle = open(os.path.join(folder, name), "a")
    except OSError:
        yield True
        return
    with handle:  # closing releases the lock; so does the kernel if this process dies
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def _say(line: str) -> None:
    # File descriptor 2, not sys.stderr: a Celery pool process redirects sys.stderr to its log.
    try:
        os.write(sys.__stderr__.fileno() if sys.__stderr__ else 2, (line + "\n").encode())
    except (OSError, ValueError):
        pass


def load_or_compile(modules: Sequence[ModuleType], warm: Callable[[ModuleType], None]) -> None:
    """Call ``warm(module)`` (which calls each of its kernels once) for every module: loading
    the kernels from a warm cache at once; on a cold one, compiling each module in one process.

    Each module has its own lock. A process first compiles the cold modules no other process
    is compiling (so two pool processes share the work: about half the wait on two cores),
    then waits for the others' and loads them. The process that compiles the first cold
    module prints the one line that says so.
    """
    cold = [module for module in modules if is_cold(kernels([module]))]
    busy = []
    for module in modules:
        if module not in cold:
            warm(module)
            continue
        folder, name = cache_folder(kernels([module])), f"{module.__name__}.{LOCK_NAME}"
        with _locked(folder, name, wait=False) as held:
            if held:
                if module is cold[0] and is_cold(kernels([module])):
                    _say(COMPILING_LINE)
                warm(module)
            else:
                busy.append((folder, name, module))
    for folder, name, module in busy:
        with _locked(folder, name):  # until the process compiling it is done (or dead)
            warm(module)


__all__ = ["COMPILING_LINE", "LOCK_NAME", "is_cold", "kernels", "load_or_compile"]
