"""Callbacks that ``Network.fit`` runs (early stopping, checkpoints, the epoch report); imports nothing of the model.

A callback sees the network only through the object ``fit`` passes in: its
``stop_training`` flag, ``save(path)``, and the private ``_snapshot()`` /
``_restore(snapshot)`` pair that copies and puts back the training state;
``EpochReport`` reads its counters (``epoch_``, ``step_``, ``history_``,
``step_times_``, ``timings_``) and calls ``evaluate``. So this module
depends on no other pyslide module and the model may import it.

The protocol, as in Keras: ``on_train_begin(network, logs)`` once before the
first epoch of a ``fit`` call (``logs`` holds ``epochs``, ``steps`` per epoch
and ``metrics``, the keys every epoch's logs will hold),
``on_epoch_end(network, epoch, logs)`` after every epoch (``epoch`` counts
from 1 across ``fit`` calls; ``logs`` holds ``loss``, ``time`` and the
``val_*`` metrics), and ``on_train_end(network, logs)`` once after the last
epoch (``logs`` of the last epoch). A plain function ``f(network, epoch,
logs)`` is an ``on_epoch_end``.
"""
import math
import numbers
import os
import re

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "EpochReport", "check_callbacks"]

_MONITOR = re.compile(r"^(?:val_)?(?:loss|(?:p|ndcg)@[1-9][0-9]*)$")


class Callback:
    """Base class of the objects ``fit(..., callbacks=[...])`` runs.

    Override any of the three methods; the defaults do nothing. Setting
    ``network.stop_training = True`` in ``on_epoch_end`` ends ``fit`` after
    that epoch.
    """

    def on_train_begin(self, network, logs):
        """Called once by ``fit`` before its first epoch."""

    def on_epoch_end(self, network, epoch, logs):
        """Called by ``fit`` after every epoch (``epoch`` counts from 1)."""

    def on_train_end(self, network, logs):
        """Called once by ``fit`` after its last epoch (not on an error)."""


class _Monitor:
    """The logs key a callback watches, and what counts as an improvement."""

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if not isinstance(monitor, str) or not _MONITOR.match(monitor):
            raise ValueError(
                f"{owner}: monitor must be 'loss', 'val_loss' or a validation metric such "
                f"as 'p@1', 'p@5' or 'ndcg@5' (also written 'val_p@1'), got {monitor!r}")
        self.owner = owner
        self.monitor = monitor
        # a bare metric name means its validation value: training P@k is never logged
        self.key = monitor if monitor == "loss" or monitor.startswith("val_") \
            else f"val_{monitor}"
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "min" if self.key.endswith("loss") else "max"
        self.mode = mode
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real) \
                or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"{owner}: min_delta must be a number >= 0 (the smallest change "
                             f"that counts as an improvement), got {min_delta!r}")
        self.min_delta = float(min_delta)

    def check_keys(self, keys):
        """Raise before training when the epochs' logs will not hold the key."""
        if keys is None or self.key in keys:
            return
        self._missing(keys)

    def value(self, logs):
        if self.key not in logs:
            self._missing(list(logs))
        return float(logs[self.key])

    def _missing(self, keys):
        have = ", ".join(keys)
        if self.key.startswith("val_") and not any(k.startswith("val_") for k in keys):
            fix = "pass validation_data=(X_val, Y_val) or validation_split=0.1 to fit"
        elif self.key.startswith("val_"):
            fix = "add its k to fit's eval_k"
        else:
            fix = "monitor one of the logged keys"
        raise ValueError(f"{self.owner}: monitor {self.monitor!r} needs {self.key!r} in the "
                         f"logs of every epoch, but fit logs only {have}; {fix}")

    def improved(self, value, best):
        if math.isnan(value):
            return False
        if best is None:
            return True
        if self.mode == "max":
            return value > best + self.min_delta
        return value < best - self.min_delta


class EarlyStopping(Callback):
    """Stop training when a validation metric stops improving; keep the best model.

    Parameters
    ----------
    monitor : str
        ``"val_loss"`` (default, as in Keras: the exact loss over every
        output on the validation rows), any ``"p@k"`` / ``"ndcg@k"`` of
        ``fit``'s ``eval_k`` (the validation value; ``"val_p@1"`` means the
        same) or ``"loss"`` (the training loss). Validation metrics need
        ``validation_data`` or ``validation_split`` in ``fit``. The loss is
        the steadier judge on a small validation set: on Bibtex (488 held-out
        rows) stopping on it gave a test P@1 of 62.8-63.7, stopping on the
        validation P@1 61.5-62.7, whose noise ends training early
        (``docs/guide.md``).
    patience : int
        Epochs without improvement after which training stops (as in
        Keras, 0 and 1 both stop after the first epoch that does not improve).
    min_delta : float
        An epoch improves only when it beats the best by more than this.
    mode : {"auto", "max", "min"}
        Whether larger is better; ``"auto"``: smaller for losses, larger for
        metrics.
    restore_best : bool
        At the end of ``fit`` (stopped early or not), put the network back to
        its best epoch: weights, optimizer state (Adam moments) and step
        count, so that training can go on from it. Keeping the best state
        costs one copy of the weights and optimizer state in memory.

    Attributes
    ----------
    best : float or None
        The best monitored value of the last ``fit``.
    best_epoch : int or None
        The epoch (counted from 1 across ``fit`` calls) that reached it; also
        set as ``network.best_epoch_`` at the end of ``fit``.
    stopped_epoch : int
        The epoch after which training stopped, 0 if ``fit`` ran every epoch.

    Examples
    --------
    >>> es = ps.EarlyStopping(patience=2)
    >>> net.fit(X, Y, epochs=50, validation_split=0.1, callbacks=[es])  # doctest: +SKIP
    >>> es.best_epoch, es.best                                           # doctest: +SKIP
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, mode="auto",
                 restore_best=True):
        """Check the settings; the monitored key is checked against ``fit``'s
        logs when training begins (a missing one is a ``ValueError`` then)."""
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) \
                or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0 (epochs without "
                             f"improvement before stopping), got {patience!r}")
        if not isinstance(restore_best, bool):
            raise TypeError(f"EarlyStopping: restore_best must be True or False, "
                            f"got {restore_best!r}")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = self._monitor.min_delta
        self.mode = self._monitor.mode
        self.restore_best = restore_best
        self._state = None
        self._reset()

    @property
    def monitored_key(self):
        """The logs key ``best`` is a value of: ``monitor`` as ``fit`` logs it
        (``"val_loss"``, ``"p@1"`` given as ``"val_p@1"``, ``"loss"``)."""
        return self._monitor.key

    def _reset(self):
        self.best = None
        self.best_epoch = None
        self.stopped_epoch = 0
        self.wait = 0

    def on_train_begin(self, network, logs):
        self._monitor.check_keys((logs or {}).get("metrics"))
        self._reset()

    def on_epoch_end(self, network, epoch, logs):
        value = self._monitor.value(logs)
        if self._monitor.improved(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                # the buffers of the previous best are reused: one copy, allocated once
                self._state = network._snapshot(into=self._state)
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            network.stop_training = True

    def on_train_end(self, network, logs):
        if self.best_epoch is None:
            return
        network.best_epoch_ = self.best_epoch
        if self.restore_best and self._state is not None and self.best_epoch != network.epoch_:
            network._restore(self._state)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, mode={self.mode!r}, "
                f"restore_best={self.restore_best})")


class ModelCheckpoint(Callback):
    """Save the model after every epoch that improved a metric (or after every epoch).

    Parameters
    ----------
    path : str or os.PathLike
        Where ``network.save`` writes. May hold ``{epoch}`` (with a format
        spec such as ``{epoch:03d}``) to keep one file per epoch; otherwise
        each save replaces the last.
    monitor : str
        What decides "improved", as in ``EarlyStopping`` (default
        ``"val_loss"``).
    save_best_only : bool
        True (default): save only after epochs that improved ``monitor``
        (the first epoch always does). False: save after every epoch, and
        ``monitor`` is not needed.
    mode : {"auto", "max", "min"}
        As in ``EarlyStopping``.

    Attributes
    ----------
    best : float or None
        The best monitored value so far (``save_best_only=True``).
    best_epoch : int or None
        The epoch that reached it.
    saved : list of str
        Every path written, in order.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=True, mode="auto"):
        """Check the path's form and the settings; the path itself (its folder,
        writable, not a folder) is checked when ``fit`` begins, before the
        first epoch."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: path must be a file path (str or "
                            f"os.PathLike), got {path!r}")
        self.path = os.fspath(path)
        try:
            self.path.format(epoch=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: path may hold only '{{epoch}}' as a field "
                             f"(such as 'model-{{epoch:03d}}.npz'), got {self.path!r} "
                             f"({type(exc).__name__}: {exc})") from None
        if not isinstance(save_best_only, bool):
            raise TypeError(f"ModelCheckpoint: save_best_only must be True or False, "
                            f"got {save_best_only!r}")
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode)
        self.monitor = monitor
        self.mode = self._monitor.mode
        self.save_best_only = save_best_only
        self.best = None
        self.best_epoch = None
        self.saved = []

    def on_train_begin(self, network, logs):
        if self.save_best_only:
            self._monitor.check_keys((logs or {}).get("metrics"))
        # a missing folder must fail now, not after the first (maybe hour-long) epoch
        folder = os.path.dirname(os.path.abspath(self.path.format(epoch=1)))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"ModelCheckpoint: the folder {folder!r} of path "
                                    f"{self.path!r} does not exist")
        # and so must a path that is a folder, a device or in a read-only
        # folder; the network knows what its save writes (a file, or a folder)
        check = getattr(network, "_check_save_path", None)
        if check is not None:
            check(self.path.format(epoch=1), "ModelCheckpoint: path")
        self.best = None
        self.best_epoch = None

    def on_epoch_end(self, network, epoch, logs):
        if self.save_best_only:
            value = self._monitor.value(logs)
            if not self._monitor.improved(value, self.best):
                return
            self.best, self.best_epoch = value, epoch
        path = self.path.format(epoch=epoch)
        network.save(path)
        self.saved.append(path)

    def __repr__(self):
        return (f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, "
                f"save_best_only={self.save_best_only}, mode={self.mode!r})")


class EpochReport(Callback):
    """Print one line after every epoch, and on request the run's summary.

    The line ``fit(verbose=2)`` prints: ``epoch 3/10  loss 2.9404  0.21 s
    612.5 steps/s``, then ``val_loss`` and ``val_p@k`` when ``fit`` has
    validation data, then the scores on ``test_data`` when due.

    Parameters
    ----------
    test_data : (X, Y) or None
        Rows scored with ``network.evaluate`` after every ``eval_every``
        epochs and after the last; their scores join the epoch's logs as
        ``test_p@k`` and ``test_ndcg@k``.
    eval_every : int
        Score ``test_data`` every this many epochs, and after the last (0:
        after the last only).
    eval_k : tuple of int
        The k of the test P@k and nDCG@k.
    early_stopping : EarlyStopping or None
        The run's early stopping: the model it keeps, not the last epoch's,
        is the one ``summary`` scores on ``test_data``.
    checkpoint : ModelCheckpoint or None
        The run's checkpoints, counted by ``summary``.
    """

    def __init__(self, test_data=None, eval_every=1, eval_k=(1, 3, 5), early_stopping=None,
                 checkpoint=None):
        if isinstance(eval_every, bool) or not isinstance(eval_every, numbers.Integral) \
                or eval_every < 0:
            raise ValueError(f"EpochReport: eval_every must be an int >= 0 (epochs between "
                             f"scores on test_data; 0: after the last only), got {eval_every!r}")
        if test_data is not None and (not isinstance(test_data, (tuple, list))
                                      or len(test_data) != 2):
            raise ValueError("EpochReport: test_data must be a pair (X_test, Y_test) or None")
        self.test_data, self.eval_every, self.eval_k = test_data, int(eval_every), eval_k
        self.early_stopping, self.checkpoint = early_stopping, checkpoint
        self.last_epoch, self.steps, self.seconds, self.start = 0, 0, 0.0, 0.0

    def on_train_begin(self, network, logs):
        self.last_epoch = network.epoch_ + logs["epochs"]
        self.steps = network.step_
        self.start = self.seconds = (network.history_.get("time") or [0.0])[-1]

    def on_epoch_end(self, network, epoch, logs):
        steps, seconds = network.step_ - self.steps, logs["time"] - self.seconds
        self.steps, self.seconds = network.step_, logs["time"]
        parts = [f"epoch {epoch}/{self.last_epoch}", f"loss {logs['loss']:.4f}",
                 _seconds(seconds), f"{steps / max(seconds, 1e-9):.1f} steps/s"]
        parts += [f"{k} {v:.4f}" for k, v in logs.items()
                  if k == "val_loss" or k.startswith("val_p@")]
        # with early stopping the final model is the best epoch's, scored by summary()
        if self.test_data is not None and (
                (epoch == self.last_epoch and self.early_stopping is None)
                or (self.eval_every and epoch % self.eval_every == 0)):
            scores = network.evaluate(*self.test_data, k=self.eval_k)
            logs.update({f"test_{k}": v for k, v in scores.items()})
            parts += [f"{k} {v:.4f}" for k, v in scores.items()]
        print("  ".join(parts), flush=True)

    def summary(self, network):
        """Print what the run did, after ``fit``: the epoch early stopping
        kept (and its scores on ``test_data``), the checkpoints written, the
        steps per second, and the training time by phase."""
        stopper = self.early_stopping
        if stopper is not None:
            how = (f"stopped after epoch {stopper.stopped_epoch}" if stopper.stopped_epoch
                   else f"ran all {self.last_epoch} epochs")
            # named as the epoch lines name the monitored value (val_loss, val_p@1, ...)
            print(f"early stopping: {how}; kept the model of epoch {stopper.best_epoch} "
                  f"({stopper.monitored_key} {stopper.best:.4f})")
            if self.test_data is not None:
                scores = network.evaluate(*self.test_data, k=self.eval_k)
                print(f"test, model of epoch {stopper.best_epoch}:  "
                      + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        if self.checkpoint is not None and self.checkpoint.saved:
            print(f"checkpoints: {len(self.checkpoint.saved)} written, the last to "
                  f"{self.checkpoint.saved[-1]}")
        # not the step counter: early stopping may have put it back to the best epoch's
        steps, seconds = len(network.step_times_), self.seconds - self.start
        print(f"trained {steps} steps in {_seconds(seconds)} "
              f"({steps / max(seconds, 1e-9):.1f} steps/s)")
        if network.timings_ and steps and float(sum(network.step_times_)) > 0:
            print("time by phase: " + ", ".join(f"{k} {_seconds(v)}"
                                                for k, v in network.timings_.items()))


def _seconds(value):
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


class _FunctionCallback(Callback):
    """A plain ``f(network, epoch, logs)`` or an object with only some hooks."""

    def __init__(self, on_epoch_end, target=None):
        self._on_epoch_end = on_epoch_end
        self._target = target

    def on_train_begin(self, network, logs):
        hook = getattr(self._target, "on_train_begin", None)
        if hook is not None:
            hook(network, logs)

    def on_epoch_end(self, network, epoch, logs):
        self._on_epoch_end(network, epoch, logs)

    def on_train_end(self, network, logs):
        hook = getattr(self._target, "on_train_end", None)
        if hook is not None:
            hook(network, logs)


def check_callbacks(callbacks):
    """``fit``'s ``callbacks`` argument as a list of objects with all three hooks."""
    if callbacks is None:
        return []
    if callable(callbacks) or hasattr(callbacks, "on_epoch_end"):
        callbacks = [callbacks]
    out = []
    for i, cb in enumerate(callbacks):
        if isinstance(cb, Callback):
            out.append(cb)
        elif hasattr(cb, "on_epoch_end"):
            out.append(_FunctionCallback(cb.on_epoch_end, target=cb))
        elif callable(cb):
            out.append(_FunctionCallback(cb))
        else:
            raise TypeError(f"callbacks[{i}] must be callable f(network, epoch, logs) or have "
                            f"an on_epoch_end(network, epoch, logs) method, got {cb!r}")
    return out
