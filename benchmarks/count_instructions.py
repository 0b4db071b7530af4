"""Instructions one training step executes, per build (valgrind's callgrind).

Timings on a busy machine move by several percent from run to run; the
number of instructions the kernels execute does not. This trains the
default network (``Dense(128)`` -> ``Sampled(n)``, Adam, one thread) for
``--steps`` steps of 128 rows under callgrind, counting only inside
``Engine.train_step`` and ``Engine.optimizer_step``, once per source tree.
Slow (about 10 minutes per tree for the defaults): use narrowed shapes.

    python benchmarks/count_instructions.py /tmp/pyslide-before . \\
        --preset delicious --features 100000 --labels 50000 --steps 20
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

WORKER = r"""
import sys
import numpy as np, scipy.sparse as sp
import pyslide as ps
with np.load(sys.argv[1]) as f:
    X = sp.csr_matrix((f["x_data"], f["x_indices"], f["x_indptr"]), shape=tuple(f["x_shape"]))
    Y = sp.csr_matrix((f["y_data"], f["y_indices"], f["y_indptr"]), shape=tuple(f["y_shape"]))
net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1])], threads=1, seed=0)
net.fit(X, Y, epochs=1, batch_size=128, verbose=0)
print(ps.__file__)
"""
# callgrind's wildcards: the method's number in Cython's name changes when
# Engine gains or loses a method, and the trees compared may differ in it
SYMBOLS = ("__pyx_pw_7pyslide_8_kernels_6Engine_*train_step",
           "__pyx_pw_7pyslide_8_kernels_6Engine_*optimizer_step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="source trees with a build in place")
    parser.add_argument("--preset", default="delicious")
    parser.add_argument("--features", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=50_000)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.trees[-1]))
    import numpy as np
    import pyslide as ps
    X, Y = ps.data.make_xc(args.preset, n_samples=128 * args.steps, n_features=args.features,
                           n_labels=args.labels, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        data = os.path.join(folder, "data.npz")
        np.savez(data, x_data=X.data, x_indices=X.indices, x_indptr=X.indptr, x_shape=X.shape,
                 y_data=Y.data, y_indices=Y.indices, y_indptr=Y.indptr, y_shape=Y.shape)
        for tree in args.trees:
            out = subprocess.run(
                ["valgrind", "--tool=callgrind", "--collect-atstart=no",
                 *[f"--toggle-collect={s}" for s in SYMBOLS],
                 f"--callgrind-out-file={os.path.join(folder, 'callgrind.out')}",
                 os.path.realpath(sys.executable), "-c", WORKER, data],
                env=dict(os.environ, PYTHONPATH=os.path.abspath(tree), OMP_NUM_THREADS="1"),
                cwd=folder, capture_output=True, text=True, check=True)
            collected = re.search(r"Collected : (\d+)", out.stderr).group(1)
            print(f"{tree}: {int(collected):,} instructions ({out.stdout.strip()})", flush=True)


if __name__ == "__main__":
    main()
