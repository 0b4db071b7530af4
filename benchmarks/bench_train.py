"""Training benchmark: pyslide against PyTorch dense and sampled-softmax baselines.

Every method trains the same network (sparse input -> 128 ReLU -> one output per
label, softmax cross-entropy against y/|y|) on the same data, with the same
threads, batch size and learning rate, in its own subprocess, so that each gets
its own peak-memory figure and none inherits another's allocator or thread
pools. Training time excludes data generation and evaluation.

Examples
--------
Baselines and pyslide on the Delicious-shaped synthetic problem::

    python benchmarks/bench_train.py --preset delicious --threads 2 --epochs 8 \\
        --methods torch-dense,torch-sampled:8192,pyslide:lsh-batch \\
        --out benchmarks/results/delicious.json

Quick smoke run (a few steps of everything)::

    python benchmarks/bench_train.py --preset small --epochs 1 --max-steps 20 \\
        --methods torch-dense,torch-sampled,pyslide:uniform-batch

Add a method to an existing results file, keeping the records already there::

    python benchmarks/bench_train.py --preset delicious --epochs 8 \\
        --methods pyslide:lsh-sample --out benchmarks/results/delicious.json --merge

Methods: ``torch-dense``, ``torch-sampled[:n_sample]`` (default 8192),
``pyslide[:config]`` (configs in ``PYSLIDE_CONFIGS`` below; default ``lsh-batch``).
"""
import argparse
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

# pyslide output-layer configurations: name -> function(ps) -> keyword arguments
# of ps.Sampled. Edit freely; a name here is usable as --methods pyslide:<name>.
PYSLIDE_CONFIGS = {
    # Sampled(n_labels) with every default: shared set of 8,192, SimHash with
    # K from the bucket load, L=16, reservoir buckets, incremental re-hashing
    "default": lambda ps: dict(),
    "lsh-batch": lambda ps: dict(share="batch", active=8192),
    "uniform-batch": lambda ps: dict(hash=None, share="batch", active=8192),
    "lsh-batch-4096": lambda ps: dict(share="batch", active=4096),
    "uniform-batch-4096": lambda ps: dict(hash=None, share="batch", active=4096),
    "lsh-batch-2048": lambda ps: dict(share="batch", active=2048),
    "uniform-batch-2048": lambda ps: dict(hash=None, share="batch", active=2048),
    "lsh-sample": lambda ps: dict(hash=ps.SimHash(K=9, L=50), share="sample", active=1024),
    "uniform-sample": lambda ps: dict(hash=None, share="sample", active=1024),
}
DEFAULT_PYSLIDE_CONFIG = "lsh-batch"
WARMUP_STEPS = 5


# --------------------------------------------------------------------------- workers

def _run_torch(method, args, X, Y, Xt, Yt):
    import torch

    from torch_baselines import make_baseline

    torch.set_num_threads(args.threads)
    init_std = args.init_std
    if init_std is None:
        # pyslide's rule: unit-variance pre-activations for the mean row norm.
        init_std = 1.0 / np.sqrt(max(float(X.multiply(X).sum()) / max(X.shape[0], 1), 1e-12))
    model = make_baseline(method, X.shape[1], Y.shape[1], lr=args.lr, seed=args.seed,
                          init_std=init_std, output_init=args.output_init)
    record = dict(versions=dict(torch=torch.__version__),
                  init=dict(input_std=init_std, output=args.output_init))
    if hasattr(model, "n_sample"):
        record["n_sample"] = model.n_sample
    epochs, step_times, train_seconds, train_cpu = [], [], 0.0, 0.0
    for epoch in range(1, args.epochs + 1):
        times, cpu_times = model.train_epoch(X, Y, args.batch, max_steps=args.max_steps)
        step_times.extend(times)
        train_seconds += sum(times)
        train_cpu += sum(cpu_times)
        t0 = time.perf_counter()
        scores = common.topk_metrics(model.predict_topk(Xt, k=max(common.KS)), Yt)
        epochs.append(_epoch_row(epoch, train_seconds, train_cpu, len(times), scores,
                                 time.perf_counter() - t0))
        _progress(method, epochs[-1])
    record.update(epochs=epochs, step_times=step_times)
    return record


def _run_pyslide(method, args, X, Y, Xt, Yt):
    import pyslide as ps

    _, _, config = method.partition(":")
    config = config or DEFAULT_PYSLIDE_CONFIG
    if config not in PYSLIDE_CONFIGS:
        raise ValueError(f"unknown pyslide config {config!r}; edit PYSLIDE_CONFIGS in "
                         f"{Path(__file__).name} (have {sorted(PYSLIDE_CONFIGS)})")
    sampled_kwargs = PYSLIDE_CONFIGS[config](ps)
    net = ps.Network(input_dim=X.shape[1],
                     layers=[ps.Dense(128, activation="relu"),
                             ps.Sampled(Y.shape[1], **sampled_kwargs)],
                     loss="softmax", optimizer=ps.Adam(lr=args.lr), threads=args.threads,
                     seed=args.seed)
    record = dict(versions=dict(pyslide=ps.__version__), config=config,
                  sampled_kwargs={k: repr(v) for k, v in sampled_kwargs.items()})
    rng = np.random.default_rng(args.seed)
    epochs, step_times, train_seconds, train_cpu = [], [], 0.0, 0.0
    timings = {}
    step_source = "step_times_"
    for epoch in range(1, args.epochs + 1):
        Xe, Ye = X, Y
        if args.max_steps is not None and args.max_steps * args.batch < X.shape[0]:
            rows = np.sort(rng.permutation(X.shape[0])[:args.max_steps * args.batch])
            Xe, Ye = X[rows], Y[rows]
        t0, c0 = time.perf_counter(), time.process_time()
        net.fit(Xe, Ye, epochs=1, batch_size=args.batch, verbose=0)
        elapsed = time.perf_counter() - t0
        train_seconds += elapsed
        train_cpu += time.process_time() - c0
        n_steps = -(-Xe.shape[0] // args.batch)
        times = getattr(net, "step_times_", None)
        if times is None:
            # No per-step record: every step of this epoch gets the epoch mean.
            step_source = "fit wall time / steps"
            times = [elapsed / n_steps] * n_steps
        step_times.extend(float(t) for t in times)
        for phase, sec in (getattr(net, "timings_", None) or {}).items():
            timings[phase] = timings.get(phase, 0.0) + float(sec)
        t0 = time.perf_counter()
        scores = net.evaluate(Xt, Yt, k=common.KS)
        scores = {k: float(v) for k, v in scores.items() if k in _METRIC_KEYS}
        epochs.append(_epoch_row(epoch, train_seconds, train_cpu, n_steps, scores,
                                 time.perf_counter() - t0))
        _progress(method, epochs[-1])
    # Score the final model with the harness's own metric code too, so that a
    # difference in metric definitions between the two sides would show.
    if hasattr(net, "predict"):
        topk = np.asarray(net.predict(Xt, k=max(common.KS)))
        record["final_scores_by_harness"] = common.topk_metrics(topk, Yt)
    record.update(epochs=epochs, step_times=step_times, step_time_source=step_source,
                  phase_seconds=timings or None)
    return record


_METRIC_KEYS = {f"p@{k}" for k in common.KS} | {f"ndcg@{k}" for k in common.KS}


def _epoch_row(epoch, train_seconds, train_cpu_seconds, n_steps, scores, eval_seconds):
    # Process CPU seconds are less sensitive than wall-clock seconds to other
    # jobs sharing the cores (though spinning OpenMP threads inflate them).
    row = dict(epoch=epoch, train_seconds=round(train_seconds, 4),
               train_cpu_seconds=round(train_cpu_seconds, 3), steps=n_steps)
    row.update({k: round(v, 5) for k, v in scores.items()})
    row["eval_seconds"] = round(eval_seconds, 3)
    return row


def _progress(method, row):
    print(f"  [{method}] epoch {row['epoch']}: train {row['train_seconds']:.1f} s, "
          f"P@1 {row.get('p@1', float('nan')):.4f}, P@5 {row.get('p@5', float('nan')):.4f}",
          file=sys.stderr, flush=True)


def worker(args):
    """Run one method in this process and write its JSON record."""
    start_load = common.loadavg()
    t0 = time.perf_counter()
    X, Y, Xt, Yt, data_info = common.load_problem(args.preset, args.data_dir, seed=args.data_seed,
                                                  n_train=args.n_train, n_test=args.n_test)
    data_seconds = time.perf_counter() - t0
    rss_after_data = common.current_rss_bytes()
    method = args.worker
    runner = _run_pyslide if method.split(":")[0] == "pyslide" else _run_torch
    record = dict(method=method, preset=args.preset if args.data_dir is None else None,
                  data=data_info, threads=args.threads, batch=args.batch, lr=args.lr,
                  n_epochs=args.epochs, max_steps=args.max_steps, seed=args.seed,
                  data_seconds=round(data_seconds, 2))
    record.update(runner(method, args, X, Y, Xt, Yt))
    steps = record.pop("step_times")
    record["median_step_seconds"] = common.median_step(steps, WARMUP_STEPS)
    record["step_seconds_p10_p90"] = (
        [float(np.percentile(steps[WARMUP_STEPS:], q)) for q in (10, 90)]
        if len(steps) > WARMUP_STEPS else None)
    record["n_steps"] = len(steps)
    record["rss_after_data_bytes"] = rss_after_data
    record["peak_rss_bytes"] = common.peak_rss_bytes()
    record.update(common.machine_info(start_load))
    record["load_avg_at_end"] = common.loadavg()
    with open(args.worker_out, "w") as f:
        json.dump(record, f, indent=1)


# --------------------------------------------------------------------------- driver

def run_method(method, args, argv):
    """Run one method in a fresh subprocess and return its record."""
    env = dict(os.environ)
    # Keep every BLAS/OpenMP pool at the benchmark's thread count.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
        out_path = tmp.name
    cmd = [sys.executable, str(Path(__file__).resolve()), *argv,
           "--worker", method, "--worker-out", out_path]
    print(f"== {method}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env)
    try:
        if proc.returncode != 0:
            return dict(method=method, error=f"worker exited with status {proc.returncode}",
                        wall_seconds=round(time.perf_counter() - t0, 1))
        with open(out_path) as f:
            return json.load(f)
    finally:
        os.unlink(out_path)


def _strip_method_args(argv):
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


def _reference(records, prefix):
    """The record a ratio column refers to: torch-sampled:8192 before other sizes."""
    ok = [r for r in records if "error" not in r and r["method"].split(":")[0] == prefix]
    for r in ok:
        if prefix != "torch-sampled" or r.get("n_sample") == 8192:
            return r
    return ok[0] if ok else None


def summary_markdown(records):
    """Per method: step time, ratios, P@1 per epoch, time to the sampled baseline's P@1, RSS.

    The P@1 target is the best P@1 the reference torch-sampled run reached
    at any epoch (on small training sets it overfits, so its last epoch can
    be far below its best).
    """
    dense = _reference(records, "torch-dense")
    sampled = _reference(records, "torch-sampled")
    target = max(e["p@1"] for e in sampled["epochs"]) if sampled else None
    target_txt = f"{target:.3f}" if target is not None else "n/a"
    lines = [
        f"| method | median step (s) | speed vs torch-dense | speed vs torch-sampled | "
        f"P@1 by epoch | best P@1 (epoch) | P@5 at best | train s (CPU s), all epochs | "
        f"train s to P@1 {target_txt} | peak RSS (GB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if "error" in r:
            lines.append(f"| {r['method']} | failed: {r['error']} |" + " |" * 8)
            continue
        step = r["median_step_seconds"]
        ratio = lambda ref: (f"{ref['median_step_seconds'] / step:.2f}x"
                             if ref and step else "-")
        p1 = " / ".join(f"{e['p@1']:.3f}" for e in r["epochs"])
        best = max(r["epochs"], key=lambda e: e["p@1"])
        reach = "-"
        if target is not None:
            hit = [e for e in r["epochs"] if e["p@1"] >= target]
            reach = f"{hit[0]['train_seconds']:.1f}" if hit else "not reached"
        last = r["epochs"][-1]
        lines.append(
            f"| {r['method']} | {step:.4f} | {ratio(dense)} | {ratio(sampled)} | {p1} | "
            f"{best['p@1']:.3f} ({best['epoch']}) | {best['p@5']:.3f} | "
            f"{last['train_seconds']:.1f} ({last.get('train_cpu_seconds', 0):.1f}) | "
            f"{reach} | {r['peak_rss_bytes'] / 2**30:.2f} |")
    phases = [r for r in records if "error" not in r and r.get("phase_seconds")]
    if phases:
        names = list(phases[0]["phase_seconds"])
        lines += ["", "Seconds per phase over all training steps (pyslide's own timers):", "",
                  "| method | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for r in phases:
            lines.append(f"| {r['method']} | " + " | ".join(
                f"{r['phase_seconds'].get(n, 0.0):.2f}" for n in names) + " |")
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
    p.add_argument("--methods", default="torch-dense,torch-sampled:8192,pyslide:lsh-batch",
                   help="comma-separated: torch-dense, torch-sampled[:n], pyslide[:config]")
    p.add_argument("--preset", default="delicious", choices=sorted(common.PRESETS))
    p.add_argument("--data-dir", default=None,
                   help="folder with XC-format train.txt and test.txt (overrides --preset)")
    p.add_argument("--n-train", type=int, default=None,
                   help="training rows of a synthetic preset (default: the preset's)")
    p.add_argument("--n-test", type=int, default=None,
                   help="test rows of a synthetic preset (default: the preset's)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-steps", type=int, default=None, help="cap on steps per epoch")
    p.add_argument("--seed", type=int, default=0, help="model and shuffling seed")
    p.add_argument("--data-seed", type=int, default=0, help="synthetic data seed")
    p.add_argument("--init-std", type=float, default=None,
                   help="std of the PyTorch input layer's normal start (default: "
                        "1/sqrt(mean squared row norm), as pyslide)")
    p.add_argument("--output-init", default="small", choices=("small", "linear"),
                   help="PyTorch output layer start: 'small' N(0, 0.01/sqrt(128)) and zero "
                        "bias, as pyslide; 'linear' nn.Linear's default")
    p.add_argument("--out", default=None, help="JSON results file (a .md summary is written beside it)")
    p.add_argument("--merge", action="store_true",
                   help="keep the records of other methods already in --out")
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
    worker_argv = _strip_method_args(argv)
    records = [run_method(m, args, worker_argv) for m in methods]

    command = "python benchmarks/bench_train.py " + " ".join(argv)
    if args.merge:
        command, records = common.merge_results(args.out, records, command,
                                                key=lambda r: r["method"])
    else:
        command = [command]
    if args.out:
        print(write_results(args.out, command, records))
    else:
        print(summary_markdown(records))
    return 0 if all("error" not in r for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
