"""OpenMP shim: the only module that calls ``omp_*`` functions; a kernel module (imports no Python module of ours).

Everything else uses ``prange(..., num_threads=n)`` with ``n`` resolved by
:func:`resolve_threads`.
"""
import os

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int pyslide_omp_enabled(void) { return 1; }
    static int pyslide_omp_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int pyslide_omp_enabled(void) { return 0; }
    static int pyslide_omp_max_threads(void) { return 1; }
    #endif
    """
    int pyslide_omp_enabled() nogil
    int pyslide_omp_max_threads() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (run in parallel)."""
    return bool(pyslide_omp_enabled())


def omp_max_threads():
    """What OpenMP would use by default (honours ``OMP_NUM_THREADS``)."""
    return int(pyslide_omp_max_threads())


def available_cores():
    """Cores this process may run on (CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# A cap on explicit thread counts. Beyond a few threads per core the
# kernels only slow down (HogWild updates are compute-bound), every thread
# holds its own scratch (stamp arrays as wide as a sampled layer), and
# OpenMP runtimes crash outright when asked for 10^5 threads.
THREADS_PER_CORE_LIMIT = 4
THREADS_FLOOR_LIMIT = 64


def max_threads():
    """The largest ``threads`` accepted: 4 per core, at least 64."""
    return max(THREADS_FLOOR_LIMIT, THREADS_PER_CORE_LIMIT * max(1, os.cpu_count() or 1))


def resolve_threads(threads, name="threads"):
    """Turn a user's ``threads`` argument into a positive thread count.

    ``None`` means the cores available to this process, capped by
    ``OMP_NUM_THREADS`` when set; ``-1`` means every core of the machine;
    a positive int is taken as is, up to :func:`max_threads` (4 per core,
    at least 64; more is an error). Without OpenMP the answer is always 1.
    """
    if threads is None:
        n = available_cores()
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if env:
            try:
                n = min(n, max(1, int(env.split(",")[0])))
            except ValueError:
                pass
    elif isinstance(threads, bool) or not isinstance(threads, (int,)) and not hasattr(threads, "__index__"):
        raise TypeError(f"{name} must be None, -1 or a positive int, got {threads!r}")
    else:
        threads = int(threads)
        if threads == -1:
            n = max(1, os.cpu_count() or 1)
        elif threads > max_threads():
            raise ValueError(
                f"{name}={threads} is more than this machine can use: at most "
                f"{max_threads()} ({THREADS_PER_CORE_LIMIT} per core of its "
                f"{os.cpu_count() or 1} cores, at least {THREADS_FLOOR_LIMIT}); more threads "
                f"only slow the kernels down, and each one holds its own scratch memory")
        elif threads >= 1:
            n = threads
        else:
            raise ValueError(
                f"{name} must be None (all available cores), -1 (every core) "
                f"or a positive int, got {threads}")
    if not pyslide_omp_enabled():
        return 1
    return n
