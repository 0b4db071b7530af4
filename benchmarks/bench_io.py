"""Parsing speed of pyslide.data.load_xc against a plain Python/NumPy reader.

Generates a Delicious-200K-shaped problem with ``make_xc``, writes it with
``save_xc`` (the XC repository text format) and reads it back, timing each
step. Both readers run on the same file in the same process, pinned to one
core, and the script prints medians in MB/s (1 MB = 10^6 bytes of file) and
their ratio.

    python benchmarks/bench_io.py --rows 30000 --repeats 5

It also times ``make_xc`` itself, at ``--rows`` and at ``--generator-rows``.
"""
import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import scipy.sparse as sp

from pyslide.data import load_xc, make_xc, save_xc


def naive_load_xc(path):
    """What one writes without a parser: split lines and tokens in Python."""
    with open(path) as f:
        n, d, n_labels = (int(t) for t in f.readline().split())
        x_indptr, x_indices, x_data = [0], [], []
        y_indptr, y_indices = [0], []
        for line in f:
            labels, _, features = line.rstrip("\n").partition(" ")
            if ":" in labels:                       # no labels, features start at once
                labels, features = "", line
            if labels:
                y_indices.extend(int(t) for t in labels.split(","))
            y_indptr.append(len(y_indices))
            pairs = [t.split(":") for t in features.split()]
            if pairs:
                ids, values = zip(*pairs)
                x_indices.extend(ids)
                x_data.extend(values)
            x_indptr.append(len(x_indices))
    X = sp.csr_matrix((np.array(x_data, dtype=np.float32),
                       np.array(x_indices, dtype=np.int32), np.array(x_indptr)), shape=(n, d))
    Y = sp.csr_matrix((np.ones(len(y_indices), dtype=np.float32),
                       np.array(y_indices, dtype=np.int32), np.array(y_indptr)),
                      shape=(n, n_labels))
    return X, Y


def timed(function, *args, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="delicious")
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive-repeats", type=int, default=3)
    parser.add_argument("--generator-rows", type=int, default=200_000,
                        help="also time make_xc at this size (0: skip)")
    parser.add_argument("--all-cores", action="store_true",
                        help="do not pin the process to one core")
    args = parser.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    print(f"cores used: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}")

    seconds, all_times, (X, Y) = timed(make_xc, args.preset, args.rows, repeats=3)
    print(f"make_xc({args.preset!r}, n_samples={args.rows}): median {seconds:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in all_times)}); "
          f"{X.nnz / X.shape[0]:.1f} nnz and {Y.nnz / Y.shape[0]:.1f} labels per point")

    if args.generator_rows:
        seconds, all_times, (X_big, _) = timed(make_xc, args.preset, args.generator_rows,
                                               repeats=3)
        print(f"make_xc({args.preset!r}, n_samples={args.generator_rows}): median "
              f"{seconds:.2f} s ({', '.join(f'{t:.2f}' for t in all_times)}); "
              f"{X_big.nnz / 1e6:.1f} M feature non-zeros")
        del X_big

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.txt")
        seconds, _, _ = timed(save_xc, path, X, Y, repeats=3)
        size_mb = os.path.getsize(path) / 1e6
        print(f"file: {size_mb:.1f} MB, {X.shape[0]} rows")
        print(f"save_xc:        median {seconds:.3f} s  -> {size_mb / seconds:7.1f} MB/s")

        fast, fast_times, (X2, Y2) = timed(load_xc, path, repeats=args.repeats)
        assert (X2 != X).nnz == 0 and (Y2 != Y).nnz == 0
        print(f"load_xc:        median {fast:.3f} s  -> {size_mb / fast:7.1f} MB/s  "
              f"(runs: {', '.join(f'{size_mb / t:.0f}' for t in fast_times)} MB/s)")

        slow, slow_times, (X3, Y3) = timed(naive_load_xc, path, repeats=args.naive_repeats)
        assert (X3 != X).nnz == 0 and (Y3 != Y).nnz == 0
        print(f"naive reader:   median {slow:.3f} s  -> {size_mb / slow:7.1f} MB/s  "
              f"(runs: {', '.join(f'{size_mb / t:.1f}' for t in slow_times)} MB/s)")
        print(f"speed-up of load_xc over the naive reader: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
