"""One BLAS/OpenMP thread per process: parallelism comes from processes, never from threads.

N processes each running N OpenMP threads on N cores thrash; and GNU OpenMP is not fork-safe,
so a process that will fork must not have started its thread pool. These variables must be set
before numpy or scikit-learn is imported in the process they apply to.
"""

import os

#: Environment variables read by the BLAS and OpenMP runtimes numpy and scikit-learn load.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def limit_threads_env(environ=os.environ) -> None:
    """Set every thread variable to 1 in ``environ`` (this process and what it starts)."""
    for name in THREAD_VARIABLES:
        environ[name] = "1"


def limit_threads_now() -> None:
    """Also cap runtimes that are already loaded (threadpoolctl), for processes started early."""
    limit_threads_env()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def warm_up() -> None:
    """Import the quantizer and load its compiled loops (histogram, k-means steps, dithering)
    now, so the first image does not pay for them. scikit-learn is left to the seed's ``--sample``
    fit and the random codebook, which import it on first use: the default fit does not need
    it, and importing it costs a process about 100 MB of memory.

    On a machine whose cache is cold, one process compiles while the others wait for it
    (:mod:`pipeline.first_compile`)."""
    import pipeline.binning
    import pipeline.colour_ranks
    import pipeline.dither
    import pipeline.flatness_pass
    import pipeline.lloyd
    import pipeline.quantize  # noqa: F401
    from pipeline.first_compile import load_or_compile

    # Longest to compile first, so that two processes starting together split the work evenly.
    modules = (
        pipeline.dither,
        pipeline.lloyd,
        pipeline.binning,
        pipeline.colour_ranks,
        pipeline.flatness_pass,
    )
    load_or_compile(modules, lambda module: module.warm_up())
