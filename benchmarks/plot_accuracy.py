"""Plot test P@1 per epoch, one line per method, one panel per dataset.

    python benchmarks/plot_accuracy.py benchmarks/results/accuracy_bibtex.json \\
        [benchmarks/results/accuracy_delicious.json] --out docs/img/accuracy.png

Reads files written by ``bench_accuracy.py --out``. Records of several seeds of
one method are drawn as separate lines (the seed in the label).
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
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _dataset_title(record):
    data = record.get("data", {})
    name = record.get("dataset", "?")
    return (f"{name}: {data.get('n_train', '?'):,} train / {data.get('n_test', '?'):,} test rows, "
            f"{data.get('n_labels', '?'):,} labels")


def plot(files, out, metric="p@1", methods=None):
    by_dataset = {}
    for path in files:
        with open(path) as f:
            results = json.load(f)
        for r in results["records"]:
            if "error" in r or (methods and r["method"] not in methods):
                continue
            by_dataset.setdefault(r.get("dataset", path), []).append(r)
    if not by_dataset:
        raise SystemExit("no successful records to plot")
    n = len(by_dataset)
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 4.5), dpi=120, squeeze=False)
    for ax, (dataset, records) in zip(axes[0], by_dataset.items()):
        seeds = {r.get("seed") for r in records}
        for r in records:
            xs = [e["epoch"] for e in r["epochs"]]
            ys = [e[metric] for e in r["epochs"]]
            best = max(ys)
            label = r["method"] + (f" s{r['seed']}" if len(seeds) > 1 else "")
            label += f"  (last {ys[-1]:.3f}, best {best:.3f})"
            ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.2, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"test {metric.upper()}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(_dataset_title(records[0]), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    first = next(iter(by_dataset.values()))[0]
    fig.suptitle(f"test {metric.upper()} per epoch, {first['threads']} threads, "
                 f"Dense(128, relu) -> softmax over all labels", fontsize=10)
    common.save_figure(fig, out, first)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="JSON files written by bench_accuracy.py --out")
    p.add_argument("--out", required=True, help="PNG path (e.g. docs/img/accuracy_bibtex.png)")
    p.add_argument("--metric", default="p@1", help="p@1, p@3, p@5, ndcg@5, loss, ...")
    p.add_argument("--methods", default=None, help="comma-separated subset of methods to draw")
    args = p.parse_args(argv)
    methods = set(args.methods.split(",")) if args.methods else None
    plot(args.results, args.out, metric=args.metric, methods=methods)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
