"""Bibtex study: one line of JSON per configuration (test P@1 per epoch).

Each argument is the keyword list of one run, evaluated as ``dict(...)``:

    python benchmarks/study_bibtex.py "dropout=0.2, split=0.1, es=3" "hidden=(1024,), dropout=0.7, epochs=20, sched=ps.CosineDecay(20)"

Keywords: ``hidden`` (widths), ``dropout``, ``init_std`` (first layer),
``out_std`` (output layer), ``wd`` (weight decay), ``lr``, ``sched`` (a
schedule), ``bc`` (Adam's bias_correction), ``epochs``, ``es`` (EarlyStopping
patience), ``monitor`` (what it watches), ``split`` (validation split),
``idle`` (Adam's idle_rows), ``seed``, ``batch``, ``threads`` (1 by default:
repeatable), ``out_scale``
(the output's ``Sampled(lr_scale=...)``; Bibtex's output computes every
label, so ``"auto"`` is 1 there).
``final`` is the test P@1 of the model ``fit`` ends with (the restored best
epoch with early stopping); ``curve`` the test P@1 after every epoch.
Reads ``../shared/data/bibtex`` (``PYSLIDE_DATA_DIR`` overrides).
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import pyslide as ps

DATA = Path(os.environ.get("PYSLIDE_DATA_DIR",
                           Path(__file__).resolve().parents[2] / "shared" / "data")) / "bibtex"


def run(name, X, Y, Xt, Yt, hidden=(128,), dropout=None, init_std=None, out_std=None, wd=0.0,
        lr=1e-3, sched=None, bc="row", epochs=30, es=None, monitor="val_loss", split=0.0,
        seed=0, batch=128, threads=1, out_scale="auto", idle="hold"):
    layers = [ps.Dense(h, init_std=init_std if i == 0 else None, dropout=dropout)
              for i, h in enumerate(hidden)]
    layers.append(ps.Sampled(Y.shape[1], init_std=out_std, lr_scale=out_scale))
    opt = ps.Adam(lr=lr, weight_decay=wd, schedule=sched, bias_correction=bc, idle_rows=idle)
    net = ps.Network(X.shape[1], layers, optimizer=opt, seed=seed, threads=threads)
    curve = []
    callbacks = [lambda net, epoch, logs: curve.append(round(net.evaluate(Xt, Yt, k=1)["p@1"], 4))]
    if es:
        callbacks.append(ps.EarlyStopping(monitor=monitor, patience=es))
    t0 = time.time()
    net.fit(X, Y, epochs=epochs, batch_size=batch, verbose=0, callbacks=callbacks,
            validation_split=split)
    final = net.evaluate(Xt, Yt, k=1)["p@1"]
    return dict(name=name, final=round(final, 4), best=max(curve),
                best_epoch=int(np.argmax(curve)) + 1, last=curve[-1], epochs_run=len(curve),
                seconds=round(time.time() - t0, 1), curve=curve)


def main(argv):
    X, Y = ps.data.load_xc(DATA / "train.txt")
    Xt, Yt = ps.data.load_xc(DATA / "test.txt")
    for spec in argv:
        kw = eval("dict(" + spec + ")", {"ps": ps})
        print(json.dumps(run(spec, X, Y, Xt, Yt, **kw)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
