"""``pyslide demo`` and ``pyslide bench`` as functions: build the data, train, report; may import the library and torch_baseline (when PyTorch is installed), and only the CLI imports it.

The CLI parses the flags and hands over a ``say`` callable (one printed line);
what the demo and the built-in benchmark print is decided here, once.
"""
import os
import subprocess
import sys
import time

# The PyTorch the baselines are measured with: the version the [bench] extra
# pins, CPU build (plain PyPI serves the CUDA build, gigabytes of GPU
# libraries a CPU comparison never loads). From the source folder: a project
# of another name "pyslide" exists on PyPI.
TORCH_INSTALL_HINT = ('run pip install ".[bench]" --extra-index-url '
                      'https://download.pytorch.org/whl/cpu in the pyslide source folder')

# 20,000 rows, 4 epochs: about a minute and a half on 2 idle cores with the PyTorch
# baseline; the defaults learn from the first epoch at this size (docs/cli.md)
DEMO_FULL = dict(samples=20_000, test=1_000, epochs=4)
# QUICK keeps Delicious' densities (features and labels per row) but narrows
# the matrices, so a check of the installation takes seconds and little memory.
DEMO_QUICK = dict(samples=400, test=100, epochs=2, n_features=20_000, n_labels=20_000)
DEMO_KS = (1, 3, 5)


# --------------------------------------------------------------------------- demo

def run_demo(sizes, seed, threads, quick=False, torch=True, say=print):
    """Train Dense(128) -> Sampled on a Delicious-shaped problem of ``sizes``
    (``DEMO_FULL``'s keys, and with ``quick`` the narrowed widths), then the
    same in PyTorch (unless ``torch`` is False); ``say`` prints each line."""
    import pyslide as ps

    shape = ps.data.PRESETS["delicious"]
    n_features = sizes.get("n_features", shape["n_features"])
    n_labels = sizes.get("n_labels", shape["n_labels"])
    say(f"pyslide {ps.__version__} demo: a Delicious-200K-shaped synthetic problem "
        f"({n_features:,} features, {n_labels:,} labels"
        + (", narrowed by --quick" if quick else "") + "), "
        f"{sizes['samples']} training and {sizes['test']} test rows, {sizes['epochs']} "
        f"epochs, {threads} threads"
        + (", OpenMP" if ps.openmp_enabled() else ", no OpenMP (serial kernels)"))
    t0 = time.perf_counter()
    X, Y, Xt, Yt = ps.data.make_xc("delicious", n_samples=sizes["samples"],
                                   n_test=sizes["test"], n_features=n_features,
                                   n_labels=n_labels, seed=seed)
    say(f"generated the data in {time.perf_counter() - t0:.1f} s: "
        f"{X.nnz / X.shape[0]:.0f} features and {Y.nnz / Y.shape[0]:.1f} labels per row")
    net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1])],
                     loss="softmax", optimizer=ps.Adam(lr=1e-3), threads=threads, seed=seed)
    say(f"\npyslide: {net!r}")
    rows = []      # (epoch, training seconds, scores)

    def report(network, epoch, logs):
        rows.append((epoch, logs["time"], network.evaluate(Xt, Yt, k=DEMO_KS)))
        say(epoch_line(epoch, logs["loss"], logs["time"], rows[-1][2]))

    net.fit(X, Y, epochs=sizes["epochs"], batch_size=128, callbacks=[report], verbose=0)
    summary = [("pyslide (LSH-sampled softmax)", rows[-1][1], net.step_,
                [scores for _, _, scores in rows])]
    baseline = None
    if torch:
        baseline = _torch_run(net, (X, Y, Xt, Yt), sizes["epochs"], threads, seed, say)
    else:
        say("\nPyTorch baseline skipped (--no-torch)")
    for line in summary_lines(summary + ([baseline] if baseline else []), rows):
        say(line)


def epoch_line(epoch, loss, seconds, scores):
    return (f"  epoch {epoch}  loss {loss:.4f}  train {seconds:6.1f} s  "
            + "  ".join(f"P@{k} {scores[f'p@{k}']:.4f}" for k in DEMO_KS))


def _torch_run(net, problem, epochs, threads, seed, say, n_sample=8192):
    """The same architecture in PyTorch (``torch_baseline.demo_run``), from
    pyslide's start of the first layer; None when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        say(f"\nPyTorch not installed: skipping the baseline (to see pyslide beside a "
            f"PyTorch sampled softmax: {TORCH_INSTALL_HINT})")
        return None
    from .metrics import evaluate_topk
    from .torch_baseline import demo_run

    X, Y, Xt, Yt = problem
    say(f"\nPyTorch {torch.__version__}: EmbeddingBag(sum) -> ReLU(128) -> sampled softmax "
        f"over the batch's labels + uniform negatives ({min(n_sample, Y.shape[1])} rows), "
        f"SparseAdam")
    totals = demo_run(X, Y, Xt, epochs, threads, seed, net.initial_std(0, X),
                      k=max(DEMO_KS), score=lambda ids: evaluate_topk(ids, Yt, ks=DEMO_KS),
                      on_epoch=lambda *epoch: say(epoch_line(*epoch)), n_sample=n_sample)
    return ("PyTorch (uniform sampled softmax)", totals["seconds"], totals["steps"],
            totals["scores"], totals["ends"])


def summary_lines(summary, rows):
    """The demo's closing table: each method's (name, seconds, steps, scores by
    epoch[, epoch ends]), and, with two methods, P@1 at equal training time."""
    lines = ["\nsummary (training time excludes data generation and evaluation; "
             "P@k after the last epoch, and the best epoch's P@1)",
             f"  {'method':<38}{'train s':>9}{'steps/s':>9}"
             + "".join(f"{'P@' + str(k):>8}" for k in DEMO_KS) + f"{'best P@1':>16}"]
    for name, seconds, steps, by_epoch, *_ in summary:
        last = by_epoch[-1]
        best = max(range(len(by_epoch)), key=lambda e: by_epoch[e]["p@1"])
        lines.append(f"  {name:<38}{seconds:9.1f}{steps / max(seconds, 1e-9):9.1f}"
                     + "".join(f"{last[f'p@{k}']:8.4f}" for k in DEMO_KS)
                     + f"{by_epoch[best]['p@1']:8.4f} (ep {best + 1})")
    if len(summary) < 2:
        return lines
    lines.append("  at equal training time (P@1 of the last epoch each had finished):")
    (_, ours_s, ours_steps, *_), (_, torch_s, torch_steps, torch_scores, torch_ends) = summary
    for epoch, seconds in enumerate(torch_ends, start=1):
        done = [r for r in rows if r[1] <= seconds]
        ours = (f"pyslide {done[-1][2]['p@1']:.4f} (epoch {done[-1][0]})" if done
                else "pyslide had not finished an epoch")
        lines.append(f"    {seconds:6.1f} s: PyTorch {torch_scores[epoch - 1]['p@1']:.4f} "
                     f"(epoch {epoch}), {ours}")
    lines.append(f"  pyslide steps/s / PyTorch steps/s: "
                 f"{(ours_steps / ours_s) / (torch_steps / torch_s):.2f}x "
                 f"(same data, architecture, batch, threads)")
    return lines


# --------------------------------------------------------------------------- bench

def find_bench_suite():
    """``benchmarks/bench_train.py`` of the source checkout pyslide was imported
    from, or None (never relative to the current folder, which may hold anything)."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(checkout, "benchmarks", "bench_train.py")
    if os.path.isfile(script) and os.path.isfile(os.path.join(checkout, "pyproject.toml")):
        return script
    return None


def suite_needs_missing_torch(script, extra):
    """Whether the suite would compare against PyTorch (its ``--methods`` in
    ``extra`` allowing) while PyTorch is not installed."""
    import importlib.util

    methods = None
    for i, arg in enumerate(extra):
        if arg == "--methods" and i + 1 < len(extra):
            methods = extra[i + 1]
        elif arg.startswith("--methods="):
            methods = arg.split("=", 1)[1]
    try:
        with open(script, encoding="utf-8", errors="replace") as f:
            uses_torch = "torch" in f.read()
    except OSError:
        uses_torch = False
    wants_torch = uses_torch and (methods is None or "torch" in methods)
    return wants_torch and importlib.util.find_spec("torch") is None


def run_bench_suite(script, out, threads, quick, extra, say=print):
    """Run the suite ``script`` writing ``out``; returns its exit status."""
    command = [sys.executable, script, "--out", out]
    if threads is not None:
        command += ["--threads", str(threads)]
    if quick:
        command += ["--preset", "small", "--epochs", "1", "--max-steps", "20"]
    command += extra
    say("running: " + " ".join(command))
    return subprocess.run(command).returncode


def builtin_bench(threads, quick, say=print):
    """The built-in speed benchmark: median step time of three output layers
    on a Delicious-shaped problem; says each row, returns the Markdown table."""
    import numpy as np
    import pyslide as ps

    if quick:   # narrowed like the quick demo: a smoke run of seconds
        steps = 8
        X, Y = ps.data.make_xc("delicious", n_samples=128 * steps, seed=0,
                               n_features=DEMO_QUICK["n_features"],
                               n_labels=DEMO_QUICK["n_labels"])
    else:
        steps = 60
        X, Y = ps.data.make_xc("delicious", n_samples=128 * steps, seed=0)
    configs = [("lsh batch", dict(share="batch")),
               ("uniform batch", dict(share="batch", hash=None)),
               ("lsh sample", dict(share="sample"))]
    lines = [f"pyslide {ps.__version__}, {threads} threads, Delicious-shaped synthetic "
             f"({X.shape[1]} features, {Y.shape[1]} labels), batch 128, Dense(128) -> Sampled",
             "", "| output layer | median step ms | steps/s |", "|---|---:|---:|"]
    for name, kw in configs:
        net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1], **kw)],
                         threads=threads, seed=0)
        net.fit(X, Y, epochs=1, batch_size=128, verbose=0)
        median = float(np.median(net.step_times_[2:] if len(net.step_times_) > 4
                                 else net.step_times_))
        lines.append(f"| {name} | {1e3 * median:.1f} | {1.0 / median:.1f} |")
        say(lines[-1])
    return "\n".join(lines)
