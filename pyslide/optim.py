"""Optimizer and learning-rate schedule specifications; imports _validate only (the update kernels live in ``_optim.pyx``)."""
import math

from ._validate import choice, flag, real

__all__ = ["Adam", "AdamW", "SGD", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay"]


def _check_positive(name, value, owner, upper=None):
    """A finite number > 0 (and < ``upper``)."""
    return real(value, f"{owner}: {name}", 0, upper, min_open=True, max_open=True)


def _check_non_negative(name, value, owner):
    return real(value, f"{owner}: {name}", 0)


# ---------------------------------------------------------------- schedules

class _Schedule:
    """A learning-rate multiplier as a function of the training progress.

    Progress is counted in epochs (fractions included), so one schedule fits
    any batch size: step ``t`` (1-based) of an epoch of ``S`` steps is at
    epoch ``(t - 1) / S``. ``warmup`` epochs ramp the rate linearly from
    ``1 / (warmup * S)`` of its value to all of it; the decay starts after
    the warm-up.
    """

    kind = None

    def __init__(self, warmup=0.0):
        """Check ``warmup``: epochs of a linear ramp up to the full rate."""
        self.warmup = _check_non_negative("warmup", warmup, type(self).__name__)

    def factor(self, step, steps_per_epoch):
        """Multiplier of the base learning rate at ``step`` (1-based)."""
        steps_per_epoch = max(1, int(steps_per_epoch))
        ramp = 1.0
        warmup_steps = self.warmup * steps_per_epoch
        if warmup_steps > 0 and step < warmup_steps:
            ramp = step / warmup_steps
        epoch = max(0.0, (step - 1) / steps_per_epoch - self.warmup)
        return ramp * self._decay(epoch)

    def _decay(self, epoch):
        raise NotImplementedError

    def get_config(self):
        config = {"kind": self.kind, "warmup": self.warmup}
        config.update(self._params())
        return config

    def __repr__(self):
        inner = [f"{k}={v!r}" for k, v in self._params().items()] + [f"warmup={self.warmup:g}"]
        return f"{type(self).__name__}({', '.join(inner)})"


class Constant(_Schedule):
    """The base learning rate throughout, after an optional ``warmup``."""

    kind = "constant"

    def _decay(self, epoch):
        return 1.0

    def _params(self):
        return {}


class StepDecay(_Schedule):
    """Multiply the learning rate by ``factor`` every ``every`` epochs."""

    kind = "step"

    def __init__(self, every, factor=0.1, warmup=0.0):
        """Multiply the learning rate by ``factor`` every ``every`` epochs
        (after ``warmup`` epochs of a linear ramp)."""
        super().__init__(warmup)
        self.every = _check_positive("every", every, "StepDecay")
        self.factor_ = real(factor, "StepDecay: factor", 0, 1, min_open=True)

    def _decay(self, epoch):
        return self.factor_ ** math.floor(epoch / self.every + 1e-9)

    def _params(self):
        return {"every": self.every, "factor": self.factor_}


class ExponentialDecay(_Schedule):
    """Multiply the learning rate by ``rate`` per epoch, smoothly (``rate ** epoch``)."""

    kind = "exponential"

    def __init__(self, rate, warmup=0.0):
        """Multiply the learning rate by ``rate`` per epoch, smoothly
        (``rate ** epoch``, after ``warmup`` epochs of a linear ramp)."""
        super().__init__(warmup)
        self.rate = real(rate, "ExponentialDecay: rate", 0, 1, min_open=True)

    def _decay(self, epoch):
        return self.rate ** epoch

    def _params(self):
        return {"rate": self.rate}


class CosineDecay(_Schedule):
    """Half a cosine from the full rate down to ``final`` times it over
    ``epochs`` epochs (after the warm-up), then ``final`` from there on.

    Parameters
    ----------
    epochs : float
        Epochs of the decay, after the warm-up.
    final : float
        The rate it ends at, a fraction in [0, 1] of the full rate.
    warmup : float
        Ramp the learning rate up linearly over this many epochs first.
    """

    kind = "cosine"

    def __init__(self, epochs, final=0.0, warmup=0.0):
        """Lower the learning rate along a half cosine to ``final`` times its
        start over ``epochs`` epochs (after ``warmup`` epochs of a linear ramp)."""
        super().__init__(warmup)
        self.epochs = _check_positive("epochs", epochs, "CosineDecay")
        self.final = _check_non_negative("final", final, "CosineDecay")
        if self.final > 1:
            raise ValueError(f"CosineDecay: final must be in [0, 1], got {final}")

    def _decay(self, epoch):
        done = min(1.0, epoch / self.epochs)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * done))

    def _params(self):
        return {"epochs": self.epochs, "final": self.final}


_SCHEDULES = {cls.kind: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineDecay)}


def schedule_from_config(config):
    if config is None:
        return None
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in _SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule kind {kind!r} in saved model")
    return _SCHEDULES[kind](**config)


def _check_schedule(schedule, owner):
    if schedule is None or isinstance(schedule, _Schedule):
        return schedule
    raise TypeError(f"{owner}: schedule must be None, pyslide.Constant, pyslide.StepDecay, "
                    f"pyslide.ExponentialDecay or pyslide.CosineDecay, got {schedule!r}")


class _Optimizer:
    """What Adam and SGD share: a base rate, a schedule, decoupled decay."""

    def _init_common(self, lr, weight_decay, schedule):
        owner = type(self).__name__
        self.lr = _check_positive("lr", lr, owner)
        self.weight_decay = _check_non_negative("weight_decay", weight_decay, owner)
        if self.lr * self.weight_decay >= 1:
            raise ValueError(f"{owner}: lr * weight_decay must be below 1 (each step keeps "
                             f"1 - lr * weight_decay of a weight), got {self.lr * self.weight_decay:g}")
        self.schedule = _check_schedule(schedule, owner)

    def lr_at(self, step, steps_per_epoch=1):
        """The scheduled learning rate of ``step`` (1-based)."""
        if self.schedule is None:
            return self.lr
        return self.lr * self.schedule.factor(step, steps_per_epoch)

    def log_decay_at(self, step, steps_per_epoch=1):
        """log(1 - lr_t * weight_decay): the decoupled decay of ``step``."""
        if self.weight_decay == 0:
            return 0.0
        return math.log1p(-self.lr_at(step, steps_per_epoch) * self.weight_decay)

    def _common_config(self):
        return {"weight_decay": self.weight_decay,
                "schedule": None if self.schedule is None else self.schedule.get_config()}

    def _common_repr(self):
        out = ""
        if self.weight_decay:
            out += f", weight_decay={self.weight_decay:g}"
        if self.schedule is not None:
            out += f", schedule={self.schedule!r}"
        return out


class Adam(_Optimizer):
    """Adam with bias correction folded into the step size.

    Parameters
    ----------
    lr : float
        Learning rate (1e-3 is a good start for one hidden layer of 128).
    beta1, beta2 : float
        Decay of the first and second moment estimates, in (0, 1).
    eps : float
        Added to the root of the second moment.
    lazy : bool
        True (default): only rows touched by the batch are updated, and
        their moments decay only when touched (what makes sparse training
        cheap). False: every row of every layer every step, as textbook
        (dense) Adam; much slower on wide layers, for fidelity studies.
    weight_decay : float
        Decoupled weight decay (AdamW), e.g. 1e-4. Every step multiplies each
        weight by ``1 - lr_t * weight_decay`` before the Adam update (biases
        are not decayed). It stays lazy: a row takes the decay it missed while
        untouched, exactly, when it is next updated (and every row at the
        end of each epoch), so the weights equal dense decay's.
    schedule : Constant, StepDecay, ExponentialDecay, CosineDecay or None
        Learning-rate schedule (warm-up, then decay), counted in epochs.
    bias_correction : {"global", "mixed", "row"}
        How a row's moments are bias-corrected under lazy updates.
        ``"global"`` (default): by the number of steps of the network, as
        dense Adam and PyTorch's ``SparseAdam`` do. A row touched for the
        first time late in training has the moments of one gradient and no
        correction for it, so it moves about ``sqrt(1 / (1 - beta2)) * (1 -
        beta1)`` (3.2) times ``lr``, and rows touched rarely (rare features,
        rare labels) keep larger steps than common ones until their second
        moment has filled: the dense-Adam behaviour that lets them learn
        from few visits. ``"mixed"``: per row for ``Dense`` layers, by the
        network's steps for ``Sampled`` layers. ``"row"``: each row's moments
        are corrected by the number of updates that row has had, as if every
        row ran its own Adam: rows touched rarely move about ``lr`` a visit
        (slow, steady). How the default was chosen, at several data sizes:
        ``docs/guide.md``, "Learning speed at every data size". An output
        that computes every label updates every row every step, so there the
        three agree up to float rounding.
    idle_rows : {"hold", "coast", "mixed"}
        What a lazy row does on the steps that do not touch it. ``"hold"``:
        it waits, moments and all, as in PyTorch's ``SparseAdam``. ``"coast"``:
        it takes the steps dense Adam would have taken with a zero gradient,
        moving on its momentum while its moments decay; all of them at once,
        in closed form, when the row is next touched (and every row at the end
        of each epoch), so the cost stays lazy's. ``"mixed"`` (default): the
        rows of a sampled output coast, those of hidden layers hold. A
        coasting output row keeps learning from a visit between visits, as
        dense Adam's and the full softmax's rows do: the sampled output
        learns as fast per step or faster at the sizes measured, most in a
        first epoch at full size (with ``Sampled(lr_scale="auto")``'s visit
        clock at 32 visits instead of 128, which keeps a coasting row's
        larger moves from overfitting later). A hidden layer's input rows
        coasting (``"coast"``) learns faster still on small synthetic
        problems but cost Bibtex 0.8 points of P@1. Measurements:
        ``docs/guide.md``, "The default since 2026-12-04: the output's rows
        coast".

    Notes
    -----
    Each step ``t`` uses ``a_t = lr_t * sqrt(1 - beta2**t) / (1 - beta1**t)``
    and ``w = w * (1 - lr_t * weight_decay) - a_t * m / (sqrt(v) + eps)``,
    ``lr_t`` being ``lr`` times the schedule's factor.
    """

    kind = "adam"
    IDLE_ROWS = ("hold", "coast", "mixed")

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, lazy=True,
                 weight_decay=0.0, schedule=None, bias_correction="global", idle_rows="mixed"):
        """Check the settings (a bad one raises ``TypeError`` / ``ValueError``
        naming it); the moments are allocated by the network."""
        self._init_common(lr, weight_decay, schedule)
        self.bias_correction = choice(bias_correction, "Adam: bias_correction",
                                      ("row", "global", "mixed"))
        self.idle_rows = choice(idle_rows, "Adam: idle_rows", self.IDLE_ROWS)
        self.beta1 = _check_positive("beta1", beta1, "Adam", upper=1.0)
        self.beta2 = _check_positive("beta2", beta2, "Adam", upper=1.0)
        self.eps = _check_positive("eps", eps, "Adam")
        self.lazy = flag(lazy, "Adam: lazy")

    def get_config(self):
        return dict({"kind": self.kind, "lr": self.lr, "beta1": self.beta1,
                     "beta2": self.beta2, "eps": self.eps, "lazy": self.lazy,
                     "bias_correction": self.bias_correction, "idle_rows": self.idle_rows},
                    **self._common_config())

    def engine_settings(self):
        """The kernels' optimizer settings for a fit (``Engine.set_optimizer``),
        every value given: the moments' decay rates, eps and laziness."""
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "lazy": self.lazy}

    def step_size(self, t, steps_per_epoch=1):
        """Bias-corrected step size of step ``t`` (1-based)."""
        return (self.lr_at(t, steps_per_epoch) * math.sqrt(1.0 - self.beta2 ** t)
                / (1.0 - self.beta1 ** t))

    def __repr__(self):
        return (f"{type(self).__name__}(lr={self.lr:g}, beta1={self.beta1:g}, "
                f"beta2={self.beta2:g}, eps={self.eps:g}, lazy={self.lazy}, "
                f"bias_correction={self.bias_correction!r}, idle_rows={self.idle_rows!r}"
                f"{self._common_repr()})")


class AdamW(Adam):
    """Adam with decoupled weight decay, 0.01 by default (see ``Adam``)."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, lazy=True,
                 weight_decay=0.01, schedule=None, bias_correction="global", idle_rows="mixed"):
        """``Adam`` with decoupled weight decay (default 0.01); settings as for ``Adam``."""
        super().__init__(lr, beta1, beta2, eps, lazy, weight_decay, schedule, bias_correction,
                         idle_rows)


class SGD(_Optimizer):
    """Plain stochastic gradient descent, ``w -= lr_t * g`` on touched rows,
    with optional decoupled ``weight_decay`` and ``schedule`` as for Adam."""

    kind = "sgd"

    def __init__(self, lr=0.1, weight_decay=0.0, schedule=None):
        """Check the settings (a bad one raises ``TypeError`` / ``ValueError``
        naming it); plain SGD keeps no state besides the weights."""
        self._init_common(lr, weight_decay, schedule)
        self.lazy = True

    def get_config(self):
        return dict({"kind": self.kind, "lr": self.lr}, **self._common_config())

    def step_size(self, t, steps_per_epoch=1):
        return self.lr_at(t, steps_per_epoch)

    def engine_settings(self):
        """The kernels' optimizer settings for a fit (``Engine.set_optimizer``):
        no moments, so zero betas and eps; every row it updates is touched."""
        return {"beta1": 0.0, "beta2": 0.0, "eps": 0.0, "lazy": True}

    def __repr__(self):
        return f"SGD(lr={self.lr:g}{self._common_repr()})"


def optimizer_from_config(config):
    """The optimizer a ``get_config()`` dict describes; keys left out take the defaults."""
    config = dict(config)
    kind = config.pop("kind", None)
    config["schedule"] = schedule_from_config(config.get("schedule"))
    if kind == "adam":
        return Adam(**config)
    if kind == "sgd":
        return SGD(**config)
    raise ValueError(f"unknown optimizer kind {kind!r}; expected 'adam' or 'sgd'")


def check_optimizer(optimizer):
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "adam":
            return Adam()
        if name == "sgd":
            return SGD()
        raise ValueError(f"optimizer must be 'adam', 'sgd', pyslide.Adam(...) or pyslide.SGD(...), got {optimizer!r}")
    if not isinstance(optimizer, (Adam, SGD)):
        raise TypeError(f"optimizer must be 'adam', 'sgd', pyslide.Adam(...) or pyslide.SGD(...), got {optimizer!r}")
    return optimizer
