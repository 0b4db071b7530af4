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
    """What one writes without a parser: Python splits each line, NumPy converts it."""
    with open(path) as f:
        n, d, n_labels = (int(t) for t in f.readline().split())
        x_lengths, x_ids, x_values = [], [], []
        y_lengths, y_ids = [], []
        for line in f:
            labels, _, features = line.partition(" ")
            if ":" in labels:                       # no labels, features start at once
                labels, features = "", line
            label_ids = np.array(labels.split(","), dtype=np.int32) if labels.strip() \
                else np.zeros(0, dtype=np.int32)
            pairs = np.array(features.replace(":", " ").split(), dtype=np.float64)
            y_ids.append(label_ids)
            y_lengths.append(label_ids.size)
            x_ids.append(pairs[0::2].astype(np.int32))
            x_values.append(pairs[1::2].astype(np.float32))
            x_lengths.append(x_ids[-1].size)
    x_indptr = np.concatenate([[0], np.cumsum(x_lengths)])
    y_indptr = np.concatenate([[0], np.cumsum(y_lengths)])
    X = sp.csr_matrix((np.concatenate(x_values), np.concatenate(x_ids), x_indptr), shape=(n, d))
    Y = sp.csr_matrix((np.ones(y_indptr[-1], dtype=np.float32), np.concatenate(y_ids), y_indptr),
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
    parser.add_argument("--real", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data",
        "amazon670k_partial_test", "amazon_partial_test.txt"),
        help="a real XC file whose data lines are repeated into a big file and parsed too")
    parser.add_argument("--real-megabytes", type=float, default=100.0)
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

        if args.real and os.path.exists(args.real):
            # Genuine XC lines (6-decimal values, CRLF ends) repeated to a
            # size where the timing is stable.
            with open(args.real, "rb") as f:
                f.readline()
                lines = f.read()
            copies = max(1, int(args.real_megabytes * 1e6 / len(lines)))
            n_rows = lines.count(b"\n") * copies
            real_path = os.path.join(tmp, "real.txt")
            with open(real_path, "wb") as f:
                f.write(f"{n_rows} 135909 670091\n".encode())
                for _ in range(copies):
                    f.write(lines)
            size_mb = os.path.getsize(real_path) / 1e6
            fast, fast_times, (X4, _) = timed(load_xc, real_path, repeats=args.repeats)
            assert X4.shape[0] == n_rows
            print(f"{os.path.basename(args.real)} x {copies} ({size_mb:.1f} MB, {n_rows} rows):")
            print(f"load_xc:        median {fast:.3f} s  -> {size_mb / fast:7.1f} MB/s  "
                  f"(runs: {', '.join(f'{size_mb / t:.0f}' for t in fast_times)} MB/s)")


if __name__ == "__main__":
    main()
