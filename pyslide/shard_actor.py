"""The body of a label shard's Ray actor (ShardWorker): its rows, optimizer state, LSH tables and ShardEngine; imports the kernels (_shard, _loss, _topk), settings, seeds, persist (the checksums and the saved files' reader), inference (the sampled top-k's candidate head), state, layers, optim and atomic (never Ray, so it is tested and timed in-process too).

``pyslide.distributed`` wraps :class:`ShardWorker` with ``ray.remote``; every
method is one call a shard answers: set-up, the four calls of a training
step (``begin``, ``forward``, ``backward``, ``update``), inference,
snapshots and its own model file.
"""
import os
import time

import numpy as np

from . import _loss, _shard, _topk
from .atomic import atomic_write
from .inference import Predictor, _largest_biases, _with_head
from .layers import Sampled, layer_from_config
from .persist import crc32, read_checked
from .seeds import family_seed, sampling_seed, table_seed
from .settings import Settings
from .optim import optimizer_from_config
from .state import PERSISTENT, LayerState

__all__ = ["ShardWorker", "Spec", "crc32"]


class Spec(Settings):
    """The settings of a network from its ``get_config()`` dict (no arrays)."""

    def __init__(self, config, threads=None):
        config = dict(config)
        layers = [layer_from_config(c) for c in config["layers"]]
        optimizer = config.get("optimizer", "adam")
        if isinstance(optimizer, dict):
            optimizer = optimizer_from_config(optimizer)
        self._configure(config["input_dim"], layers, config.get("loss", "softmax"), optimizer,
                        threads, config.get("seed", 0))


class _RowsLayer:
    """The output layer as one shard's tables see it: its rows only, the
    full layer's hash family (every shard hashes alike, so the shards'
    candidates together are the single-node network's)."""

    def __init__(self, layer, rows):
        self._layer = layer
        self.units = rows
        self.bucket_size = layer.bucket_size
        self.policy = layer.policy
        self.full_rebuild_every = layer.full_rebuild_every
        self.rebuild_growth = layer.rebuild_growth

    def resolve_hash(self, in_dim, seed=0):
        return self._layer.resolve_hash(in_dim, seed)


class ShardWorker:
    """The body of a shard's Ray actor: rows [start, stop) of the output layer."""

    def __init__(self, index, start, stop, config, threads):
        from threadpoolctl import threadpool_limits
        # BLAS single-threaded for the actor's life: the kernels multiply in
        # their own OpenMP threads (as Network.fit does)
        self._blas_limit = threadpool_limits(limits=1, user_api="blas")
        self.index, self.start, self.stop = index, start, stop
        self.spec = Spec(config, threads)
        self.n_threads = self.spec.n_threads
        out = self.spec.layers[-1]
        self.out_index = len(self.spec.layers) - 1
        self.d = self.spec._dims[-1][0]
        self.rows_layer = _RowsLayer(out, stop - start)
        arrays = self.spec._layer_arrays()[-1]
        arrays = [(name, (stop - start,) + tuple(shape[1:]), dtype)
                  for name, shape, dtype in arrays]
        self.state = LayerState(arrays, out.rebuild_every)
        self.engine = None
        self.snapshot_arrays = None

    # -- set-up
    def ping(self):
        return os.getpid()

    def set_rows(self, first, W):
        self.state["W"][first:first + len(W)] = W

    def set_arrays(self, arrays):
        for name, values in arrays.items():
            self.state[name][...] = values

    def setup_hashing(self, steps_taken):
        out = self.spec.layers[-1]
        if isinstance(out, Sampled) and not out.dense_equivalent:
            i = self.out_index
            # Network._setup_hashing's seeds: every shard the same family;
            # shard 0 the single-node tables' seed (one shard = Network)
            self.state.setup_hashing(self.rows_layer, self.d, family_seed(self.spec.seed, i),
                                     table_seed(self.spec.seed, i, self.index), steps_taken)
        return self.state.tables is not None

    def ensure_tables(self, step):
        """Tables set up and filled (an untrained network's are empty)."""
        if not self.setup_hashing(step):
            return False
        if not self.state.tables.counts.any():
            self.rebuild_tables(step)
        return True

    def rebuild_tables(self, step):
        if self.state.tables is not None:
            self.state.tables.build(self.state["W"], threads=self.n_threads)
            self.state.rehashed(step)

    def prepare(self, batch_size, max_labels, label_log1m, steps_taken, optimizer):
        """An engine for a fit: scratch sized for the batch, tables set up,
        ``optimizer`` = (code, settings) for ``ShardEngine.set_optimizer``."""
        self.setup_hashing(steps_taken)
        out = self.spec.layers[-1]
        state = self.state
        # the shard's rows as a one-layer table (its gradient is compact: no
        # dropout, and the settings are the whole output layer's)
        spec = state.engine_spec(out, self.d, len(state["W"]), 0.0)
        # one shard keeps the single-node stream of uniform draws
        seed = sampling_seed(self.spec.seed, self.index)
        self.engine = _shard.ShardEngine(spec, batch_size, self.n_threads,
                                         _loss.LOSSES[self.spec.loss], max_labels, seed,
                                         label_log1m=label_log1m)
        self.engine.set_optimizer(optimizer[0], **optimizer[1])
        self.seconds = {"rebuild": 0.0, "begin": 0.0, "forward": 0.0, "backward": 0.0,
                        "update": 0.0}

    def timings(self):
        """Seconds this shard computed in each call of the steps since ``prepare``."""
        return dict(self.seconds)

    # -- a training step
    def begin(self, hidden, labels, step, steps_taken, force_rebuild):
        t0 = time.perf_counter()
        self.state.rebuild(self.rows_layer, steps_taken, self.n_threads, force_rebuild)
        t1 = time.perf_counter()
        self.seconds["rebuild"] += t1 - t0
        try:
            return self._begin(hidden, labels, step)
        finally:
            self.seconds["begin"] += time.perf_counter() - t1

    def _begin(self, hidden, labels, step):
        indptr, indices = labels
        n = len(indptr) - 1
        mine = (indices >= self.start) & (indices < self.stop)
        row_of = np.repeat(np.arange(n), np.diff(indptr))
        counts = np.bincount(row_of[mine], minlength=n)
        local_indptr = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=local_indptr[1:])
        local = (indices[mine] - self.start).astype(np.int32)
        return self.engine.begin(hidden, local_indptr, local, step)

    def forward(self, max_active, min_active, log_decay):
        t0 = time.perf_counter()
        try:
            return self.engine.forward(max_active, min_active, log_decay)
        finally:
            self.seconds["forward"] += time.perf_counter() - t0

    def backward(self, parts):
        """The step's deltas and gradients; returns (hidden-gradient part,
        BCE losses or None). The rows wait for ``update``."""
        t0 = time.perf_counter()
        try:
            if parts is None:
                return self.engine.backward()
            return self.engine.backward(*parts)
        finally:
            self.seconds["backward"] += time.perf_counter() - t0

    def update(self, optimizer):
        """Apply the step's gradient to the rows (sent after the driver has
        checked the loss; it runs while the driver back-propagates)."""
        t0 = time.perf_counter()
        try:
            ids = self.engine.update(**optimizer)
            if self.state.dirty is not None:
                self.state.dirty[ids] = True
        finally:
            self.seconds["update"] += time.perf_counter() - t0

    def discard(self):
        if self.engine is not None:
            self.engine.discard()

    def apply_pending(self, log_decay, pending_steps):
        """Every row's owed weight decay and missed Adam steps (``_shard.ShardEngine.apply_pending``)."""
        if self.engine is not None:
            self.engine.apply_pending(log_decay, **pending_steps)

    # -- inference
    def topk(self, hidden, k, sampled):
        n = hidden.shape[0]
        k_eff = min(k, self.stop - self.start)
        ids = np.full((n, k), -1, np.int32)
        scores = np.full((n, k), -np.inf, np.float32)
        W, b = self.state["W"], self.state["b"]
        if sampled:
            if self.state.tables is None:
                raise ValueError("predict_topk(sampled=True) needs a Sampled output layer "
                                 "with a hash family")
            indptr, cand = self.state.tables.query(hidden, mode="union", threads=self.n_threads)
            indptr, cand = _with_head(indptr, cand, _largest_biases(b, Predictor._bias_head))
            _topk.topk_candidates(hidden, np.ascontiguousarray(indptr, dtype=np.int64),
                                  np.ascontiguousarray(cand, dtype=np.int32), W, b, k,
                                  self.n_threads, ids, scores)
        else:
            for start, z in self._scores(hidden):
                _topk.topk_rows(z, k_eff, self.n_threads, ids[start:start + len(z)],
                                scores[start:start + len(z)])
        ids[ids >= 0] += self.start
        return ids, scores

    def _scores(self, hidden):
        """(first row, logits) in row chunks of at most ~16 M scores."""
        W, b = self.state["W"], self.state["b"]
        chunk = max(1, (1 << 24) // max(1, W.shape[0]))
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            for start in range(0, hidden.shape[0], chunk):
                z = hidden[start:start + chunk] @ W.T
                z += b
                yield start, np.ascontiguousarray(z, dtype=np.float32)

    def scores(self, hidden):
        return np.concatenate([z for _, z in self._scores(hidden)], axis=0) \
            if hidden.shape[0] else np.zeros((0, self.stop - self.start), np.float32)

    def loss_parts(self, hidden, labels):
        """Per row, over this shard's rows: softmax (max, sum of exp(z - max),
        sum of label logits); BCE (sum of softplus(z), sum of label logits)."""
        indptr, indices = labels
        n = hidden.shape[0]
        out = np.zeros((3, n), np.float64)
        row_of = np.repeat(np.arange(n), np.diff(indptr))
        mine = (indices >= self.start) & (indices < self.stop)
        for start, z in self._scores(hidden):
            rows = slice(start, start + len(z))
            sel = mine & (row_of >= start) & (row_of < start + len(z))
            label_z = z[row_of[sel] - start, indices[sel] - self.start]
            out[2, rows] = np.bincount(row_of[sel] - start, weights=label_z,
                                       minlength=len(z))
            if self.spec.loss == "softmax":
                zmax = z.max(axis=1)
                out[0, rows] = zmax
                out[1, rows] = np.exp(z - zmax[:, None]).sum(axis=1, dtype=np.float64)
            else:
                out[0, rows] = np.logaddexp(0.0, z).sum(axis=1, dtype=np.float64)
        return out

    # -- state
    def arrays(self, names=None):
        return {name: np.array(values) for name, values in self.state.items()
                if (names is None or name in names)}

    def memory(self):
        """Bytes of the shard's arrays (rows, moments) and of its LSH tables."""
        tables = 0
        if self.state.tables is not None:
            tables = self.state.tables.ids.nbytes + self.state.tables.counts.nbytes
        return {"arrays": sum(a.nbytes for a in self.state.arrays.values()), "tables": tables}

    def schedule(self):
        return self.state.schedule()

    def snapshot(self):
        if self.snapshot_arrays is None:
            self.snapshot_arrays = {name: np.empty_like(a)
                                    for name, a in self.state.state_arrays().items()}
        for name, a in self.snapshot_arrays.items():
            np.copyto(a, self.state[name])
        self.snapshot_schedule = self.state.schedule()

    def restore(self, step):
        for name, a in self.snapshot_arrays.items():
            np.copyto(self.state[name], a)
        self.state.set_schedule(self.snapshot_schedule)
        self.rebuild_tables(step)

    def save(self, path):
        """Write the shard's persistent arrays to ``path`` (atomically);
        returns each array's CRC-32."""
        arrays = {name: self.state[name] for name in PERSISTENT if name in self.state}
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)
        return {name: crc32(a) for name, a in arrays.items()}

    def load_rows(self, sources):
        """Fill the shard's arrays from saved shard files: ``sources`` lists
        ``(path, first row of that file, checksums)`` of every file whose
        rows overlap this shard's."""
        for path, first, checksums in sources:
            for name, values in read_checked(path, checksums, names=self.state).items():
                lo, hi = max(self.start, first), min(self.stop, first + len(values))
                if hi > lo:
                    self.state[name][lo - self.start:hi - self.start] = \
                        values[lo - first:hi - first]
        W = self.state["W"]
        if not np.isfinite(W).all():
            raise ValueError(f"shard {self.index}: the saved weights hold NaN or infinite "
                             f"values")
