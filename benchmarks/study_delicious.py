"""Sampling against the full softmax on the full-size Delicious shape.

Trains input -> Dense(128) -> softmax over all 205,443 labels on
``make_xc("delicious")`` at full size (196,606 training rows, 10,000 test
rows) and prints, after every epoch: the mean training loss, the test P@1
and P@5, and ``f1``, the mean training frequency (rows) of the label each
test row gets first — a model drifting towards rare labels shows as ``f1``
falling. ``adj_p1`` is P@1 after adding ``log q`` (the label's inclusion
probability in a batch's label set) to the output bias: the post-hoc
form of the sampling correction.

    python benchmarks/study_delicious.py 4 corr-row,nocorr,dense [--threads 2]
    python benchmarks/study_delicious.py 8 corr-mixed-drop --validation-split 0.05 --patience 3
    python benchmarks/study_delicious.py 4 corr-mixed-drop --lr-scale 1.5,1

Configurations (comma separated): ``corr`` (the shared set with the
sampling correction), ``nocorr`` (without), ``dense`` (every label computed:
the full softmax), ``-row`` appended: Adam's per-row bias correction, ``-mixed``: per row
for the hidden layer, the global step for the output,
``-drop``: dropout 0.2 on the hidden layer, ``-dadam``: dense Adam,
``-uni8k`` / ``-uni12k`` / ``-uni16k``: a shared set of 8,192 / 12,288 / 16,384 rows drawn uniformly beyond the batch's
labels (``hash=None``), ``-uni32k``: the same with 32,768, ``-lsh16k``: 16,384 rows, LSH candidates beyond the
batch's labels; ``-neg0`` / ``-neg4k`` / ``-neg8k``: ``negatives`` 0 / 4,096 / 8,192
(rows beyond the batch's labels; the default is ``active``, 8,192);
``-zero``: the output biases start at zero instead of the labels' log
frequencies (``bias_init="zero"``; every run recorded before the prior
became the default started at zero); ``-nohash``: uniform rows instead of
LSH candidates (``hash=None``); ``-neg12k`` / ``-neg16k``: ``negatives``
12,288 / 16,384. ``--lr-scale 1`` (or ``1.5,1``, one factor per epoch)
sets the output's ``Sampled(lr_scale=...)`` in every configuration; every
run recorded before ``"auto"`` became the default ran with 1.
"""
import argparse
import time

import numpy as np

import pyslide as ps
from pyslide.metrics import evaluate_topk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("epochs", type=int)
    parser.add_argument("configs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=196_606)
    parser.add_argument("--validation-split", type=float, default=0.0,
                        help="hold out this fraction of the training rows (seeded)")
    parser.add_argument("--patience", type=int, default=None,
                        help="EarlyStopping(patience=..., restore_best=True) on --monitor; "
                             "the test scores of the restored network are printed as 'final'")
    parser.add_argument("--monitor", default="val_loss")
    parser.add_argument("--lr-scale", default="auto",
                        help="the output's Sampled(lr_scale=...): 'auto', a number, or "
                             "comma-separated numbers (one per epoch)")
    args = parser.parse_args()
    t0 = time.time()
    X, Y, Xt, Yt = ps.data.make_xc("delicious", seed=0, n_samples=args.n_train, n_test=10_000)
    print(f"data {X.shape} {Y.shape} {Xt.shape} in {time.time() - t0:.1f} s", flush=True)
    freq = np.bincount(Y.indices, minlength=Y.shape[1])
    p = np.minimum(freq / X.shape[0], 1 - 1e-12)
    log_q = np.log(np.maximum(-np.expm1(127 * np.log1p(-p)), 1e-30)).astype(np.float32)
    for name in args.configs.split(","):
        base = name.split("-")[0]
        out = {"corr": dict(), "nocorr": dict(correction=False),
               "dense": dict(active=Y.shape[1], init_std=0.01 / 128 ** 0.5)}[base]
        if "-uni8k" in name:
            out.update(hash=None, active=8_192)
        if "-uni12k" in name:
            out.update(hash=None, active=12_288)
        if "-uni16k" in name:
            out.update(hash=None, active=16_384)
        if "-uni32k" in name:
            out.update(hash=None, active=32_768)
        if "-lsh16k" in name:
            out.update(active=16_384)
        if "-nohash" in name:
            out.update(hash=None)
        for flag, count in (("-neg0", 0), ("-neg4k", 4096), ("-neg8k", 8192), ("-neg12k", 12_288),
                            ("-neg16k", 16_384)):
            if flag in name:
                out.update(negatives=count)
        if "-zero" in name:   # the output biases start at zero, not at the label prior
            out.update(bias_init="zero")
        if args.lr_scale != "auto":
            factors = [float(v) for v in args.lr_scale.split(",")]
            out.update(lr_scale=factors[0] if len(factors) == 1 else factors)
        correction = ("row" if "-row" in name else "mixed" if "-mixed" in name else "global")
        opt = ps.Adam(bias_correction=correction,
                      lazy="-dadam" not in name)
        hidden = ps.Dense(128, dropout=0.2 if "-drop" in name else 0.0)
        net = ps.Network(X.shape[1], [hidden, ps.Sampled(Y.shape[1], **out)], optimizer=opt,
                         seed=0, threads=args.threads)

        def report(net, epoch, logs):
            ids = net.predict(Xt, k=5)
            m = evaluate_topk(ids, Yt, ks=(1, 5))
            b = net._params[-1]["b"]
            keep = b.copy()
            b += log_q
            adj = evaluate_topk(net.predict(Xt, k=5), Yt, ks=(1,))
            b[:] = keep
            print(name, dict(epoch=epoch, loss=round(logs["loss"], 4),
                             time=round(logs["time"], 1), p1=round(m["p@1"], 4),
                             p5=round(m["p@5"], 4), f1=round(float(freq[ids[:, 0]].mean()), 1),
                             adj_p1=round(adj["p@1"], 4),
                             **{k: round(logs[k], 4) for k in ("val_loss", "val_p@1") if k in logs}),
                  flush=True)

        callbacks = [report]
        if args.patience is not None:
            stop = ps.EarlyStopping(monitor=args.monitor, patience=args.patience)
            callbacks.insert(0, stop)
        net.fit(X, Y, epochs=args.epochs, verbose=0, callbacks=callbacks,
                validation_split=args.validation_split)
        if args.patience is not None:
            ids = net.predict(Xt, k=5)
            m = evaluate_topk(ids, Yt, ks=(1, 5))
            print(name, "final", dict(best_epoch=stop.best_epoch, stopped_epoch=stop.stopped_epoch,
                                      best=round(float(stop.best), 4), p1=round(m["p@1"], 4),
                                      p5=round(m["p@5"], 4)), flush=True)
        print("step", name, round(float(np.median(net.step_times_)) * 1000, 1), "ms", flush=True)


if __name__ == "__main__":
    main()
