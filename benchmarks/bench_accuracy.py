"""Accuracy benchmark: test P@1 and P@5 after every epoch, pyslide beside PyTorch.

Every method trains the same network (sparse input -> Dense(128, relu) -> one
output per label, softmax cross-entropy against y/|y|, Adam lr 1e-3, batch
128) with the same threads, in its own subprocess, and is scored after every
epoch on the test rows by the same metric code (``common.topk_metrics``, exact
top-k over all labels). Per epoch it records the training loss, the training
seconds of that epoch and cumulated, P@1/3/5, nDCG@1/3/5, and
``top1_train_freq``: the mean, over test rows, of the training-set frequency
(fraction of training rows carrying it) of the label predicted first. A
value far above ``data.true_label_train_freq`` (the same mean over the test
rows' true labels) means predictions drift to popular labels, far below it
to rare ones.

Examples
--------
Bibtex (the real files), 30 epochs::

    python benchmarks/bench_accuracy.py --dataset bibtex --epochs 30 --threads 2 \\
        --methods torch-dense,torch-sampled,pyslide:lsh \\
        --out benchmarks/results/accuracy_bibtex.json

Full-size Delicious shape (``make_xc("delicious")``, 196,606 training rows;
hours on 2 cores), then a quick smoke of the same path::

    python benchmarks/bench_accuracy.py --dataset delicious --epochs 4 --threads 2 \\
        --methods pyslide:lsh,pyslide:uniform,pyslide:sample,torch-sampled,pyslide:dense-equivalent \\
        --out benchmarks/results/accuracy_delicious.json
    python benchmarks/bench_accuracy.py --dataset delicious --n-train 2000 --n-test 500 \\
        --epochs 1 --methods pyslide:lsh,torch-sampled

Methods: ``pyslide:<config>`` (``PYSLIDE_CONFIGS`` below), ``torch-dense[@init]``
and ``torch-sampled[:n_sample][@init]`` (``torch_baselines.py``; ``n_sample``
defaults to 8192, ``init`` is a key of ``TORCH_INITS``, default ``pyslide``).
``--merge`` adds records to an existing ``--out`` file, replacing those of the
same method and seed; ``--summary-only`` rewrites the Markdown from the JSON.
"""
import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

BIBTEX_DIR = "/work/shared/data/bibtex"

# pyslide configurations: name -> function(ps, n_labels) -> dict with any of
#   sampled:   keyword arguments of ps.Sampled(n_labels, ...)
#   dense:     keyword arguments of ps.Dense(128, ...) (activation defaults to relu)
#   optimizer: keyword arguments of ps.Adam(...) (lr defaults to --lr)
#   fit:       keyword arguments of net.fit(...) (batch_size defaults to --batch)
# Edit freely; a name here is usable as --methods pyslide:<name>.
PYSLIDE_CONFIGS = {
    # every default: shared set of 8,192 rows per batch, LSH (on Bibtex, with
    # 159 labels, this is the full softmax)
    "lsh": lambda ps, n: dict(),
    # uniform negatives, same active size
    "uniform": lambda ps, n: dict(sampled=dict(hash=None, active=8192)),
    # the defaults before Sampled(lr_scale="auto"): the output's steps unscaled
    "lsh-scale1": lambda ps, n: dict(sampled=dict(lr_scale=1.0)),
    "uniform-scale1": lambda ps, n: dict(sampled=dict(hash=None, active=8192, lr_scale=1.0)),
    # a set per sample, LSH
    "sample": lambda ps, n: dict(sampled=dict(share="sample")),
    # the full softmax (every output active every step)
    "dense-equivalent": lambda ps, n: dict(sampled=dict(active=n)),
    # --- starts and step sizes (the Bibtex init study in docs/performance.md)
    # first layer as nn.Linear(n_features, 128) starts: std 1/sqrt(3 n_features)
    # (0.0135 on Bibtex); see _linear_std
    "in-linear": lambda ps, n: dict(dense=dict(init_std="linear")),
    "in-0.03": lambda ps, n: dict(dense=dict(init_std=0.03)),
    "in-0.06": lambda ps, n: dict(dense=dict(init_std=0.06)),
    "in-0.005": lambda ps, n: dict(dense=dict(init_std=0.005)),
    # output as nn.Linear(128, n) starts: std 1/sqrt(3 * 128) = 0.051
    "out-linear": lambda ps, n: dict(sampled=dict(init_std=1 / np.sqrt(3 * 128))),
    "in-linear-out-linear": lambda ps, n: dict(dense=dict(init_std="linear"),
                                               sampled=dict(init_std=1 / np.sqrt(3 * 128))),
    "in-0.03-out-linear": lambda ps, n: dict(dense=dict(init_std=0.03),
                                             sampled=dict(init_std=1 / np.sqrt(3 * 128))),
    "in-linear-out-0.01": lambda ps, n: dict(dense=dict(init_std="linear"),
                                             sampled=dict(init_std=0.01)),
    "in-linear-out-0.1": lambda ps, n: dict(dense=dict(init_std="linear"),
                                            sampled=dict(init_std=0.1)),
    "lr-5e-4": lambda ps, n: dict(optimizer=dict(lr=5e-4)),
    "lr-2e-3": lambda ps, n: dict(optimizer=dict(lr=2e-3)),
    "batch-64": lambda ps, n: dict(fit=dict(batch_size=64)),
    "batch-256": lambda ps, n: dict(fit=dict(batch_size=256)),
    "dense-adam": lambda ps, n: dict(optimizer=dict(lazy=False)),
}

# PyTorch starts: method suffix @name -> keyword arguments of make_baseline.
TORCH_INITS = {
    # pyslide's start: input N(0, 0.25/sqrt(mean squared row norm)), output
    # N(0, 0.01/sqrt(128)), zero biases
    "pyslide": dict(input_init="normal", output_init="small"),
    # nn.Linear's own start for both layers: U(+-1/sqrt(fan_in)) weights and biases
    "linear": dict(input_init="linear", output_init="linear"),
    # nn.Linear's start for the input layer only
    "linear-in": dict(input_init="linear", output_init="small"),
    # nn.Linear's weights for both layers, zero biases (what pyslide can express)
    "linear0": dict(input_init="linear0", output_init="linear0"),
}


def _linear_std(n_features):
    """The std of nn.Linear's uniform start, U(+-1/sqrt(fan_in)): 1/sqrt(3 fan_in)."""
    return 1.0 / np.sqrt(3.0 * n_features)


# --------------------------------------------------------------------------- data

def load_dataset(args):
    """``(X, Y, Xt, Yt, info)`` for --dataset, as float32 CSR."""
    if args.dataset == "bibtex":
        return common.load_problem(data_dir=args.data_dir or BIBTEX_DIR)
    if args.dataset == "delicious":
        from pyslide.data import PRESETS

        # full size by default: the real training-set size, 10,000 test rows
        n_train = args.n_train or PRESETS["delicious"]["n_train"]
        n_test = args.n_test or 10_000
        return common.load_problem("delicious", seed=args.data_seed, n_train=n_train,
                                   n_test=n_test)
    raise ValueError(f"unknown dataset {args.dataset!r}")


class Scorer:
    """Scores top-k predictions on the test rows after each epoch."""

    def __init__(self, Y, Yt):
        counts = np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.float64)
        self.freq = counts / max(Y.shape[0], 1)
        self.Yt = Yt

    def true_label_freq(self):
        """Mean training frequency of the test rows' true labels (per-row mean, then mean)."""
        per_label = self.freq[self.Yt.indices]
        counts = np.diff(self.Yt.indptr)
        rows = np.repeat(np.arange(self.Yt.shape[0]), counts)
        sums = np.bincount(rows, weights=per_label, minlength=self.Yt.shape[0])
        return float(np.mean(sums[counts > 0] / counts[counts > 0]))

    def __call__(self, topk):
        topk = np.asarray(topk, dtype=np.int64)
        scores = common.topk_metrics(topk, self.Yt)
        scores["top1_train_freq"] = float(self.freq[topk[:, 0]].mean())
        return scores


def _epoch_row(epoch, loss, epoch_seconds, train_seconds, cpu_seconds, steps, scores,
               eval_seconds):
    row = dict(epoch=epoch, loss=round(float(loss), 5), epoch_seconds=round(epoch_seconds, 4),
               train_seconds=round(train_seconds, 4), train_cpu_seconds=round(cpu_seconds, 3),
               steps=steps)
    row.update({k: round(v, 5) for k, v in scores.items()})
    row["top1_train_freq"] = round(scores["top1_train_freq"], 6)
    row["eval_seconds"] = round(eval_seconds, 3)
    return row


def _progress(method, row):
    print(f"  [{method}] epoch {row['epoch']}: loss {row['loss']:.4f}, "
          f"{row['epoch_seconds']:.2f} s, P@1 {row['p@1']:.4f}, P@5 {row['p@5']:.4f}, "
          f"top-1 train freq {row['top1_train_freq']:.4f}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- workers

def _split_torch_method(method):
    spec, _, init = method.partition("@")
    init = init or "pyslide"
    if init not in TORCH_INITS:
        raise ValueError(f"unknown torch init {init!r}; edit TORCH_INITS in "
                         f"{Path(__file__).name} (have {sorted(TORCH_INITS)})")
    return spec, init


def _run_torch(method, args, X, Y, Xt, Yt, scorer):
    import torch

    from torch_baselines import make_baseline

    torch.set_num_threads(args.threads)
    spec, init = _split_torch_method(method)
    init_kw = dict(TORCH_INITS[init])
    # pyslide's rule (Network._init_std): pre-activations of std 0.25 for the
    # mean row norm (records before 2026-12-02 used 1.0; each keeps its input_std)
    from pyslide.network import _FIRST_LAYER_SPREAD
    init_std = _FIRST_LAYER_SPREAD / np.sqrt(
        max(float(X.multiply(X).sum()) / max(X.shape[0], 1), 1e-12))
    model = make_baseline(spec, X.shape[1], Y.shape[1], lr=args.lr, seed=args.seed,
                          init_std=init_std, **init_kw)
    input_std = init_std if init_kw["input_init"] == "normal" else _linear_std(X.shape[1])
    output_std = (0.01 / np.sqrt(128) if init_kw["output_init"] == "small"
                  else _linear_std(128))
    record = dict(versions=dict(torch=torch.__version__), init_name=init,
                  init=dict(init_kw, input_std=float(input_std), output_std=float(output_std)),
                  batch=args.batch, lr=args.lr)
    if hasattr(model, "n_sample"):
        record["n_sample"] = model.n_sample
    epochs = []
    state = dict(train=0.0, cpu=0.0)

    def on_epoch_end(model, epoch, logs):
        state["train"] += logs["seconds"]
        state["cpu"] += logs["cpu_seconds"]
        t0 = time.perf_counter()
        scores = scorer(model.predict_topk(Xt, k=max(common.KS)))
        epochs.append(_epoch_row(epoch, logs["loss"], logs["seconds"], state["train"],
                                 state["cpu"], logs["steps"], scores,
                                 time.perf_counter() - t0))
        _progress(method, epochs[-1])

    model.fit(X, Y, args.epochs, args.batch, on_epoch_end=on_epoch_end)
    record["epochs"] = epochs
    return record


def _fit_extras(ps, args, notes):
    """fit keyword arguments and callbacks for --validation-split / --early-stopping,
    each only if the installed pyslide has it (a note otherwise)."""
    fit_kw, callbacks = {}, []
    params = inspect.signature(ps.Network.fit).parameters
    if args.validation_split:
        if "validation_split" in params:
            fit_kw["validation_split"] = args.validation_split
        else:
            notes.append(f"--validation-split {args.validation_split} ignored: this pyslide's "
                         f"Network.fit has no validation_split argument")
    if args.early_stopping is not None:
        if hasattr(ps, "EarlyStopping"):
            es_params = inspect.signature(ps.EarlyStopping).parameters
            es_kw = dict(patience=args.early_stopping)
            if args.monitor and "monitor" in es_params:
                es_kw["monitor"] = args.monitor
            if "restore_best" in es_params:
                es_kw["restore_best"] = True
            callbacks.append(ps.EarlyStopping(**es_kw))
        else:
            notes.append(f"--early-stopping {args.early_stopping} ignored: this pyslide has "
                         f"no EarlyStopping callback; all {args.epochs} epochs run")
    for note in notes:
        print(f"NOTE: {note}", file=sys.stderr, flush=True)
    return fit_kw, callbacks


def _run_pyslide(method, args, X, Y, Xt, Yt, scorer):
    import pyslide as ps

    _, _, config = method.partition(":")
    config = config or "lsh"
    if config not in PYSLIDE_CONFIGS:
        raise ValueError(f"unknown pyslide config {config!r}; edit PYSLIDE_CONFIGS in "
                         f"{Path(__file__).name} (have {sorted(PYSLIDE_CONFIGS)})")
    cfg = PYSLIDE_CONFIGS[config](ps, Y.shape[1])
    # a config's keys win over the command line's defaults
    dense_kw = {"activation": "relu", **cfg.get("dense", {})}
    if dense_kw.get("init_std") == "linear":
        dense_kw["init_std"] = float(_linear_std(X.shape[1]))
    sampled_kw = dict(cfg.get("sampled", {}))
    opt_kw = {"lr": args.lr, **cfg.get("optimizer", {})}
    fit_kw = {"batch_size": args.batch, **cfg.get("fit", {})}
    notes = []
    extra_kw, callbacks = _fit_extras(ps, args, notes)
    fit_kw.update(extra_kw)
    net = ps.Network(input_dim=X.shape[1],
                     layers=[ps.Dense(128, **dense_kw), ps.Sampled(Y.shape[1], **sampled_kw)],
                     loss="softmax", optimizer=ps.Adam(**opt_kw), threads=args.threads,
                     seed=args.seed)
    record = dict(versions=dict(pyslide=ps.__version__), config=config,
                  dense_kwargs={k: repr(v) for k, v in dense_kw.items()},
                  sampled_kwargs={k: repr(v) for k, v in sampled_kw.items()},
                  optimizer_kwargs={k: repr(v) for k, v in opt_kw.items()},
                  fit_kwargs={k: repr(v) for k, v in fit_kw.items()},
                  batch=fit_kw["batch_size"], lr=opt_kw["lr"], notes=notes)
    epochs = []
    state = dict(time=0.0, cpu=time.process_time())

    def recorder(net, epoch, logs):
        # logs["time"] is fit's cumulative training time (steps only); the
        # CPU seconds are those since the last evaluation ended
        cpu = time.process_time() - state["cpu"]
        epoch_seconds = logs["time"] - state["time"]
        state["time"] = logs["time"]
        t0 = time.perf_counter()
        ids, _ = net.predict_topk(Xt, k=max(common.KS))
        scores = scorer(ids)
        cpu_total = (epochs[-1]["train_cpu_seconds"] if epochs else 0.0) + cpu
        epochs.append(_epoch_row(epoch, logs["loss"], epoch_seconds, logs["time"], cpu_total,
                                 -(-X.shape[0] // fit_kw["batch_size"]), scores,
                                 time.perf_counter() - t0))
        val = {k: round(float(v), 5) for k, v in logs.items() if k.startswith("val_")}
        if val:
            epochs[-1]["validation"] = val
        _progress(method, epochs[-1])
        state["cpu"] = time.process_time()

    # one fit call for all epochs, the recorder first so that a callback
    # after it (early stopping) sees the epoch already scored
    net.fit(X, Y, epochs=args.epochs, verbose=0, callbacks=[recorder, *callbacks], **fit_kw)
    record["epochs"] = epochs
    if callbacks:
        # the model fit ended with (the best one if early stopping restored it)
        ids, _ = net.predict_topk(Xt, k=max(common.KS))
        record["final_scores"] = {k: round(v, 5) for k, v in scorer(ids).items()}
    return record


def worker(args):
    """Run one method in this process and write its JSON record."""
    start_load = common.loadavg()
    t0 = time.perf_counter()
    X, Y, Xt, Yt, data_info = load_dataset(args)
    data_seconds = time.perf_counter() - t0
    scorer = Scorer(Y, Yt)
    data_info["true_label_train_freq"] = round(scorer.true_label_freq(), 6)
    method = args.worker
    runner = _run_pyslide if method.split(":")[0] == "pyslide" else _run_torch
    record = dict(method=method, dataset=args.dataset, data=data_info, threads=args.threads,
                  n_epochs=args.epochs, seed=args.seed, data_seconds=round(data_seconds, 2))
    record.update(runner(method, args, X, Y, Xt, Yt, scorer))
    record["peak_rss_bytes"] = common.peak_rss_bytes()
    record.update(common.machine_info(start_load))
    record["load_avg_at_end"] = common.loadavg()
    with open(args.worker_out, "w") as f:
        json.dump(record, f, indent=1)


# --------------------------------------------------------------------------- driver

def run_method(method, args, argv):
    """Run one method in a fresh subprocess and return its record."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out_path = tmp.name
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv,
           "--worker", method, "--worker-out", out_path]
    print(f"== {method} (seed {args.seed})", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env)
    try:
        if proc.returncode != 0:
            return dict(method=method, seed=args.seed,
                        error=f"worker exited with status {proc.returncode}",
                        wall_seconds=round(time.perf_counter() - t0, 1))
        with open(out_path) as f:
            return json.load(f)
    finally:
        os.unlink(out_path)


def _strip_driver_args(argv):
    """The command line without --methods/--out/--merge, for the workers."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("--methods", "--out"):
            skip = True
            continue
        if a.startswith(("--methods=", "--out=")) or a == "--merge":
            continue
        out.append(a)
    return out


def summary_markdown(records):
    """One row per record (last / best P@1, P@5, loss, seconds, popularity of
    the top-1 label), then P@1 per epoch with one column per record."""
    ok = [r for r in records if "error" not in r]
    lines = ["| method | seed | batch | lr | P@1 last | P@1 best (epoch) | P@5 last | P@5 best | "
             "loss last | top-1 train freq last (true labels) | s / epoch (median) | "
             "train s, all epochs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['method']} | {r.get('seed', '')} | failed: {r['error']} |"
                         + " |" * 9)
            continue
        ep = r["epochs"]
        last = ep[-1]
        best = max(ep, key=lambda e: e["p@1"])
        lines.append(
            f"| {r['method']} | {r['seed']} | {r.get('batch', '')} | {r.get('lr', '')} | "
            f"{last['p@1']:.4f} | {best['p@1']:.4f} ({best['epoch']}) | {last['p@5']:.4f} | "
            f"{max(e['p@5'] for e in ep):.4f} | {last['loss']:.4f} | "
            f"{last['top1_train_freq']:.4f} ({r['data'].get('true_label_train_freq', 0):.4f}) | "
            f"{np.median([e['epoch_seconds'] for e in ep]):.3f} | {last['train_seconds']:.1f} |")
    if ok:
        names = [f"{r['method']} s{r['seed']}" for r in ok]
        n_ep = max(len(r["epochs"]) for r in ok)
        lines += ["", "Test P@1 per epoch:", "",
                  "| epoch | " + " | ".join(names) + " |", "|---|" + "---|" * len(ok)]
        for i in range(n_ep):
            cells = [f"{r['epochs'][i]['p@1']:.4f}" if i < len(r["epochs"]) else ""
                     for r in ok]
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        notes = sorted({n for r in ok for n in r.get("notes", [])})
        if notes:
            lines += [""] + [f"Note: {n}" for n in notes]
    return "\n".join(lines)


def write_results(path, commands, records):
    """The JSON file and, beside it, a Markdown summary (same name, ``.md``)."""
    table = summary_markdown(records)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(commands=commands, records=records), f, indent=1)
    with open(os.path.splitext(path)[0] + ".md", "w") as f:
        f.write("\n".join(f"`{c}`  " for c in commands) + "\n\n" + table + "\n")
    return table


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="bibtex", choices=("bibtex", "delicious"))
    p.add_argument("--data-dir", default=None,
                   help=f"folder with XC-format train.txt and test.txt for --dataset bibtex "
                        f"(default {BIBTEX_DIR})")
    p.add_argument("--methods", default="torch-dense,torch-sampled,pyslide:lsh",
                   help="comma-separated: torch-dense[@init], torch-sampled[:n][@init], "
                        "pyslide:<config>")
    p.add_argument("--n-train", type=int, default=None,
                   help="delicious: training rows (default: full size, 196,606)")
    p.add_argument("--n-test", type=int, default=None, help="delicious: test rows (default 10,000)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0, help="model and shuffling seed")
    p.add_argument("--data-seed", type=int, default=0, help="make_xc seed")
    p.add_argument("--validation-split", type=float, default=None,
                   help="pyslide only: fit(validation_split=F), if this pyslide has it")
    p.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                   help="pyslide only: pyslide.EarlyStopping(patience=P, restore_best=True), "
                        "if this pyslide has it")
    p.add_argument("--monitor", default=None,
                   help="metric EarlyStopping monitors (default: EarlyStopping's own)")
    p.add_argument("--out", default=None, help="JSON results file (a .md summary is written beside it)")
    p.add_argument("--merge", action="store_true",
                   help="keep the records of other methods and seeds already in --out")
    p.add_argument("--summary-only", action="store_true",
                   help="run nothing: rewrite the Markdown summary of --out from its JSON")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.summary_only:
        if not args.out:
            raise SystemExit("--summary-only needs --out")
        with open(args.out) as f:
            old = json.load(f)
        print(write_results(args.out, old["commands"], old["records"]))
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    worker_argv = _strip_driver_args(argv)
    records = [run_method(m, args, worker_argv) for m in methods]

    command = "python benchmarks/bench_accuracy.py " + " ".join(argv)
    if args.merge:
        commands, records = common.merge_results(args.out, records, command,
                                                 key=lambda r: (r["method"], r.get("seed")))
    else:
        commands = [command]
    if args.out:
        print(write_results(args.out, commands, records))
    else:
        print(summary_markdown(records))
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
