"""Quickstart: a synthetic extreme-classification problem, from data to predictions.

    python examples/quickstart.py

Generates 5,000 training rows with 5,000 sparse features and 20,000 labels
(about three labels per row), trains ``Dense(128) -> Sampled(20000)`` for five
epochs, evaluates P@k / nDCG@k, and prints the top-5 labels of a few test
rows. About ten seconds on two cores. Set ``PYSLIDE_EXAMPLE_QUICK=1`` for a
seconds-long smoke run (the test suite does).
"""
import os

import pyslide as ps

QUICK = os.environ.get("PYSLIDE_EXAMPLE_QUICK") == "1"
n_samples, n_test, epochs = (600, 200, 1) if QUICK else (5_000, 1_000, 5)

# 1. Data: CSR features X (rows x features) and a CSR 0/1 label matrix Y.
#    With your own files: X, Y = ps.data.load_xc("train.txt")
X, Y, X_test, Y_test = ps.data.make_xc("small", n_samples=n_samples, n_test=n_test,
                                       n_labels=20_000, seed=0)
print(f"train: {X.shape[0]} rows, {X.shape[1]} features, {Y.shape[1]} labels; "
      f"test: {X_test.shape[0]} rows")

# 2. The network: one hidden layer of 128 ReLUs computed for every sample,
#    then an output layer of one neuron per label of which each batch computes
#    only the few thousand that locality-sensitive hashing picks.
net = ps.Network(input_dim=X.shape[1],
                 layers=[ps.Dense(128), ps.Sampled(Y.shape[1])],
                 loss="softmax", optimizer=ps.Adam(lr=1e-3), seed=0)
print(net)

# 3. Train, evaluating on the test rows after every epoch (verbose=2: one line
#    per epoch; verbose=1 shows a progress bar instead).
history = net.fit(X, Y, epochs=epochs, batch_size=128,
                  validation_data=(X_test, Y_test), verbose=2)

# 4. Evaluate: precision and nDCG at 1, 3, 5 of exact top-k predictions.
scores = net.evaluate(X_test, Y_test, k=(1, 3, 5))
print("test:", "  ".join(f"{name} {value:.4f}" for name, value in scores.items()))

# 5. Predict: the top-5 label ids of each row, best first, with their scores.
ids, logits = net.predict_topk(X_test[:3], k=5)
for row in range(3):
    true = sorted(Y_test[row].indices.tolist())
    guess = ", ".join(f"{i} ({s:.2f})" for i, s in zip(ids[row], logits[row]))
    print(f"row {row}: true labels {true[:8]}{' ...' if len(true) > 8 else ''}\n"
          f"        predicted {guess}")

# Where the training time went (seconds per phase) and the speed.
total = sum(net.step_times_)
print("time by phase:", ", ".join(f"{k} {v:.2f} s" for k, v in net.timings_.items()))
print(f"{len(net.step_times_)} steps in {total:.1f} s ({len(net.step_times_) / total:.0f} steps/s)")
