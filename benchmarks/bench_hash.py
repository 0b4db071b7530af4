"""LSH speed: hashing, table filling and queries, side by side with NumPy.

Workload (SLIDE's output layer re-hash): 524,288 neurons of d=128.

* hash: SimHash (Gaussian, K in {6, 9, 12}, L=50) of all neurons through
  ``family.hash_dense`` vs NumPy ``(W @ P^T > 0)`` packed into bucket ids
  (same chunking); sparse SimHash (density 1/3) and DWTA (bins of 8) for
  reference. GFLOP/s of the Gaussian hash (2 * n * d * L * K flops) as a
  fraction of NumPy's float32 matmul ``W @ P^T`` measured in the same run.
* fill: the kernel of ``LSHTables.build_from_codes`` (bucket_size 128, FIFO
  and reservoir) on precomputed codes vs a NumPy FIFO fill (stable argsort per
  table, keep the newest bucket_size of each bucket).
* build: ``LSHTables.build`` end to end (hash + fill).
* recall: recall@10 (true top-10 by inner product) of a 1% LSH sample on a
  random 50,000 x 128 layer, against a uniform 1%.
* query: a batch of 128 dense queries, ``mode="sample"`` for n = 1,024 to
  8,192 ids per row, and ``mode="union"``, vs NumPy doing the same per row
  (concatenate the hit buckets, de-duplicate, top up with random ids).

Every timing is the median of ``--repeats`` runs, ours and NumPy's
interleaved so machine load hits both alike. Run:

    python benchmarks/bench_hash.py --threads 2
"""
import argparse
import os
import platform
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from pyslide import _hash, _tables
from pyslide.hashing import DWTA, LSHTables, SimHash

N_ITEMS, DIM, L = 524_288, 128, 50
BATCH = 128
CHUNK = 4096


class Seconds(float):
    """A median time that also remembers the fastest run (printed as
    ``median (min)``: on a loaded machine the minimum shows the kernel,
    the median what a user would see)."""

    def __new__(cls, times):
        obj = super().__new__(cls, float(np.median(times)))
        obj.best = float(np.min(times))
        return obj

    def fmt(self, scale=1.0, digits=2):
        return f"{self * scale:.{digits}f} ({self.best * scale:.{digits}f})"


def median_time(fn, repeats):
    return interleaved([fn], repeats)[0]


def interleaved(fns, repeats):
    """Median seconds of each function, runs interleaved round-robin."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t0)
    return [Seconds(t) for t in times]


def numpy_simhash(W, P, K):
    """NumPy twin of Gaussian SimHash: sign bits of W @ P^T packed per table."""
    n = W.shape[0]
    codes = np.empty((n, P.shape[0] // K), dtype=np.int32)
    weights = (1 << np.arange(K)).astype(np.int32)
    for s in range(0, n, CHUNK):
        bits = (W[s:s + CHUNK] @ P.T) > 0
        codes[s:s + CHUNK] = bits.reshape(bits.shape[0], -1, K) @ weights
    return codes


def numpy_fifo_fill(codes, n_buckets, bucket_size):
    """NumPy FIFO tables: the newest bucket_size ids of each bucket."""
    n, n_tables = codes.shape
    ids = np.empty((n_tables, n_buckets, bucket_size), dtype=np.int32)
    counts = np.empty((n_tables, n_buckets), dtype=np.int32)
    for l in range(n_tables):
        order = np.argsort(codes[:, l], kind="stable")
        sorted_codes = codes[order, l]
        counts[l] = np.bincount(sorted_codes, minlength=n_buckets)
        starts = np.concatenate([[0], np.cumsum(counts[l])[:-1]])
        rank = np.arange(n) - starts[sorted_codes]          # insertion number in bucket
        keep = rank >= counts[l][sorted_codes] - bucket_size
        ids[l, sorted_codes[keep], rank[keep] % bucket_size] = order[keep]
    return ids, counts


def numpy_query(tables, codes, n_wanted, rng):
    """Per row: ids of the hit buckets in table order, de-duplicated (first
    occurrences), cut to n_wanted, topped up with random ids."""
    ids, counts = tables.ids, tables.counts
    bs = tables.bucket_size
    out = []
    for row in codes:
        parts = [ids[l, b, :min(counts[l, b], bs)] for l, b in enumerate(row)]
        cand = np.concatenate(parts)
        _, first = np.unique(cand, return_index=True)
        cand = cand[np.sort(first)]
        if n_wanted is not None:
            cand = cand[:n_wanted]
            if len(cand) < n_wanted:
                extra = rng.choice(tables.n_items, 2 * n_wanted, replace=False)
                extra = extra[~np.isin(extra, cand)][:n_wanted - len(cand)]
                cand = np.concatenate([cand, extra])
        out.append(cand)
    return out


def recall_table(threads):
    """Recall@10 of a 1% LSH sample on a random layer (50,000 x 128)."""
    rng = np.random.default_rng(0)
    n, d, n_queries, n_sample = 50_000, 128, 200, 500
    W = rng.standard_normal((n, d), dtype=np.float32)
    Q = rng.standard_normal((n_queries, d), dtype=np.float32)
    top10 = np.argsort(-(Q @ W.T), axis=1)[:, :10]

    def recall(indptr, ids):
        return float(np.mean([np.isin(top10[r], ids[indptr[r]:indptr[r + 1]]).mean()
                              for r in range(n_queries)]))

    random_ids = [rng.choice(n, n_sample, replace=False) for _ in range(n_queries)]
    random_recall = float(np.mean([np.isin(top10[r], random_ids[r]).mean()
                                   for r in range(n_queries)]))
    print(f"\n## recall@10 of a 1% sample ({n_sample} of {n:,} random neurons, d={d}, "
          f"{n_queries} random queries); uniform 1%: {random_recall:.3f}")
    print("| family | bucket_size | sample n=500 | union cap 500 | threshold 2, cap 500 | "
          "mean union size |")
    print("|---|---|---|---|---|---|")
    for spec in [SimHash(K=9, L=50, seed=0), SimHash(K=12, L=50, seed=0),
                 SimHash(K=9, L=50, density=1 / 3, seed=0), DWTA(K=4, L=50, seed=0),
                 DWTA(K=6, L=50, seed=0)]:
        fam = spec.compile(d)
        tables = LSHTables(fam, bucket_size=128).build(W, threads=threads)
        sample = recall(*tables.query(Q, mode="sample", n=n_sample, seed=1, threads=threads))
        union = recall(*tables.query(Q, mode="union", cap=n_sample, threads=threads))
        thresh = recall(*tables.query(Q, mode="threshold", threshold=2, cap=n_sample,
                                      threads=threads))
        indptr, _ = tables.query(Q, mode="union", threads=threads)
        print(f"| {spec!r} | 128 | {sample:.3f} | {union:.3f} | {thresh:.3f} | "
              f"{np.diff(indptr).mean():,.0f} |")


def bench_hashing(W, threads, repeats, quick):
    print("\n## hash 524,288 x 128, L=50 (seconds)")
    print("| family | K | pyslide s, median (min) | NumPy s | speed-up | GFLOP/s "
          "| % of NumPy sgemm |")
    print("|---|---|---|---|---|---|---|")
    for K in ([9] if quick else [6, 9, 12]):
        fam = SimHash(K=K, L=L, seed=0).compile(DIM)
        P = np.ascontiguousarray(fam.arrays["proj_t"].T)
        flops = 2.0 * N_ITEMS * DIM * L * K
        out = np.empty((N_ITEMS, L * K), dtype=np.float32)
        ours, numpy_hash, matmul = interleaved([
            lambda: fam.hash_dense(W, threads=threads),
            lambda: numpy_simhash(W, P, K),
            lambda: np.matmul(W, P.T, out=out)], repeats)
        gflops, sgemm_gflops = flops / ours / 1e9, flops / matmul / 1e9
        print(f"| SimHash Gaussian | {K} | {ours.fmt(1, 3)} | {numpy_hash.fmt(1, 3)} | "
              f"{numpy_hash / ours:.1f}x | {gflops:.1f} | "
              f"{100 * gflops / sgemm_gflops:.0f}% (sgemm {sgemm_gflops:.1f} GFLOP/s, "
              f"{matmul.fmt(1, 3)} s) |")
    for spec in [SimHash(K=9, L=L, density=1 / 3, seed=0), DWTA(K=6, L=L, seed=0)]:
        fam = spec.compile(DIM)
        ours = median_time(lambda: fam.hash_dense(W, threads=threads), max(1, repeats // 2))
        print(f"| {type(spec).__name__}{' sparse 1/3' if spec.name == 'simhash' else ''} | "
              f"{spec.K} | {ours.fmt(1, 3)} | - | - | - | - |")


def bench_fill(W, threads, repeats):
    fam = SimHash(K=9, L=L, seed=0).compile(DIM)
    codes = fam.hash_dense(W, threads=threads)
    codes_by_table = np.ascontiguousarray(codes.T)
    print("\n## fill tables, K=9, L=50, bucket_size 128 (26.2 M insertions)")
    print("| policy | pyslide fill ms, median (min) | NumPy FIFO ms | speed-up "
          "| build (hash+fill) s |")
    print("|---|---|---|---|---|")
    for policy in ["fifo", "reservoir"]:
        tables = LSHTables(fam, bucket_size=128, policy=policy, seed=0)
        code = _tables.POLICIES[policy]

        def fill():
            _tables._build_from_codes(tables.compiled, codes_by_table, code, 0, threads)
        if policy == "fifo":
            fill_s, numpy_s = interleaved(
                [fill, lambda: numpy_fifo_fill(codes, fam.n_buckets, 128)], repeats)
            numpy_txt, ratio = f"{numpy_s * 1e3:.0f}", f"{numpy_s / fill_s:.0f}x"
        else:
            fill_s = median_time(fill, repeats)
            numpy_txt = ratio = "-"
        build_s = median_time(lambda: tables.build(W, threads=threads), max(1, repeats // 2))
        print(f"| {policy} | {fill_s.fmt(1e3, 1)} | {numpy_txt} | {ratio} | "
              f"{build_s.fmt(1, 3)} |")


def bench_query(W, threads, repeats, rng):
    fam = SimHash(K=9, L=L, seed=0).compile(DIM)
    Q = rng.standard_normal((BATCH, DIM), dtype=np.float32)
    tables = LSHTables(fam, bucket_size=128, policy="fifo").build(W, threads=threads)
    qcodes = _hash._hash_rows_single(fam, Q)
    print("\n## query, batch 128, K=9 L=50 bucket_size 128, 524,288 items (ms)")
    print("| mode | ids/row | pyslide ms, median (min) | NumPy ms | speed-up |")
    print("|---|---|---|---|---|")
    for n in [1024, 2048, 4096, 8192]:
        ours, numpy_q = interleaved([
            lambda: tables.query(Q, mode="sample", n=n, threads=threads, seed=1),
            lambda: numpy_query(tables, qcodes, n, rng)], repeats)
        print(f"| sample | {n:,} | {ours.fmt(1e3)} | {numpy_q * 1e3:.1f} | "
              f"{numpy_q / ours:.0f}x |")
    indptr, _ = tables.query(Q, mode="union", threads=threads)
    mean_union = float(np.diff(indptr).mean())
    ours, numpy_q = interleaved([
        lambda: tables.query(Q, mode="union", threads=threads),
        lambda: numpy_query(tables, qcodes, None, rng)], repeats)
    print(f"| union | {mean_union:,.0f} (mean) | {ours.fmt(1e3)} | {numpy_q * 1e3:.1f} | "
          f"{numpy_q / ours:.0f}x |")
    ours = median_time(lambda: tables.query(Q, mode="threshold", threshold=2,
                                            threads=threads), repeats)
    print(f"| threshold 2 | - | {ours.fmt(1e3)} | - | - |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="only K=9 for hashing")
    parser.add_argument("--sections", default="hash,fill,query,recall",
                        help="comma-separated subset of hash,fill,query,recall")
    args = parser.parse_args()
    threads, repeats = args.threads, args.repeats
    sections = set(args.sections.split(","))

    rng = np.random.default_rng(0)
    W = rng.standard_normal((N_ITEMS, DIM), dtype=np.float32)
    print(f"# bench_hash: threads={threads}, repeats={repeats}, sections={args.sections}")
    print(f"# {platform.machine()}, {os.cpu_count()} cpus, python {sys.version.split()[0]}, "
          f"numpy {np.__version__}, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average at start {os.getloadavg()[0]:.1f}")
    with threadpool_limits(limits=threads, user_api="blas"):
        if "hash" in sections:
            bench_hashing(W, threads, repeats, args.quick)
        if "fill" in sections:
            bench_fill(W, threads, repeats)
        if "query" in sections:
            bench_query(W, threads, repeats, rng)
        if "recall" in sections:
            recall_table(threads)
    print(f"\n# load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
