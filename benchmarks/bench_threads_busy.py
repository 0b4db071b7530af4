"""Training steps/s with 1 and 2 threads, on an idle machine and beside a busy
process, under three OpenMP wait policies (issue 18).

    python benchmarks/bench_threads_busy.py            # about a minute on 2 cores

Policies (each run is a fresh interpreter: libgomp reads its environment once,
when it is loaded):

- ``active``: ``OMP_WAIT_POLICY=active``, waiting threads spin without end;
- ``spin 300k``: ``GOMP_SPINCOUNT=300000``, libgomp's own default, which
  pyslide ran under before it chose a policy;
- ``pyslide``: nothing set, so ``import pyslide`` picks its policy
  (``pyslide._openmp_env``).

"busy" runs ``--busy`` (default: one per core) plain Python processes that
spin for the whole measurement, as another job on the machine would. The
problem has Bibtex's shape (``make_xc``: 1,836 features, about 69 per row,
159 labels, 4,880 rows; a Dense(128) hidden layer, batch 128). Each cell is
the median of ``--windows`` timed windows of ``--window`` seconds, after one
warm-up window. One JSON line per cell goes to stdout, then a Markdown table.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

POLICIES = {"active": {"OMP_WAIT_POLICY": "active"},
            "spin 300k": {"GOMP_SPINCOUNT": "300000"},
            "pyslide": {}}

_CHILD = r"""
import json, sys, time
import numpy as np
import pyslide as ps
threads, window, windows = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
X, Y = ps.data.make_xc("small", n_samples=4880, n_features=1836, n_labels=159, nnz=69,
                       labels_per_point=2.4, seed=0)
net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1])], threads=threads, seed=0)
rates = []
for w in range(windows + 1):        # window 0 warms up (weights, tables, page faults)
    start, steps = time.perf_counter(), net.step_
    while time.perf_counter() - start < window:
        net.fit(X[:640], Y[:640], epochs=1, verbose=0)   # 5 steps of 128 rows
    if w:
        rates.append((net.step_ - steps) / (time.perf_counter() - start))
print(json.dumps({"rates": rates, "n_threads": net.n_threads}))
"""


def _spinner():
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def measure(policy, threads, busy, args):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(POLICIES[policy])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    spinners = [_spinner() for _ in range(busy)]
    try:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(threads), str(args.window),
                              str(args.windows)], env=env, capture_output=True, text=True,
                             check=True, timeout=120).stdout
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    result = json.loads(out.strip().splitlines()[-1])
    return statistics.median(result["rates"]), result["rates"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=0.5, help="seconds per timed window")
    parser.add_argument("--windows", type=int, default=3, help="timed windows per cell")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1,
                        help="spinning processes in the busy runs (default: one per core)")
    args = parser.parse_args()
    table = {}
    for policy in POLICIES:
        for threads in (1, 2):
            for busy in (0, args.busy):
                median, rates = measure(policy, threads, busy, args)
                table[policy, threads, busy] = median
                print(json.dumps({"policy": policy, "threads": threads, "busy": busy,
                                  "steps_per_s": round(median, 1),
                                  "windows": [round(r, 1) for r in rates]}), flush=True)
    print()
    print(f"| wait policy | threads | idle (steps/s) | {args.busy} busy processes (steps/s) |")
    print("|---|---|---|---|")
    for policy in POLICIES:
        for threads in (1, 2):
            print(f"| {policy} | {threads} | {table[policy, threads, 0]:.0f} | "
                  f"{table[policy, threads, args.busy]:.0f} |")


if __name__ == "__main__":
    main()
