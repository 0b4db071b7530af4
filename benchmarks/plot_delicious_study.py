"""P@1 per epoch of the Delicious study's runs, beside the full softmax.

Reads the lines ``NAME {'epoch': .., 'p1': .., ...}`` that
``study_delicious.py`` prints (one file or many; other lines are skipped),
keeps them in ``benchmarks/results/delicious_study.json`` (merged with what
is there, by run name) and draws P@1 and P@5 per epoch with the full
softmax's run (``--reference``) and 95% of it dashed.

    python benchmarks/study_delicious.py 4 dense-row-drop,corr-mixed-drop-uni16k > study.log
    python benchmarks/plot_delicious_study.py study.log --reference dense-row-drop
    python benchmarks/plot_delicious_study.py --only corr-mixed-drop,corr-mixed-drop-neg8k
"""
import argparse
import ast
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "delicious_study.json")


def parse(lines):
    """{run name: [per-epoch dicts]} from study_delicious.py's output."""
    runs = {}
    for line in lines:
        name, sep, rest = line.strip().partition(" ")
        if not sep or not rest.startswith("{'epoch'"):
            continue
        record = ast.literal_eval(rest.replace("nan", "None"))
        runs.setdefault(name, []).append(record)
    for records in runs.values():
        records.sort(key=lambda r: r["epoch"])
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="*")
    parser.add_argument("--reference", default="dense-row-drop")
    parser.add_argument("--only", default=None,
                        help="comma separated run names to draw (all are kept in the JSON)")
    parser.add_argument("--out", default=os.path.join(HERE, "..", "docs", "img",
                                                      "delicious_study.png"))
    args = parser.parse_args()
    runs = {}
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            runs = json.load(f)["runs"]
    for path in args.logs:
        with open(path) as f:
            runs.update(parse(f))
    if not runs:
        sys.exit("no runs: give study_delicious.py output files")
    with open(RESULTS, "w") as f:
        json.dump({"command": " ".join(sys.argv), "runs": runs}, f, indent=1)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = {name: records for name, records in runs.items()
             if args.only is None or name in args.only.split(",") or name == args.reference}
    colors = {name: cycle[i % len(cycle)] for i, name in enumerate(sorted(drawn))}
    for ax, metric in zip(axes, ("p1", "p5")):
        for name, records in sorted(drawn.items()):
            records = [r for r in records if r.get(metric) is not None]
            if not records:
                continue
            epochs = [r["epoch"] for r in records]
            ref = name == args.reference
            ax.plot(epochs, [r[metric] for r in records], marker="o", label=name,
                    color="black" if ref else colors[name], linewidth=2.5 if ref else 1.2)
            if ref:
                ax.plot(epochs, [0.95 * r[metric] for r in records], color="black",
                        linestyle="--", linewidth=1, label="95% of the full softmax")
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(f"test P@{metric[1]}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("make_xc('delicious'), full size: sampled outputs against the full softmax")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out} and {RESULTS}")


if __name__ == "__main__":
    main()
