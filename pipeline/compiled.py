"""numba, loaded with a cache folder it can write: the one way pipeline modules get ``njit``.

Compiled loops (error diffusion, the k-means steps) are compiled once per machine and cached
on disk. This module imports numba, so only code that quantizes imports it.
"""

import os
import tempfile
from pathlib import Path

#: Environment variable where numba keeps compiled code when set.
CACHE_ENV = "NUMBA_CACHE_DIR"


def cache_dir_for(package_dir: Path, environ=os.environ) -> str | None:
    """Where numba should cache compiled code, or None to leave it to numba.

    numba caches next to the source (``__pycache__``). In a read-only install (a system
    package, a container image) it would fall back to a per-user folder only if it finds one,
    else recompile in every process; so choose one it can write: the user's cache folder, else
    the temp folder. An explicit ``NUMBA_CACHE_DIR`` always wins.
    """
    if environ.get(CACHE_ENV):
        return None
    cache = package_dir / "__pycache__"
    if os.access(cache if cache.exists() else package_dir, os.W_OK):
        return None
    home = environ.get("HOME") or os.path.expanduser("~")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    if not os.access(base if os.path.isdir(base) else os.path.dirname(base), os.W_OK):
        base = tempfile.gettempdir()
    return os.path.join(base, f"colorquant-numba-{os.getuid()}")


def _choose_cache_dir() -> None:
    chosen = cache_dir_for(Path(__file__).parent)
    if chosen is not None:
        os.environ[CACHE_ENV] = chosen


_choose_cache_dir()

from numba import njit  # noqa: E402  (the cache folder must be chosen before numba loads)

__all__ = ["CACHE_ENV", "cache_dir_for", "njit"]
