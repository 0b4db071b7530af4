"""Thread scaling: median step time against threads, from bench_train JSON files.

Run bench_train once per thread count, then plot:

    for t in 1 2; do
        python benchmarks/bench_train.py --threads $t --preset delicious --epochs 1 \\
            --max-steps 80 --methods torch-sampled:8192,pyslide:lsh-batch \\
            --out benchmarks/results/scaling_delicious_t$t.json
    done
    python benchmarks/plot_scaling.py benchmarks/results/scaling_delicious_t*.json \\
        --out docs/img/scaling_delicious.png
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def records(paths):
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for record in data["records"] if isinstance(data, dict) and "records" in data else data:
            yield record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    by_method = {}
    for record in records(args.files):
        by_method.setdefault(record["method"], []).append(
            (record["threads"], record["median_step_seconds"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    print("| method | " + " | ".join(f"{t} thread(s)" for t, _ in sorted(next(iter(by_method.values())))) + " | speed-up |")
    for method, points in sorted(by_method.items()):
        points.sort()
        threads = [t for t, _ in points]
        ms = [1000 * s for _, s in points]
        ax.plot(threads, ms, marker="o", label=method)
        cells = " | ".join(f"{v:.1f} ms" for v in ms)
        print(f"| {method} | {cells} | {ms[0] / ms[-1]:.2f}x |")
    ax.set_xlabel("threads")
    ax.set_ylabel("median step (ms)")
    ax.set_xticks(sorted({t for pts in by_method.values() for t, _ in pts}))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Thread scaling, Delicious shape, batch 128")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
