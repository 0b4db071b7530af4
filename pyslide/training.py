"""Training: one epoch loop for every model (``Trainer``), driving a step backend picked by the model (``LocalSteps`` here: the ``_kernels.Engine`` over every layer; ``distributed.ShardSteps``: the trunk here, the output layer in a group of label shards); imports the kernels (_kernels, _loss, _optim), _openmp_env, seeds, callbacks, layers and _validate (never a model module, the CLI or Ray).

``Trainer`` is a mixin of :class:`pyslide.Network` and
``pyslide.distributed.ShardedNetwork``. It owns everything a fit does
around its steps: the argument checks, the validation data or split,
callbacks, history, the progress bar, the optimizer's and ``lr_scale``'s
schedules, the shuffle, the divergence warning and the snapshots of early
stopping. A model supplies ``_steps()``, its backend, which answers:

``prepare(run, max_labels, max_row_nnz, label_log1m)``
    engines and scratch for a fit over ``run``'s data;
``start(run)``
    before the first step (the single node's forced table rebuild);
``compute(run, rows, step)``
    the forward and backward pass of one batch; returns its mean loss (a
    non-finite loss: the step is already dropped);
``apply(run, step, schedule)``
    the optimizer's update with this step's ``schedule``;
``settle(run)``
    at the end of an epoch: every update done, pending weight decay applied;
``abort(run)``
    drop the step in progress (an interrupt, or one of ``fatal_errors``);
``finish(run)``
    after the fit: the timings onto the model;
``check_ready()``, ``snapshot()``, ``restore()``
    the state the backend holds beyond the model's ``_states``.
"""
import math
import time
import warnings

import numpy as np

from . import _kernels, _loss, _optim
from ._openmp_env import note_threads
from ._validate import flag, integer, integers, real
from .callbacks import EpochReport, check_callbacks as _check_callbacks
from .layers import Sampled
from .seeds import epoch_order, sampling_seed, split_order

__all__ = ["Trainer", "LocalSteps", "DivergenceWarning"]

# a batch loss this many times the first batch's (at least 1) means the steps
# are too large: losses of a working run shrink or stay within a few times
# their start, a diverging one grows without bound (issue 18: 7e27)
DIVERGENCE_FACTOR = 1e3


class DivergenceWarning(RuntimeWarning):
    """The training loss grew by orders of magnitude (``Network.fit``)."""


class Trainer:
    """``fit`` and the epoch loop (mixed into ``Network`` and ``ShardedNetwork``)."""

    def fit(self, X, Y, epochs=1, batch_size=128, validation_data=None, shuffle=True,
            callbacks=None, verbose=1, eval_k=(1, 3, 5), validation_split=0.0):
        """Train for ``epochs`` passes over (X, Y).

        Parameters
        ----------
        X : scipy.sparse matrix or ndarray, shape (n, input_dim)
        Y : CSR label indicator (n, n_outputs), list of label lists, or 1-D
            int array of one label per row.
        epochs : int
            Passes over the data.
        batch_size : int
            Samples per step.
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
            0 silent, 1 a progress bar (loss, steps/s, ETA), 2 one line per
            epoch (a ``pyslide.EpochReport``'s; 1 prints it too with
            validation data). An ``EpochReport`` among ``callbacks`` prints
            instead.
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
        steps = self._steps()
        steps.check_ready()
        epochs = integer(epochs, "epochs", 1)
        batch_size = integer(batch_size, "batch_size", 1)
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        shuffle = flag(shuffle, "shuffle")
        X, Y, validation = self._fit_data(X, Y, validation_data, validation_split)
        eval_k = integers(eval_k, "eval_k")
        callbacks = _check_callbacks(callbacks)
        if (verbose == 2 or (verbose == 1 and validation is not None)) and not any(
                isinstance(cb, EpochReport) for cb in callbacks):
            callbacks.insert(0, EpochReport(eval_k=eval_k))
        run = self._prepare_training(X, Y, batch_size, steps=steps)
        train_time = self.history_["time"][-1] if self.history_.get("time") else 0.0
        self.stop_training = False
        metrics = ["loss", "time"]
        if validation is not None:
            metrics += ["val_loss"] + [f"val_{m}@{k}" for k in eval_k for m in ("p", "ndcg")]
        for cb in callbacks:
            cb.on_train_begin(self, {"epochs": epochs, "steps": run.steps_per_epoch,
                                     "metrics": metrics})
        from threadpoolctl import threadpool_limits
        bar = None
        try:
            # BLAS stays single-threaded during training: the kernels split
            # their matrix products over their own OpenMP threads, and idle
            # BLAS threads spinning after a call would steal those cores
            with threadpool_limits(limits=1, user_api="blas"):
                steps.start(run)
                for _ in range(epochs):
                    epoch = self.epoch_
                    if verbose == 1:
                        bar = _progress(run.steps_per_epoch, f"epoch {epoch + 1}")
                    t_epoch = time.perf_counter()
                    loss_sum = self._train_epoch(run, epoch, shuffle, bar)
                    # rows the lazy optimizer left alone take the weight decay
                    # they owe, so the model evaluated and saved is dense AdamW's
                    steps.settle(run)
                    train_time += time.perf_counter() - t_epoch
                    if bar is not None:
                        bar.close()
                        bar = None
                    logs = _end_epoch(self, loss_sum / run.n, train_time, validation,
                                      eval_k, callbacks)
                    if self.stop_training:
                        break
                for cb in callbacks:
                    cb.on_train_end(self, logs)
        except (KeyboardInterrupt,) + steps.fatal_errors:
            # a step either completed (optimizer applied) or is dropped whole
            steps.abort(run)
            raise
        finally:
            if bar is not None:
                bar.close()
            self.step_times_ = np.asarray(run.step_times)
            steps.finish(run)
        return self.history_

    def _fit_data(self, X, Y, validation_data, validation_split):
        """Checked training rows and validation pair (None without one):
        ``validation_data`` as given, or ``validation_split``'s rows held out."""
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
            return X, Y, (Xv, Yv)
        if validation_split:
            X, Y, Xv, Yv = self._split_validation(X, Y, validation_split)
            return X, Y, (Xv, Yv)
        return X, Y, None

    def _prepare_training(self, X, Y, batch_size, correct_sampling=True, steps=None):
        """Everything ``fit`` does before its first step, on checked (X, Y).

        Initial weights (unless the network was trained or loaded), the
        visit clock of ``lr_scale="auto"``, and the backend's engines over
        the network's arrays. ``correct_sampling=False`` leaves the sampling
        correction off whatever the output layer says (kernel tests compare
        with a reference without it). ``steps``: the backend (default: the
        model's ``_steps()``). Returns a ``_Run``.
        """
        n = X.shape[0]
        batch_size = min(batch_size, n)
        run = _Run(X, Y, batch_size)
        max_labels = int(np.diff(run.y_indptr).max()) if n else 0
        max_row_nnz = int(np.diff(run.x_indptr).max()) if n else 0
        if not self._initialized:
            row_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
            self._init_weights(float(row_sq.mean()) if n else 1.0, Y)
        self._set_visit_rate(Y, batch_size)
        label_log1m = self._label_log1m(Y) if correct_sampling else None
        run.steps = self._steps() if steps is None else steps
        run.steps.prepare(run, max_labels, max_row_nnz, label_log1m)
        return run

    def _train_epoch(self, run, epoch, shuffle, bar=None):
        """One pass over ``run``'s rows, a step per batch; returns the sum of the row losses."""
        steps = run.steps
        n, batch_size, steps_per_epoch = run.n, run.batch_size, run.steps_per_epoch
        order = epoch_order(self.seed, epoch, n, shuffle)
        loss_sum = 0.0
        for s in range(steps_per_epoch):
            t0 = time.perf_counter()
            rows = order[s * batch_size:(s + 1) * batch_size]
            step = self.step_ + 1
            batch_loss = steps.compute(run, rows, step)
            if not math.isfinite(batch_loss):
                raise FloatingPointError(
                    f"the loss became {batch_loss} at step {step} (epoch "
                    f"{epoch + 1}, batch {s + 1}); weights were left as they "
                    f"were before this step. Lower the learning rate or check "
                    f"the inputs for extreme values")
            run.watch_divergence(batch_loss, step, epoch)
            schedule = self._step_schedule(step, steps_per_epoch)
            steps.apply(run, step, schedule)
            run.last_schedule = dict(schedule, step=step)
            self._log_decay = schedule["log_decay"]
            self.step_ = step
            run.step_times.append(time.perf_counter() - t0)
            loss_sum += batch_loss * len(rows)
            if bar is not None:
                bar.update(1)
                if s % 10 == 0 or s == steps_per_epoch - 1:
                    bar.set_postfix(loss=f"{loss_sum / min(n, (s + 1) * batch_size):.4f}",
                                    refresh=False)
        return loss_sum

    def _step_schedule(self, step, steps_per_epoch):
        """The optimizer's arguments for ``step`` (1-based), written once for
        every backend: step size, learning rate, the weight-decay sum after
        the step, and each sampled layer's ``lr_scale`` (``Sampled(lr_scale=...)``
        may change per step); the rest is set once per fit (``optimizer_settings``)."""
        opt = self.optimizer
        return {"step_size": opt.step_size(step, steps_per_epoch),
                "log_decay": self._log_decay + opt.log_decay_at(step, steps_per_epoch),
                "lr": opt.lr_at(step, steps_per_epoch),
                "lr_scales": {i: self._lr_scale(i, step, steps_per_epoch)
                              for i, layer in enumerate(self.layers)
                              if isinstance(layer, Sampled)}}

    # ------------------------------------------------------------ snapshots

    def _snapshot(self, into=None):
        """A copy of the training state, for ``_restore`` (early stopping).

        Copies every array of the model's layer states except the gradient
        buffers (zero between steps), whatever the optimizer keeps there,
        plus the step count and the rebuild schedule; the backend copies
        what it holds elsewhere (a shard its rows, in its own actor).
        ``into``, a snapshot taken earlier from this network, is overwritten
        in place, so keeping the best of many epochs allocates its memory
        once. The LSH tables are not copied: ``_restore`` rebuilds them from
        the restored weights.
        """
        if into is None or into.owner is not self:
            into = _Snapshot(self)
        for arrays, state in zip(into.arrays, self._states):
            for name, array in arrays.items():
                np.copyto(array, state[name])
        into.step = self.step_
        into.log_decay = self._log_decay
        into.schedule = [state.schedule() for state in self._states]
        self._steps().snapshot()
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
        self._steps().restore()

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
        order = split_order(self.seed, n)
        val_rows = np.sort(order[:n_val])
        train_rows = np.sort(order[n_val:])
        self.validation_rows_ = val_rows
        return X[train_rows], Y[train_rows], X[val_rows], Y[val_rows]


def optimizer_settings(optimizer):
    """(code, settings) of ``optimizer`` for the kernels' ``set_optimizer``,
    once per fit (both engines: the single node's and the shards')."""
    return _optim.OPTIMIZERS[optimizer.kind], optimizer.engine_settings()


def engine_specs(net, states):
    """What ``_kernels.Engine`` needs of each of the first ``len(states)``
    layers, for the single node's engine and the sharded trunk alike."""
    return [state.engine_spec(net.layers[i], *net._dims[i], net._dropout_rate(i))
            for i, state in enumerate(states)]


class LocalSteps:
    """The single node's step backend: one ``_kernels.Engine`` over every
    layer of a ``Network`` (see the module's docstring for the interface)."""

    fatal_errors = ()

    def __init__(self, net):
        self.net = net

    def check_ready(self):
        pass

    def prepare(self, run, max_labels, max_row_nnz, label_log1m):
        self.net._setup_hashing()
        run.engine = self.engine(run.batch_size, max_labels, max_row_nnz, label_log1m)
        self.net._engine = run.engine
        run.timings = {"hash": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0,
                       "rebuild": 0.0}

    def engine(self, batch_size, max_labels, max_row_nnz, label_log1m=None):
        """An engine over every layer's arrays, its scratch sized for the batch."""
        net = self.net
        threads = note_threads(net._threads_for_rows(batch_size))
        engine = _kernels.Engine(engine_specs(net, net._states), batch_size, threads,
                                 _loss.LOSSES[net.loss], max_labels, sampling_seed(net.seed),
                                 net._is_shared_output(), max_row_nnz, label_log1m=label_log1m)
        code, settings = optimizer_settings(net.optimizer)
        engine.set_optimizer(code, **settings)
        return engine

    def start(self, run):
        net = self.net
        run.timings["rebuild"] += net._maybe_rebuild(force=net.step_ == 0)

    def compute(self, run, rows, step):
        net, X, Y = self.net, run.X, run.Y
        run.timings["rebuild"] += net._maybe_rebuild()
        run.engine.train_step(run.x_indptr, X.indices, X.data, run.y_indptr, Y.indices,
                              rows, step, run.losses, net._log_decay)
        batch_loss = float(run.losses[:len(rows)].mean(dtype=np.float64))
        if not math.isfinite(batch_loss):
            run.engine.discard_gradients(step)
        return batch_loss

    def apply(self, run, step, schedule):
        t0 = time.perf_counter()
        engine = run.engine
        for i, scale in schedule["lr_scales"].items():
            engine.set_lr_scale(i, scale)
        engine.optimizer_step(step, schedule["step_size"], schedule["log_decay"], schedule["lr"])
        self._mark_changed(engine)
        run.timings["optimizer"] += time.perf_counter() - t0

    def _mark_changed(self, engine):
        """Remember the rows of a batch-shared output the last step changed."""
        net = self.net
        out = net._states[-1]
        if out.tables is not None and net._is_shared_output():
            out.dirty[engine.last_shared_ids()] = True

    def settle(self, run):
        run.engine.apply_pending(self.net._log_decay, **run.pending_steps(self.net.step_))

    def abort(self, run):
        run.engine.discard_gradients(self.net.step_ + 1)

    def finish(self, run):
        run.engine.apply_pending(self.net._log_decay, **run.pending_steps(self.net.step_))
        phase = run.engine.timings()
        for key in ("hash", "forward", "backward"):
            run.timings[key] += phase[key]
        self.net.timings_ = run.timings

    def snapshot(self):
        pass

    def restore(self):
        pass


class _Snapshot:
    """Buffers holding a copy of a network's training state (see ``Trainer._snapshot``)."""

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
    """A training run's data, scratch and counters (``Trainer._prepare_training``);
    its backend adds its engines and counters."""

    def __init__(self, X, Y, batch_size):
        self.X, self.Y = X, Y
        self.x_indptr = X.indptr.astype(np.int64)
        self.y_indptr = Y.indptr.astype(np.int64)
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.steps_per_epoch = (self.n + batch_size - 1) // batch_size
        self.losses = np.zeros(batch_size, dtype=np.float32)
        self.steps = None         # the backend (LocalSteps, distributed.ShardSteps)
        self.engine = None
        self.timings = {}
        self.step_times = []
        self.first_loss = None    # (loss, step) of the run's first batch
        self.warned_divergence = False
        self.last_schedule = None  # the last applied step's schedule, with its "step"

    def pending_steps(self, through, scale=1.0):
        """The last applied step, its step size and learning rate (times
        ``scale``, in float32 as the engines multiply): what idle rows that
        coast catch up with (``Engine.apply_pending``). Zeros before any step,
        and when ``through``, the network's step, is not the last one: early
        stopping restored an earlier epoch's state, whose rows caught up
        then, and coasting them on to the last step would undo the restore."""
        last = self.last_schedule
        if last is None or last["step"] != through:
            return {"step": 0, "step_size": 0.0, "lr": 0.0}
        scale = np.float32(scale)
        return {"step": last["step"],
                "step_size": float(np.float32(last["step_size"]) * scale),
                "lr": float(np.float32(last["lr"]) * scale)}

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


def _end_epoch(model, loss, train_time, validation, eval_k, callbacks):
    """An epoch's bookkeeping, shared by ``Network`` and ``ShardedNetwork``:
    count it, score the validation rows, record the history, run the
    callbacks (``EpochReport`` among them prints the line). Returns the
    epoch's logs."""
    model.epoch_ += 1
    logs = {"loss": loss, "time": train_time}
    if validation is not None:
        scores = model._validation_scores(*validation, eval_k)
        logs.update({f"val_{k}": v for k, v in scores.items()})
    for key, value in logs.items():
        model.history_.setdefault(key, []).append(value)
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
