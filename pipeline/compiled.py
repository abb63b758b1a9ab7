"""numba, loaded with a cache folder it can write: the one way pipeline modules get ``njit``.

Compiled loops (error diffusion, the k-means steps) are compiled once per machine and cached
on disk. This module imports numba, so only code that quantizes imports it.

numba is also loaded without scipy's BLAS: see :func:`_load_numba_without_blas`.
"""

import os
import sys
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


#: The module numba imports to learn whether scipy's BLAS is there (numba/np/arraymath.py).
SCIPY_BLAS_MODULE = "scipy.linalg.cython_blas"


def _load_numba_without_blas() -> None:
    """Import numba's array implementations while scipy's BLAS looks absent.

    The first call of any compiled function loads numba's implementations of NumPy, and one of
    them probes for BLAS by importing ``scipy.linalg.cython_blas``: that imports the whole of
    ``scipy.linalg`` (its Fortran BLAS and LAPACK extensions and their OpenBLAS), 18 MB of
    resident memory in every quantizing process, about 6% of a 24 MP photo's peak. Our loops
    call no BLAS routine (no ``np.dot``, ``@`` or ``np.linalg``), and numba's only use of the
    probe's answer is to pick a plain loop for inner products (``np.cov``). The import is
    blocked only while the probe runs, so anything that needs ``scipy.linalg`` later (the
    SSIMULACRA2 score, scikit-learn) imports it as usual. A process that loaded scipy's BLAS
    already keeps it and numba finds it."""
    if SCIPY_BLAS_MODULE in sys.modules:
        import numba.np.arraymath  # noqa: F401  (the probe finds what is loaded)

        return
    sys.modules[SCIPY_BLAS_MODULE] = None  # import fails with ImportError: "no BLAS"
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules[SCIPY_BLAS_MODULE]


_choose_cache_dir()
_load_numba_without_blas()

from numba import njit  # noqa: E402  (the cache folder must be chosen before numba loads)

__all__ = ["CACHE_ENV", "cache_dir_for", "njit"]
