"""Layer specifications (Dense, Sampled) and their validation; imports _validate and hashing.

A layer here is a description; the network allocates its weights and the
kernels in ``_kernels.pyx`` compute it. Two kinds:

``Dense(units)``
    every neuron computed for every sample. Stored ``(in, out)`` so a sparse
    input row is a sum of contiguous weight rows.
``Sampled(units, ...)``
    only the neurons that LSH (or uniform sampling) picks, per sample or per
    batch. Stored ``(out, in)`` so each active neuron reads one contiguous row.
"""
import inspect
import math
import numbers

from ._validate import choice, flag, integer

__all__ = ["Dense", "Sampled", "hash_family"]

ACTIVATIONS = ("relu", "linear")
# a Dense hidden layer's dropout when it sets none (the network applies it)
DEFAULT_DROPOUT = 0.2


def _check_int(owner, name, value, minimum=1, allow_none=False):
    return integer(value, f"{owner}: {name}", minimum, none_ok=allow_none)


def _check_activation(owner, activation):
    if activation is None:
        return "linear"
    if not isinstance(activation, str) or activation.lower() not in ACTIVATIONS:
        raise ValueError(f"{owner}: activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation.lower()


class Dense:
    """A fully computed layer.

    Parameters
    ----------
    units : int
        Number of neurons.
    activation : {"relu", "linear"}
        Activation of a hidden layer. The output layer's activation is set
        by the network's loss (softmax or sigmoid) and this is ignored.
    init_std : float or None
        Standard deviation of the normal initial weights (by default scaled
        to the fan-in). ``None`` picks ``1/sqrt(fan_in)``; for the first layer
        fan-in is the average non-zeros of an input row, learnt at ``fit``.
    dropout : float or None
        Probability in [0, 1) of dropping each unit of a hidden layer in a
        training step (by default 0.2). Kept units are scaled by ``1 / (1 -
        dropout)``, so inference uses the layer as it is. ``None`` (default):
        0.2 for a hidden layer, none for an output layer. The default is what lets a
        plain ``Dense(128)`` network match PyTorch's dense training on real
        data (Bibtex, ``docs/guide.md``). Each sample's mask comes from its
        own counter-based random stream (seed, step, sample): one-thread runs
        stay bit-for-bit reproducible.
    """

    kind = "dense"

    def __init__(self, units, activation="relu", init_std=None, dropout=None):
        """Check the arguments (a bad one raises ``TypeError`` / ``ValueError``
        naming it) and keep them; the network allocates the layer's arrays."""
        self.units = _check_int("Dense", "units", units)
        self.activation = _check_activation("Dense", activation)
        self.init_std = _check_init_std("Dense", init_std)
        if dropout is not None:
            if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                    or not (0.0 <= dropout < 1.0):
                raise ValueError(f"Dense: dropout must be a number in [0, 1) or None, "
                                 f"got {dropout!r}")
            dropout = float(dropout)
        self.dropout = dropout

    def get_config(self):
        return {"kind": self.kind, "units": self.units, "activation": self.activation,
                "init_std": self.init_std, "dropout": self.dropout}

    def engine_settings(self):
        """The kernels' view of the layer (``_layer.fill_layer``): every neuron
        active, no tables. The kernels hold no defaults; this is the Dense one."""
        return {"sampled": 0, "relu": int(self.activation == "relu"),
                "min_active": self.units, "max_active": self.units, "all_active": 1,
                "negatives": 0, "query": "union", "threshold": 1}

    def __repr__(self):
        extra = f", dropout={self.dropout:g}" if self.dropout is not None else ""
        return f"Dense({self.units}, activation={self.activation!r}{extra})"


def _check_init_std(owner, init_std):
    if init_std is None:
        return None
    if isinstance(init_std, bool) or not isinstance(init_std, numbers.Real) \
            or not math.isfinite(init_std) or init_std <= 0:
        raise ValueError(f"{owner}: init_std must be a positive number or None, got {init_std!r}")
    return float(init_std)


def _check_lr_scale(lr_scale):
    """``"auto"``, a positive float, or a tuple of them (one per epoch)."""
    def positive(value):
        return (not isinstance(value, (bool, str)) and isinstance(value, numbers.Real)
                and math.isfinite(value) and value > 0)

    if isinstance(lr_scale, str) and lr_scale == "auto":
        return lr_scale
    if hasattr(lr_scale, "tolist") and not isinstance(lr_scale, (list, tuple)):
        lr_scale = lr_scale.tolist()     # a NumPy array or scalar, as a list or a float
    if positive(lr_scale):
        return float(lr_scale)
    if isinstance(lr_scale, (list, tuple)) and lr_scale and all(positive(v) for v in lr_scale):
        return tuple(float(v) for v in lr_scale)
    raise ValueError(f"Sampled: lr_scale must be 'auto', a positive number or a non-empty "
                     f"list of them (one per epoch), got {lr_scale!r}")


class Sampled:
    """A layer that computes only the neurons LSH picks.

    Parameters
    ----------
    units : int
        Number of neurons (for the output layer: the number of labels).
    hash : hash family, "auto" or None
        ``"auto"`` (default) picks a SimHash from the layer's shape (see
        Notes). A family object (``pyslide.SimHash``, ``WTA``, ``DWTA``,
        ``DOPH``) uses that one. ``None`` draws the active neurons uniformly
        at random: plain sampled softmax inside the same engine.
    active : float or int or None
        Active neurons per sample (``share="sample"``) or per batch
        (``share="batch"``): a float in (0, 1] is a fraction of ``units``, an
        int a count. ``None`` uses the rule in Notes. ``1.0`` computes every
        neuron (the layer then equals a ``Dense`` one).
    min_active : int or None
        Fewer LSH candidates than this are topped up with uniformly random
        neurons (default: ``active``, as ``max_active``, so each step costs
        the same).
    max_active : int or None
        LSH candidates beyond this are dropped, lowest-ranked first
        (default: ``active``).
    negatives : int or None
        Rows the batch's shared set holds beyond its true labels, at least
        (LSH candidates first, then uniform draws). ``share="batch"`` only;
        they are there even when the labels alone fill ``active``, so that
        label-dense batches still meet negatives other than the other
        samples' labels. Default: ``active`` for ``share="batch"``; ``0``
        (the only value allowed) for ``share="sample"``, whose per-sample
        sets keep ``active`` rows beside the labels anyway. Measurements:
        ``docs/guide.md``, "Adam undoes the importance weights".
    share : {"batch", "sample"}
        ``"batch"`` (default): the batch shares one active set, its logits one
        matrix product; ``"sample"``: every sample gets its own active set
        (SLIDE). The shared set is the union of the batch's true labels and
        the LSH candidates ranked by how many (sample, table) pairs hit them.
    bucket_size : int or None
        Slots per hash bucket (default 128).
    policy : {"fifo", "reservoir"}
        What a full bucket does with a new neuron.
    query : {"union", "threshold", "sample"}
        How a sample's own active set (``share="sample"``) is read from the
        tables: ``"union"`` all ids of the hit buckets in table order (SLIDE),
        ``"threshold"`` the ids hit in at least ``threshold`` tables,
        ``"sample"`` buckets probed in random table order. The shared set
        (``share="batch"``) always ranks ids by how many (sample, table)
        pairs hit them.
    threshold : int
        Tables an id must be hit in, for ``query="threshold"``.
    rebuild_every : int
        Every this many steps, re-hash neurons into the tables.
    full_rebuild_every : int or None
        Every this many rebuilds, all neurons are re-hashed into cleared
        tables; the rebuilds between re-hash only the neurons the optimizer
        changed since they were last hashed (their old entries stay until
        overwritten, which is cheap but lets recently trained neurons crowd
        the buckets). ``1``: always full. Default: 10 for ``share="batch"``,
        1 for ``share="sample"``, where crowding measurably hurt accuracy.
    rebuild_growth : float or None
        Factor (>= 1) by which the interval between rebuilds grows after
        every rebuild (SLIDE's exponentially decaying schedule); None: fixed.
    activation : {"relu", "linear"}
        Activation when the layer is hidden.
    init_std : float or None
        As for ``Dense``.
    correction : bool
        As the output layer, correct each sampled logit for how likely its
        neuron was to be sampled (subtract the log of its inclusion
        probability; a sample's own labels and the LSH candidates take
        none), so that neurons that enter the set often are not pushed down
        more than rare ones. Why and by how much: ``docs/guide.md``,
        "Accuracy: what sampling does that the full softmax does not".
    bias_init : {"auto", "prior", "zero"}
        The biases' start: ``"prior"`` the log of each label's training
        frequency, ``"zero"`` zeros, ``"auto"`` (default) ``"prior"`` for a
        network's sampled output that does not compute every label and
        ``"zero"`` otherwise (hidden layers, dense-equivalent outputs).
        ``"prior"`` takes the counts from the ``Y`` of the first ``fit``,
        smoothed by half a row (``log((count + 0.5) / (n + 0.5))`` for the
        softmax, the log-odds for ``loss="bce"``), so the network starts out
        predicting label popularity, which a sampled output would otherwise
        spend its first epoch learning. A network that is loaded or
        already trained keeps its biases. Measurements: ``docs/guide.md``,
        "The output biases start at the label prior".
    lr_scale : "auto", float or list of floats
        Multiplies the optimizer's step (Adam's or SGD's, not the weight
        decay) on this layer's weights and biases: one number throughout, or
        one per epoch (a list, tuple or 1-D array; the last one holds after
        it ends). ``"auto"``
        (default), for a network's sampled output that does not compute
        every label: 1.5 until its rows have been in the active set 32 times
        on average (128 if they hold, ``Adam(idle_rows=...)``) or ``fit``
        has passed over its rows twice, then falling in inverse proportion
        to the further of the two clocks, down to 0.5; 1 for hidden layers
        and dense-equivalent outputs. Visits are steps times the share of
        the rows a step's set holds, estimated from the labels ``fit``
        sees. Why: ``docs/guide.md``, "Learning speed at every data size".

    Notes
    -----
    Defaults from the shape (``n = units``): buckets of 128 ids, ``K =
    clip(ceil(log2(2 n / 128)), 4, 16)`` sign bits per table, so that a
    bucket holds about 64 neurons on average and rarely overflows; ``L = 16``
    tables for ``share="batch"`` and 50 for ``share="sample"``; reservoir
    insertion (FIFO would keep only the neurons inserted last, i.e. the
    highest ids, in an overflowing bucket). Active count: 8,192 per batch
    (``share="batch"``; the batch's true labels always enter, even beyond
    it) or ``max(128, n // 200)`` per sample, never above ``n``.
    """

    kind = "sampled"
    # the choices and the shape rules of Notes, written once (the constructor,
    # resolve_hash and ``pyslide train --help`` read them)
    SHARES = ("batch", "sample")
    POLICIES = ("fifo", "reservoir")
    QUERIES = ("union", "threshold", "sample")
    BIAS_INITS = ("auto", "prior", "zero")
    BATCH_ACTIVE = 8192                   # active rows per batch, share="batch"
    SAMPLE_ACTIVE = (128, 200)            # max(128, units // 200) per sample
    TABLES = {"batch": 16, "sample": 50}  # L of hash="auto"
    DWTA_ABOVE = 4096                     # hash="auto": DWTA for inputs wider than this

    def __init__(self, units, hash="auto", active=None, min_active=None, max_active=None,
                 share="batch", bucket_size=128, policy="reservoir", query="union", threshold=2,
                 rebuild_every=50, full_rebuild_every=None, rebuild_growth=None,
                 activation="relu", init_std=None, correction=True, negatives=None,
                 bias_init="auto", lr_scale="auto"):
        """Check the arguments (a bad one raises ``TypeError`` / ``ValueError``
        naming it) and resolve the defaults that need only ``units``; the
        network picks the hash family and allocates the arrays."""
        owner = "Sampled"
        self.units = _check_int(owner, "units", units)
        self.share = choice(share, "Sampled: share", self.SHARES)
        if active is None:
            least, per = self.SAMPLE_ACTIVE
            count = self.BATCH_ACTIVE if share == "batch" else max(least, self.units // per)
            self.active = min(self.units, count)
        elif isinstance(active, bool):
            raise TypeError(f"Sampled: active must be a fraction in (0, 1] or a count >= 1, got {active!r}")
        elif isinstance(active, numbers.Integral):
            if active < 1:
                raise ValueError(f"Sampled: active must be a fraction in (0, 1] or a count >= 1, got {active}")
            self.active = min(int(active), self.units)
        elif isinstance(active, numbers.Real):
            if not (0.0 < active <= 1.0) or not math.isfinite(active):
                raise ValueError(f"Sampled: active fraction must be in (0, 1], got {active}")
            self.active = max(1, min(self.units, int(math.ceil(active * self.units))))
        else:
            raise TypeError(f"Sampled: active must be a fraction in (0, 1] or a count >= 1, got {active!r}")
        self.min_active = _check_int(owner, "min_active", min_active, 0, allow_none=True)
        self.max_active = _check_int(owner, "max_active", max_active, 1, allow_none=True)
        if self.min_active is None:
            self.min_active = self.active
        if self.max_active is None:
            self.max_active = max(self.active, self.min_active)
        self.min_active = min(self.min_active, self.units)
        self.max_active = min(self.max_active, self.units)
        if self.min_active > self.max_active:
            raise ValueError(f"Sampled: min_active ({self.min_active}) must not exceed "
                             f"max_active ({self.max_active})")
        self.negatives = _check_int(owner, "negatives", negatives, 0, allow_none=True)
        if self.negatives is None:
            self.negatives = self.active if self.share == "batch" else 0
        elif self.negatives > 0 and self.share != "batch":
            raise ValueError(f"Sampled: negatives applies to share='batch' (one set per batch); "
                             f"with share='sample' leave it None or 0, got {self.negatives}")
        self.negatives = min(self.negatives, self.units)
        self.bucket_size = _check_int(owner, "bucket_size", 128 if bucket_size is None else bucket_size)
        self.policy = choice(policy, "Sampled: policy", self.POLICIES)
        self.query = choice(query, "Sampled: query", self.QUERIES)
        self.threshold = _check_int(owner, "threshold", threshold)
        self.rebuild_every = _check_int(owner, "rebuild_every", rebuild_every)
        if full_rebuild_every is None:
            full_rebuild_every = 10 if share == "batch" else 1
        self.full_rebuild_every = _check_int(owner, "full_rebuild_every", full_rebuild_every)
        if rebuild_growth is not None:
            if isinstance(rebuild_growth, bool) or not isinstance(rebuild_growth, numbers.Real) \
                    or not math.isfinite(rebuild_growth) or rebuild_growth < 1.0:
                raise ValueError(f"Sampled: rebuild_growth must be None or a number >= 1, got {rebuild_growth!r}")
            rebuild_growth = float(rebuild_growth)
        self.rebuild_growth = rebuild_growth
        self.activation = _check_activation(owner, activation)
        self.init_std = _check_init_std(owner, init_std)
        self.hash = self._resolve_hash(hash)
        self.correction = flag(correction, "Sampled: correction")
        self.bias_init = choice(bias_init, "Sampled: bias_init", self.BIAS_INITS)
        self.lr_scale = _check_lr_scale(lr_scale)

    @property
    def dense_equivalent(self):
        """True when every neuron is active: no hashing is needed."""
        return self.min_active >= self.units

    def engine_settings(self):
        """The kernels' view of the layer (``_layer.fill_layer``): its
        active-set bounds, negatives, query and threshold, every value given
        (the kernels hold no defaults)."""
        return {"sampled": 1, "relu": int(self.activation == "relu"),
                "min_active": self.min_active, "max_active": self.max_active,
                "all_active": int(self.dense_equivalent), "negatives": self.negatives,
                "query": self.query, "threshold": self.threshold}

    def filled_rows(self, n_labels):
        """Rows a batch-shared active set is topped up to, for a batch with
        ``n_labels`` distinct labels: ``min_active``, and at least
        ``negatives`` beyond the labels. The one statement of the rule on the
        Python side (the output's visit rate, the shards' budgets); the
        kernel's top-up (``_shared.pyx``) applies the same per step."""
        return max(self.min_active, n_labels + self.negatives)

    def _resolve_hash(self, hash):
        if hash is None:
            return None
        if isinstance(hash, str):
            if hash != "auto":
                raise ValueError(f"Sampled: hash must be 'auto', None or a hash family "
                                 f"(pyslide.SimHash, WTA, DWTA, DOPH), got {hash!r}")
            return "auto"
        if not hasattr(hash, "compile"):
            raise TypeError(f"Sampled: hash must be 'auto', None or a hash family "
                            f"(pyslide.SimHash, WTA, DWTA, DOPH), got {hash!r}")
        return hash

    def resolve_hash(self, in_dim, seed=0):
        """The hash family this layer uses for inputs of width ``in_dim``.

        ``"auto"``: SimHash with ``K = clip(ceil(log2(2 units / bucket_size)),
        4, 16)`` sign bits (buckets about half full on average) and ``L`` = 16
        (shared) or 50 (per sample) tables; Gaussian projections when
        ``in_dim <= 4096``, else DWTA (bins of 8), whose cost does not grow
        with the input width.
        """
        if self.hash != "auto":
            return self.hash
        return hash_family("auto", self.units, in_dim, share=self.share,
                           bucket_size=self.bucket_size, seed=seed)

    def get_config(self):
        return {"kind": self.kind, "units": self.units, "active": self.active,
                "min_active": self.min_active, "max_active": self.max_active,
                "negatives": self.negatives, "share": self.share, "bucket_size": self.bucket_size, "policy": self.policy,
                "query": self.query, "threshold": self.threshold,
                "rebuild_every": self.rebuild_every,
                "full_rebuild_every": self.full_rebuild_every,
                "rebuild_growth": self.rebuild_growth,
                "activation": self.activation, "init_std": self.init_std,
                "correction": self.correction, "bias_init": self.bias_init,
                "lr_scale": (list(self.lr_scale) if isinstance(self.lr_scale, tuple)
                             else self.lr_scale),
                "hash": (self.hash if self.hash is None or isinstance(self.hash, str)
                         else self.hash.get_config())}

    def __repr__(self):
        return (f"Sampled({self.units}, hash={self.hash!r}, active={self.active}, "
                f"share={self.share!r})")


def hash_family(name, units, in_dim, share="batch", bucket_size=128, seed=0, **params):
    """The hash family ``name`` for a sampled layer of ``units`` neurons over inputs of
    width ``in_dim``, with ``params`` (K, L, bin_size, ...) in place of its defaults.

    Parameters
    ----------
    name : str
        "auto" (the family :meth:`Sampled.resolve_hash` picks for this shape), "simhash",
        "dwta", "wta" or "doph", in any case.
    units, in_dim : int
        The layer's neurons and input width (used by "auto").
    share : str
        The layer's ``share`` ("auto" picks its table count by it).
    bucket_size : int
        The layer's ``bucket_size`` ("auto" picks SimHash's K by it).
    seed : int
        The family's seed.
    **params
        The family's parameters; one the family does not take is refused by name.

    Returns
    -------
    SimHash, DWTA, WTA or DOPH
    """
    from .hashing import family_class, family_from_config
    if str(name).lower() != "auto":
        family = {"family": name, "seed": seed}
    elif in_dim > Sampled.DWTA_ABOVE:
        family = {"family": "DWTA", "K": max(1, min(5, int(math.log2(max(units, 2))) // 3)),
                  "L": Sampled.TABLES[share], "bin_size": 8, "seed": seed}
    else:
        # about half a bucket of neurons per bucket on average, so a bucket
        # rarely overflows and drops neurons
        K = int(min(16, max(4, math.ceil(math.log2(max(2.0, 2.0 * units / bucket_size))))))
        family = {"family": "SimHash", "K": K, "L": Sampled.TABLES[share], "seed": seed}
    cls = family_class(family["family"])   # a bad name is refused here
    for param in params:
        if param not in inspect.signature(cls).parameters:
            raise ValueError(f"{param} does not apply to the {cls.__name__} family")
    return family_from_config({**family, **params})


def layer_from_config(config):
    """The layer a ``get_config()`` dict describes; keys left out take the defaults."""
    if not isinstance(config, dict):
        raise TypeError(f"a layer config must be a dict with 'kind' and 'units', got {config!r}")
    config = dict(config)
    kind = config.pop("kind", None)
    if kind == "dense":
        return Dense(**config)
    if kind == "sampled":
        return Sampled(hash=_family_of_config(config.pop("hash", "auto")), **config)
    raise ValueError(f"unknown layer kind {kind!r}; expected 'dense' or 'sampled'")


def _family_of_config(hash_config):
    """A sampled layer config's ``hash``: "auto", "none" (or None: uniform sampling), in
    any case, or a family's config such as {"family": "simhash", "K": 9, "L": 50}."""
    if hash_config is None or isinstance(hash_config, dict):
        from .hashing import family_from_config
        return None if hash_config is None else family_from_config(hash_config)
    if isinstance(hash_config, str) and hash_config.lower() in ("auto", "none"):
        return "auto" if hash_config.lower() == "auto" else None
    raise ValueError(f"hash must be 'auto', 'none' or a family's config such as "
                     f"{{'family': 'simhash', 'K': 9, 'L': 50}}, got {hash_config!r}")
