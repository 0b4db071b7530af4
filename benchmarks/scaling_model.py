"""The step-time and memory model of docs/scaling.md: fitted to, and checked
against, bench_distributed.py's measurements, then projected to N machines.

    python benchmarks/scaling_model.py benchmarks/results/distributed_amazon.json

Model of one softmax step with LSH (batch B, hidden width d, active budget A,
one shard per machine, R = N shards, c threads per shard):

    step(N) = trunk + shard(N) + rounds * latency + bytes(N) / bandwidth
    shard(N) = (active_cost * A / N + full_build(N) / 500 + hash_row_cost * A / N) / c
    full_build(N) = hash_row_cost * rows(N) + table_byte_cost * table bytes
    bytes(N) = N * (B*d*4 + labels) out of the driver + N * B*d*4 back

``trunk`` (the driver's input and hidden layers), ``active_cost`` (a
shard's seconds per active row per step: selection, logits, deltas,
gradients and Adam on that row, one thread), ``hash_row_cost`` and
``table_byte_cost`` (a full re-hash: per row, and per byte of tables
cleared; a full build every 500 steps, and the rows a step changed
re-hashed at the incremental rebuilds) come from the 1- and 2-shard
measurements; the other shard counts check them.
``latency`` (per round) and ``bandwidth`` (of the driver's link) are
assumptions for a cluster: stated below, not measured here.
"""
import json
import sys

# assumptions for a cluster of machines (not measured: we had one machine)
LATENCY_S = 1e-3          # one Ray actor-call round trip on a data-centre network
BANDWIDTH_BPS = 1.25e9    # the driver's link, 10 Gb/s
ROUNDS = 3                # softmax with LSH: candidates, partition, gradients
THREADS_PER_SHARD = 8     # c: threads of each shard (and of the driver's trunk)
PARALLEL_EFFICIENCY = 0.7  # of c threads on a shard's kernels
BYTES_PER_ROW = 128 * 4 * 3 + 4 * 3 + 4   # W, mW, vW (d = 128), b, mb, vb, touched
TABLE_BYTES = 16 * (1 << 16) * 128 * 4 + 16 * (1 << 16) * 4   # L=16, K=16, 128-id buckets


# a shard's calls of a step (runs before the row updates had their own
# call time them inside "backward")
STEP_CALLS = ("begin", "forward", "backward", "update")


def rows_of(result, shards):
    return -(-result["n_labels"] // shards)


def fit(result, active=8192):
    """The model's costs from the 1-shard run (one thread)."""
    one = next(r for r in result["records"] if r["config"] == "shards=1")
    compute = one["shard_compute_s_per_step"]
    step_work = sum(compute[k] for k in STEP_CALLS if k in compute)
    # the run re-hashes every row once (the first step's full build: a
    # 50-step run reaches no scheduled rebuild). A full build costs a part
    # per row (hashing, inserting) and a part per byte of tables (clearing
    # them): two shard counts separate the two
    two = next(r for r in result["records"] if r["config"] == "shards=2")
    build1 = compute["rebuild"] * one["steps"]
    build2 = two["shard_compute_s_per_step"]["rebuild"] * two["steps"]
    per_row = max(build1 - build2, 0.0) / (rows_of(result, 1) - rows_of(result, 2))
    table_bytes = one["shard_memory"][0]["tables"]
    # what a step spends beyond the trunk and the shard's compute: Ray's
    # calls and the object store on this machine
    overhead = one["median_step_s"] - one["trunk_s_per_step"] - step_work
    return {"trunk": one["trunk_s_per_step"], "active_cost": step_work / active,
            "hash_row_cost": per_row,
            "table_byte_cost": (build1 - per_row * rows_of(result, 1)) / table_bytes,
            "local_overhead": max(overhead, 0.0)}


def check(result, params, active=8192):
    """Measured against modelled, for every shard count measured here."""
    lines = ["| shards | shard step work, measured (s) | modelled (s) | full re-hash, "
             "measured (s) | modelled (s) | median step, measured (s) | modelled (s) |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["records"]:
        if "shards" not in r:
            continue
        R = r["shards"]
        c = r["shard_compute_s_per_step"]
        work = sum(c[k] for k in STEP_CALLS if k in c)
        work_model = params["active_cost"] * active / R
        build = c["rebuild"] * r["steps"]
        build_model = (params["hash_row_cost"] * rows_of(result, R)
                       + params["table_byte_cost"] * r["shard_memory"][0]["tables"])
        step_model = params["trunk"] + work_model + params["local_overhead"]
        lines.append(f"| {R} | {work:.4f} | {work_model:.4f} | {build:.2f} | "
                     f"{build_model:.2f} | {r['median_step_s']:.4f} | {step_model:.4f} |")
    return "\n".join(lines)


def project(params, labels, machines, batch=128, d=128, active=8192, labels_per_row=5.45,
            rebuild_every=50, full_every=10):
    """Step time and memory of ``labels`` labels on ``machines`` machines
    (one shard each); the re-hashing amortised: a full build every
    ``rebuild_every * full_every`` steps, and the rows a step changed
    (A / N per shard) re-hashed at the incremental rebuilds."""
    c = THREADS_PER_SHARD * PARALLEL_EFFICIENCY
    rows = labels / machines
    work = params["active_cost"] * active / machines
    full_build = params["hash_row_cost"] * rows + params["table_byte_cost"] * TABLE_BYTES
    rehash = (full_build / (rebuild_every * full_every)
              + params["hash_row_cost"] * active / machines)
    shard = (work + rehash) / c
    trunk = params["trunk"] / c
    payload = batch * d * 4
    label_bytes = batch * labels_per_row * 4 + (batch + 1) * 8
    moved = machines * (payload + label_bytes) + machines * payload
    network = ROUNDS * LATENCY_S + moved / BANDWIDTH_BPS
    memory = rows * BYTES_PER_ROW + TABLE_BYTES
    return {"trunk_s": trunk, "shard_s": shard, "network_s": network,
            "step_s": trunk + shard + network, "bytes_per_step": moved,
            "memory_per_machine_gb": memory / 1e9}


def main(path):
    result = json.loads(open(path).read())
    params = fit(result)
    print("fitted on", path, json.dumps({k: float(f"{v:.4g}") for k, v in params.items()}))
    print()
    print(check(result, params))
    print()
    print(f"assumptions: {THREADS_PER_SHARD} threads per shard at {PARALLEL_EFFICIENCY:.0%} "
          f"efficiency, {ROUNDS} rounds of {LATENCY_S * 1e3:g} ms, driver link "
          f"{BANDWIDTH_BPS * 8 / 1e9:g} Gb/s")
    print()
    print("| labels | machines | trunk (ms) | busiest shard (ms) | network (ms) | step (ms) | "
          "bytes / step | memory per machine (GB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for labels in (10 ** 7, 10 ** 8):
        for machines in (1, 4, 16, 64):
            p = project(params, labels, machines)
            print(f"| {labels:.0e} | {machines} | {p['trunk_s'] * 1e3:.1f} | "
                  f"{p['shard_s'] * 1e3:.1f} | {p['network_s'] * 1e3:.1f} | "
                  f"{p['step_s'] * 1e3:.1f} | {p['bytes_per_step']:,.0f} | "
                  f"{p['memory_per_machine_gb']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/distributed_amazon.json")
