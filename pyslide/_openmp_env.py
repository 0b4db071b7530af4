"""The OpenMP runtime's wait policy, chosen before the runtime starts, and the fork warning; imports nothing (``pyslide/__init__`` runs it before any kernel module loads).

libgomp reads its environment once, when the first module linked against it
is loaded. By default a thread that reaches the end of a parallel region
spins (about 300,000 turns) waiting for the next one. On an idle machine that
saves a wake-up; on a machine whose cores run other work the spinning threads
take the cores from the one thread that still has work, and each of a step's
several parallel regions waits for a descheduled partner: Bibtex-sized steps
ran 30-50 times slower with two threads than with one (docs/performance.md,
"Threads on a busy machine"). A passive policy (threads sleep at once) cannot
collapse like this, and costs little on an idle machine (same table).
"""
import os

# what pyslide sets when the user set neither variable
WAIT_POLICY = "passive"
_USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def choose_wait_policy(environ=os.environ):
    """Set ``OMP_WAIT_POLICY=passive`` in ``environ`` unless the user set
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` (theirs is kept: benchmarks on
    a dedicated machine may want spinning threads). Returns what was set, or
    None. Takes effect only if the OpenMP runtime has not started yet (an
    earlier import of another OpenMP library, e.g. PyTorch, starts it)."""
    if any(environ.get(name, "").strip() for name in _USER_VARIABLES):
        return None
    environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    return WAIT_POLICY


def _runtime_loaded():
    """True when GNU OpenMP is already mapped into this process (Linux; False
    where that cannot be told)."""
    try:
        with open("/proc/self/maps") as maps:
            return "libgomp" in maps.read()
    except OSError:
        return False


chosen = choose_wait_policy()
# another library (PyTorch bundles a libgomp.so.1, which pyslide's kernels
# then share) may have started the runtime already, with spinning waits
applied = chosen is not None and not _runtime_loaded()
if chosen is not None and not applied:
    import warnings
    warnings.warn(
        "pyslide: an OpenMP runtime was started before pyslide (by another library, e.g. "
        "PyTorch) with spinning waits, so pyslide's OMP_WAIT_POLICY=passive cannot take "
        "effect; on a machine busy with other work, training with several threads may run "
        "many times slower than with one. Import pyslide first, or set OMP_WAIT_POLICY="
        "passive before Python starts (or use threads=1)", RuntimeWarning, stacklevel=2)


# The most threads a kernel has been started with in this process. GNU
# OpenMP's worker threads do not survive fork(): a forked child that starts a
# parallel region waits for them forever (Linux's default multiprocessing
# start method forks). Kernels report their thread counts here so that a
# child can be told at once, rather than hang later without a word.
_threads_run = 0


def note_threads(n_threads):
    """Record that a kernel is about to run with ``n_threads``; returns it."""
    global _threads_run
    if n_threads > _threads_run:
        _threads_run = n_threads
    return n_threads


def _warn_in_forked_child():
    if _threads_run > 1:
        import warnings
        warnings.warn(
            f"pyslide: this process was forked after pyslide ran OpenMP threads "
            f"({_threads_run}) in its parent; OpenMP's threads do not survive fork, so "
            f"training or prediction in this child may hang. Start child processes with "
            f"the 'spawn' method (multiprocessing.get_context('spawn'), or "
            f"multiprocessing.set_start_method('spawn') at the program's start), or use "
            f"threads=1 in the parent", RuntimeWarning, stacklevel=2)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_warn_in_forked_child)
