"""The OpenMP runtime's wait policy, chosen before the runtime starts; imports nothing (``pyslide/__init__`` runs it before any kernel module loads).

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


chosen = choose_wait_policy()
