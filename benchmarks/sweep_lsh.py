"""Accuracy against speed for the Sampled output's knobs (K, L, active, rebuild).

Trains input -> 128 ReLU -> Sampled(n_labels) on a synthetic XC problem for a
few epochs per setting and prints one Markdown row per setting: P@1 / P@5
after the last epoch, median step time, time per epoch and where the time
goes. The table feeds docs/guide.md.

    python benchmarks/sweep_lsh.py --preset amazon --epochs 3 --threads 2 \\
        --out benchmarks/results/sweep_amazon.md

Each setting runs in the same process one after another, on the same data, so
the rows are comparable to each other (not to runs on other days).
"""
import argparse
import itertools
import platform
import sys
import time

import numpy as np

import pyslide as ps


def settings(grid):
    """The grid: a baseline row per active size (uniform negatives), then LSH."""
    for active in grid["active"]:
        yield dict(hash=None, active=active, rebuild_every=50)
    for active, K, L, rebuild in itertools.product(grid["active"], grid["K"], grid["L"],
                                                   grid["rebuild"]):
        yield dict(hash=("simhash", K, L), active=active, rebuild_every=rebuild)


def build_layer(n_labels, setting, seed):
    family = None
    if setting["hash"] is not None:
        _, K, L = setting["hash"]
        family = ps.SimHash(K=K, L=L, seed=seed)
    return ps.Sampled(n_labels, hash=family, active=setting["active"], share="batch",
                      rebuild_every=setting["rebuild_every"])


def describe(setting):
    if setting["hash"] is None:
        return f"uniform | - | - | {setting['active']} | -"
    _, K, L = setting["hash"]
    return f"SimHash | {K} | {L} | {setting['active']} | {setting['rebuild_every']}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="amazon")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--active", default="1024,4096")
    parser.add_argument("-K", default="8,10,12")
    parser.add_argument("-L", default="8,16,32")
    parser.add_argument("--rebuild", default="50")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    grid = {"active": ints(args.active), "K": ints(args.K), "L": ints(args.L),
            "rebuild": ints(args.rebuild)}
    X, Y, Xt, Yt = ps.data.make_xc(args.preset, n_samples=args.samples, n_test=args.test,
                                   seed=args.seed)
    lines = [
        f"Command: `python benchmarks/sweep_lsh.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
        f"Machine: {platform.machine()}, {ps.resolve_threads(None)} cores available, "
        f"threads={args.threads}; date {time.strftime('%Y-%m-%d')}; "
        f"{args.preset} shape, {args.samples} train / {args.test} test, "
        f"{args.epochs} epochs, batch 128, Adam lr {args.lr}.",
        "",
        "| family | K | L | active | rebuild every | P@1 | P@5 | median step (ms) "
        "| s / epoch | hash+select | rebuild |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for setting in settings(grid):
        net = ps.Network(X.shape[1], [ps.Dense(128), build_layer(Y.shape[1], setting, args.seed)],
                         optimizer=ps.Adam(lr=args.lr), threads=args.threads, seed=args.seed)
        net.fit(X, Y, epochs=args.epochs, batch_size=128, verbose=0)
        scores = net.evaluate(Xt, Yt, k=(1, 5))
        epoch_seconds = net.history_["time"][-1] / args.epochs
        timings = net.timings_
        row = (f"| {describe(setting)} | {scores['p@1']:.3f} | {scores['p@5']:.3f} | "
               f"{1000 * np.median(net.step_times_):.1f} | {epoch_seconds:.1f} | "
               f"{timings['hash'] / args.epochs:.2f} s | {timings['rebuild'] / args.epochs:.2f} s |")
        lines.append(row)
        print(row, flush=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
