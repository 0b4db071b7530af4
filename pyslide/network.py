"""The ``Network``: its arrays, initial weights and LSH schedule, and save / load; imports settings, seeds, layers, optim, hashing, state, training, inference, persist and atomic (never a sharded module, the loader, the CLI or Ray).

Settings and their checks are ``settings.Settings``; training
(``training.Trainer`` driving ``training.LocalSteps``) and inference
(``inference.Predictor``) are mixins in their own modules; every loop over
samples or neurons runs in the kernel modules (``_kernels`` and the modules
it dispatches to) or in BLAS.
"""
import numpy as np

from . import persist
from .inference import Predictor
from .layers import Sampled
from .seeds import family_seed, normal_blocks, table_seed, weights_rng
from .settings import (AUTO_LR_FLOOR, AUTO_LR_PASSES, AUTO_LR_START,  # noqa: F401 (public here)
                       AUTO_LR_VISITS, AUTO_LR_VISITS_COASTING, LOSSES, MIN_ROWS_PER_THREAD,
                       _FIRST_LAYER_SPREAD, Settings, auto_lr_scale, checked_config)
from .state import LayerState, plan_bytes
from .training import LocalSteps, Trainer
from .weights import check_weights, copy_weights

__all__ = ["Network", "Settings"]


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024.0




class Network(Settings, Trainer, Predictor):
    """A feed-forward network whose wide layers compute only sampled neurons.

    Parameters
    ----------
    input_dim : int
        Width of an input row (number of features).
    layers : list of Dense / Sampled
        The layers, the last one being the output (one neuron per label).
    loss : {"softmax", "bce"}
        ``"softmax"`` (default): cross-entropy against the labels normalised
        to sum 1 (over the active outputs when the output is sampled), or
        ``"bce"``: independent sigmoid outputs with binary cross-entropy.
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

    Weights
    -------
    ``get_weights()`` returns copies of every layer's weights and biases, a
    list with one ``{"W": ..., "b": ...}`` per layer (Dense ``W`` ``(in,
    out)``, Sampled ``W`` ``(out, in)``); ``set_weights(weights)`` copies
    such a list back (checking each array's shape and dtype) and rebuilds
    the hash tables of a Sampled layer whose rows changed.

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

    def _steps(self):
        """``Trainer``'s step backend: one engine over every layer, here."""
        return LocalSteps(self)

    def _make_engine(self, batch_size, max_labels, max_row_nnz, label_log1m=None):
        """An engine over the network's arrays (kernel tests drive it step by step)."""
        return LocalSteps(self).engine(batch_size, max_labels, max_row_nnz, label_log1m)

    # ------------------------------------------------------------ memory

    def estimate_memory(self, batch_size=128):
        """Bytes the network's arrays, hash tables and training scratch need."""
        total = sum(plan_bytes(arrays) for arrays in self._layer_arrays())
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Sampled):
                width = max(layer.max_active, layer.min_active)
                total += batch_size * width * 12 + 4 * layer.units * (self.n_threads + 3)
                family = layer.resolve_hash(self._dims[i][0], family_seed(self.seed, i))
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
        rng = weights_rng(self.seed)
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
                state.setup_hashing(layer, self._dims[i][0], family_seed(self.seed, i),
                                    table_seed(self.seed, i), self.step_)

    def _maybe_rebuild(self, force=False):
        """Re-hash the neurons of the layers whose rebuild is due (every one
        with ``force``); returns the seconds spent. See ``LayerState.rebuild``."""
        return sum(state.rebuild(layer, self.step_, self.n_threads, force)
                   for layer, state in zip(self.layers, self._states))

    # ------------------------------------------------------------ weights

    def get_weights(self):
        """Copies of every layer's weights and biases: a list with one
        ``{"W": ..., "b": ...}`` per layer (Dense ``W`` is ``(in, out)``,
        Sampled ``W`` ``(out, in)``). Before the first ``fit`` or
        ``set_weights`` they are zeros (``fit`` draws the initial weights)."""
        return [copy_weights(state) for state in self._states]

    def set_weights(self, weights):
        """Copy ``weights`` (``get_weights``'s form) into the layers; the
        optimizer state and counters stay. A sampled layer's hash tables are
        rebuilt from its new rows, and ``fit`` keeps these weights (it draws
        none)."""
        checked = check_weights(weights, self._states)
        for state, given in zip(self._states, checked):
            changed = not np.array_equal(state["W"], given["W"])
            for name, array in given.items():
                state[name][...] = array
            if changed and state.tables is not None:
                state.tables.build(state["W"], threads=self.n_threads)
                state.rehashed(self.step_)
        self._initialized = True

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
        if persist.is_sharded_folder(path):
            return persist.load_folder(path, cls, threads=threads)
        return persist.load(path, cls, threads=threads)

    def __reduce__(self):
        # pickle, copy.deepcopy, joblib and multiprocessing go through the
        # same arrays as save: the kernels' extension objects cannot be pickled
        return (_from_model_bytes, (persist.to_bytes(self),))

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return (f"Network(input_dim={self.input_dim}, layers=[{inner}], loss={self.loss!r}, "
                f"optimizer={self.optimizer!r}, threads={self.threads!r}, seed={self.seed})")


def _from_model_bytes(data):
    """Unpickle a Network (see ``Network.__reduce__``)."""
    return persist.from_bytes(data, Network)


def _estimate_family_bytes(family, in_dim, bucket_size):
    from .hashing import estimate_table_bytes
    compiled_range = family.n_buckets_for(in_dim) if hasattr(family, "n_buckets_for") else None
    if compiled_range is None:
        return 0
    return estimate_table_bytes(compiled_range, family.L, bucket_size)
