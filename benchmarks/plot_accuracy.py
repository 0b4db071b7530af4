"""Plot test P@1 per epoch, one line per method, one panel per dataset.

    python benchmarks/plot_accuracy.py benchmarks/results/accuracy_bibtex.json \\
        [benchmarks/results/accuracy_delicious.json] --out docs/img/accuracy.png

Reads files written by ``bench_accuracy.py --out``. Records of several seeds of
one method are drawn as separate lines (the seed in the label).
``--study RUN`` adds, to the Delicious panel, a run of ``study_delicious.py``
kept in ``benchmarks/results/delicious_study.json`` (same data and network),
as a black line labelled with its source: the full softmax's 4 epochs
(``dense-row-drop``, 40 minutes an epoch here) come from there.

    python benchmarks/plot_accuracy.py benchmarks/results/accuracy_delicious.json \
        --study dense-row-drop --out docs/img/accuracy_delicious.png
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


STUDY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                     "delicious_study.json")
STUDY_METRICS = {"p@1": "p1", "p@5": "p5", "loss": "loss"}


def _study_run(name, metric, x="epoch"):
    """(epochs or cumulated training seconds, values) of a run in delicious_study.json."""
    if metric not in STUDY_METRICS:
        raise SystemExit(f"--study: the study records {sorted(STUDY_METRICS)}, not {metric}")
    with open(STUDY) as f:
        runs = json.load(f)["runs"]
    if name not in runs:
        raise SystemExit(f"--study: no run {name!r} in {STUDY}")
    rows = [r for r in runs[name] if r.get(STUDY_METRICS[metric]) is not None]
    if x == "seconds" and any(r.get("time") is None for r in rows):
        raise SystemExit(f"--study {name}: the run recorded no training seconds")
    xs = [r["epoch"] if x == "epoch" else r["time"] for r in rows]
    return xs, [r[STUDY_METRICS[metric]] for r in rows]


def plot(files, out, metric="p@1", methods=None, study=None, x="epoch"):
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
            xs = [e["epoch"] if x == "epoch" else e["train_seconds"] for e in r["epochs"]]
            ys = [e[metric] for e in r["epochs"]]
            best = max(ys)
            label = r["method"] + (f" s{r['seed']}" if len(seeds) > 1 else "")
            label += f"  (last {ys[-1]:.3f}, best {best:.3f})"
            ax.plot(xs, ys, marker="o", markersize=2.5, linewidth=1.2, label=label)
        if study and "delicious" in str(dataset):
            xs, ys = _study_run(study, metric, x)
            ax.plot(xs, ys, color="black", marker="o", markersize=2.5, linewidth=2,
                    label=f"full softmax, study_delicious.py {study}  (last {ys[-1]:.3f})")
        ax.set_xlabel("epoch" if x == "epoch" else "training seconds (cumulated)")
        ax.set_ylabel(f"test {metric.upper()}")
        if x == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(_dataset_title(records[0]), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    first = next(iter(by_dataset.values()))[0]
    per = "per epoch" if x == "epoch" else "against training seconds"
    fig.suptitle(f"test {metric.upper()} {per}, {first['threads']} threads, "
                 f"Dense(128, relu) -> softmax over all labels", fontsize=10)
    common.save_figure(fig, out, first)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="+", help="JSON files written by bench_accuracy.py --out")
    p.add_argument("--out", required=True, help="PNG path (e.g. docs/img/accuracy_bibtex.png)")
    p.add_argument("--metric", default="p@1", help="p@1, p@3, p@5, ndcg@5, loss, ...")
    p.add_argument("--methods", default=None, help="comma-separated subset of methods to draw")
    p.add_argument("--study", default=None,
                   help="a run of benchmarks/results/delicious_study.json to draw on the "
                        "Delicious panel (e.g. dense-row-drop, the full softmax)")
    p.add_argument("--x", choices=("epoch", "seconds"), default="epoch",
                   help="x axis: epochs, or cumulated training seconds (time to accuracy)")
    args = p.parse_args(argv)
    methods = set(args.methods.split(",")) if args.methods else None
    plot(args.results, args.out, metric=args.metric, methods=methods, study=args.study, x=args.x)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
