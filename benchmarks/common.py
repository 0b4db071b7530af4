"""Shared helpers for the training benchmarks: data, metrics, memory, machine.

Everything here is plain NumPy/SciPy so that the PyTorch baselines and the
pyslide runs are scored by the same code where the harness scores them itself.
"""
import datetime
import json
import os
import platform
import time

import numpy as np
import scipy.sparse as sp

MACHINE = "2-core x86-64, 24 GB"

# Synthetic problems: a ``pyslide.data.make_xc`` preset (which fixes the
# feature/label counts and densities of the real dataset it imitates) with
# train/test sizes cut so that a run takes minutes on a 2-core machine.
PRESETS = {
    "small": dict(make_xc="small", n_train=5_000, n_test=1_000),
    "delicious": dict(make_xc="delicious", n_train=20_000, n_test=2_000),
    "amazon": dict(make_xc="amazon", n_train=20_000, n_test=2_000),
}

KS = (1, 3, 5)


def load_problem(preset=None, data_dir=None, seed=0, n_train=None, n_test=None):
    """Return ``(X, Y, Xt, Yt, info)``: float32 CSR features and labels.

    ``data_dir`` (a folder with XC-format ``train.txt`` and ``test.txt``) wins
    over ``preset``. Labels are CSR indicator matrices with ``float32`` ones.
    ``n_train`` / ``n_test`` override the preset's row counts.
    """
    if data_dir is not None:
        from pyslide.data import load_xc

        X, Y = load_xc(os.path.join(data_dir, "train.txt"))
        Xt, Yt = load_xc(os.path.join(data_dir, "test.txt"))
        info = dict(source="file", data_dir=os.path.abspath(data_dir))
    else:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
        from pyslide.data import make_xc

        shape = dict(PRESETS[preset])
        shape.update({k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v})
        X, Y, Xt, Yt = make_xc(shape["make_xc"], n_samples=shape["n_train"],
                               n_test=shape["n_test"], seed=seed)
        info = dict(source="make_xc", seed=seed, **shape)
    X, Y, Xt, Yt = (_as_csr32(m) for m in (X, Y, Xt, Yt))
    # Test and train files of one dataset may declare different widths.
    n_features = max(X.shape[1], Xt.shape[1])
    n_labels = max(Y.shape[1], Yt.shape[1])
    X, Xt = (_widen(m, n_features) for m in (X, Xt))
    Y, Yt = (_widen(m, n_labels) for m in (Y, Yt))
    info.update(n_features=n_features, n_labels=n_labels,
                n_train=X.shape[0], n_test=Xt.shape[0],
                train_nnz_per_row=round(X.nnz / max(X.shape[0], 1), 1),
                labels_per_row=round(Y.nnz / max(Y.shape[0], 1), 2))
    return X, Y, Xt, Yt, info


def _as_csr32(m):
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sum_duplicates()
    m.sort_indices()
    return m


def _widen(m, n_cols):
    if m.shape[1] == n_cols:
        return m
    return sp.csr_matrix((m.data, m.indices, m.indptr), shape=(m.shape[0], n_cols))


def batch_slices(n_rows, batch_size, rng, max_steps=None):
    """Shuffled row-index batches for one epoch (the last batch may be short)."""
    perm = rng.permutation(n_rows)
    batches = [perm[i:i + batch_size] for i in range(0, n_rows, batch_size)]
    if max_steps is not None:
        batches = batches[:max_steps]
    return batches


def topk_metrics(topk, Y, ks=KS):
    """P@k and nDCG@k of ranked predictions against a CSR label matrix.

    ``topk`` is ``(n, k_max)`` label ids, best first. Rows without labels
    count as zero (the XC repository's convention of averaging over all rows).
    """
    topk = np.asarray(topk, dtype=np.int64)
    n, k_max = topk.shape
    Yb = sp.csr_matrix(Y, dtype=bool)
    rows = np.repeat(np.arange(n), k_max)
    hits = np.asarray(Yb[rows, topk.ravel()]).reshape(n, k_max).astype(np.float64)
    n_true = np.diff(Yb.indptr)
    discount = 1.0 / np.log2(np.arange(2, k_max + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    out = {}
    for k in ks:
        out[f"p@{k}"] = float(hits[:, :k].sum(1).mean() / k)
    for k in ks:
        dcg = hits[:, :k] @ discount[:k]
        idcg = ideal[np.minimum(n_true, k)]
        out[f"ndcg@{k}"] = float(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0).mean())
    return out


def peak_rss_bytes():
    """The process's peak resident set size (VmHWM), in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine_info(load_avg_at_start=None):
    """Machine, software and date fields of a result record."""
    return dict(machine=MACHINE, cpu_count=os.cpu_count(), platform=platform.platform(),
                python=platform.python_version(),
                date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                load_avg_at_start=load_avg_at_start)


def loadavg():
    """1, 5 and 15-minute load averages: how busy the shared machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def median_step(step_times, warmup=5):
    """Median over all recorded steps after the first ``warmup`` of the run."""
    t = np.asarray(step_times, dtype=np.float64)
    if t.size > warmup:
        t = t[warmup:]
    return float(np.median(t)) if t.size else None


class Clock:
    """Accumulates wall-clock seconds over timed sections."""

    def __init__(self):
        self.total = 0.0

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.total += time.perf_counter() - self._t0
        return False


def save_figure(fig, out, first):
    """Stamp the machine and date of record ``first`` on ``fig``, save it to ``out``."""
    import matplotlib.pyplot as plt
    fig.text(0.99, 0.01, f"{first.get('machine', '')}, {first.get('date', '')[:10]}",
             ha="right", va="bottom", fontsize=7, color="gray")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def merge_results(out, records, command, key):
    """(commands, records) with the records of ``out`` whose ``key(record)``
    is not among the new ones kept in front (``--merge``)."""
    if not (out and os.path.exists(out)):
        return [command], records
    with open(out) as f:
        old = json.load(f)
    new = {key(r) for r in records}
    kept = [r for r in old["records"] if key(r) not in new]
    return old.get("commands", []) + [command], kept + records
