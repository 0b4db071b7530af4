"""Save a trained model, load it in another process, and serve top-k predictions.

    python examples/save_load_serve.py                # trains a small model first
    python examples/save_load_serve.py model.npz      # serves an existing model

A model is one ``.npz`` file (JSON config plus plain arrays, no pickle) that
holds the weights, the optimizer state and the hash tables, so a loaded model
predicts exactly as before and can go on training. ``serve`` turns request
lines in the XC feature format (``feature:value ...``) into top-k
``(label, score)`` lists, exactly (every label scored with one matrix product)
or through the output layer's LSH tables (``sampled=True``: only the labels
the tables return are scored, so it may miss some; whether it is faster
depends on the label count and the tables, so the script times both).
Set ``PYSLIDE_EXAMPLE_QUICK=1`` for a seconds-long smoke run.
"""
import io
import os
import sys
import tempfile
import time

import pyslide as ps

QUICK = os.environ.get("PYSLIDE_EXAMPLE_QUICK") == "1"


def train_small_model(path):
    n_samples, epochs = (500, 1) if QUICK else (5_000, 4)
    X, Y = ps.data.make_xc("small", n_samples=n_samples, n_labels=20_000, seed=0)
    net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1])], seed=0)
    net.fit(X, Y, epochs=epochs, verbose=0)
    net.save(path)
    print(f"trained {net.step_} steps and saved the model to {path} "
          f"({os.path.getsize(path) / 2**20:.1f} MiB)")


def serve(net, request_lines, k=5, sampled=False):
    """Top-k ``[(label, score), ...]`` for each request line ``"f:v f:v ..."``."""
    text = "\n".join(" " + line.strip() for line in request_lines)   # " " = no labels
    X, _ = ps.data.load_xc(io.BytesIO(text.encode()), n_features=net.input_dim,
                           n_labels=net.n_outputs, header=False)
    ids, scores = net.predict_topk(X, k=k, sampled=sampled)
    return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            for row_ids, row_scores in zip(ids, scores)]


def main():
    # the temporary folder (and the model in it) is removed when the script ends
    with tempfile.TemporaryDirectory(prefix="pyslide-") as folder:
        if len(sys.argv) > 1:
            path = sys.argv[1]
        else:
            path = os.path.join(folder, "model.npz")
            train_small_model(path)
        net = ps.load(path)     # threads=... to override the saved setting
    print(f"loaded {net}")

    # Requests: here, rows from the same distribution written as text lines.
    X_new, _ = ps.data.make_xc("small", n_samples=64, n_labels=net.n_outputs,
                               n_features=net.input_dim, seed=123)
    requests = [" ".join(f"{j}:{v:.4g}" for j, v in zip(X_new[r].indices, X_new[r].data))
                for r in range(X_new.shape[0])]

    for sampled in (False, True):
        start = time.perf_counter()
        answers = serve(net, requests, k=5, sampled=sampled)
        seconds = time.perf_counter() - start
        print(f"\n{'LSH-sampled' if sampled else 'exact'} top-5 for {len(requests)} requests "
              f"in {1e3 * seconds:.1f} ms ({1e6 * seconds / len(requests):.0f} us per row)")
        for request, answer in list(zip(requests, answers))[:2]:
            print(f"  {request[:50]}...\n    -> "
                  + ", ".join(f"{label}:{score:.3f}" for label, score in answer))

    # The loaded model goes on training from where it stopped.
    X, Y = ps.data.make_xc("small", n_samples=300, n_labels=net.n_outputs,
                           n_features=net.input_dim, seed=7)
    before = net.step_
    net.fit(X, Y, epochs=1, verbose=0)
    print(f"\ncontinued training: steps {before} -> {net.step_}")


if __name__ == "__main__":
    main()
