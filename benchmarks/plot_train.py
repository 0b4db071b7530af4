"""Plot P@1 against cumulative training seconds for every method of a results file.

    python benchmarks/plot_train.py benchmarks/results/delicious.json \\
        --out docs/img/train_delicious.png

Training seconds exclude data generation and evaluation, as measured by
``bench_train.py``. Each marker is the end of one epoch.
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402


def plot(results, out, metric="p@1", title=None, log_x=True):
    records = [r for r in results["records"] if "error" not in r]
    if not records:
        raise SystemExit("no successful records to plot")
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for r in records:
        xs = [0.0] + [e["train_seconds"] for e in r["epochs"]]
        ys = [0.0] + [e[metric] for e in r["epochs"]]
        step = r.get("median_step_seconds")
        label = r["method"] + (f"  ({step * 1000:.0f} ms/step)" if step else "")
        ax.plot(xs[1:], ys[1:], marker="o", markersize=3.5, label=label)
    if log_x:
        ax.set_xscale("log")
        # Plain numbers at 1-2-5 steps instead of crowded powers of ten.
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training wall-clock seconds (cumulative, evaluation excluded)")
    ax.set_ylabel(metric.upper())
    first = records[0]
    data = first.get("preset") or first.get("data", {}).get("data_dir", "")
    ax.set_title(title or f"{data}: {metric.upper()} vs training time, "
                          f"{first['threads']} threads, batch {first['batch']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    common.save_figure(fig, out, first)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", help="JSON file written by bench_train.py --out")
    p.add_argument("--out", required=True, help="PNG path (e.g. docs/img/train_delicious.png)")
    p.add_argument("--metric", default="p@1", help="p@1, p@3, p@5, ndcg@5, ...")
    p.add_argument("--title", default=None)
    p.add_argument("--linear-x", action="store_true", help="linear instead of log time axis")
    args = p.parse_args(argv)
    with open(args.results) as f:
        results = json.load(f)
    plot(results, args.out, metric=args.metric, title=args.title, log_x=not args.linear_x)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
