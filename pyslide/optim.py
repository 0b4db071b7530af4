"""Optimizer specifications. The update kernels live in ``_kernels.pyx``."""
import math

__all__ = ["Adam", "SGD"]


def _check_positive(name, value, owner, upper=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{owner}: {name} must be a finite number, got {value!r}")
    if value <= 0 or (upper is not None and value >= upper):
        bound = f"in (0, {upper})" if upper is not None else "> 0"
        raise ValueError(f"{owner}: {name} must be {bound}, got {value}")
    return float(value)


class Adam:
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

    Notes
    -----
    Each step ``t`` uses ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``
    and ``w -= lr_t * m / (sqrt(v) + eps)``.
    """

    kind = "adam"

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, lazy=True):
        self.lr = _check_positive("lr", lr, "Adam")
        self.beta1 = _check_positive("beta1", beta1, "Adam", upper=1.0)
        self.beta2 = _check_positive("beta2", beta2, "Adam", upper=1.0)
        self.eps = _check_positive("eps", eps, "Adam")
        if not isinstance(lazy, bool):
            raise TypeError(f"Adam: lazy must be True or False, got {lazy!r}")
        self.lazy = lazy

    def get_config(self):
        return {"kind": self.kind, "lr": self.lr, "beta1": self.beta1,
                "beta2": self.beta2, "eps": self.eps, "lazy": self.lazy}

    def step_size(self, t):
        """Bias-corrected step size of step ``t`` (1-based)."""
        return self.lr * math.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)

    def __repr__(self):
        return (f"Adam(lr={self.lr:g}, beta1={self.beta1:g}, beta2={self.beta2:g}, "
                f"eps={self.eps:g}, lazy={self.lazy})")


class SGD:
    """Plain stochastic gradient descent, ``w -= lr * g`` on touched rows."""

    kind = "sgd"

    def __init__(self, lr=0.1):
        self.lr = _check_positive("lr", lr, "SGD")
        self.lazy = True

    def get_config(self):
        return {"kind": self.kind, "lr": self.lr}

    def step_size(self, t):
        return self.lr

    def __repr__(self):
        return f"SGD(lr={self.lr:g})"


def optimizer_from_config(config):
    config = dict(config)
    kind = config.pop("kind")
    if kind == "adam":
        return Adam(**config)
    if kind == "sgd":
        return SGD(**config)
    raise ValueError(f"unknown optimizer kind {kind!r} in saved model")


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
