"""One state object per layer (arrays, LSH tables, rebuild schedule); imports NumPy, _kernels (query codes) and, for the tables, hashing.

The field list is written once, here: :data:`ARRAYS` names every array a
layer can hold and :func:`plan` decides which ones a layer has and their
shapes. That one plan drives allocation (:class:`LayerState`), the memory
estimate (:func:`plan_bytes`), the engine's layer table
(:meth:`LayerState.engine_spec`), snapshots (everything but
:data:`SCRATCH`) and model files (:data:`PERSISTENT`).
"""
import math
import time

import numpy as np

from ._kernels import QUERIES

__all__ = ["ARRAYS", "SCRATCH", "PERSISTENT", "SCHEDULE", "LayerState", "plan", "plan_bytes"]

# name: what it holds. Shapes follow the weights' orientation: (in, out) for
# a Dense layer, (out, in) for a Sampled one; "rows" is the first dimension.
ARRAYS = {
    "W": "weights",
    "b": "biases (out,)",
    "gW": "gradient buffer of W (HogWild +=); absent where the gradient is fused or compact",
    "gb": "gradient buffer of b",
    "touched": "(rows,) int32: the step that last wrote a row's gradient",
    "mW": "Adam first moment of W",
    "vW": "Adam second moment of W",
    "mb": "Adam first moment of b",
    "vb": "Adam second moment of b",
    "row_updates": "(rows,) int32: Adam updates each row has had (per-row bias correction)",
    "decay_mark": "(rows,) float64: the weight-decay sum when the row was last decayed",
    "coast_mark": "(rows,) int32: the step a lazy row's Adam steps are applied through (idle rows coast)",
}
# zero between steps: neither snapshotted nor saved
SCRATCH = ("gW", "gb")
# saved in model files (touched stamps are scratch too); a name added here is
# saved, verified and loaded, and older files load with its fresh value
PERSISTENT = ("W", "b", "mW", "vW", "mb", "vb", "decay_mark", "row_updates", "coast_mark")
# the rebuild schedule of a layer with LSH tables (one int each)
SCHEDULE = ("next_rebuild", "rebuild_interval", "hashed_at", "rebuilds_since_full")


def plan(sampled, d_in, d_out, fused_gradient, compact_gradient, adam, row_bias_correction,
         weight_decay, coast=False):
    """``[(name, shape, dtype), ...]`` of the arrays one layer holds.

    ``fused_gradient``: the first Dense layer forms its gradient rows inside
    the optimizer (no buffer, no touched stamps). ``compact_gradient``: a
    batch-shared output keeps a gradient of the shared rows only.
    ``coast``: lazy Adam's idle rows take the steps they missed
    (``Adam(idle_rows="coast")``).
    """
    shape = (d_out, d_in) if sampled else (d_in, d_out)
    rows = shape[0]
    arrays = [("W", shape, np.float32), ("b", (d_out,), np.float32)]
    if not (fused_gradient or compact_gradient):
        arrays += [("gW", shape, np.float32), ("gb", (d_out,), np.float32)]
    if not fused_gradient:
        arrays += [("touched", (rows,), np.int32)]
    if adam:
        arrays += [("mW", shape, np.float32), ("vW", shape, np.float32),
                   ("mb", (d_out,), np.float32), ("vb", (d_out,), np.float32)]
    if adam and row_bias_correction:
        arrays += [("row_updates", (rows,), np.int32)]
    if adam and coast:
        arrays += [("coast_mark", (rows,), np.int32)]
    if weight_decay:
        arrays += [("decay_mark", (rows,), np.float64)]
    assert all(name in ARRAYS for name, _, _ in arrays)
    return arrays


def plan_bytes(arrays):
    """Bytes the arrays of one :func:`plan` take."""
    return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
               for _, shape, dtype in arrays)


class LayerState:
    """A layer's arrays (a mapping: ``state["W"]``), its LSH family and
    tables, the neurons changed since they were last hashed, and its rebuild
    schedule.

    Behaves as a dict of its arrays, so code (and tests) that add an array
    under a new name get it snapshotted like the others.
    """

    def __init__(self, arrays, rebuild_every=0):
        self.arrays = {}
        for name, shape, dtype in arrays:
            array = np.zeros(shape, dtype=dtype)
            # touch every page now: otherwise the kernel zeroes pages on
            # first use inside training steps, and early steps cost several
            # times the steady state
            array.fill(0)
            self.arrays[name] = array
        self.family = None          # compiled hash family, once hashing is set up
        self.tables = None          # LSHTables
        self.dirty = None           # (units,) bool: changed since last hashed
        self.next_rebuild = 0
        self.rebuild_interval = rebuild_every
        self.hashed_at = 0          # step of the last (re)hashing
        self.rebuilds_since_full = 0

    # ------------------------------------------------------------ the arrays

    def __getitem__(self, name):
        return self.arrays[name]

    def __setitem__(self, name, array):
        self.arrays[name] = array

    def __contains__(self, name):
        return name in self.arrays

    def __iter__(self):
        return iter(self.arrays)

    def __len__(self):
        return len(self.arrays)

    def get(self, name, default=None):
        return self.arrays.get(name, default)

    def items(self):
        return self.arrays.items()

    def keys(self):
        return self.arrays.keys()

    def engine_arrays(self):
        """Every name of :data:`ARRAYS` -> the array, or None where the layer has none."""
        return {name: self.arrays.get(name) for name in ARRAYS}

    def engine_spec(self, layer, in_dim, units, dropout):
        """All that ``_layer.fill_layer`` reads for this layer, every value
        given: ``layer.engine_settings()`` (query resolved to its code), the
        shape (``units``: the rows this engine holds), ``dropout``, the arrays
        (None where absent) and the hash family and tables (None without)."""
        settings = layer.engine_settings()
        settings["query"] = QUERIES[settings["query"]]
        return {**settings, "in_dim": in_dim, "units": units, "dropout": dropout,
                **self.engine_arrays(), "family": self.family,
                "tables": None if self.tables is None else self.tables.compiled}

    def state_arrays(self):
        """The arrays a snapshot copies: everything but the (zero) gradient buffers."""
        return {name: array for name, array in self.arrays.items() if name not in SCRATCH}

    # ------------------------------------------------------------ the schedule

    def schedule(self):
        return {name: getattr(self, name) for name in SCHEDULE}

    def set_schedule(self, values):
        for name in SCHEDULE:
            setattr(self, name, int(values[name]))

    def setup_hashing(self, layer, in_dim, family_seed, table_seed, step):
        """Compile the hash family of Sampled ``layer`` and make its tables
        (empty: the first rebuild, due at ``step``, fills them). Does
        nothing for uniform sampling or when already set up."""
        from .hashing import LSHTables
        family = layer.resolve_hash(in_dim, family_seed)
        if family is None or self.family is not None:
            return
        self.dirty = np.zeros(layer.units, dtype=bool)
        self.hashed_at = 0
        self.family = family.compile(in_dim)
        self.tables = LSHTables(self.family, bucket_size=layer.bucket_size, policy=layer.policy,
                                seed=table_seed)
        self.next_rebuild = step

    def rebuild(self, layer, step, threads, force=False):
        """Re-hash neurons if the rebuild is due at ``step``; returns the seconds spent.

        Every ``rebuild_every`` steps only the neurons the optimizer changed
        since their last hashing are re-hashed (``LSHTables.update``); every
        ``full_rebuild_every``-th time, and on the first step, all neurons go
        into cleared tables, which also drops the stale entries updates leave.
        """
        tables = self.tables
        if tables is None or not (force or step >= self.next_rebuild):
            return 0.0
        t0 = time.perf_counter()
        W = self["W"]
        dirty = self.dirty
        if "touched" in self:
            dirty |= self["touched"] > self.hashed_at
        ids = np.flatnonzero(dirty).astype(np.int32)
        # a full build hashes with sgemm and fills without duplicate
        # checks, so once a quarter of the neurons changed it is cheaper
        if force or self.rebuilds_since_full + 1 >= layer.full_rebuild_every \
                or len(ids) > 0.25 * layer.units:
            tables.build(W, threads=threads)
            self.rebuilds_since_full = 0
        else:
            if len(ids):
                tables.update(ids, W[ids], threads=threads)
            self.rebuilds_since_full += 1
        dirty[:] = False
        self.hashed_at = step
        spent = time.perf_counter() - t0
        self.next_rebuild = step + self.rebuild_interval
        if layer.rebuild_growth:
            self.rebuild_interval = int(math.ceil(self.rebuild_interval * layer.rebuild_growth))
        return spent

    def rehashed(self, step):
        """Every neuron has just been hashed from the current weights."""
        if self.dirty is not None:
            self.dirty[:] = False
        self.hashed_at = step
        self.rebuilds_since_full = 0
