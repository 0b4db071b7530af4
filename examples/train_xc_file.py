"""Train on Extreme Classification Repository text files and report P@k, nDCG@k, PSP@k.

    python examples/train_xc_file.py                       # the bibtex files beside the repo
    python examples/train_xc_file.py train.txt test.txt    # your own files
    python examples/train_xc_file.py train.txt test.txt --epochs 20 --lr 2e-3 --hidden 256

Without arguments it reads ``train.txt`` / ``test.txt`` from
``../shared/data/bibtex`` relative to the repository (4,880 training rows,
1,836 features, 159 labels), which takes seconds. Set
``PYSLIDE_EXAMPLE_QUICK=1`` for a smoke run on the first 500 rows.

The file format: a header line ``N D L`` (rows, features, labels), then one
line per row, ``label,label,... feature:value feature:value ...`` with
0-based ids.
"""
import argparse
import os
import time
from pathlib import Path

import pyslide as ps

BIBTEX = Path(__file__).resolve().parents[2] / "shared" / "data" / "bibtex"
QUICK = os.environ.get("PYSLIDE_EXAMPLE_QUICK") == "1"

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("train", nargs="?", default=BIBTEX / "train.txt")
parser.add_argument("test", nargs="?", default=BIBTEX / "test.txt")
parser.add_argument("--epochs", type=int, default=1 if QUICK else 10)
parser.add_argument("--lr", type=float, default=2e-3)
parser.add_argument("--hidden", type=int, default=128)
parser.add_argument("--threads", type=int, default=None)
args = parser.parse_args()

# Read both files. The test file is read with the training file's widths, so
# its columns line up with the model's (an id beyond them names its line).
X, Y = ps.data.load_xc(args.train)
X_test, Y_test = ps.data.load_xc(args.test, n_features=X.shape[1], n_labels=Y.shape[1])
if QUICK:
    X, Y, X_test, Y_test = X[:500], Y[:500], X_test[:200], Y_test[:200]
print(f"{args.train}: {X.shape[0]} rows, {X.shape[1]} features, {Y.shape[1]} labels, "
      f"{Y.nnz / X.shape[0]:.2f} labels per row")

# Dense(hidden) -> Sampled(labels). On a label space as small as bibtex's the
# Sampled layer's default active count covers every label, so it computes
# them all (exactly a dense layer); on 10^5+ labels it samples with LSH.
net = ps.Network(X.shape[1], [ps.Dense(args.hidden), ps.Sampled(Y.shape[1])],
                 loss="softmax", optimizer=ps.Adam(lr=args.lr), threads=args.threads, seed=0)


def report(network, epoch, logs):
    """Called after every epoch: evaluate every other epoch, and the last."""
    if epoch % 2 == 0 or epoch == args.epochs:
        scores = network.evaluate(X_test, Y_test, k=(1, 3, 5))
        print(f"epoch {epoch:3d}  loss {logs['loss']:.4f}  train {logs['time']:.1f} s  "
              + "  ".join(f"{k} {v:.4f}" for k, v in scores.items() if k.startswith("p@")))


start = time.perf_counter()
net.fit(X, Y, epochs=args.epochs, batch_size=128, callbacks=[report], verbose=0)
print(f"trained {net.step_} steps in {time.perf_counter() - start:.1f} s")

# Propensity-scored precision rewards getting rare labels right; the
# propensities come from the training labels' frequencies.
ids = net.predict(X_test, k=5)
propensities = ps.metrics.propensities(Y)
final = ps.metrics.evaluate_topk(ids, Y_test, ks=(1, 3, 5), propensities=propensities)
print("test metrics:")
for k in (1, 3, 5):
    print(f"  k={k}:  P@k {final[f'p@{k}']:.4f}  nDCG@k {final[f'ndcg@{k}']:.4f}  "
          f"PSP@k {final[f'psp@{k}']:.4f}")
