"""Training: the engine's preparation, the epoch loop, snapshots for early stopping; imports the kernels (_kernels, _loss, _optim), _openmp_env, callbacks, layers and _validate (never the CLI).

``Trainer`` is a mixin of :class:`pyslide.Network`: it holds the methods
that run training on the arrays the network allocates.
"""
import math
import time
import warnings

import numpy as np

from . import _kernels, _loss, _optim
from ._openmp_env import note_threads
from ._validate import flag, integer, integers, real
from .callbacks import check_callbacks as _check_callbacks
from .layers import Sampled

__all__ = ["Trainer", "DivergenceWarning"]

# a batch loss this many times the first batch's (at least 1) means the steps
# are too large: losses of a working run shrink or stay within a few times
# their start, a diverging one grows without bound (issue 18: 7e27)
DIVERGENCE_FACTOR = 1e3


class DivergenceWarning(RuntimeWarning):
    """The training loss grew by orders of magnitude (``Network.fit``)."""


class Trainer:
    """``fit`` and what it needs (mixed into ``Network``)."""

    def _make_engine(self, batch_size, max_labels, max_row_nnz, label_log1m=None):
        specs = [state.engine_spec(layer, *self._dims[i], self._dropout_rate(i))
                 for i, (layer, state) in enumerate(zip(self.layers, self._states))]
        engine = _kernels.Engine(specs, batch_size,
                                 note_threads(self._threads_for_rows(batch_size)),
                                 _loss.LOSSES[self.loss], max_labels, self.seed,
                                 self._is_shared_output(), max_row_nnz, label_log1m=label_log1m)
        engine.set_optimizer(_optim.OPTIMIZERS[self.optimizer.kind],
                             **self.optimizer.engine_settings())
        return engine

    def _mark_changed(self, engine):
        """Remember the rows of a batch-shared output the last step changed."""
        out = self._states[-1]
        if out.tables is not None and self._is_shared_output():
            out.dirty[engine.last_shared_ids()] = True

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
            self._init_weights(float(row_sq.mean()) if n else 1.0, Y)
        self._setup_hashing()
        self._set_visit_rate(Y, batch_size)
        max_row_nnz = int(np.diff(x_indptr).max()) if n else 0
        engine = self._make_engine(batch_size, max_labels, max_row_nnz,
                                   self._label_log1m(Y) if correct_sampling else None)
        self._engine = engine
        run = _Run(X, Y, x_indptr, y_indptr, engine, batch_size)
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
        sampled = [i for i, layer in enumerate(self.layers) if isinstance(layer, Sampled)]
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
            run.watch_divergence(batch_loss, step, epoch)
            t2 = time.perf_counter()
            log_decay = self._log_decay + opt.log_decay_at(step, steps_per_epoch)
            for i in sampled:     # Sampled(lr_scale=...) may change per step
                engine.set_lr_scale(i, self._lr_scale(i, step, steps_per_epoch))
            engine.optimizer_step(step, opt.step_size(step, steps_per_epoch), log_decay,
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
        epochs = integer(epochs, "epochs", 1)
        batch_size = integer(batch_size, "batch_size", 1)
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        shuffle = flag(shuffle, "shuffle")
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
        eval_k = integers(eval_k, "eval_k")
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
                    if bar is not None:
                        bar.close()
                        bar = None
                    logs = _end_epoch(self, loss_sum / run.n, train_time,
                                      None if validation_data is None else (Xv, Yv),
                                      eval_k, verbose, callbacks)
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
        self.first_loss = None    # (loss, step) of the run's first batch
        self.warned_divergence = False

    def watch_divergence(self, batch_loss, step, epoch):
        """Warn once when a batch's loss is ``DIVERGENCE_FACTOR`` times the
        run's first (at least 1): the steps are too large and training is
        running away, although every number is still finite."""
        if self.first_loss is None:
            self.first_loss = (batch_loss, step)
            return
        first, first_step = self.first_loss
        if self.warned_divergence or batch_loss <= DIVERGENCE_FACTOR * max(first, 1.0):
            return
        self.warned_divergence = True
        warnings.warn(
            f"training is diverging: the batch loss grew from {first:.4g} (step "
            f"{first_step}) to {batch_loss:.4g} at step {step} (epoch {epoch + 1}); lower the "
            f"optimizer's lr (or a Sampled layer's lr_scale)", DivergenceWarning, stacklevel=4)


def _end_epoch(model, loss, train_time, validation, eval_k, verbose, callbacks):
    """An epoch's bookkeeping, shared by ``Network`` and ``ShardedNetwork``:
    count it, score the validation rows, record the history, print the
    line, run the callbacks. Returns the epoch's logs."""
    model.epoch_ += 1
    logs = {"loss": loss, "time": train_time}
    if validation is not None:
        scores = model._validation_scores(*validation, eval_k)
        logs.update({f"val_{k}": v for k, v in scores.items()})
    for key, value in logs.items():
        model.history_.setdefault(key, []).append(value)
    if verbose == 2 or (verbose == 1 and validation is not None):
        print(_epoch_line(model.epoch_, logs), flush=True)
    for cb in callbacks:
        cb.on_epoch_end(model, model.epoch_, logs)
    return logs


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
