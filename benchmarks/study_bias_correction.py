"""Adam's bias correction, per row against mixed, on a make_xc shape: test P@1
and P@5 per epoch of the default network with each.

    python benchmarks/study_bias_correction.py --preset amazon --n-train 150000 --epochs 4
    python benchmarks/study_bias_correction.py --preset amazon --modes mixed --bias-inits zero,prior

``--bias-inits``: the output biases' starts to try (``Sampled(bias_init=...)``),
each with every mode; ``--lr-scales``: the output's step multipliers
(``Sampled(lr_scale=...)``), each with every mode and start; ``--share``:
the output's ``share``.

    python benchmarks/study_bias_correction.py --preset amazon --modes mixed --lr-scales 1,auto
"""
import argparse

import pyslide as ps
from pyslide.metrics import evaluate_topk


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="amazon")
    parser.add_argument("--n-train", type=int, default=150_000)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--modes", default="row,mixed")
    parser.add_argument("--bias-inits", default="auto")
    parser.add_argument("--lr-scales", default="auto")
    parser.add_argument("--share", default="batch", choices=("batch", "sample"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    X, Y, Xt, Yt = ps.data.make_xc(args.preset, seed=0, n_samples=args.n_train,
                                   n_test=args.n_test)
    print(f"{args.preset}: {X.shape[0]} training rows, {Y.shape[1]} labels", flush=True)
    runs = [(mode, start, scale) for mode in args.modes.split(",")
            for start in args.bias_inits.split(",") for scale in args.lr_scales.split(",")]
    for mode, start, scale in runs:
        out = ps.Sampled(Y.shape[1], bias_init=start, share=args.share,
                         lr_scale=scale if scale == "auto" else float(scale))
        net = ps.Network(X.shape[1], [ps.Dense(128), out],
                         optimizer=ps.Adam(bias_correction=mode), seed=0,
                         threads=args.threads)
        for epoch in range(1, args.epochs + 1):
            net.fit(X, Y, epochs=1, verbose=0)
            m = evaluate_topk(net.predict(Xt, k=5), Yt, ks=(1, 5))
            print(f"{mode:6s} {start:5s} lr_scale {scale:4s} epoch {epoch}: "
                  f"P@1 {m['p@1']:.4f}  P@5 {m['p@5']:.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
