"""A network's settings (``Settings``, shared by ``Network``, ``ShardedNetwork`` and a shard's ``Spec``) and the config checks they share; imports layers, optim, state (the array plan), checks (at call time), _openmp and _validate (never a model module, the CLI or Ray).

What follows from the arguments alone lives here: validation, layer shapes,
the arrays each layer holds, the spread of the initial weights, the
``lr_scale`` schedule and its visit clock, data checks and ``get_config``.
"""
import math

import numpy as np

from ._openmp import resolve_threads
from ._validate import choice, integer
from .layers import DEFAULT_DROPOUT, Dense, Sampled
from .optim import Adam, check_optimizer
from .state import plan

__all__ = ["Settings", "checked_config", "auto_lr_scale", "MIN_ROWS_PER_THREAD", "LOSSES"]

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
# ... and after this many visits when the output's idle rows coast
# (Adam(idle_rows="coast" or "mixed"), the default): a coasting row keeps
# moving on its momentum between visits, about 1 / (1 - beta1) steps' worth
# a visit, so it has learned as much as a holding row's 128 visits in far
# fewer; at 128 the large step lasted into the second epoch at full size and
# overfit (docs/guide.md, "Rows that coast between visits")
AUTO_LR_VISITS_COASTING = 32.0
# ... or, on little data, once fit has passed over its rows this many times:
# the same rows seen again are where a large step overfits
AUTO_LR_PASSES = 2.0


def auto_lr_scale(visits, passes=0.0, coasting=False):
    """``lr_scale="auto"``'s factor after ``visits`` updates of an average
    output row and ``passes`` over the training rows; ``coasting``: the
    output's idle rows coast (the visit clock runs to
    ``AUTO_LR_VISITS_COASTING`` instead of ``AUTO_LR_VISITS``)."""
    unit = AUTO_LR_VISITS_COASTING if coasting else AUTO_LR_VISITS
    progress = max(visits / unit, passes / AUTO_LR_PASSES, 1e-12)
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
            return auto_lr_scale(done * self._visit_rate(), done / max(1, steps_per_epoch),
                                 coasting=self._coasts(i))
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
                     weight_decay=self.optimizer.weight_decay > 0,
                     coast=adam and self._coasts(i))
                for i, (layer, (d_in, d_out)) in enumerate(zip(self.layers, self._dims))]

    def _coasts(self, i):
        """Whether lazy Adam's idle rows of layer ``i`` coast between visits
        (``Adam(idle_rows=...)``): every layer's with ``"coast"``, a sampled
        output's with ``"mixed"`` (hidden layers hold, sampled ones too). A
        ``Sampled`` layer that computes every neuron has no idle rows: it
        holds, and keeps no marks."""
        layer = self.layers[i]
        mode = getattr(self.optimizer, "idle_rows", "hold")
        if not self.optimizer.lazy or (isinstance(layer, Sampled) and layer.dense_equivalent):
            return False
        output = i == len(self.layers) - 1
        return mode == "coast" or (mode == "mixed" and output and isinstance(layer, Sampled))

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
