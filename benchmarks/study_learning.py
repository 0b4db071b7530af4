"""Learning speed at several data sizes: test P@1 per epoch and per training second.

Trains input -> Dense(128, relu) -> one output per label, softmax, Adam lr
1e-3, batch 128, on ``make_xc(shape)`` at each size and seed, and records,
after every epoch, the test P@1 / P@5 and the cumulative training seconds
(evaluation excluded; comparable only between runs that had the machine to
themselves: measure step times side by side with ``bench_train.py``). Methods:

``pyslide:<config>``
    a ``Network`` whose settings are today's defaults changed by the
    ``+``-joined atoms of ``<config>`` (``ATOMS`` below); ``pyslide:default``
    is every default, ``pyslide:full`` the full softmax
    (``Sampled(n, active=n)``) with the other defaults, ``pyslide:hold``
    the defaults with idle rows that hold (the default until 2026-12-04;
    the results file's runs of that default carry this label, and older
    configs that held their rows carry ``+hold``).
``torch-sampled[:rows]``
    PyTorch's sampled softmax, one shared set of ``rows`` (8,192) per batch:
    the batch's labels plus uniform negatives, ``SparseAdam``.
``torch-dense``
    PyTorch's full network (``EmbeddingBag`` + ``Linear``).

Each (shape, size, seed, method) run appends one JSON line to ``--out``;
``--table`` prints the P@1 curves of a results file as Markdown.

    python benchmarks/study_learning.py --shape delicious --sizes 20000 --seeds 0,1 \\
        --epochs 8 --methods pyslide:default,pyslide:full,torch-sampled \\
        --out benchmarks/results/learning.jsonl
    python benchmarks/study_learning.py --table benchmarks/results/learning.jsonl
    python benchmarks/study_learning.py --plot benchmarks/results/learning.jsonl docs/img/learning.png
    python benchmarks/study_learning.py --plot-seconds benchmarks/results/learning.jsonl \
        docs/img/learning_default.png
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

FULL_SIZE = {"delicious": 196_606, "amazon": 490_449}

# A config atom changes one group of settings: ("adam" | "dense" | "sampled", kwargs).
ATOMS = {
    "default": {},
    # the defaults before issue 21: per-row counts on the hidden layer, factors per epoch,
    # idle rows that hold
    "previous": {"adam": dict(bias_correction="mixed", idle_rows="hold"),
                 "sampled": lambda n: dict(lr_scale=[1.5, 1.0, 0.7, 0.5])},
    "full": {"sampled": lambda n: dict(active=n)},
    "global": {"adam": dict(bias_correction="global")},
    # lr_scale="auto" by visits alone, without the passes clock (a study knob,
    # not a parameter: the module constant is set for the run)
    "visits": {"passes": float("inf")},
    # the passes clock at three passes instead of two
    "passes3": {"passes": 3.0},
    # ... and at one pass (the factor falls from the second pass on)
    "passes1": {"passes": 1.0},
    # the visit clock at 32 visits, whether the output's rows hold or coast
    # (the library: 128 when they hold, 32 when they coast)
    "visits32": {"visits": 32.0},
    # ... and at 128 (what coasting rows had before the switch of 2026-12-04)
    "visits128": {"visits": 128.0},
    "visits64": {"visits": 64.0},
    # the passes clock's factor stops at 1 (the floor 0.5 is the visit clock's only)
    "passfloor1": {"passes_floor": 1.0},
    "row": {"adam": dict(bias_correction="row")},
    "mixed": {"adam": dict(bias_correction="mixed")},
    "nocorr": {"sampled": lambda n: dict(correction=False)},
    "corr": {"sampled": lambda n: dict(correction=True)},
    "zero": {"sampled": lambda n: dict(bias_init="zero")},
    "prior": {"sampled": lambda n: dict(bias_init="prior")},
    "scale1": {"sampled": lambda n: dict(lr_scale=1.0)},
    "scale15": {"sampled": lambda n: dict(lr_scale=1.5)},
    # the output's factors per epoch that were the default before the visit clock
    "epochscale": {"sampled": lambda n: dict(lr_scale=[1.5, 1.0, 0.7, 0.5])},
    "scale2": {"sampled": lambda n: dict(lr_scale=2.0)},
    # a probe, not a candidate: the output's factor 1.5 for one epoch and 0.5 after
    # (is a second epoch's fall the size of its steps?)
    "then05": {"sampled": lambda n: dict(lr_scale=[1.5, 0.5])},
    "neg0": {"sampled": lambda n: dict(negatives=0)},
    "neg32k": {"sampled": lambda n: dict(negatives=32768)},
    "drop0": {"dense": dict(dropout=0.0)},
    "drop2": {"dense": dict(dropout=0.2)},
    "nohash": {"sampled": lambda n: dict(hash=None)},
    # every row every step (moments decay and rows keep moving on their momentum)
    "denseadam": {"adam": dict(lazy=False)},
    "coast": {"adam": dict(idle_rows="coast")},
    # idle rows that hold: the default until 2026-12-04 (the results file's
    # runs of that default are labelled pyslide:hold)
    "hold": {"adam": dict(idle_rows="hold")},
    # only the sampled output's rows coast, the hidden layer's hold (the default)
    "coastout": {"adam": dict(idle_rows="mixed")},
    "lr2": {"adam": dict(lr=2e-3)},
    "lr3": {"adam": dict(lr=3e-3)},
}


def _settings(config, n_labels):
    adam, dense, sampled = {}, {}, {}
    for atom in config.split("+"):
        if atom not in ATOMS:
            raise SystemExit(f"unknown config atom {atom!r}; have {sorted(ATOMS)}")
        spec = ATOMS[atom]
        adam.update(spec.get("adam", {}))
        dense.update(spec.get("dense", {}))
        sampled.update(spec["sampled"](n_labels) if "sampled" in spec else {})
    return adam, dense, sampled


def _scores(topk, Yt):
    from pyslide.metrics import evaluate_topk
    s = evaluate_topk(np.asarray(topk), Yt, ks=(1, 5))
    return round(float(s["p@1"]), 4), round(float(s["p@5"]), 4)


def run_pyslide(config, X, Y, Xt, Yt, args, seed):
    import pyslide as ps
    from pyslide import settings
    adam, dense, sampled = _settings(config, Y.shape[1])
    passes = [ATOMS[a]["passes"] for a in config.split("+") if "passes" in ATOMS[a]]
    floors = [ATOMS[a]["passes_floor"] for a in config.split("+") if "passes_floor" in ATOMS[a]]
    visits = [ATOMS[a]["visits"] for a in config.split("+") if "visits" in ATOMS[a]]
    saved = (settings.AUTO_LR_PASSES, settings.AUTO_LR_VISITS, settings.AUTO_LR_VISITS_COASTING,
             settings.auto_lr_scale)
    settings.AUTO_LR_PASSES = passes[-1] if passes else saved[0]
    settings.AUTO_LR_VISITS = visits[-1] if visits else saved[1]
    settings.AUTO_LR_VISITS_COASTING = visits[-1] if visits else saved[2]
    if floors:
        settings.auto_lr_scale = _auto_rule_with_passes_floor(floors[-1])
    try:
        return _fit_and_score(ps, config, adam, dense, sampled, X, Y, Xt, Yt, args, seed)
    finally:
        (settings.AUTO_LR_PASSES, settings.AUTO_LR_VISITS, settings.AUTO_LR_VISITS_COASTING,
         settings.auto_lr_scale) = saved


def _auto_rule_with_passes_floor(floor):
    """``auto_lr_scale`` whose passes clock falls no lower than ``floor``
    (the visit clock keeps ``AUTO_LR_FLOOR``): a study knob, built from the
    library's rule with one clock at a time."""
    from pyslide import settings
    rule = settings.auto_lr_scale
    return lambda visits, passes=0.0, coasting=False: min(rule(visits, 0.0, coasting),
                                                          max(floor, rule(0.0, passes)))


def _fit_and_score(ps, config, adam, dense, sampled, X, Y, Xt, Yt, args, seed):
    lr = adam.pop("lr", args.lr)
    net = ps.Network(input_dim=X.shape[1],
                     layers=[ps.Dense(128, activation="relu", **dense),
                             ps.Sampled(Y.shape[1], **sampled)],
                     loss="softmax", optimizer=ps.Adam(lr=lr, **adam),
                     threads=args.threads, seed=seed)
    epochs = []

    def record(network, epoch, logs):
        p1, p5 = _scores(network.predict(Xt, k=5), Yt)
        epochs.append(dict(epoch=epoch, seconds=round(logs["time"], 2), loss=round(logs["loss"], 4),
                           p1=p1, p5=p5))
        print(f"  {config} epoch {epoch}: P@1 {p1:.4f} P@5 {p5:.4f} "
              f"{logs['time']:.1f} s loss {logs['loss']:.3f}", flush=True)

    net.fit(X, Y, epochs=args.epochs, batch_size=128, verbose=0, callbacks=[record])
    return epochs, float(np.median(net.step_times_[5:])) if len(net.step_times_) > 5 else None


def run_torch(method, X, Y, Xt, Yt, args, seed):
    import torch

    from torch_baselines import make_baseline
    torch.set_num_threads(args.threads)
    init_std = 0.25 / np.sqrt(max(float(X.multiply(X).sum()) / max(X.shape[0], 1), 1e-12))
    model = make_baseline(method, X.shape[1], Y.shape[1], lr=args.lr, seed=seed,
                          init_std=init_std)
    epochs, seconds, steps = [], 0.0, []
    for epoch in range(1, args.epochs + 1):
        times, _ = model.train_epoch(X, Y, 128)
        seconds += sum(times)
        steps += times
        p1, p5 = _scores(model.predict_topk(Xt, k=5), Yt)
        epochs.append(dict(epoch=epoch, seconds=round(seconds, 2), loss=round(model.epoch_loss, 4),
                           p1=p1, p5=p5))
        print(f"  {method} epoch {epoch}: P@1 {p1:.4f} P@5 {p5:.4f} {seconds:.1f} s", flush=True)
    return epochs, float(np.median(steps[5:]))


def run(args):
    import pyslide as ps
    methods = args.methods.split(",")
    for size in args.sizes:
        n_train = FULL_SIZE[args.shape] if size == "full" else int(size)
        n_test = args.n_test or (10_000 if n_train > 60_000 else 2_000)
        for seed in args.seeds:
            t0 = time.time()
            X, Y, Xt, Yt = ps.data.make_xc(args.shape, n_samples=n_train, n_test=n_test,
                                           seed=seed, **args.make_xc)
            print(f"== {args.shape} {n_train} rows seed {seed}: data in {time.time() - t0:.0f} s",
                  flush=True)
            for method in methods:
                name, _, config = method.partition(":")
                if name == "pyslide":
                    epochs, step = run_pyslide(config or "default", X, Y, Xt, Yt, args, seed)
                else:
                    epochs, step = run_torch(method, X, Y, Xt, Yt, args, seed)
                line = dict(shape=args.shape, make_xc=args.make_xc, n_train=n_train, n_test=n_test, seed=seed,
                            method=method, threads=args.threads, lr=args.lr,
                            median_step_s=step, epochs=epochs)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(line) + "\n")


def _epochs_to(run, target):
    """The first epoch whose P@1 reached ``target`` (None: none did)."""
    for e in run["epochs"]:
        if e["p1"] >= target:
            return e["epoch"]
    return None


def table(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    def shape_of(r):
        extra = ",".join(f"{k}={v}" for k, v in sorted(r.get("make_xc", {}).items()))
        return r["shape"] + (f" ({extra})" if extra else "")

    keys = sorted({(shape_of(r), r["n_train"]) for r in rows})
    for shape, n in keys:
        group = [r for r in rows if shape_of(r) == shape and r["n_train"] == n]
        width = max(len(r["epochs"]) for r in group)
        print(f"\n{shape}, {n:,} rows: test P@1 after each epoch\n")
        print("| method | seed | " + " | ".join(str(e + 1) for e in range(width)) + " |")
        print("|---|---|" + "---|" * width)
        most_threads = max(r["threads"] for r in group)
        for r in sorted(group, key=lambda r: (r["method"], r["seed"], -r["threads"])):
            cells = [f"{e['p1']:.3f}" for e in r["epochs"]] + [""] * (width - len(r["epochs"]))
            # a group that mixes thread counts names the runs with fewer
            threads = r["threads"]
            label = r["method"] + ("" if threads == most_threads else
                                   f" ({threads} thread{'s' if threads > 1 else ''})")
            print(f"| {label} | {r['seed']} | " + " | ".join(cells) + " |")
        for torch_run in (r for r in group if r["method"].startswith("torch-sampled")):
            best = max(e["p1"] for e in torch_run["epochs"])
            own = _epochs_to(torch_run, best)
            print(f"\nepochs to {torch_run['method']}'s best P@1 ({best:.3f}, seed "
                  f"{torch_run['seed']}; it took {own}): "
                  + "; ".join(f"{r['method']} {_epochs_to(r, best) or 'not reached'}"
                              for r in group if r["seed"] == torch_run["seed"]
                              and not r["method"].startswith("torch")))


def _step_seconds(speed_files):
    """Median step seconds per (shape, method) from ``bench_train.py`` results,
    measured side by side in one run (the study's own clocks shared the
    machine with other jobs and are not comparable)."""
    steps = {}
    for shape, path in speed_files.items():
        for record in json.load(open(path))["records"]:
            method = record["method"].split(":")[0]
            steps[shape, "pyslide" if method == "pyslide" else method] = \
                record["median_step_seconds"]
    return steps


def _curve(group, method, seed):
    # the longest run (a shorter one may have been a one-epoch probe), the later of equals
    runs = [r for r in group if r["method"] == method and r["seed"] == seed]
    longest = max(runs, key=lambda r: len(r["epochs"]), default=None)
    return None if longest is None else [e["p1"] for e in longest["epochs"]]


def _shortfalls(ours, theirs, share=1.0):
    """Epochs where ``ours`` is below ``share`` of ``theirs``, as text."""
    misses = [(i + 1, b * share - a, a / b if b else float("inf"))
              for i, (a, b) in enumerate(zip(ours, theirs)) if a < b * share]
    if share == 1.0:
        return "; ".join(f"epoch {e} by {d:.3f}" for e, d, _ in misses)
    return "; ".join(f"epoch {e} at {100 * r:.1f}%" for e, _, r in misses)


def _time_ratio(ours, target, step_ours, their_epochs, step_theirs):
    """Our time to ``target`` over ``their_epochs`` of theirs, counting whole
    epochs (we are charged the whole epoch we reach the target in) times the
    side-by-side step."""
    mine = next((i + 1 for i, p in enumerate(ours) if p >= target), None)
    return None if mine is None else mine * step_ours / (their_epochs * step_theirs)


def cells(path, speed_files, candidate="pyslide:default", step_factor=1.0):
    """Every cell of the issue's point 1 for each (problem, size, seed) that
    has both a ``candidate`` run and a ``torch-sampled`` run: met, or the
    epoch missed and by how much. ``step_factor``: the candidate's step time
    over the defaults' (``bench_defaults.py``), which the speed files
    measured."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    steps = _step_seconds(speed_files)
    print("| problem | rows | seed | ≥ PyTorch sampled every epoch | ≥ 95% of the full softmax "
          "| time to PyTorch's last-epoch P@1 / its time (≤ 0.4) | time to PyTorch's best P@1 / its time to it (≤ 0.4) "
          "| no collapse |")
    print("|---|---|---|---|---|---|---|---|")
    keys = sorted({(r["shape"], tuple(sorted(r.get("make_xc", {}).items())), r["n_train"], r["seed"])
                   for r in rows})
    for shape, extra, n_train, seed in keys:
        group = [r for r in rows if r["shape"] == shape and r["n_train"] == n_train
                 and tuple(sorted(r.get("make_xc", {}).items())) == extra]
        ours, torch = _curve(group, candidate, seed), _curve(group, "torch-sampled", seed)
        if ours is None or torch is None:
            continue
        full = _curve(group, "pyslide:full", seed)
        step_ours = steps[shape, "pyslide"] * step_factor
        step_torch = steps[shape, "torch-sampled"]
        ratios = []
        # the reading: PyTorch's P@1 after its last epoch, against the
        # time of all its epochs; the stricter one: its best P@1, against the
        # time it took to first reach it
        best = max(torch)
        for target, their_epochs in ((torch[-1], len(torch)), (best, torch.index(best) + 1)):
            ratio = _time_ratio(ours, target, step_ours, their_epochs, step_torch)
            ratios.append("not reached" if ratio is None else
                          f"{ratio:.2f}" + ("" if ratio <= 0.4 else " (missed)"))
        collapse = [f"epoch {i + 1} at {100 * p / max(ours[:i]):.1f}% of the best before"
                    for i, p in enumerate(ours) if i and p < 0.95 * max(ours[:i])]
        problem = shape + "".join(f" {k}={v}" for k, v in extra)
        if full is None:
            against_full = "not measured"
        else:
            lowest = 100 * min(a / b for a, b in zip(ours, full))
            against_full = _verdict(_shortfalls(ours, full, 0.95), f"met (lowest {lowest:.1f}%)")
        cells_of_row = [problem, f"{n_train:,}", str(seed), _verdict(_shortfalls(ours, torch)),
                        against_full, *ratios, "; ".join(collapse) or "met"]
        print("| " + " | ".join(cells_of_row) + " |")


def _verdict(shortfalls, met="met"):
    return f"missed: {shortfalls}" if shortfalls else met


def plot(path, out):
    """P@1 against epochs, a panel per problem. Seconds are left out: the runs
    shared a busy machine, so their clocks are not comparable; the step times
    measured side by side (``bench_train.py``) turn epochs into seconds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.loads(line) for line in open(path) if line.strip()]

    def shape_of(r):
        extra = ",".join(f"{k}={v}" for k, v in sorted(r.get("make_xc", {}).items()))
        return f"{r['shape']}{' ' + extra if extra else ''}, {r['n_train']:,} rows"

    panels = sorted({shape_of(r) for r in rows})
    # one colour per method in every panel
    methods = sorted({r["method"] for r in rows})
    colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for r in sorted((r for r in rows if shape_of(r) == panel), key=lambda r: r["method"]):
            p1 = [e["p1"] for e in r["epochs"]]
            ax.plot(range(1, len(p1) + 1), p1, marker="o", ms=3, color=colours[r["method"]],
                    label=f"{r['method']} (seed {r['seed']})")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test P@1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def plot_seconds(path, out, speed_files, step_factors):
    """P@1 against training seconds, a panel per problem and size (both
    seeds): the defaults (``pyslide:default``), the defaults before
    (``pyslide:hold``) and PyTorch's sampled softmax. Seconds are epochs
    times steps per epoch times the median step measured side by side
    (``bench_train.py``, the ``--speed`` files, taken with the defaults
    before), the default's times its ``step_factors[shape]`` over them
    (``bench_defaults.py``): the runs' own clocks shared a busy machine."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # the generator's default settings only (other make_xc settings are other problems)
    rows = [r for r in (json.loads(line) for line in open(path) if line.strip())
            if not r.get("make_xc")]
    steps = _step_seconds(speed_files)
    styles = {"pyslide:default": ("tab:blue", "pyslide defaults"),
              "pyslide:hold": ("tab:gray", "pyslide defaults before (hold)"),
              "torch-sampled": ("tab:red", "PyTorch sampled softmax")}
    problems = sorted({(r["shape"], r["n_train"]) for r in rows if r["method"] == "pyslide:default"})
    shapes = sorted({shape for shape, _ in problems})
    columns = max(sum(1 for p in problems if p[0] == shape) for shape in shapes)
    fig, axes = plt.subplots(len(shapes), columns, figsize=(3.4 * columns, 3.2 * len(shapes)),
                             squeeze=False)
    for row, shape in enumerate(shapes):
        sizes = sorted(n for s, n in problems if s == shape)
        for ax, n in zip(axes[row], sizes):
            group = [r for r in rows if r["shape"] == shape and r["n_train"] == n]
            steps_per_epoch = -(-n // 128)
            for method, (colour, label) in styles.items():
                step = steps[shape, "pyslide" if method.startswith("pyslide") else method]
                if method == "pyslide:default":
                    step *= step_factors.get(shape, 1.0)
                for seed, dash in ((0, "-"), (1, "--")):
                    p1 = _curve(group, method, seed)
                    if p1 is None:
                        continue
                    seconds = [(e + 1) * steps_per_epoch * step for e in range(len(p1))]
                    ax.plot(seconds, p1, dash, marker="o", ms=3, color=colour,
                            label=f"{label} (seed {seed})")
            ax.set_title(f"{shape}, {n:,} rows", fontsize=9)
            ax.set_xlabel("training seconds (2 threads, side-by-side steps)", fontsize=7)
            ax.set_ylabel("test P@1")
            ax.grid(alpha=0.3)
        axes[row][0].legend(fontsize=6)
        for ax in axes[row][len(sizes):]:
            ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def _keywords(text):
    out = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        out[key] = float(value) if "." in value else int(value)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", default="delicious", choices=sorted(FULL_SIZE))
    p.add_argument("--sizes", default="20000", type=lambda s: s.split(","),
                   help="comma-separated training row counts, or 'full'")
    p.add_argument("--seeds", default="0", type=lambda s: [int(v) for v in s.split(",")])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--methods", default="pyslide:default,torch-sampled")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--n-test", type=int, default=None)
    p.add_argument("--make-xc", default={}, type=_keywords,
                   help="other make_xc keywords, e.g. n_groups=200 (another generator setting)")
    p.add_argument("--out", default=None, help="append one JSON line per run")
    p.add_argument("--table", default=None, help="print the curves of this results file")
    p.add_argument("--cells", default=None, metavar="RESULTS",
                   help="print the issue's cells (met, or missed and by how much) of a "
                        "results file")
    p.add_argument("--candidate", default="pyslide:default",
                   help="the method --cells scores (default: the defaults)")
    p.add_argument("--step-factor", type=float, default=1.0,
                   help="the candidate's step time over the defaults' (bench_defaults.py), "
                        "for --cells' time cells")
    p.add_argument("--speed", default="delicious=benchmarks/results/speed_delicious_issue21.json,"
                   "amazon=benchmarks/results/speed_amazon_issue21.json",
                   type=lambda s: dict(item.split("=", 1) for item in s.split(",")),
                   help="bench_train.py results per shape whose side-by-side step times "
                        "turn epochs into seconds for --cells")
    p.add_argument("--plot", nargs=2, metavar=("RESULTS", "PNG"), default=None,
                   help="draw the P@1 curves of a results file (needs matplotlib)")
    p.add_argument("--plot-seconds", nargs=2, metavar=("RESULTS", "PNG"), default=None,
                   help="draw P@1 against side-by-side training seconds: the defaults, the "
                        "defaults before and PyTorch's sampled softmax (needs matplotlib)")
    p.add_argument("--step-factors", default="delicious=1.03,amazon=1.06",
                   help="the defaults' step over the --speed files' pyslide step, per shape "
                        "(bench_defaults.py), for --plot-seconds")
    args = p.parse_args()
    if args.table:
        table(args.table)
        return
    if args.cells:
        cells(args.cells, args.speed, args.candidate, args.step_factor)
        return
    if args.plot or args.plot_seconds:
        if args.plot:
            plot(*args.plot)
        if args.plot_seconds:
            factors = dict(item.split("=") for item in args.step_factors.split(","))
            plot_seconds(*args.plot_seconds, args.speed, {k: float(v) for k, v in factors.items()})
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    run(args)


if __name__ == "__main__":
    main()
