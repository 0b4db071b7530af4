"""The checks and copies behind ``get_weights`` / ``set_weights`` of both models; imports NumPy only.

A model's weights travel as plain arrays, one ``{"W": ..., "b": ...}`` dict
per layer, in each layer's stored orientation (Dense ``(in, out)``,
Sampled ``(out, in)``).
"""
import numpy as np

NAMES = ("W", "b")


def copy_weights(arrays):
    """``{"W": copy, "b": copy}`` of a layer's ``arrays`` mapping."""
    return {name: np.array(arrays[name], copy=True) for name in NAMES}


def like(shape, dtype):
    """A zero-byte stand-in with ``shape`` and ``dtype`` for ``check_weights``'s
    ``expected`` (where the real array lives elsewhere, e.g. in shards)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def check_weights(weights, expected):
    """Raise unless ``weights`` matches ``expected`` (one dict per layer of
    arrays, or anything with their ``shape`` and ``dtype``); returns them as
    arrays."""
    if not isinstance(weights, (list, tuple)) or len(weights) != len(expected):
        raise ValueError(f"weights must be a list of {len(expected)} dicts (one per layer), "
                         f"got {type(weights).__name__}"
                         + (f" of length {len(weights)}" if hasattr(weights, "__len__") else ""))
    checked = []
    for i, (given, want) in enumerate(zip(weights, expected)):
        if not isinstance(given, dict) or set(given) != set(NAMES):
            keys = sorted(given) if isinstance(given, dict) else type(given).__name__
            raise ValueError(f"weights[{i}] must be a dict with keys 'W' and 'b', got {keys}")
        layer = {}
        for name in NAMES:
            array = np.asarray(given[name])
            if array.shape != want[name].shape:
                raise ValueError(f"weights[{i}][{name!r}] must have shape {want[name].shape}, "
                                 f"got {array.shape}")
            if array.dtype != want[name].dtype:
                raise ValueError(f"weights[{i}][{name!r}] must have dtype {want[name].dtype}, "
                                 f"got {array.dtype}")
            layer[name] = array
        checked.append(layer)
    return checked


def changed_rows(old, new):
    """Rows of weight matrix ``old`` (out, in) that ``new`` differs in."""
    return np.flatnonzero((old != new).any(axis=1))
