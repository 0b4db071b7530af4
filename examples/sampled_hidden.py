"""A custom network: a Sampled hidden layer feeding a Sampled output layer.

    python examples/sampled_hidden.py

Both wide layers compute only what their hash tables pick. The hidden layer
(1,024 ReLUs, 128 active per sample) hashes each sparse input row with
densified winner-take-all (DWTA, suited to sparse non-negative inputs) and
gives every sample its own active set, as SLIDE does; the output layer
(20,000 labels) shares one active set per batch, found by SimHash of the
hidden vectors. Prints P@k per epoch for this network and for the plain
``Dense(128) -> Sampled`` one, with their speed. About half a minute on two
cores; ``PYSLIDE_EXAMPLE_QUICK=1`` makes it a seconds-long smoke run.

On a problem this size the dense 128-unit hidden layer is both faster per
step and learns faster: hashing the input and scattering 128 of 1,024 rows
costs more than one 128-wide dense layer. A sampled hidden layer pays off
when the hidden layer itself is too wide to compute for every sample.
"""
import os

import pyslide as ps

QUICK = os.environ.get("PYSLIDE_EXAMPLE_QUICK") == "1"
n_samples, n_test, epochs = (500, 100, 1) if QUICK else (5_000, 1_000, 5)

X, Y, X_test, Y_test = ps.data.make_xc("small", n_samples=n_samples, n_test=n_test,
                                       n_labels=20_000, seed=0)

sampled_hidden = [
    # 1,024 hidden neurons; each sample activates the 128 its DWTA buckets
    # rank highest (topped up at random if the tables return fewer).
    ps.Sampled(1024, hash=ps.DWTA(K=3, L=32, bin_size=8, seed=1), active=128,
               share="sample", rebuild_every=100, activation="relu"),
    # the output: 20,000 labels, 2,048 active per batch (the batch's true
    # labels plus the SimHash candidates most often hit), tables rebuilt as
    # the weights move
    ps.Sampled(Y.shape[1], hash=ps.SimHash(K=8, L=16, seed=2), active=2048,
               share="batch", rebuild_every=50),
]
dense_hidden = [ps.Dense(128), ps.Sampled(Y.shape[1])]

for name, layers in (("Sampled(1024) -> Sampled", sampled_hidden),
                     ("Dense(128) -> Sampled", dense_hidden)):
    net = ps.Network(X.shape[1], layers, loss="softmax", optimizer=ps.Adam(lr=1e-3), seed=0)
    print(f"\n{name}: {net}")
    history = net.fit(X, Y, epochs=epochs, batch_size=128,
                      validation_data=(X_test, Y_test), verbose=0)
    for epoch in range(epochs):
        print(f"  epoch {epoch + 1}  loss {history['loss'][epoch]:.4f}  "
              f"train {history['time'][epoch]:5.1f} s  "
              f"P@1 {history['val_p@1'][epoch]:.4f}  P@5 {history['val_p@5'][epoch]:.4f}")
    steps = len(net.step_times_)
    print(f"  {steps / sum(net.step_times_):.1f} steps/s; time by phase: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in net.timings_.items()))
