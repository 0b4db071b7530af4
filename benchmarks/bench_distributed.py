"""Sharded training on Ray beside the single-node Network: step time, time waiting
on the shards, bytes moved per step, per-shard memory, and P@k.

Every configuration trains the same network (sparse input -> Dense(128) ->
Sampled(labels) with the library's defaults) with the same seed, threads and
batch size: the single-node ``pyslide.Network`` and
``pyslide.distributed.ShardedNetwork`` with R = 1, 2, 4 shards on a local Ray
(or the cluster at ``--address``). Steps are timed by ``fit`` itself
(``step_times_``); the median is over the steps after the first ``--warmup``.

Examples
--------
The Amazon-670K shape, step time and bytes per step (what docs/scaling.md
quotes)::

    python benchmarks/bench_distributed.py --preset amazon --n-train 6400 \\
        --shards 1,2,4 --threads 1 --out benchmarks/results/distributed_amazon.json

Bytes per step at another label count (the same shape with 10x fewer labels)::

    python benchmarks/bench_distributed.py --preset amazon --n-labels 67009 \\
        --n-train 3200 --shards 2 --no-single --out benchmarks/results/distributed_amazon_67k.json

P@1 after 3 epochs, single node against 2 shards::

    python benchmarks/bench_distributed.py --preset amazon --epochs 3 --shards 2 \\
        --out benchmarks/results/distributed_amazon_p1.json

On a running cluster (the script unchanged but for the address)::

    python benchmarks/bench_distributed.py --address auto --preset small --shards 2
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

import common  # noqa: E402


def build_layers(ps, n_labels):
    return [ps.Dense(128), ps.Sampled(n_labels)]


def run_config(ps, name, make, X, Y, Xt, Yt, args):
    net = make()
    t0 = time.perf_counter()
    net.fit(X, Y, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    train_s = time.perf_counter() - t0
    steps = len(net.step_times_)
    record = {"config": name, "steps": steps, "train_s": round(train_s, 2),
              "median_step_s": common.median_step(net.step_times_, args.warmup),
              "load_avg_after": common.loadavg()}
    sharded = hasattr(net, "shards")
    if sharded:
        timings = net.timings_
        record.update(shards=net.shards,
                      shard_wait_s_per_step=timings["shards"] / max(steps, 1),
                      trunk_s_per_step=timings["trunk"] / max(steps, 1),
                      bytes_sent_per_step=net.bytes_per_step_["sent"],
                      bytes_received_per_step=net.bytes_per_step_["received"],
                      shard_memory=net.shard_memory(),
                      # the busiest shard's seconds of computing per step, by call
                      shard_compute_s_per_step={
                          key: max(t[key] for t in net.shard_timings_) / max(steps, 1)
                          for key in net.shard_timings_[0]})
    if args.eval:
        t0 = time.perf_counter()
        ids = net.predict(Xt, k=5)
        record["predict_s"] = round(time.perf_counter() - t0, 2)
        record.update(common.topk_metrics(ids, Yt))
    if sharded:
        net.close()
    return record


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="amazon", choices=sorted(common.PRESETS))
    ap.add_argument("--n-train", type=int, default=None)
    ap.add_argument("--n-test", type=int, default=2000)
    ap.add_argument("--n-labels", type=int, default=None,
                    help="make_xc's label count instead of the preset's")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1, help="threads of each shard and of "
                                                           "the single-node network")
    ap.add_argument("--shards", default="1,2,4")
    ap.add_argument("--no-single", action="store_true", help="skip the single-node Network")
    ap.add_argument("--single-threads", default=None,
                    help="thread counts of the single-node Network (default: --threads); "
                         "the first is the reference of 'vs single'")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--eval", action="store_true", help="P@k on the test rows after training")
    ap.add_argument("--address", default=None, help="a Ray cluster's address ('auto' for "
                                                    "the one started with ray start)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import ray
    import pyslide as ps
    from pyslide.distributed import ShardedNetwork

    load_start = common.loadavg()
    shape = dict(common.PRESETS[args.preset])
    if args.n_labels:
        X, Y, Xt, Yt = ps.data.make_xc(shape["make_xc"], n_samples=args.n_train or
                                       shape["n_train"], n_test=args.n_test,
                                       n_labels=args.n_labels, seed=args.seed)
        X, Y, Xt, Yt = (m.astype(np.float32).tocsr() for m in (X, Y, Xt, Yt))
        info = dict(source="make_xc", preset=args.preset, n_labels=args.n_labels)
    else:
        X, Y, Xt, Yt, info = common.load_problem(args.preset, seed=args.seed,
                                                 n_train=args.n_train, n_test=args.n_test)
    n_labels = Y.shape[1]
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False,
                 log_to_driver=False)
    records = []
    round_trip = measure_round_trip(ray)
    print(json.dumps({"round_trip": round_trip}), flush=True)
    single_threads = [int(t) for t in (args.single_threads or str(args.threads)).split(",")]
    for i, threads in enumerate([] if args.no_single else single_threads):
        records.append(run_config(ps, "single" if i == 0 else f"single threads={threads}",
                                  lambda: ps.Network(X.shape[1], build_layers(ps, n_labels),
                                                     threads=threads, seed=args.seed),
                                  X, Y, Xt, Yt, args))
        print(json.dumps(records[-1]), flush=True)
    for shards in [int(s) for s in args.shards.split(",") if s]:
        records.append(run_config(ps, f"shards={shards}", lambda: ShardedNetwork(
            X.shape[1], build_layers(ps, n_labels), shards=shards, threads=args.threads,
            seed=args.seed), X, Y, Xt, Yt, args))
        print(json.dumps(records[-1]), flush=True)
    single = next((r for r in records if r["config"] == "single"), None)
    if single is not None:
        for r in records:
            r["step_vs_single"] = r["median_step_s"] / single["median_step_s"]
    result = {"command": "python " + " ".join([sys.argv[0]] + (argv or sys.argv[1:])),
              "problem": info, "n_labels": n_labels, "batch_size": args.batch_size,
              "threads": args.threads, "epochs": args.epochs,
              "ray_address": args.address or "local",
              "round_trip": round_trip,
              **common.machine_info(load_start), "records": records}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    return result


class _Echo:
    def echo(self, x):
        return x


def measure_round_trip(ray, calls=200):
    """Median seconds of one round of calls to 2 actors, as a step makes
    them: an empty call, and one passing the hidden vectors of a batch of
    128 x 128 (put once) and returning an array of that size."""
    actors = [ray.remote(_Echo).options(num_cpus=0).remote() for _ in range(2)]
    ray.get([a.echo.remote(0) for a in actors])
    hidden = np.zeros((128, 128), np.float32)
    out = {}
    for name, make in (("empty", lambda: 0), ("hidden", lambda: ray.put(hidden))):
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            arg = make()
            ray.get([a.echo.remote(arg) for a in actors])
            times.append(time.perf_counter() - t0)
        out[name + "_s"] = float(np.median(times))
    for a in actors:
        ray.kill(a)
    return out


def table(result):
    lines = [f"`{result['command']}`  ", "",
             f"{result['n_labels']:,} labels, batch {result['batch_size']}, "
             f"{result['threads']} thread(s) per shard; load average at start "
             f"{result['load_avg_at_start']}; a round of calls to 2 actors: "
             f"{result['round_trip']['empty_s'] * 1e3:.2f} ms empty, "
             f"{result['round_trip']['hidden_s'] * 1e3:.2f} ms with a batch's hidden "
             f"vectors", "",
             "| config | median step (s) | vs single | waiting on shards (s/step) | "
             "trunk (s/step) | bytes sent / step | bytes received / step | "
             "arrays per shard (MB) | P@1 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["records"]:
        mem = r.get("shard_memory")
        lines.append(
            f"| {r['config']} | {r['median_step_s']:.4f} | "
            f"{r.get('step_vs_single', 1.0):.2f}x | "
            f"{_num(r.get('shard_wait_s_per_step'), '.4f')} | "
            f"{_num(r.get('trunk_s_per_step'), '.4f')} | "
            f"{_num(r.get('bytes_sent_per_step'), ',.0f')} | "
            f"{_num(r.get('bytes_received_per_step'), ',.0f')} | "
            f"{'' if not mem else '%.0f' % (max(m['arrays'] for m in mem) / 1e6)} | "
            f"{_num(r.get('p@1'), '.4f')} |")
    return "\n".join(lines)


def _num(value, fmt):
    return "" if value is None else format(value, fmt)


if __name__ == "__main__":
    main()
