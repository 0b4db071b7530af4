"""Train the regression networks and save their weights to tests/data/.

``tests/test_regression_weights.py`` retrains the same networks and
compares bit for bit, so a refactoring that changes no numerics keeps these
files valid. A change that is meant to alter results (a kernel's arithmetic,
a default) regenerates them, from the repository root::

    python tests/make_regression_weights.py

and says so in its commit message.
"""
import os
import sys

# conftest pins OpenBLAS's kernels (OPENBLAS_CORETYPE) when imported: the
# fixtures must be written under the pin the tests run with, before NumPy
# loads OpenBLAS
import conftest  # noqa: F401,E402

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
STEPS = 240          # optimizer steps per case: 8 epochs of 30 batches


def problem():
    import pyslide as ps
    X, Y = ps.data.make_xc("small", n_samples=480, n_features=300, n_labels=120, nnz=12,
                           labels_per_point=3, seed=3)
    return X, Y


def cases():
    """name -> (network factory, fit keyword arguments); every mode of the engine."""
    import pyslide as ps

    def shared():           # batch-shared sampled output, defaults (Adam, dropout, softmax)
        # per-row Adam, no extra negatives, zero biases, unscaled output
        # steps and holding idle rows pinned: the fixture was recorded when
        # they were the defaults
        return ps.Network(300, [ps.Dense(16), ps.Sampled(120, active=24, negatives=0,
                                                         bias_init="zero", lr_scale=1.0)],
                          optimizer=ps.Adam(bias_correction="row", idle_rows="hold"),
                          threads=1, seed=1)

    def per_sample():       # SLIDE's per-sample active sets, BCE loss
        return ps.Network(300, [ps.Dense(16), ps.Sampled(120, active=20, share="sample",
                                                         rebuild_every=7, bias_init="zero",
                                                         lr_scale=1.0)],
                          loss="bce", optimizer=ps.Adam(bias_correction="row", idle_rows="hold"),
                          threads=1, seed=2)

    def sampled_hidden():   # a sampled hidden layer, SGD, no correction, FIFO tables
        return ps.Network(300, [ps.Dense(16), ps.Sampled(32, active=12, share="sample",
                                                         rebuild_every=11),
                                ps.Sampled(120, active=24, policy="fifo", negatives=0,
                                           bias_init="zero", lr_scale=1.0)],
                          optimizer=ps.SGD(lr=0.05), threads=1, seed=3)

    def uniform_decay():    # uniform sampling (no hash), AdamW with per-step global correction
        return ps.Network(300, [ps.Dense(16, dropout=0.0),
                                ps.Sampled(120, hash=None, active=24, share="sample",
                                           bias_init="zero", lr_scale=1.0)],
                          optimizer=ps.AdamW(lr=3e-3, weight_decay=1e-2,
                                             bias_correction="global", idle_rows="hold"),
                          threads=1, seed=4)

    def dense_out():        # a Dense output (every label computed), SGD with weight decay
        return ps.Network(300, [ps.Dense(16), ps.Dense(120, activation="linear")],
                          optimizer=ps.SGD(lr=0.1, weight_decay=1e-3), threads=1, seed=5)

    def coasting():         # today's defaults: the output's idle rows coast, auto factor
        return ps.Network(300, [ps.Dense(16), ps.Sampled(120, active=24)], threads=1, seed=6)

    return {"shared": shared, "per_sample": per_sample, "sampled_hidden": sampled_hidden,
            "uniform_decay": uniform_decay, "dense_out": dense_out, "coasting": coasting}


def train(make):
    X, Y = problem()
    net = make()
    net.fit(X, Y, epochs=STEPS // 30, batch_size=16, verbose=0)
    assert net.step_ == STEPS, net.step_
    return net


def weights(net):
    """{"layer{i}_W": ..., "layer{i}_b": ...} of a trained network."""
    out = {}
    for i, layer in enumerate(net.get_weights()):
        out[f"layer{i}_W"] = layer["W"]
        out[f"layer{i}_b"] = layer["b"]
    return out


def path(name):
    return os.path.join(DATA, f"regression_{name}.npz")


def main():
    os.makedirs(DATA, exist_ok=True)
    for name, make in cases().items():
        np.savez_compressed(path(name), **weights(train(make)))
        print("wrote", path(name), os.path.getsize(path(name)), "bytes")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))
    main()
