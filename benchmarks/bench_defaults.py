"""Step time of the accuracy defaults against the previous defaults, side by side.

Previous defaults: ``Dense(128, dropout=0)``, ``Sampled(n, correction=False)``,
``Adam(bias_correction="global")``. Current defaults: ``Dense(128)`` (dropout
0.2), ``Sampled(n)`` (sampling correction, ``negatives=active``),
``Adam()`` (global bias correction since issue 21; ``mixed-epochs`` is
the defaults before it). Each round trains both for ``--steps`` steps on the same data
in one process, alternating, so that a busy machine slows both alike; the
medians of all rounds are reported with their ratio.

    python benchmarks/bench_defaults.py --preset delicious --steps 150 --rounds 3
    python benchmarks/bench_defaults.py --kinds mixed-epochs,current --rounds 3
    python benchmarks/bench_defaults.py --kinds previous,current,uni16k
    python benchmarks/bench_defaults.py --kinds previous,neg0,current,neg8192 \
        --threads 1 --cpu --rounds 3
    python benchmarks/bench_defaults.py --kinds hold,coast --threads 1 --cpu --rounds 3
    python benchmarks/bench_defaults.py --kinds hold,mixed --threads 1 --cpu --rounds 3
"""
import argparse
import time

import numpy as np

import pyslide as ps


def build(kind, X, Y, threads):
    if kind == "previous":
        layers = [ps.Dense(128, dropout=0), ps.Sampled(Y.shape[1], correction=False)]
        opt = ps.Adam(bias_correction="global")
    elif kind.startswith("neg"):
        # the current defaults with ``negatives`` set: neg0 (none beyond the
        # labels, the defaults before negatives existed), neg8192, ...
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1], negatives=int(kind[3:]))]
        opt = ps.Adam()
    elif kind.startswith("uneg"):
        # the current defaults with uniform rows only (hash=None) and
        # ``negatives`` set: uneg8192, uneg16384, ...
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1], hash=None, negatives=int(kind[4:]))]
        opt = ps.Adam()
    elif kind == "mixed-epochs":
        # the defaults before issue 21: per-row counts on the hidden layer
        # ("mixed") and the output's factors per epoch
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1], lr_scale=[1.5, 1.0, 0.7, 0.5])]
        opt = ps.Adam(bias_correction="mixed")
    elif kind == "scale1":
        # the current defaults with the output's steps unscaled (the default
        # before lr_scale="auto")
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1], lr_scale=1.0)]
        opt = ps.Adam()
    elif kind == "zero":
        # the current defaults with the output biases starting at zero (the
        # default before bias_init="prior")
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1], bias_init="zero")]
        opt = ps.Adam()
    elif kind in ("hold", "coast", "mixed"):
        # the current layers with lazy Adam's idle rows holding still (the
        # default until 2026-12-04), coasting in every layer, or coasting in
        # the output only (Adam(idle_rows="mixed"), the default)
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1])]
        opt = ps.Adam(idle_rows=kind)
    elif kind in ("uni16k", "uni32k"):
        # the recipe for batches that hold thousands of labels (docs/guide.md)
        active = 16_384 if kind == "uni16k" else 32_768
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1], hash=None, active=active)]
        opt = ps.Adam(bias_correction="mixed")
    else:
        layers = [ps.Dense(128), ps.Sampled(Y.shape[1])]
        opt = ps.Adam()
    return ps.Network(X.shape[1], layers, optimizer=opt, threads=threads, seed=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="delicious")
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cpu", action="store_true",
                        help="process CPU seconds per step of a second epoch (use with "
                             "--threads 1): what the code costs, which other processes on a "
                             "busy machine disturb far less than wall time")
    parser.add_argument("--kinds", default="previous,current",
                        help="comma separated: previous, current, negN (current with negatives=N), "
                             "unegN (the same with hash=None), scale1 (current with lr_scale=1), "
                             "zero (current with bias_init='zero'), hold / coast / mixed "
                             "(current with Adam(idle_rows=...)), uni16k, uni32k "
                             "(label-dense recipes)")
    args = parser.parse_args()
    X, Y = ps.data.make_xc(args.preset, n_samples=args.n_train, seed=0)
    rows = args.steps * 128
    times = {kind: [] for kind in args.kinds.split(",")}
    for _ in range(args.rounds):
        for kind in times:
            net = build(kind, X, Y, args.threads)
            if args.cpu:
                marks = []
                net.fit(X[:rows], Y[:rows], epochs=2, batch_size=128, verbose=0,
                        callbacks=[lambda network, epoch, logs: marks.append(time.process_time())])
                times[kind].append((marks[1] - marks[0]) / args.steps)
                continue
            net.fit(X[:rows], Y[:rows], epochs=1, batch_size=128, verbose=0)
            # the first steps pay page faults and the first table build
            times[kind].extend(net.step_times_[10:])
    med = {k: float(np.median(v)) * 1000 for k, v in times.items()}
    first = next(iter(med))
    what = "CPU ms per step (2nd epoch)" if args.cpu else "ms per step"
    print(f"{args.preset}: median {what} (of {len(times[first])}), ratio to {first}")
    for kind, ms in med.items():
        print(f"  {kind:10s} {ms:7.1f} ms  {ms / med[first]:.3f}")


if __name__ == "__main__":
    main()
