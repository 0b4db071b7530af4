"""The ``Network``: validation, orchestration and I/O around the kernels.

Everything that touches per-sample or per-neuron data runs in
``_kernels.pyx`` (training) or in BLAS (exact inference); this module checks
arguments, allocates arrays once, runs the epoch loop, keeps the rebuild
schedule, and saves / loads models.
"""
import math
import numbers
import time

import numpy as np

from . import _kernels, _loss, _optim, _topk, persist
from ._openmp import resolve_threads
from ._validate import choice, integer, real
from .callbacks import check_callbacks as _check_callbacks
from .layers import Dense, Sampled
from .optim import Adam, check_optimizer
from .state import LayerState, plan, plan_bytes

__all__ = ["Network", "load"]

# standard deviation of the first layer's pre-activations at the start: smaller
# than 1 measured better on real data (Bibtex), much smaller learned slowly on
# synthetic problems with per-sample sampled outputs (docs/guide.md)
_FIRST_LAYER_SPREAD = 0.25
# dropout of a Dense hidden layer that does not set one
_DEFAULT_DROPOUT = 0.2

_LOSSES = ("softmax", "bce")
# keys of get_config() / from_config()
_CONFIG_KEYS = frozenset(("input_dim", "layers", "loss", "optimizer", "threads", "seed"))


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024.0


class Network:
    """A feed-forward network whose wide layers compute only sampled neurons.

    Parameters
    ----------
    input_dim : int
        Width of an input row (number of features).
    layers : list of Dense / Sampled
        The layers, the last one being the output (one neuron per label).
    loss : {"softmax", "bce"}
        ``"softmax"``: cross-entropy against the labels normalised to sum 1
        (over the active outputs when the output is sampled). ``"bce"``:
        independent sigmoid outputs with binary cross-entropy.
    optimizer : pyslide.Adam, pyslide.SGD, "adam" or "sgd"
        Lazy Adam (only touched rows) by default.
    threads : int or None
        Threads of every kernel: None uses the cores available to the
        process (respecting ``OMP_NUM_THREADS``), -1 every core.
    seed : int
        Seeds weights, hash functions, shuffling and sampling. With
        ``threads=1`` two runs with one seed are bit-for-bit identical; with
        more threads lock-free (HogWild) updates race and results vary
        slightly.

    Examples
    --------
    >>> import pyslide as ps
    >>> X, Y = ps.data.make_xc("small", n_samples=2000, seed=0)
    >>> net = ps.Network(X.shape[1], [ps.Dense(64), ps.Sampled(Y.shape[1])], seed=0)
    >>> history = net.fit(X, Y, epochs=1, verbose=0)
    >>> top5 = net.predict(X[:10], k=5)
    """

    def __init__(self, input_dim, layers, loss="softmax", optimizer="adam", threads=None,
                 seed=0):
        self.input_dim = integer(input_dim, "input_dim", 1, hint=" (the number of features)")
        if isinstance(layers, (Dense, Sampled)):
            layers = [layers]
        if not isinstance(layers, (list, tuple)) or len(layers) == 0:
            raise ValueError("layers must be a non-empty list of pyslide.Dense / "
                             "pyslide.Sampled, the last one being the output layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, (Dense, Sampled)):
                raise TypeError(f"layers[{i}] must be pyslide.Dense or pyslide.Sampled, "
                                f"got {layer!r}")
        self.layers = list(layers)
        self.loss = choice(loss, "loss", _LOSSES)
        self.optimizer = check_optimizer(optimizer)
        self.threads = threads
        self.n_threads = resolve_threads(threads, "threads")
        self.seed = integer(seed, "seed", 0)
        out = self.layers[-1]
        if isinstance(out, Sampled) and out.share == "batch" and len(self.layers) == 1:
            raise ValueError(
                "layers: a Sampled output with share='batch' needs a hidden layer before it "
                "(the shared logits are a matrix product of hidden vectors); add a "
                "pyslide.Dense hidden layer or use Sampled(..., share='sample')")
        if isinstance(out, Dense) and out.dropout:
            raise ValueError(f"layers[{len(self.layers) - 1}]: dropout applies to hidden "
                             f"layers; the output layer takes none (got dropout={out.dropout:g})")
        if isinstance(out, Sampled) and out.min_active < 1:
            raise ValueError("layers[-1]: the output layer needs min_active >= 1")
        self.n_outputs = out.units
        self._dims = []
        d = self.input_dim
        for layer in self.layers:
            self._dims.append((d, layer.units))
            d = layer.units
        self._check_memory()
        self._allocate()
        self.step_ = 0           # optimizer steps taken
        # sum of log(1 - lr_t * weight_decay) over the steps taken (AdamW)
        self._log_decay = 0.0
        self.epoch_ = 0          # epochs completed
        self.history_ = {"loss": []}
        self.timings_ = {}
        self.step_times_ = np.zeros(0)
        self.stop_training = False
        self._initialized = False

    # ------------------------------------------------------------ memory

    def _dropout_rate(self, i):
        """Layer i's dropout: a Dense hidden layer's default is 0.2."""
        layer = self.layers[i]
        if not isinstance(layer, Dense) or i == len(self.layers) - 1:
            return 0.0
        return _DEFAULT_DROPOUT if layer.dropout is None else layer.dropout

    def _sampled_output(self):
        """True when the output layer computes only some labels per step."""
        out = self.layers[-1]
        return isinstance(out, Sampled) and not out.dense_equivalent

    def _is_shared_output(self):
        out = self.layers[-1]
        return isinstance(out, Sampled) and out.share == "batch"

    def _layer_arrays(self):
        """(name, shape, dtype) of every array each layer holds (``state.plan``)."""
        adam = isinstance(self.optimizer, Adam)
        shared = self._is_shared_output()
        return [plan(isinstance(layer, Sampled), d_in, d_out,
                     fused_gradient=i == 0 and isinstance(layer, Dense),
                     compact_gradient=shared and i == len(self.layers) - 1,
                     adam=adam, row_bias_correction=adam
                     and self.optimizer.bias_correction == "row",
                     weight_decay=self.optimizer.weight_decay > 0)
                for i, (layer, (d_in, d_out)) in enumerate(zip(self.layers, self._dims))]

    def estimate_memory(self, batch_size=128):
        """Bytes the network's arrays, hash tables and training scratch need."""
        total = sum(plan_bytes(arrays) for arrays in self._layer_arrays())
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Sampled):
                width = max(layer.max_active, layer.min_active)
                total += batch_size * width * 12 + 4 * layer.units * (self.n_threads + 3)
                family = layer.resolve_hash(self._dims[i][0], self.seed + i)
                if family is not None:
                    total += _estimate_family_bytes(family, self._dims[i][0], layer.bucket_size)
            else:
                total += batch_size * layer.units * 8
        if self._is_shared_output():
            out = self.layers[-1]
            n_shared = min(out.units, max(out.max_active, out.min_active) + batch_size * 64)
            total += n_shared * self._dims[-1][0] * 8 + batch_size * n_shared * 4
        return total

    def _check_memory(self):
        need = self.estimate_memory()
        from .hashing import _available_memory_bytes
        have = _available_memory_bytes()
        if have is not None and need > 0.9 * have:
            raise MemoryError(
                f"this network needs about {_format_bytes(need)} (weights, optimizer state, "
                f"gradient buffers, hash tables) but only {_format_bytes(have)} is available; "
                f"use fewer or narrower layers, pyslide.SGD (no moments), or smaller K / L / "
                f"bucket_size")

    def _allocate(self):
        self._states = [LayerState(arrays, getattr(layer, "rebuild_every", 0))
                        for layer, arrays in zip(self.layers, self._layer_arrays())]

    # views of the layer states, one entry per layer (read-only lists)
    _params = property(lambda self: list(self._states))
    _families = property(lambda self: [s.family for s in self._states])
    _tables = property(lambda self: [s.tables for s in self._states])
    _dirty = property(lambda self: [s.dirty for s in self._states])
    _next_rebuild = property(lambda self: [s.next_rebuild for s in self._states])
    _rebuild_interval = property(lambda self: [s.rebuild_interval for s in self._states])
    _hashed_at = property(lambda self: [s.hashed_at for s in self._states])
    _rebuilds_since_full = property(lambda self: [s.rebuilds_since_full for s in self._states])

    def _init_weights(self, mean_sq_norm):
        """Normal weights, biases zero.

        The first layer starts with pre-activations of standard deviation
        0.25 (std ``0.25 / sqrt(mean squared row norm)``: a sparse row has few
        non-zeros, so its fan-in is its norm, not the input width); hidden
        layers use He's ``sqrt(2 / fan_in)``; an output layer that computes
        every label ``1 / sqrt(3 fan_in)``, the spread of PyTorch's
        ``nn.Linear`` (with the smaller first layer: 62.4-62.5 against 61.0
        best-epoch P@1 on Bibtex, ``docs/guide.md``). A sampled output starts
        near zero (``0.01 / sqrt(fan_in)``): it trains only the rows it
        samples, and rows never sampled must not outscore trained ones at
        prediction time by the accident of a large random start.
        """
        rng = np.random.default_rng([self.seed, 1])
        for i, (layer, params) in enumerate(zip(self.layers, self._states)):
            d_in = self._dims[i][0]
            if layer.init_std is not None:
                std = layer.init_std
            elif i == 0:
                std = _FIRST_LAYER_SPREAD / math.sqrt(max(mean_sq_norm, 1e-12))
            elif i == len(self.layers) - 1 and self._sampled_output():
                # rows a sampled output never trains keep their start, and at
                # prediction time must not outscore trained ones by its accident
                std = 0.01 / math.sqrt(d_in)
            elif i == len(self.layers) - 1:
                std = 1.0 / math.sqrt(3.0 * d_in)
            else:
                std = math.sqrt(2.0 / d_in)
            W = params["W"]
            # fill row blocks to bound the float64 temporaries
            block = max(1, (1 << 22) // max(1, W.shape[1]))
            for start in range(0, W.shape[0], block):
                W[start:start + block] = rng.standard_normal(
                    (min(block, W.shape[0] - start), W.shape[1]), dtype=np.float32) * std
            params["b"][:] = 0
        self._initialized = True

    # ------------------------------------------------------------ hashing

    def _setup_hashing(self):
        from .hashing import LSHTables
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Sampled) or layer.dense_equivalent:
                continue
            family = layer.resolve_hash(self._dims[i][0], self.seed + 7919 * (i + 1))
            if family is None:
                continue
            state = self._states[i]
            if state.family is None:
                state.dirty = np.zeros(layer.units, dtype=bool)
                state.hashed_at = 0
                state.family = family.compile(self._dims[i][0])
                state.tables = LSHTables(state.family, bucket_size=layer.bucket_size,
                                         policy=layer.policy, seed=self.seed + i)
                state.next_rebuild = self.step_

    def _maybe_rebuild(self, force=False):
        """Re-hash neurons whose rebuild is due; returns the seconds spent.

        Every ``rebuild_every`` steps only the neurons the optimizer changed
        since their last hashing are re-hashed (``LSHTables.update``); every
        ``full_rebuild_every``-th time, and on the first step, all neurons go
        into cleared tables, which also drops the stale entries updates leave.
        """
        spent = 0.0
        for layer, state in zip(self.layers, self._states):
            tables = state.tables
            if tables is None:
                continue
            if not (force or self.step_ >= state.next_rebuild):
                continue
            t0 = time.perf_counter()
            W = state["W"]
            dirty = state.dirty
            if "touched" in state:
                dirty |= state["touched"] > state.hashed_at
            ids = np.flatnonzero(dirty).astype(np.int32)
            # a full build hashes with sgemm and fills without duplicate
            # checks, so once a quarter of the neurons changed it is cheaper
            if force or state.rebuilds_since_full + 1 >= layer.full_rebuild_every \
                    or len(ids) > 0.25 * layer.units:
                tables.build(W, threads=self.n_threads)
                state.rebuilds_since_full = 0
            else:
                if len(ids):
                    tables.update(ids, W[ids], threads=self.n_threads)
                state.rebuilds_since_full += 1
            dirty[:] = False
            state.hashed_at = self.step_
            spent += time.perf_counter() - t0
            state.next_rebuild = self.step_ + state.rebuild_interval
            if layer.rebuild_growth:
                state.rebuild_interval = int(math.ceil(
                    state.rebuild_interval * layer.rebuild_growth))
        return spent

    def _mark_changed(self, engine):
        """Remember the rows of a batch-shared output the last step changed."""
        out = self._states[-1]
        if out.tables is not None and self._is_shared_output():
            out.dirty[engine.last_shared_ids()] = True

    # ------------------------------------------------------------ snapshots

    def _snapshot(self, into=None):
        """A copy of the training state, for ``_restore`` (early stopping).

        Copies every array of every layer except the gradient buffers (zero
        between steps), whatever the optimizer keeps there, plus the step
        count and the rebuild schedule. ``into``, a snapshot taken earlier
        from this network, is overwritten in place, so keeping the best of
        many epochs allocates its memory once. The LSH tables are not copied:
        ``_restore`` rebuilds them from the restored weights.
        """
        if into is None or into.owner is not self:
            into = _Snapshot(self)
        for arrays, state in zip(into.arrays, self._states):
            for name, array in arrays.items():
                np.copyto(array, state[name])
        into.step = self.step_
        into.log_decay = self._log_decay
        into.schedule = [state.schedule() for state in self._states]
        return into

    def _restore(self, snapshot):
        """Put back the state ``_snapshot`` copied; training can go on from it.

        The bucket tables still hold neurons hashed from the weights of later
        steps, so they are rebuilt from the restored weights now rather than
        at the next step: ``predict_topk(sampled=True)`` and ``save`` right
        after a restore must see tables that match the weights.
        """
        if not isinstance(snapshot, _Snapshot) or snapshot.owner is not self:
            raise ValueError("snapshot must come from this network's _snapshot()")
        for arrays, state in zip(snapshot.arrays, self._states):
            for name, array in arrays.items():
                np.copyto(state[name], array)
        self.step_ = snapshot.step
        self._log_decay = snapshot.log_decay
        for state, schedule in zip(self._states, snapshot.schedule):
            state.set_schedule(schedule)
        for state in self._states:
            if state.tables is None:
                continue
            state.tables.build(state["W"], threads=self.n_threads)
            state.rehashed(self.step_)

    # ------------------------------------------------------------ data

    def _split_validation(self, X, Y, fraction):
        """(X_train, Y_train, X_val, Y_val): a seeded fraction of the rows held out.

        A permutation rather than the last rows (Keras' choice), because XC
        files are often sorted (by label, by date), and the last rows would be
        a biased validation set. Both parts keep the file's row order.
        """
        n = X.shape[0]
        n_val = int(n * fraction)
        if n_val == 0 or n_val == n:
            raise ValueError(f"validation_split={fraction} of {n} rows leaves "
                             f"{n_val} validation and {n - n_val} training rows; "
                             f"both need at least one: use a larger fraction or more rows")
        order = np.random.default_rng([self.seed, 3, n]).permutation(n)
        val_rows = np.sort(order[:n_val])
        train_rows = np.sort(order[n_val:])
        self.validation_rows_ = val_rows
        return X[train_rows], Y[train_rows], X[val_rows], Y[val_rows]

    def _check_X(self, X, name="X"):
        from .data import check_features
        X = check_features(X, n_features=self.input_dim, name=name)
        return X

    def _check_Y(self, Y, n_rows, name="Y"):
        from .data import labels_to_csr
        Y = labels_to_csr(Y, n_labels=self.n_outputs, name=name)
        if Y.shape[0] != n_rows:
            raise ValueError(f"{name} has {Y.shape[0]} rows but X has {n_rows}; "
                             f"give one label row per input row")
        if n_rows and Y.nnz == 0:
            import warnings
            # every loss term is zero: fit would run and learn nothing
            warnings.warn(f"{name}: every row's label list is empty, so there is nothing to "
                          f"learn (the loss is 0) and P@k is 0; check the labels column of "
                          f"the data", UserWarning, stacklevel=3)
        return Y

    # ------------------------------------------------------------ training

    def _make_engine(self, batch_size, max_labels, max_row_nnz, label_log1m=None):
        specs = []
        for i, (layer, state) in enumerate(zip(self.layers, self._states)):
            d_in, d_out = self._dims[i]
            spec = {"sampled": int(isinstance(layer, Sampled)), "in_dim": d_in, "units": d_out,
                    "relu": int(layer.activation == "relu"), "dropout": self._dropout_rate(i),
                    **state.engine_arrays()}
            if isinstance(layer, Sampled):
                spec["min_active"] = layer.min_active
                spec["max_active"] = layer.max_active
                spec["query"] = _kernels.QUERIES[layer.query]
                spec["threshold"] = layer.threshold
                if state.family is not None:
                    spec["family"] = state.family
                    spec["tables"] = state.tables.compiled
            specs.append(spec)
        return _kernels.Engine(specs, batch_size, self.n_threads, _loss.LOSSES[self.loss],
                               max_labels,
                               self.seed, self._is_shared_output(), max_row_nnz,
                               label_log1m=label_log1m)

    def _label_log1m(self, Y):
        """log(1 - p) of each output's training frequency p, for the sampling
        correction of a sampled output (None when it is off or not sampled)."""
        out = self.layers[-1]
        if not isinstance(out, Sampled) or not out.correction or out.dense_equivalent:
            return None
        freq = np.bincount(Y.indices, minlength=self.n_outputs)[:self.n_outputs]
        freq = freq / max(1, Y.shape[0])
        # a label on every row would give log(0); -30 is "always in the set"
        return np.maximum(np.log1p(-np.minimum(freq, 1.0 - 1e-12)), -30.0).astype(np.float32)

    def _prepare_training(self, X, Y, batch_size, correct_sampling=True):
        """Everything ``fit`` does before its first step, on checked (X, Y).

        Initial weights (unless the network was trained or loaded), hash
        tables set up (filled by the first step's rebuild), and an engine
        over the network's arrays. ``correct_sampling=False`` leaves the
        sampling correction off whatever the output layer says (kernel tests
        compare with a reference without it). Returns a ``_Run``.
        """
        n = X.shape[0]
        batch_size = min(batch_size, n)
        x_indptr = X.indptr.astype(np.int64)
        y_indptr = Y.indptr.astype(np.int64)
        max_labels = int(np.diff(y_indptr).max()) if n else 0
        if not self._initialized:
            row_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
            self._init_weights(float(row_sq.mean()) if n else 1.0)
        self._setup_hashing()
        max_row_nnz = int(np.diff(x_indptr).max()) if n else 0
        engine = self._make_engine(batch_size, max_labels, max_row_nnz,
                                   self._label_log1m(Y) if correct_sampling else None)
        self._engine = engine
        run = _Run(X, Y, x_indptr, y_indptr, engine, batch_size)
        run.optimizer = _optim.OPTIMIZERS[self.optimizer.kind]
        return run

    def _train_epoch(self, run, epoch, shuffle, bar=None):
        """One pass over ``run``'s rows, a step per batch; returns the sum of the row losses."""
        X, Y, engine, opt = run.X, run.Y, run.engine, self.optimizer
        n, batch_size, steps_per_epoch = run.n, run.batch_size, run.steps_per_epoch
        timings, step_times, losses = run.timings, run.step_times, run.losses
        if shuffle:
            order = np.random.default_rng([self.seed, 2, epoch]).permutation(n)
        else:
            order = np.arange(n)
        order = order.astype(np.int64)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            t0 = time.perf_counter()
            rows = order[s * batch_size:(s + 1) * batch_size]
            step = self.step_ + 1
            timings["rebuild"] += self._maybe_rebuild()
            engine.train_step(run.x_indptr, X.indices, X.data, run.y_indptr, Y.indices,
                              rows, step, losses, self._log_decay)
            batch_loss = float(losses[:len(rows)].mean(dtype=np.float64))
            if not math.isfinite(batch_loss):
                engine.discard_gradients(step)
                raise FloatingPointError(
                    f"the loss became {batch_loss} at step {step} (epoch "
                    f"{epoch + 1}, batch {s + 1}); weights were left as they "
                    f"were before this step. Lower the learning rate or check "
                    f"the inputs for extreme values")
            t2 = time.perf_counter()
            log_decay = self._log_decay + opt.log_decay_at(step, steps_per_epoch)
            engine.optimizer_step(step, run.optimizer, opt.step_size(step, steps_per_epoch),
                                  getattr(opt, "beta1", 0.0), getattr(opt, "beta2", 0.0),
                                  getattr(opt, "eps", 0.0), opt.lazy, log_decay,
                                  opt.lr_at(step, steps_per_epoch))
            self._log_decay = log_decay
            self.step_ = step
            self._mark_changed(engine)
            t3 = time.perf_counter()
            timings["optimizer"] += t3 - t2
            step_times.append(t3 - t0)
            loss_sum += batch_loss * len(rows)
            if bar is not None:
                bar.update(1)
                if s % 10 == 0 or s == steps_per_epoch - 1:
                    bar.set_postfix(loss=f"{loss_sum / min(n, (s + 1) * batch_size):.4f}",
                                    refresh=False)
        return loss_sum

    def fit(self, X, Y, epochs=1, batch_size=128, validation_data=None, shuffle=True,
            callbacks=None, verbose=1, eval_k=(1, 3, 5), validation_split=0.0):
        """Train for ``epochs`` passes over (X, Y).

        Parameters
        ----------
        X : scipy.sparse matrix or ndarray, shape (n, input_dim)
        Y : CSR label indicator (n, n_outputs), list of label lists, or 1-D
            int array of one label per row.
        epochs : int
        batch_size : int
        validation_data : (X_val, Y_val) or None
            Evaluated after every epoch: ``val_loss`` (the exact loss over
            every output) and ``val_p@k`` / ``val_ndcg@k`` for ``eval_k`` go
            to the logs and the history.
        shuffle : bool
            Shuffle rows every epoch (seeded by ``seed`` and the epoch).
        callbacks : list or None
            ``pyslide.EarlyStopping``, ``pyslide.ModelCheckpoint``, other
            ``pyslide.Callback`` objects, or callables ``f(network, epoch,
            logs)`` run after every epoch. Setting
            ``network.stop_training = True`` ends ``fit``.
        verbose : {0, 1, 2}
            0 silent, 1 a progress bar (loss, steps/s, ETA), 2 one line per epoch.
        eval_k : tuple of int
            The k of the validation P@k and nDCG@k.
        validation_split : float in [0, 1)
            Hold out this fraction of the rows of (X, Y) as validation data
            instead of giving ``validation_data``: a permutation seeded by the
            network's ``seed`` picks them (the same rows in every ``fit`` call
            on the same data), and ``validation_rows_`` lists them.

        Returns
        -------
        dict
            The history: per-epoch ``loss`` (mean training loss), ``time``
            (seconds of training, cumulative) and validation metrics.
        """
        epochs = _check_count("epochs", epochs, minimum=1)
        batch_size = _check_count("batch_size", batch_size, minimum=1)
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        X = self._check_X(X)
        n = X.shape[0]
        if n == 0:
            raise ValueError("X has no rows: fit needs at least one training example")
        Y = self._check_Y(Y, n)
        validation_split = _check_validation_split(validation_split)
        self.validation_rows_ = None
        if validation_data is not None:
            if validation_split:
                raise ValueError("give validation_data or validation_split, not both: "
                                 "validation_split holds out rows of X, validation_data "
                                 "brings its own")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, Y_val)")
            Xv = self._check_X(validation_data[0], "validation_data[0]")
            Yv = self._check_Y(validation_data[1], Xv.shape[0], "validation_data[1]")
        elif validation_split:
            X, Y, Xv, Yv = self._split_validation(X, Y, validation_split)
            n = X.shape[0]
            validation_data = (Xv, Yv)
        eval_k = _check_ks(eval_k)
        callbacks = _check_callbacks(callbacks)
        run = self._prepare_training(X, Y, batch_size)
        engine, steps_per_epoch = run.engine, run.steps_per_epoch
        timings, step_times = run.timings, run.step_times
        train_time = self.history_.get("time", [0.0])[-1] if self.history_.get("time") else 0.0
        self.stop_training = False
        metrics = ["loss", "time"]
        if validation_data is not None:
            metrics += ["val_loss"] + [f"val_{m}@{k}" for k in eval_k for m in ("p", "ndcg")]
        for cb in callbacks:
            cb.on_train_begin(self, {"epochs": epochs, "steps": steps_per_epoch,
                                     "metrics": metrics})
        from threadpoolctl import threadpool_limits
        bar = None
        try:
            # BLAS stays single-threaded during training: the kernels split
            # their matrix products over their own OpenMP threads, and idle
            # BLAS threads spinning after a call would steal those cores
            with threadpool_limits(limits=1, user_api="blas"):
                timings["rebuild"] += self._maybe_rebuild(force=self.step_ == 0)
                for _ in range(epochs):
                    epoch = self.epoch_
                    if verbose == 1:
                        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}")
                    t_epoch = time.perf_counter()
                    loss_sum = self._train_epoch(run, epoch, shuffle, bar)
                    # rows the lazy optimizer left alone take the weight decay
                    # they owe, so the model evaluated and saved is dense AdamW's
                    engine.apply_pending_decay(self._log_decay)
                    train_time += time.perf_counter() - t_epoch
                    self.epoch_ += 1
                    if bar is not None:
                        bar.close()
                        bar = None
                    logs = {"loss": loss_sum / run.n, "time": train_time}
                    if validation_data is not None:
                        scores = self._validation_scores(Xv, Yv, eval_k)
                        logs.update({f"val_{k}": v for k, v in scores.items()})
                    for key, value in logs.items():
                        self.history_.setdefault(key, []).append(value)
                    if verbose == 2 or (verbose == 1 and validation_data is not None):
                        print(_epoch_line(self.epoch_, logs), flush=True)
                    for cb in callbacks:
                        cb.on_epoch_end(self, self.epoch_, logs)
                    if self.stop_training:
                        break
                for cb in callbacks:
                    cb.on_train_end(self, logs)
        except KeyboardInterrupt:
            # a step either completed (optimizer applied) or is dropped whole
            engine.discard_gradients(self.step_ + 1)
            if bar is not None:
                bar.close()
            raise
        finally:
            engine.apply_pending_decay(self._log_decay)
            phase = engine.timings()
            for key in ("hash", "forward", "backward"):
                timings[key] += phase[key]
            self.timings_ = timings
            self.step_times_ = np.asarray(step_times)
        return self.history_

    # ------------------------------------------------------------ inference

    def _hidden(self, X):
        """Exact activations of the last hidden layer (dense ndarray)."""
        h = X
        for layer, params in zip(self.layers[:-1], self._params[:-1]):
            W, b = params["W"], params["b"]
            h = h @ (W.T if isinstance(layer, Sampled) else W)
            h = np.asarray(h, dtype=np.float32)
            h += b
            if layer.activation == "relu":
                np.maximum(h, 0, out=h)
        return h

    def _output_scores(self, h):
        layer, params = self.layers[-1], self._params[-1]
        W = params["W"]
        z = h @ (W.T if isinstance(layer, Sampled) else W)
        z = np.asarray(z, dtype=np.float32)
        z += params["b"]
        return z

    def _row_chunks(self, n):
        chunk = max(1, min(n, (1 << 24) // max(1, self.n_outputs)))
        return range(0, n, chunk), chunk

    def predict_topk(self, X, k=5, sampled=False):
        """Top-k outputs per row, best first.

        Parameters
        ----------
        X : input rows
        k : int
        sampled : bool
            False (default): exact, every output scored with BLAS. True: score
            only the neurons the output layer's LSH tables return for each
            row (sub-linear; may miss labels the tables do not hold).

        Returns
        -------
        ids : (n, k) int32 ndarray, -1 where fewer than k candidates exist
        scores : (n, k) float32 ndarray of logits (-inf where ids is -1)
        """
        k = _check_count("k", k, minimum=1)
        X = self._check_X(X)
        n = X.shape[0]
        k_eff = min(k, self.n_outputs)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if n == 0:
            return ids, scores
        self._ensure_initialized()
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            if sampled:
                return self._predict_sampled(X, k, ids, scores)
            starts, chunk = self._row_chunks(n)
            for start in starts:
                h = self._hidden(X[start:start + chunk])
                z = self._output_scores(h)
                _topk.topk_rows(z, k_eff, self.n_threads, ids[start:start + len(z)],
                                   scores[start:start + len(z)])
        return ids, scores

    def _predict_sampled(self, X, k, ids, scores):
        out = len(self.layers) - 1
        layer = self.layers[-1]
        if not isinstance(layer, Sampled) or self._tables[out] is None:
            raise ValueError("predict_topk(sampled=True) needs a Sampled output layer with a "
                             "hash family that has been trained (fit) or loaded")
        W, b = self._params[out]["W"], self._params[out]["b"]
        chunk = 4096
        for start in range(0, X.shape[0], chunk):
            h = np.ascontiguousarray(self._hidden(X[start:start + chunk]), dtype=np.float32)
            indptr, cand = self._tables[out].query(h, mode="union", threads=self.n_threads)
            _topk.topk_candidates(h, np.ascontiguousarray(indptr, dtype=np.int64),
                                     np.ascontiguousarray(cand, dtype=np.int32), W, b, k,
                                     self.n_threads, ids[start:start + len(h)],
                                     scores[start:start + len(h)])
        return ids, scores

    def predict(self, X, k=5):
        """Top-k label ids per row (n, k), best first (exact)."""
        return self.predict_topk(X, k=k)[0]

    def predict_proba(self, X):
        """Output probabilities (n, n_outputs): softmax or sigmoid per the loss.

        Dense: for wide outputs use ``predict_topk`` on large inputs.
        """
        X = self._check_X(X)
        self._ensure_initialized()
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            z = self._output_scores(self._hidden(X))
        if self.loss == "softmax":
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        else:
            z = 1.0 / (1.0 + np.exp(-z))
        return z

    def evaluate(self, X, Y, k=(1, 3, 5)):
        """Precision@k and nDCG@k of exact top-k predictions against Y.

        Returns a dict such as ``{"p@1": ..., "p@3": ..., "ndcg@3": ...}``.
        """
        from .metrics import evaluate_topk
        ks = _check_ks(k, "k")
        X = self._check_X(X)
        Y = self._check_Y(Y, X.shape[0])
        ids, _ = self.predict_topk(X, k=max(ks))
        return evaluate_topk(ids, Y, ks=ks)

    def _validation_scores(self, X, Y, ks):
        """``evaluate``'s metrics and the exact mean loss, from one scoring pass.

        The loss is over every output (as if the output layer were dense), so
        it is comparable between epochs and runs but not with the training
        loss, which covers only the sampled outputs.
        """
        from threadpoolctl import threadpool_limits
        from .metrics import evaluate_topk
        n = X.shape[0]
        k = max(ks)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        loss_sum = 0.0
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            starts, chunk = self._row_chunks(n)
            for start in starts:
                z = self._output_scores(self._hidden(X[start:start + chunk]))
                loss_sum += _loss_sum(z, Y[start:start + len(z)], self.loss)
                _topk.topk_rows(z, min(k, self.n_outputs), self.n_threads,
                                   ids[start:start + len(z)], scores[start:start + len(z)])
        return {"loss": loss_sum / max(n, 1), **evaluate_topk(ids, Y, ks=ks)}

    def _ensure_initialized(self):
        if not self._initialized:
            self._init_weights(1.0)

    # ------------------------------------------------------------ persistence

    def get_config(self):
        """Every setting of the network as plain JSON-able values.

        ``Network.from_config(net.get_config())`` builds the same network
        (untrained); model files, config files and the command line all go
        through this pair, so a setting has one default: the library's.
        """
        return {"input_dim": self.input_dim, "loss": self.loss, "seed": self.seed,
                "threads": self.threads,
                "optimizer": self.optimizer.get_config(),
                "layers": [layer.get_config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config, threads=None):
        """The network a ``get_config()`` dict describes (untrained).

        Keys left out take the library's defaults: ``{"input_dim": 100,
        "layers": [{"kind": "dense", "units": 64}, {"kind": "sampled",
        "units": 1000}]}`` is a complete config. ``optimizer`` is a name
        (``"adam"``, ``"sgd"``) or a dict with ``kind``; ``threads``, when
        given, overrides the config's.
        """
        from .layers import layer_from_config
        from .optim import optimizer_from_config
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict like Network.get_config() returns, "
                            f"got {config!r}")
        config = dict(config)
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ValueError(f"config: unknown key(s) {', '.join(map(repr, unknown))}; known "
                             f"keys: {', '.join(sorted(_CONFIG_KEYS))}")
        if "input_dim" not in config or "layers" not in config:
            raise ValueError("config needs 'input_dim' and 'layers'")
        layers = config.pop("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError(f"config: 'layers' must be a list of layer configs, got {layers!r}")
        config["layers"] = [layer_from_config(c) for c in layers]
        optimizer = config.get("optimizer")
        if isinstance(optimizer, dict):
            config["optimizer"] = optimizer_from_config(optimizer)
        if threads is not None:
            config["threads"] = threads
        return cls(**config)

    def save(self, path):
        """Write config, weights, optimizer state and schedule to one ``.npz``.

        No pickle: the config is JSON, the rest plain arrays, each with a
        checksum. The write is atomic: if it fails or is interrupted, the
        file previously at ``path`` is left intact. Training can continue
        after ``pyslide.load``. See :mod:`pyslide.persist`.
        """
        return persist.save(self, path)

    @classmethod
    def load(cls, path, threads=None):
        """Read a model written by ``save`` (a path or a binary file object).

        Raises ``ValueError`` naming the file when it is not a pyslide model,
        is truncated or damaged (checksums), or holds non-finite weights.
        """
        return persist.load(path, cls, threads=threads)

    def __reduce__(self):
        # pickle, copy.deepcopy, joblib and multiprocessing go through the
        # same arrays as save: the kernels' extension objects cannot be pickled
        return (_from_model_bytes, (persist.to_bytes(self),))

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return (f"Network(input_dim={self.input_dim}, layers=[{inner}], loss={self.loss!r}, "
                f"optimizer={self.optimizer!r}, threads={self.threads!r}, seed={self.seed})")


def load(path, threads=None):
    """Read a model written by ``Network.save``."""
    return Network.load(path, threads=threads)


def _from_model_bytes(data):
    """Unpickle a Network (see ``Network.__reduce__``)."""
    return persist.from_bytes(data, Network)


class _Snapshot:
    """Buffers holding a copy of a network's training state (see ``Network._snapshot``)."""

    def __init__(self, network):
        self.owner = network
        # gradient buffers are zero between steps; any other array (weights,
        # moments, touch stamps, whatever an optimizer adds) is state
        self.arrays = [{name: np.empty_like(array) for name, array in
                        state.state_arrays().items()} for state in network._states]
        self.step = 0
        self.log_decay = 0.0
        self.schedule = []


class _Run:
    """A training run's data, engine and counters (``Network._prepare_training``)."""

    def __init__(self, X, Y, x_indptr, y_indptr, engine, batch_size):
        self.X, self.Y, self.x_indptr, self.y_indptr = X, Y, x_indptr, y_indptr
        self.engine = engine
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.steps_per_epoch = (self.n + batch_size - 1) // batch_size
        self.losses = np.zeros(batch_size, dtype=np.float32)
        self.optimizer = None     # the kernels' code of the optimizer (_optim.OPTIMIZERS)
        self.timings = {"hash": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0,
                        "rebuild": 0.0}
        self.step_times = []


def _loss_sum(z, Y, loss):
    """Sum over rows of the training loss on full output scores z (float64)."""
    counts = np.diff(Y.indptr)
    rows = np.repeat(np.arange(z.shape[0]), counts)
    label_sum = np.bincount(rows, weights=z[rows, Y.indices], minlength=z.shape[0])
    if loss == "softmax":
        # cross-entropy against the labels normalised to sum 1; a row
        # without labels contributes 0, as in the training kernel
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1, dtype=np.float64))
        per_row = np.where(counts > 0, lse - label_sum / np.maximum(counts, 1), 0.0)
        return float(per_row.sum())
    return float(np.logaddexp(0.0, z).sum(dtype=np.float64) - label_sum.sum())


def _estimate_family_bytes(family, in_dim, bucket_size):
    from .hashing import estimate_table_bytes
    compiled_range = family.n_buckets_for(in_dim) if hasattr(family, "n_buckets_for") else None
    if compiled_range is None:
        return 0
    return estimate_table_bytes(compiled_range, family.L, bucket_size)


def _check_count(name, value, minimum=1):
    return integer(value, name, minimum)


def _check_ks(k, name="eval_k"):
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        k = (int(k),)
    return tuple(_check_count(name if name == "k" else f"{name} values", kk, minimum=1)
                 for kk in k)


def _check_validation_split(value):
    return real(value, "validation_split", 0, 1, max_open=True,
                hint=" (the fraction of the training rows to hold out)")


def _progress(total, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a dependency, but keep training without it
        return None
    return tqdm(total=total, desc=desc, unit="step", leave=True, dynamic_ncols=True)


def _epoch_line(epoch, logs):
    parts = [f"epoch {epoch}", f"loss {logs['loss']:.4f}", f"time {logs['time']:.1f}s"]
    parts += [f"{k} {v:.4f}" for k, v in logs.items() if k.startswith("val_")]
    return "  ".join(parts)
