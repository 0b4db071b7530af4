"""The ``Network``: its settings, arrays, initial weights and LSH schedule, and save / load; imports layers, optim, hashing, data, state, training, inference, persist, _openmp and _validate (never the CLI).

Training (``training.Trainer``) and inference (``inference.Predictor``) are
mixins in their own modules; every loop over samples or neurons runs in the
kernel modules (``_kernels`` and the modules it dispatches to) or in BLAS.
"""
import math
import os

import numpy as np

from . import persist
from ._openmp import resolve_threads
from ._validate import choice, integer
from .inference import Predictor
from .layers import DEFAULT_DROPOUT, Dense, Sampled
from .optim import Adam, check_optimizer
from .state import LayerState, plan, plan_bytes
from .training import Trainer

__all__ = ["Network", "Settings", "load"]

# standard deviation of the first layer's pre-activations at the start: smaller
# than 1 measured better on real data (Bibtex), much smaller learned slowly on
# synthetic problems with per-sample sampled outputs (docs/guide.md)
_FIRST_LAYER_SPREAD = 0.25
# lr_scale="auto" of a sampled output that does not compute every label: its
# rows are updated only on the steps whose set holds them, and Adam moves a
# row about lr per update, so they learn more slowly than a full softmax's
# rows, which move at every step. The factor starts above 1 and falls, once
# the output's rows have been in the set AUTO_LR_VISITS times on average, in
# inverse proportion to those visits (quieting the sampled gradients' noise),
# down to AUTO_LR_FLOOR. Visits, not epochs: the clock is the steps taken
# times the share of the rows one step's set holds, estimated from the
# training labels (Settings._set_visit_rate), so one rule fits every data
# size (docs/guide.md, "Learning speed at every data size").
AUTO_LR_START = 1.5
AUTO_LR_VISITS = 128.0
AUTO_LR_FLOOR = 0.5
# ... or, on little data, once fit has passed over its rows this many times:
# the same rows seen again are where a large step overfits
AUTO_LR_PASSES = 2.0


def auto_lr_scale(visits, passes=0.0):
    """``lr_scale="auto"``'s factor after ``visits`` updates of an average
    output row and ``passes`` over the training rows."""
    progress = max(visits / AUTO_LR_VISITS, passes / AUTO_LR_PASSES, 1e-12)
    return max(AUTO_LR_FLOOR, min(AUTO_LR_START, AUTO_LR_START / progress))


# With threads=None, a parallel region over rows gets at most one thread per
# this many rows: each region wakes its threads and waits for the slowest, and
# on Bibtex-shaped steps (69 features per row, 128 hidden units, 159 labels)
# 8-row batches ran 3,260 steps/s with one thread and 2,240 with two, while
# from 16 rows up two threads were at least as fast (docs/guide.md, "Threads")
MIN_ROWS_PER_THREAD = 8

LOSSES = ("softmax", "bce")
# keys of get_config() / from_config()
_CONFIG_KEYS = frozenset(("input_dim", "layers", "loss", "optimizer", "threads", "seed"))


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024.0


class Settings:
    """A network's settings and what follows from them alone: validation,
    layer shapes, the arrays each layer holds, the spread of the initial
    weights, data checks and ``get_config``. Shared by ``Network`` and
    ``pyslide.distributed.ShardedNetwork``, so both build the same network
    from the same arguments."""

    def _configure(self, input_dim, layers, loss, optimizer, threads, seed):
        """Check and keep the settings; the layers' shapes into ``_dims``."""
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
        self.loss = choice(loss, "loss", LOSSES)
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
        for i, layer in enumerate(self.layers[:-1]):
            if isinstance(layer, Sampled) and layer.bias_init == "prior":
                raise ValueError(f"layers[{i}]: bias_init='prior' starts an output layer's "
                                 f"biases at the labels' log frequencies; a hidden layer has "
                                 f"no labels (use 'auto' or 'zero')")
        self.n_outputs = out.units
        self._dims = []
        d = self.input_dim
        for layer in self.layers:
            self._dims.append((d, layer.units))
            d = layer.units

    def _threads_for_rows(self, rows):
        """Threads for a parallel region over ``rows`` rows: ``threads=None``
        gives each thread at least ``MIN_ROWS_PER_THREAD`` rows (a tiny batch
        or prediction runs on fewer threads than cores); an explicit count is
        taken as given."""
        if self.threads is not None:
            return self.n_threads
        return max(1, min(self.n_threads, rows // MIN_ROWS_PER_THREAD))

    def _dropout_rate(self, i):
        """Layer i's dropout: a Dense hidden layer's default is 0.2."""
        layer = self.layers[i]
        if not isinstance(layer, Dense) or i == len(self.layers) - 1:
            return 0.0
        return DEFAULT_DROPOUT if layer.dropout is None else layer.dropout

    def _sampled_output(self):
        """True when the output layer computes only some labels per step."""
        out = self.layers[-1]
        return isinstance(out, Sampled) and not out.dense_equivalent

    def _lr_scale(self, i, step=1, steps_per_epoch=1):
        """Layer i's multiplier of the optimizer's step at ``step`` (1-based;
        ``Sampled(lr_scale=...)``; a list is per epoch as schedules count them)."""
        layer = self.layers[i]
        if not isinstance(layer, Sampled):
            return 1.0
        scale = layer.lr_scale
        if scale == "auto":
            sampled_output = i == len(self.layers) - 1 and self._sampled_output()
            if not sampled_output:
                return 1.0
            done = max(0, step - 1)
            return auto_lr_scale(done * self._visit_rate(), done / max(1, steps_per_epoch))
        if isinstance(scale, tuple):
            epoch = max(0, step - 1) // max(1, steps_per_epoch)
            scale = scale[min(epoch, len(scale) - 1)]
        return scale

    def _visit_rate(self):
        """The share of the output's rows one training step updates (set by
        ``fit`` from its labels; before any fit, the set's size alone)."""
        rate = getattr(self, "_output_visit_rate", None)
        if rate is None:
            out = self.layers[-1]
            rate = min(1.0, max(out.active, out.negatives) / out.units)
        return rate

    def _set_visit_rate(self, Y, batch_size):
        """Estimate, from the training labels, the share of a sampled output's
        rows that one step's active set holds (the clock of ``lr_scale="auto"``).

        A batch of ``B`` rows brings ``sum_j 1 - (1 - p_j)**B`` distinct
        labels (``p_j``: label j's row frequency). ``share="batch"``: the set
        holds them plus ``negatives`` rows, and at least ``active``;
        ``share="sample"``: each sample's own ``max_active`` rows, so a row is
        in some sample's set with probability ``1 - (1 - max_active/n)**B``.
        """
        out = self.layers[-1]
        if not isinstance(out, Sampled) or Y.shape[0] == 0:
            self._output_visit_rate = None
            return
        n, units = Y.shape[0], out.units
        b = min(batch_size, n)
        p = np.bincount(Y.indices, minlength=units)[:units] / n
        labels = float(np.sum(-np.expm1(b * np.log1p(-np.minimum(p, 1.0 - 1e-12)))))
        if out.share == "batch":
            rows = out.filled_rows(labels)
            rate = rows / units
        elif out.max_active >= units:
            rate = 1.0
        else:
            rate = -np.expm1(b * np.log1p(-out.max_active / units)) + labels / units
        self._output_visit_rate = float(min(1.0, rate))

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
                     adam=adam, row_bias_correction=adam and self._row_corrected(layer),
                     weight_decay=self.optimizer.weight_decay > 0)
                for i, (layer, (d_in, d_out)) in enumerate(zip(self.layers, self._dims))]

    def _row_corrected(self, layer):
        """Whether Adam bias-corrects ``layer``'s rows by their own update
        counts (``Adam(bias_correction=...)``)."""
        mode = self.optimizer.bias_correction
        return mode == "row" or (mode == "mixed" and isinstance(layer, Dense))

    def _init_std(self, i, mean_sq_norm):
        """The spread of layer i's initial weights (see ``Network._init_weights``)."""
        layer = self.layers[i]
        d_in = self._dims[i][0]
        if layer.init_std is not None:
            return layer.init_std
        if i == 0:
            return _FIRST_LAYER_SPREAD / math.sqrt(max(mean_sq_norm, 1e-12))
        if i == len(self.layers) - 1 and self._sampled_output():
            # rows a sampled output never trains keep their start, and at
            # prediction time must not outscore trained ones by its accident
            return 0.01 / math.sqrt(d_in)
        if i == len(self.layers) - 1:
            return 1.0 / math.sqrt(3.0 * d_in)
        return math.sqrt(2.0 / d_in)

    def _prior_bias(self, Y):
        """The output biases' start for ``bias_init="prior"`` (None when the
        output starts at zero): log label frequency for the softmax, log-odds
        for BCE, counts smoothed by half a row so that labels absent from
        ``Y`` start low but finite."""
        out = self.layers[-1]
        if not isinstance(out, Sampled) or Y is None:
            return None
        if out.bias_init == "zero" or (out.bias_init == "auto" and out.dense_equivalent):
            return None
        counts = np.bincount(Y.indices, minlength=self.n_outputs)[:self.n_outputs]
        counts = counts.astype(np.float64)
        n = float(Y.shape[0])
        if self.loss == "bce":
            return np.log((counts + 0.5) / (n - counts + 0.5)).astype(np.float32)
        return np.log((counts + 0.5) / (n + 0.5)).astype(np.float32)

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

    def _check_X(self, X, name="X"):
        from .checks import check_features
        width = _matrix_width(X)
        if width is not None and width != self.input_dim:
            # a sparse X would otherwise be widened with zero columns: data made
            # for another model (or with a column dropped) must not pass silently
            raise ValueError(f"{name} has {width} features (columns) but the model expects "
                             f"n_features={self.input_dim} (X.resize((X.shape[0], "
                             f"{self.input_dim})) widens a sparse one that is narrower on "
                             f"purpose)")
        return check_features(X, n_features=self.input_dim, name=name)

    def _check_Y(self, Y, n_rows, name="Y"):
        from .checks import labels_to_csr
        width = _matrix_width(Y)
        if width is not None and width != self.n_outputs:
            raise ValueError(f"{name} has {width} label columns but the model has "
                             f"{self.n_outputs} outputs; give an indicator matrix as wide as "
                             f"the output layer, or lists of label ids")
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



def _matrix_width(M):
    """The column count of a 2-D matrix (sparse or array), else None."""
    shape = getattr(M, "shape", None)
    if isinstance(shape, tuple) and len(shape) == 2:
        return shape[1]
    return None


def checked_config(config, owner, extra_keys=()):
    """A copy of a ``get_config()`` dict for ``owner.from_config``: a dict,
    no key beyond ``_CONFIG_KEYS`` and ``extra_keys``, and the two it cannot
    do without."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict like {owner}.get_config() returns, "
                        f"got {config!r}")
    config = dict(config)
    known = _CONFIG_KEYS | frozenset(extra_keys)
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"config: unknown key(s) {', '.join(map(repr, unknown))}; known "
                         f"keys: {', '.join(sorted(known))}")
    if "input_dim" not in config or "layers" not in config:
        raise ValueError("config needs 'input_dim' and 'layers'")
    return config


def normal_blocks(rng, shape, std):
    """``(first row, rows)`` blocks of a normal (0, std) float32 matrix of
    ``shape``, drawn from ``rng`` in row order (a block bounds the float64
    temporaries); the rows split anywhere give the same matrix."""
    block = max(1, (1 << 22) // max(1, shape[1]))
    for start in range(0, shape[0], block):
        yield start, rng.standard_normal((min(block, shape[0] - start), shape[1]),
                                         dtype=np.float32) * std


class Network(Settings, Trainer, Predictor):
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
        Threads of every kernel (by default the cores available; -1 every
        core). None uses the cores available to the process (respecting
        ``OMP_NUM_THREADS``), at most one thread per 8 rows of a batch.
    seed : int
        Seeds weights, hash functions, shuffling and sampling. With
        ``threads=1`` two runs with one seed are bit-for-bit identical; with
        more threads lock-free (HogWild) updates race and results vary
        slightly.

    Attributes
    ----------
    history_ : dict of lists
        Per-epoch ``loss``, cumulative training ``time`` (seconds,
        evaluation excluded), and with ``validation_data`` or
        ``validation_split``: ``val_loss`` (the exact loss over every
        output) and ``val_p@k`` / ``val_ndcg@k``. It keeps every epoch, also
        those after the best one that ``EarlyStopping`` went back from.
        ``fit`` also returns it.
    best_epoch_ : int
        The best epoch of the last ``fit`` with ``EarlyStopping`` (counted
        from 1 across ``fit`` calls); with ``restore_best=True`` the network
        holds that epoch's weights, optimizer state and ``step_``
        (``epoch_`` still counts every epoch run).
    epoch_, step_ : int
        Epochs and optimizer steps completed (they continue across ``fit``
        calls and ``save`` / ``load``).
    validation_rows_ : ndarray or None
        The rows of ``X`` that the last ``fit`` held out with
        ``validation_split``.
    timings_ : dict
        Seconds per phase of the last ``fit``: ``hash``, ``forward``,
        ``backward``, ``optimizer``, ``rebuild``.
    step_times_ : ndarray
        Wall-clock seconds of every step of the last ``fit``.
    n_threads : int
        The resolved thread count (``threads``).
    n_outputs, input_dim : int
        Widths of the output layer and of an input row.
    stop_training : bool
        Set it in a callback to end ``fit`` after the epoch.

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
        """Check the settings and allocate the layers' arrays (a ``MemoryError``
        before allocating when they would not fit). The weights are drawn at the
        first ``fit``, scaled to its data; the parameters are described above."""
        self._configure(input_dim, layers, loss, optimizer, threads, seed)
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
            n_shared = min(out.units, max(out.max_active, out.min_active) + batch_size * 64
                           + out.negatives)
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

    def _init_weights(self, mean_sq_norm, Y=None):
        """Normal weights, biases zero but for a sampled output's, which start
        at the labels' log frequencies in ``Y`` (``Sampled(bias_init=...)``).

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
            std = self._init_std(i, mean_sq_norm)
            W = params["W"]
            for start, values in normal_blocks(rng, W.shape, std):
                W[start:start + len(values)] = values
            params["b"][:] = 0
        prior = self._prior_bias(Y)
        if prior is not None:
            self._states[-1]["b"][:] = prior
        self._initialized = True

    # ------------------------------------------------------------ hashing

    def _setup_hashing(self):
        """Hash families and tables of the sampled layers that use LSH (once)."""
        for i, (layer, state) in enumerate(zip(self.layers, self._states)):
            if isinstance(layer, Sampled) and not layer.dense_equivalent:
                state.setup_hashing(layer, self._dims[i][0], self.seed + 7919 * (i + 1),
                                    self.seed + i, self.step_)

    def _maybe_rebuild(self, force=False):
        """Re-hash the neurons of the layers whose rebuild is due (every one
        with ``force``); returns the seconds spent. See ``LayerState.rebuild``."""
        return sum(state.rebuild(layer, self.step_, self.n_threads, force)
                   for layer, state in zip(self.layers, self._states))

    # ------------------------------------------------------------ data

    def _ensure_initialized(self):
        if not self._initialized:
            self._init_weights(1.0)

    # ------------------------------------------------------------ persistence

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
        config = checked_config(config, "Network")
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

    def initial_std(self, i, X):
        """The standard deviation layer ``i``'s weights start with when ``fit``
        begins on ``X`` (see ``_init_weights``): a baseline compared beside
        this network can start the same (``pyslide demo``)."""
        row_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
        return self._init_std(i, float(row_sq.mean()) if X.shape[0] else 1.0)

    def check_save_path(self, path, name="path"):
        """Raise ``OSError`` naming ``name`` and ``path`` now if ``save(path)``
        would fail later: a missing or read-only folder, a folder or a device
        at ``path``, or too little free space for the model file. Call it
        before a long ``fit`` whose result the file is to keep."""
        from .atomic import check_writable
        check_writable(path, name, need_bytes=persist.estimate_bytes(self), regular_only=True)

    def _check_save_path(self, path, owner):
        """Raise ``OSError`` naming ``owner`` and ``path`` now if ``save(path)``
        would fail later: a missing or read-only folder, a folder or a device
        at ``path`` (``ModelCheckpoint`` calls it before the first epoch)."""
        from .atomic import check_writable
        check_writable(path, owner, regular_only=True)

    @classmethod
    def load(cls, path, threads=None):
        """Read a model written by ``save`` (a path or a binary file object),
        or a sharded model folder (``ShardedNetwork.save``) into one
        network, when its output layer fits in this machine's memory.

        Raises ``ValueError`` naming the file when it is not a pyslide model,
        is truncated or damaged (checksums), or holds non-finite weights.
        """
        if _is_sharded_folder(path):
            from .distributed import load_single
            return load_single(path, threads=threads)
        return persist.load(path, cls, threads=threads)

    def __reduce__(self):
        # pickle, copy.deepcopy, joblib and multiprocessing go through the
        # same arrays as save: the kernels' extension objects cannot be pickled
        return (_from_model_bytes, (persist.to_bytes(self),))

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return (f"Network(input_dim={self.input_dim}, layers=[{inner}], loss={self.loss!r}, "
                f"optimizer={self.optimizer!r}, threads={self.threads!r}, seed={self.seed})")


def load(path, threads=None, shards=None):
    """Read a model: a file written by ``Network.save`` or a folder written by
    ``pyslide.distributed.ShardedNetwork.save``.

    ``shards=None`` gives back what was saved (a ``Network`` from a file, a
    ``ShardedNetwork`` with the saved number of shards from a folder); an
    int gives a ``ShardedNetwork`` with that many shards from either (Ray
    needed). ``pyslide.Network.load`` reads either into one ``Network``.
    """
    if shards is not None or _is_sharded_folder(path):
        from .distributed import ShardedNetwork
        return ShardedNetwork.load(path, shards=shards, threads=threads)
    return Network.load(path, threads=threads)


def _is_sharded_folder(path):
    """A folder holding a sharded model's manifest."""
    if hasattr(path, "read"):
        return False
    path = os.fspath(path)
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "manifest.json"))


def _from_model_bytes(data):
    """Unpickle a Network (see ``Network.__reduce__``)."""
    return persist.from_bytes(data, Network)


def _estimate_family_bytes(family, in_dim, bucket_size):
    from .hashing import estimate_table_bytes
    compiled_range = family.n_buckets_for(in_dim) if hasattr(family, "n_buckets_for") else None
    if compiled_range is None:
        return 0
    return estimate_table_bytes(compiled_range, family.L, bucket_size)
