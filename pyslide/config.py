"""Networks from flat settings, as a config file or a command line writes them; imports _docstrings, layers, network and optim (never the CLI).

A flat setting names one library parameter: ``hidden = [256, 128]`` the
widths of the hidden ``Dense`` layers, ``active = 4096`` the output
``Sampled`` layer's, ``K = 6`` its hash family's, ``lr = 1e-3`` the
optimizer's (:data:`SETTINGS` lists them all). A TOML or JSON file of such
keys, or a dict from a hyperparameter search, describes a network without
nesting; a ``layers`` list of layer tables describes any other.

>>> net = network_from_settings({"hidden": [64], "active": 128, "lr": 1e-3},
...                             input_dim=1000, n_labels=5000)
>>> settings = read_config("cfg.toml")                           # doctest: +SKIP

``pyslide train`` reads its ``--config`` file with :func:`read_config` and
builds its network with :func:`network_from_settings`.
"""
import json
import os
import sys

from ._docstrings import signature_default
from .layers import Dense, Sampled, hash_family, layer_from_config
from .network import Network
from .optim import SGD, Adam, Constant, CosineDecay

__all__ = ["SETTINGS", "SECTIONS", "ConfigError", "read_config", "check_setting",
           "layers_from_list", "optimizer_from_settings", "network_from_settings"]

# Each key and the parameter it sets ("Owner.param"): "Dense." every hidden
# layer's, "layer." every layer's, "Sampled." the output layer's, "family." its
# hash family's, "optimizer." Adam's and SGD's, "schedule." the learning-rate
# schedule's; "settings.output" is this module's own (sampled or dense output).
SETTINGS = {
    "hidden": "Dense.units", "activation": "Dense.activation", "output": "settings.output",
    "init_std": "layer.init_std", "dropout": "Dense.dropout",
    "active": "Sampled.active", "min_active": "Sampled.min_active",
    "max_active": "Sampled.max_active", "negatives": "Sampled.negatives",
    "share": "Sampled.share", "hash": "Sampled.hash", "K": "family.K", "L": "family.L",
    "bin_size": "family.bin_size", "bits": "family.bits", "density": "family.density",
    "bucket_size": "Sampled.bucket_size", "policy": "Sampled.policy",
    "query": "Sampled.query", "threshold": "Sampled.threshold",
    "rebuild_every": "Sampled.rebuild_every", "rebuild_growth": "Sampled.rebuild_growth",
    "correction": "Sampled.correction", "bias_init": "Sampled.bias_init",
    "lr_scale": "Sampled.lr_scale",
    "loss": "Network.loss", "optimizer": "Network.optimizer", "lr": "optimizer.lr",
    "beta1": "Adam.beta1", "beta2": "Adam.beta2", "eps": "Adam.eps",
    "dense_adam": "Adam.lazy", "idle_rows": "Adam.idle_rows",
    "weight_decay": "optimizer.weight_decay",
    "warmup": "schedule.warmup", "cosine": "schedule.kind",
    "epochs": "fit.epochs", "threads": "Network.threads", "seed": "Network.seed",
}
# the tables a config file may group its keys in (only for reading)
SECTIONS = ("data", "network", "output", "lsh", "hash", "optimizer", "training")
_LAYER_KEYS = ("Dense.", "Sampled.", "layer.", "family.", "settings.output")


class ConfigError(ValueError):
    """A config file that cannot be read as settings; the message names the file."""


def read_config(path, known=None, convert=None, paths=()):
    """The settings of a TOML (Python >= 3.11) or JSON file, as one flat dict.

    Keys may be grouped in tables named in :data:`SECTIONS` (``[lsh]``,
    ``[optimizer]``, ...); the grouping is only for reading. A key's dashes
    read as underscores, and ``k`` and ``l`` as ``K`` and ``L``.

    Parameters
    ----------
    path : str or os.PathLike
        The file: JSON when its name ends in ``.json``, TOML otherwise.
    known : collection of str, optional
        The keys allowed (default: any).
    convert : callable, optional
        ``convert(key, value)`` returns the value to keep, or raises
        ``ValueError`` or ``TypeError`` saying what is wrong with it.
    paths : collection of str
        Keys whose values are file paths: a relative one is made relative to
        the config file's folder.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file.
    ConfigError
        A malformed file, an unknown key, a key given twice, a value
        ``convert`` refused; the message names the file and the key.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file {path!r}")
    with open(path, "rb") as f:
        raw = f.read()
    kind = "JSON" if path.lower().endswith(".json") else "TOML"
    loads = json.loads if kind == "JSON" else _toml(path).loads
    try:
        data = loads(raw.decode("utf-8"))
    except ValueError as exc:    # JSON's and TOML's decode errors, and UnicodeDecodeError
        raise ConfigError(f"{path}: not valid {kind} ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table of options")
    flat = {}
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                _put(flat, sub_key, sub_value, f"{path}: ", f"[{key}] ", known, convert)
        else:
            _put(flat, key, value, f"{path}: ", "", known, convert)
    base = os.path.dirname(os.path.abspath(path))
    for key in paths:
        if isinstance(flat.get(key), str) and not os.path.isabs(flat[key]):
            flat[key] = os.path.join(base, flat[key])
    return flat


def _put(flat, key, value, source, where, known, convert):
    """One entry of a config file into ``flat``, under its normalised name."""
    name = key.upper() if key in ("k", "l") else key.replace("-", "_")
    if known is not None and name not in known:
        raise ConfigError(f"{source}unknown key {where}{key!r}; known keys: "
                          f"{', '.join(sorted(known))}")
    if name in flat:
        raise ConfigError(f"{source}key {key!r} is given twice")
    try:
        flat[name] = value if convert is None else convert(name, value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}key {key!r}: {exc}") from None


def _toml(path):
    try:
        import tomllib
        return tomllib
    except ImportError:
        try:
            import tomli
            return tomli
        except ImportError:
            raise ConfigError(
                f"{path}: TOML config files need Python 3.11 or later (tomllib); this is "
                f"Python {sys.version_info.major}.{sys.version_info.minor}. Write the same "
                f"keys as a JSON file (cfg.json) instead") from None


# a setting checked alone by the class it configures (built on a one-unit layer)
_PROBES = {"Dense": lambda **kw: Dense(1, **kw), "layer": lambda **kw: Dense(1, **kw),
           "Sampled": lambda **kw: Sampled(1, **kw), "Adam": Adam, "optimizer": Adam}


def check_setting(key, value):
    """Check one setting's value alone, before any data is read: a layer's or
    the optimizer's parameter by its class (a ``ValueError`` or ``TypeError``
    naming the parameter); the others, whose range depends on the data or on
    other settings, when the network is built. Returns ``value``."""
    if key not in SETTINGS:
        raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(SETTINGS))}")
    owner, param = SETTINGS[key].split(".")
    if owner in _PROBES and value is not None:
        _PROBES[owner](**{param: value})
    return value


def layers_from_list(specs, n_labels):
    """Layer configs (``get_config()`` form) from a ``layers`` list of tables.

    ``[{"kind": "dense", "units": 128}, {"kind": "sampled", "active": 64}]``:
    each table holds a layer's parameters (dashes read as underscores); the
    last is the output layer, whose ``units`` is ``n_labels`` or
    ``"labels"`` (the default). Every layer is checked by its class, and a
    message names the layer (``layers[1]: ...``).
    """
    if not isinstance(specs, list) or not specs:
        raise ValueError("'layers' must be a non-empty list of tables such as "
                         "{kind = \"dense\", units = 128}")
    layers = []
    for i, spec in enumerate(specs):
        where = f"layers[{i}]"
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a table, got {spec!r}")
        spec = {k.replace("-", "_"): v for k, v in spec.items()}
        last = i == len(specs) - 1
        if spec.setdefault("units", "labels" if last else None) == "labels":
            spec["units"] = n_labels
        if last and spec["units"] != n_labels:
            raise ValueError(f"{where} is the output layer: units must be the number of labels "
                             f"({n_labels}) or \"labels\", got {spec['units']!r}")
        try:
            layer_from_config(spec)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        layers.append(spec)
    return layers


def _keys(settings, prefix):
    """The keys set in ``settings`` whose parameter starts with ``prefix`` (a
    string or a tuple of them), in :data:`SETTINGS` order."""
    return [key for key in SETTINGS if key in settings and SETTINGS[key].startswith(prefix)]


def _given(settings, prefix):
    """{parameter: value} of the settings whose parameter starts with ``prefix``."""
    return {SETTINGS[key].split(".", 1)[1]: settings[key] for key in _keys(settings, prefix)}


def _checked(settings, names):
    """The settings that are set (not None), every key a known one; and the
    function naming a key in messages (``names`` maps keys to other names,
    such as the command line's flags)."""
    unknown = sorted(set(settings) - set(SETTINGS) - {"layers"})
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(sorted([*SETTINGS, 'layers']))}")
    names = names or {}
    return ({key: value for key, value in settings.items() if value is not None},
            lambda key: names.get(key, key))


def optimizer_from_settings(settings, names=None):
    """The optimizer the settings describe, or None when they set none of its
    parameters (the library's default optimizer then).

    ``optimizer`` ("adam" or "sgd"), ``lr``, ``weight_decay``, Adam's
    ``beta1``, ``beta2``, ``eps``, ``dense_adam`` (every row every step) and
    ``idle_rows`` ("hold", "coast" or "mixed": what lazy rows do between
    visits),
    ``warmup`` (epochs of linear warm-up) and ``cosine`` (a cosine decay
    over ``epochs``). ``names`` maps a key to its name in messages.
    """
    settings, name = _checked(settings, names)
    adam_only = _given(settings, "Adam.")
    if "lazy" in adam_only:        # dense_adam: every row every step
        adam_only["lazy"] = not adam_only["lazy"]
    common = _given(settings, "optimizer.")
    if settings.get("cosine"):
        if "epochs" not in settings:
            raise ValueError(f"{name('cosine')} needs {name('epochs')} (the decay's length)")
        common["schedule"] = CosineDecay(settings["epochs"],
                                         **_given(settings, "schedule.warmup"))
    elif settings.get("warmup"):
        common["schedule"] = Constant(warmup=settings["warmup"])
    if "optimizer" not in settings and not adam_only and not common:
        return None
    kind = settings.get("optimizer", signature_default(Network, "optimizer"))
    if kind == SGD.kind and adam_only:
        adam_keys = ", ".join(map(name, _keys(settings, "Adam.")))
        raise ValueError(f"{adam_keys} applies to {name('optimizer')} adam, not sgd")
    return Adam(**common, **adam_only) if kind == Adam.kind else SGD(**common)


def network_from_settings(settings, input_dim, n_labels, names=None):
    """The network the settings describe, checked by the library.

    Parameters
    ----------
    settings : dict
        Keys of :data:`SETTINGS` (a None value is unset: the library's
        default), or a ``layers`` list (see :func:`layers_from_list`) in
        place of the layer keys. Without ``hidden`` the output layer takes
        the input; ``output`` is "sampled" (default) or "dense".
    input_dim, n_labels : int
        The data's features and labels.
    names : dict, optional
        A key's name in messages (the command line passes its flags).

    Returns
    -------
    Network

    Raises
    ------
    ValueError
        A value the library refuses, or settings that contradict each other
        (a hash family's key with ``hash = "none"``, an output layer key
        with ``output = "dense"``, a layer key beside a ``layers`` list).
    """
    optimizer = optimizer_from_settings(settings, names)
    settings, name = _checked(settings, names)
    if "layers" in settings:
        given = _keys(settings, _LAYER_KEYS)
        if given:
            raise ValueError(f"{name(given[0])} cannot be combined with {name('layers')} (the "
                             f"list describes every layer): set it in the layer's table instead")
        layers = layers_from_list(settings["layers"], n_labels)
    else:
        layers = _layers(settings, input_dim, n_labels, name)
    network = {key: settings[key] for key in ("loss", "threads", "seed") if key in settings}
    if optimizer is not None:
        network["optimizer"] = optimizer
    return Network.from_config({"input_dim": input_dim, "layers": layers, **network})


def _layers(settings, input_dim, n_labels, name):
    """Layer configs from the flat layer keys."""
    dense = _given(settings, "Dense.")
    hidden, common = dense.pop("units", []), _given(settings, "layer.")
    if not hidden and dense and (dense.get("dropout") or "activation" in dense):
        key = "dropout" if "dropout" in dense else "activation"
        raise ValueError(f"{name(key)} applies to hidden layers, and {name('hidden')} none "
                         f"gives none")
    layers = [{"kind": "dense", "units": units, **dense, **common} for units in hidden]
    if settings.get("output", "sampled") == "dense":
        refused = _keys(settings, ("Sampled.", "family."))
        if refused:
            raise ValueError(f"{name(refused[0])} applies to a sampled output layer, not to "
                             f"{name('output')} dense")
        return layers + [{"kind": "dense", "units": n_labels, **common}]
    output = {"kind": "sampled", "units": n_labels, **_given(settings, "Sampled."), **common}
    output["hash"] = _hash_config(settings, n_labels, hidden[-1] if hidden else input_dim, name)
    return layers + [output]


def _hash_config(settings, n_labels, in_dim, name):
    """The output layer's ``hash``: "auto", None or a family's config."""
    kind = settings.get("hash", "auto")
    family = _given(settings, "family.")
    if kind == "none":
        if family:
            first = name(_keys(settings, "family.")[0])
            raise ValueError(f"{first} does not apply to {name('hash')} none (uniform sampling)")
        return None
    if kind == "auto" and not family:
        return "auto"
    extra = {key: settings[key] for key in ("share", "bucket_size") if key in settings}
    return hash_family(kind, n_labels, in_dim, seed=settings.get("seed") or 0, **extra,
                       **family).get_config()
