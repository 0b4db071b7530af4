"""Step time of two builds of pyslide (two source trees), side by side.

Each round trains the default network (``Dense(128)`` -> ``Sampled(n)``,
Adam) for ``--steps`` steps of 128 rows on the same data, once with each
build, alternating which goes first, in fresh processes (one Python process
cannot import two builds). A busy machine thus slows both alike; the medians
over all rounds (the first 10 steps of a run skipped: page faults and the
first table build) are reported with their ratio. ``--cpu`` (with
``--threads 1``) measures the process CPU time of a second epoch instead,
which other processes on the machine hardly disturb.

    python benchmarks/bench_builds.py --before /tmp/pyslide-before --after . \\
        --presets delicious,amazon --steps 200 --rounds 4 --threads 2
    python benchmarks/bench_builds.py --before /tmp/pyslide-before --after . \
        --presets delicious,amazon --steps 100 --rounds 3 --threads 1 --cpu
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

WORKER = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp
import pyslide as ps
data, steps, threads, cpu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
with np.load(data) as f:
    X = sp.csr_matrix((f["x_data"], f["x_indices"], f["x_indptr"]), shape=tuple(f["x_shape"]))
    Y = sp.csr_matrix((f["y_data"], f["y_indices"], f["y_indptr"]), shape=tuple(f["y_shape"]))
net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1])], threads=threads, seed=0)
X, Y = X[:steps * 128], Y[:steps * 128]
if cpu:
    # process CPU seconds of the second epoch (no set-up inside): with one
    # thread, what the code costs, whatever else runs on the machine
    marks = []
    net.fit(X, Y, epochs=2, batch_size=128, verbose=0,
            callbacks=[lambda network, epoch, logs: marks.append(time.process_time())])
    print(json.dumps({"file": ps.__file__, "steps": [(marks[1] - marks[0]) / steps],
                      "phases": {}}))
else:
    net.fit(X, Y, epochs=1, batch_size=128, verbose=0)
    print(json.dumps({"file": ps.__file__, "steps": list(map(float, net.step_times_[10:])),
                      "phases": {k: v / len(net.step_times_) for k, v in net.timings_.items()}}))
"""


def make_data(preset, steps, folder):
    import pyslide as ps
    path = os.path.join(folder, f"{preset}.npz")
    X, Y = ps.data.make_xc(preset, n_samples=steps * 128, seed=0)
    np.savez(path, x_data=X.data, x_indices=X.indices, x_indptr=X.indptr, x_shape=X.shape,
             y_data=Y.data, y_indices=Y.indices, y_indptr=Y.indptr, y_shape=Y.shape)
    return path


def run(tree, data, steps, threads, cpu=False):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    # run from the data's folder: "python -c" puts the current folder first on the path
    out = subprocess.run([sys.executable, "-c", WORKER, data, str(steps), str(threads),
                          "1" if cpu else "0"],
                         env=env, cwd=os.path.dirname(data), capture_output=True, text=True,
                         check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = os.path.join(os.path.abspath(tree), "pyslide", "__init__.py")
    assert os.path.samefile(result["file"], expected), (result["file"], expected)
    return result["steps"], result["phases"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="source tree of the first build")
    parser.add_argument("--after", required=True, help="source tree of the second build")
    parser.add_argument("--presets", default="delicious,amazon")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu", action="store_true",
                        help="measure process CPU time per step of a second epoch instead of "
                             "wall time (use with --threads 1: robust on a busy machine)")
    parser.add_argument("--phases", action="store_true",
                        help="also print each build's time per step by phase")
    args = parser.parse_args()
    builds = {"before": args.before, "after": args.after}
    sys.path.insert(0, os.path.abspath(args.after))   # the data: make_xc of the "after" tree
    with tempfile.TemporaryDirectory() as folder:
        for preset in args.presets.split(","):
            data = make_data(preset, args.steps, folder)
            times = {name: [] for name in builds}
            phases = {name: [] for name in builds}
            for r in range(args.rounds):
                order = list(builds) if r % 2 == 0 else list(builds)[::-1]
                for name in order:
                    steps, per_step = run(builds[name], data, args.steps, args.threads,
                                          args.cpu)
                    times[name].extend(steps)
                    phases[name].append(per_step)
            med = {k: 1000 * float(np.median(v)) for k, v in times.items()}
            print(f"| {preset} | {med['before']:.1f} | {med['after']:.1f} | "
                  f"{med['after'] / med['before']:.3f} | {len(times['after'])} |", flush=True)
            if args.phases and not args.cpu:
                for name in builds:
                    keys = phases[name][0]
                    print(f"    {name} ms per step by phase (median of runs): " + ", ".join(
                        f"{k} {1000 * np.median([p[k] for p in phases[name]]):.1f}"
                        for k in keys), flush=True)


if __name__ == "__main__":
    main()
