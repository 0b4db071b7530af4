"""The ``pyslide`` command line (train, evaluate, predict, demo, bench): parses, calls the library, prints; may import any module of ours, and none imports it.

Run ``pyslide --help`` or ``pyslide COMMAND --help``; ``docs/cli.md`` has an
example of every command. Exit status: 0 success, 1 failure (a missing or
malformed file, not enough memory, a diverging run), 2 usage error (a bad
option or option value, also inside a ``--config`` file), 130 interrupted.
Errors are one line on stderr, ``pyslide: error: ...``; ``--debug`` adds the
traceback.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import traceback
import warnings

from ._validate import integer, real

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# The PyTorch the baselines are measured with: the version the [bench] extra
# pins, CPU build (plain PyPI serves the CUDA build, gigabytes of GPU
# libraries a CPU comparison never loads). From the source folder: a project
# of another name "pyslide" exists on PyPI.
TORCH_INSTALL_HINT = ('run pip install ".[bench]" --extra-index-url '
                      'https://download.pytorch.org/whl/cpu in the pyslide source folder')

_DESCRIPTION = """\
Train networks with enormous output layers on CPUs: each sample computes only
the output neurons that locality-sensitive hashing picks (SLIDE).
Run 'pyslide COMMAND --help' for the options of a command."""
_EPILOG = """\
examples:
  pyslide demo --quick
  pyslide train train.txt --test test.txt --epochs 5 --save model.npz
  pyslide evaluate model.npz test.txt --train train.txt
  pyslide predict model.npz test.txt -k 5 -o predictions.txt

exit status: 0 ok, 1 failure, 2 usage error, 130 interrupted."""


class UsageError(Exception):
    """A bad option, option value or config entry: exit status 2."""


class CommandError(Exception):
    """A failure worth one line to the user (bad file, ...): exit status 1."""


# --------------------------------------------------------------------------- parsing helpers

class _Parser(argparse.ArgumentParser):
    """Reports usage errors as exceptions so ``main`` prints them on one line."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _parsed(text, parse, check, expected):
    """A flag's text (or a config file's value) parsed, then checked by the
    library's rule (``pyslide._validate``); argparse's message if it fails."""
    try:
        return check(parse(text))
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def _to_int(value):
    parsed = _as_int(value)
    if parsed is None:
        raise TypeError(value)
    return parsed


def _to_float(value):
    if isinstance(value, bool):
        raise TypeError(value)
    return float(value)


def _int_at_least(minimum):
    def convert(text):
        return _parsed(text, _to_int, lambda v: integer(v, "value", minimum),
                       f"an integer >= {minimum}")
    convert.__name__ = f"int>={minimum}"
    return convert


def _as_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _positive_float(text):
    return _parsed(text, _to_float, lambda v: real(v, "value", 0, min_open=True),
                   "a positive number")


def _lr_scale(text):
    """``auto``, a positive number, or comma-separated ones (one per epoch)."""
    if isinstance(text, str) and text == "auto":
        return text
    if isinstance(text, str):
        parts = text.split(",")
    else:       # a config file's number or list
        parts = list(text) if isinstance(text, (list, tuple)) and text else [text]
    values = [_parsed(part, _to_float, lambda v: real(v, "value", 0, min_open=True),
                      "'auto', a positive number or comma-separated ones (one per epoch)")
              for part in parts]
    return values[0] if len(values) == 1 else values


def _non_negative_float(text):
    return _parsed(text, _to_float, lambda v: real(v, "value", 0), "a number >= 0")


def _fraction_below_one(text):
    return _parsed(text, _to_float, lambda v: real(v, "value", 0, 1, max_open=True),
                   "a fraction in [0, 1)")


def _threads(text):
    value = _as_int(text)
    if value is None or (value < 1 and value != -1):
        raise argparse.ArgumentTypeError(
            f"expected a thread count >= 1 (or -1 for every core), got {text!r}")
    return value


def _hidden_list(text):
    """``"128"``, ``"256,128"``, ``"none"`` (no hidden layer) or a list of ints."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        items = [text]
    else:
        text = str(text).strip()
        if text.lower() in ("", "none", "0"):
            return []
        items = [t for t in text.split(",") if t.strip()]
    out = []
    for item in items:
        value = _as_int(item)
        if value is None or value < 1:
            raise argparse.ArgumentTypeError(
                f"expected hidden layer widths like 128 or 256,128 (or 'none'), got {text!r}")
        out.append(value)
    return out


def _ks(text):
    """``"1,3,5"``, ``"5"`` or a list of ints, each >= 1."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    elif isinstance(text, int) and not isinstance(text, bool):
        items = [text]
    else:
        items = [t for t in str(text).split(",") if t.strip()]
    out = []
    for item in items:
        value = _as_int(item)
        if value is None or value < 1:
            raise argparse.ArgumentTypeError(
                f"expected k values >= 1 like 1,3,5, got {text!r}")
        out.append(value)
    if not out:
        raise argparse.ArgumentTypeError(f"expected k values >= 1 like 1,3,5, got {text!r}")
    return tuple(sorted(set(out)))


def _active(text):
    """A fraction of the layer in (0, 1] (``0.01``) or a count (``4096``)."""
    if isinstance(text, bool):
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1] or a count, got {text!r}")
    if isinstance(text, (int, float)):
        value = text
    else:
        s = str(text).strip()
        try:
            value = int(s)
        except ValueError:
            try:
                value = float(s)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected a fraction in (0, 1] (like 0.01) or a count (like 4096), "
                    f"got {text!r}") from None
    if isinstance(value, float) and not (0.0 < value <= 1.0):
        raise argparse.ArgumentTypeError(
            f"expected a fraction in (0, 1] (like 0.01) or a count (like 4096), got {text!r}")
    if isinstance(value, int) and value < 1:
        raise argparse.ArgumentTypeError(f"expected an active count >= 1, got {text!r}")
    return value


def _bool(value):
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _text(value):
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected a string, got {value!r}")
    return value


# --------------------------------------------------------------------------- train options

# One table drives the ``train`` flags, their defaults and the config file
# keys, so a flag and its config key can never drift apart. A setting of the
# network or of ``fit`` defaults to None ("unset"): the library decides, so
# ``pyslide train`` builds the network ``pyslide.Network`` builds by default
# (tests/test_cli.py checks it). Only the command's own choices (the network
# shape --hidden 128 / --output sampled, --epochs 5, ...) have a value here.
# (dest, flags, converter, default, choices, metavar, help)
_NO_STRICT_ROWS_HELP = ("load the rows present when an XC header's row count differs from "
                        "the file's data lines (a truncated or partial file); by default "
                        "that is an error")
_HASH_CHOICES = ("auto", "simhash", "dwta", "wta", "doph", "none")
_TRAIN_OPTIONS = {
    "data": [
        ("test", ("--test",), _text, None, None, "TEST",
         "labelled file evaluated every --eval-every epochs"),
        ("validation", ("--validation",), _text, None, None, "FILE",
         "labelled file evaluated after every epoch, for --early-stopping and --checkpoint "
         "(or use --validation-split)"),
        ("validation_split", ("--validation-split",), _fraction_below_one, None, None,
         "FRACTION", "hold out this fraction of the training rows (seeded by --seed) as "
         "validation data, evaluated after every epoch"),
        ("format", ("--format",), _text, "xc", ("xc", "libsvm"), None,
         "file format: 'xc' (XC-repository text with a header line; default) or 'libsvm' "
         "(multi-label libsvm, no header)"),
        ("strict_rows", ("--no-strict-rows",), _bool, None, None, None,
         _NO_STRICT_ROWS_HELP),
    ],
    "network": [
        ("hidden", ("--hidden",), _hidden_list, [128], None, "UNITS",
         "hidden Dense layer widths: '--hidden 256,128' or '--hidden 256 --hidden 128'; "
         "'none' for no hidden layer (default 128)"),
        ("activation", ("--activation",), _text, None, ("relu", "linear"), None,
         "activation of the hidden layers (default relu)"),
        ("output", ("--output",), _text, "sampled", ("sampled", "dense"), None,
         "output layer: 'sampled' (LSH-sampled, default) or 'dense' (every label computed)"),
        ("init_std", ("--init-std",), _positive_float, None, None, "STD",
         "standard deviation of the initial weights (default: scaled to the fan-in)"),
        ("dropout", ("--dropout",), _non_negative_float, None, None, "RATE",
         "drop each hidden unit with this probability in training (default 0.2)"),
    ],
    "output layer and LSH": [
        ("active", ("--active",), _active, None, None, "N|FRACTION",
         "active output neurons per batch (--share batch) or per sample (--share sample): "
         "a count like 4096 or a fraction like 0.02 (default: 8192 per batch, "
         "max(128, labels/200) per sample)"),
        ("min_active", ("--min-active",), _int_at_least(0), None, None, "N",
         "fewer LSH candidates than this are topped up with random neurons (default: --active)"),
        ("max_active", ("--max-active",), _int_at_least(1), None, None, "N",
         "LSH candidates beyond this are dropped (default: --active)"),
        ("negatives", ("--negatives",), _int_at_least(0), None, None, "N",
         "--share batch: rows the set holds beyond the batch's labels, at least (LSH "
         "candidates, then uniform); default: --active"),
        ("share", ("--share",), _text, None, ("batch", "sample"), None,
         "'batch': one active set per batch, logits as one matrix product (default); "
         "'sample': every sample its own active set (SLIDE)"),
        ("hash", ("--hash",), _text, None, _HASH_CHOICES, None,
         "hash family of the output layer: auto (SimHash, or DWTA for inputs wider than 4096), "
         "simhash, dwta, wta, doph, or none (uniform sampling)"),
        ("K", ("-K",), _int_at_least(1), None, None, "K",
         "bits (SimHash) or codes (WTA, DWTA, DOPH) per table (default: the family's, "
         "or from the layer's shape with --hash auto)"),
        ("L", ("-L",), _int_at_least(1), None, None, "L",
         "number of hash tables (default: 16 with --share batch, 50 with --share sample)"),
        ("bin_size", ("--bin-size",), _int_at_least(2), None, None, "N",
         "WTA/DWTA: dims per bin, a power of two (default 8)"),
        ("bits", ("--bits",), _int_at_least(1), None, None, "N",
         "DOPH: bits kept per code (default min(8, 16 // K))"),
        ("density", ("--density",), _positive_float, None, None, "FRACTION",
         "SimHash: sparse +-1 projections over this fraction of dims (default: dense Gaussian)"),
        ("bucket_size", ("--bucket-size",), _int_at_least(1), None, None, "N",
         "slots per hash bucket (default 128)"),
        ("policy", ("--policy",), _text, None, ("fifo", "reservoir"), None,
         "what a full bucket does with a new neuron: keep a uniform sample of the "
         "neurons (reservoir, default) or the newest (fifo)"),
        ("query", ("--query",), _text, None, ("union", "threshold", "sample"), None,
         "with --share sample, how a sample's active set is read from the tables: union of "
         "the hit buckets (SLIDE, default), ids hit in at least --threshold tables, or "
         "buckets probed in random order"),
        ("threshold", ("--threshold",), _int_at_least(1), None, None, "TABLES",
         "tables an id must be hit in, with --query threshold (default 2)"),
        ("rebuild_every", ("--rebuild-every",), _int_at_least(1), None, None, "STEPS",
         "re-hash every output neuron into the tables every this many steps (default 50)"),
        ("rebuild_growth", ("--rebuild-growth",), _positive_float, None, None, "FACTOR",
         "grow the rebuild interval by this factor (>= 1) after every rebuild"),
        ("correction", ("--no-correction",), _bool, None, None, None,
         "do not correct sampled logits for how often their labels are sampled (the "
         "correction keeps sampled training tracking the full softmax; see docs/guide.md)"),
        ("bias_init", ("--bias-init",), _text, None, ("auto", "prior", "zero"), None,
         "the output biases' start: 'prior' the labels' log training frequencies, 'zero'; "
         "'auto' (default) is 'prior' for a sampled output, 'zero' when it computes every label"),
        ("lr_scale", ("--lr-scale",), _lr_scale, None, None, "auto|FACTOR[,FACTOR...]",
         "multiply the optimizer's step on the output layer's rows by FACTOR, or by one "
         "FACTOR per epoch (the last holds after); 'auto' (default), for a sampled output, "
         "whose rows are updated only on the steps that sample them, is 1.5 until its rows "
         "have been sampled 128 times on average or the rows passed over twice, then falls "
         "with the further of the two to 0.5; 1 when it computes every label"),
    ],
    "loss and optimizer": [
        ("loss", ("--loss",), _text, None, ("softmax", "bce"), None,
         "softmax cross-entropy against labels normalised to sum 1 (default), or bce "
         "(independent sigmoids)"),
        ("optimizer", ("--optimizer",), _text, None, ("adam", "sgd"), None,
         "lazy Adam (default) or plain SGD"),
        ("lr", ("--lr",), _positive_float, None, None, "LR",
         "learning rate (default 1e-3 for adam, 0.1 for sgd)"),
        ("beta1", ("--beta1",), _positive_float, None, None, "B", "Adam beta1 (default 0.9)"),
        ("beta2", ("--beta2",), _positive_float, None, None, "B",
         "Adam beta2 (default 0.999)"),
        ("eps", ("--eps",), _positive_float, None, None, "EPS", "Adam epsilon (default 1e-8)"),
        ("dense_adam", ("--dense-adam",), _bool, None, None, None,
         "update every row every step (textbook Adam; slow, for comparisons)"),
        ("weight_decay", ("--weight-decay",), _non_negative_float, None, None, "WD",
         "decoupled weight decay (AdamW; lazy and exact), e.g. 1e-4 (default 0)"),
        ("warmup", ("--warmup",), _non_negative_float, None, None, "EPOCHS",
         "ramp the learning rate up linearly over this many epochs (default 0)"),
        ("cosine", ("--cosine",), _bool, None, None, None,
         "decay the learning rate to 0 along half a cosine over --epochs"),
    ],
    "training": [
        ("epochs", ("--epochs",), _int_at_least(1), 5, None, "N", "passes over the data (default 5)"),
        ("batch_size", ("--batch-size",), _int_at_least(1), None, None, "N",
         "samples per step (default 128)"),
        ("threads", ("--threads",), _threads, None, None, "N",
         "threads of every kernel (default: the cores available; -1 every core)"),
        ("seed", ("--seed",), _int_at_least(0), None, None, "N",
         "seed of weights, hashing, shuffling (default 0); with --threads 1 runs repeat exactly"),
        ("shuffle", ("--no-shuffle",), _bool, None, None, None,
         "keep the file's row order instead of shuffling every epoch"),
        ("eval_every", ("--eval-every",), _int_at_least(0), 1, None, "EPOCHS",
         "evaluate on --test every this many epochs, and after the last (0: after the last only; "
         "default 1)"),
        ("eval_k", ("--eval-k",), _ks, (1, 3, 5), None, "K,...",
         "k values of the periodic P@k / nDCG@k (default 1,3,5)"),
        ("early_stopping", ("--early-stopping",), _int_at_least(1), None, None, "PATIENCE",
         "stop when --monitor has not improved for this many epochs, and keep "
         "the model of the best epoch (needs --validation-split or --validation)"),
        ("monitor", ("--monitor",), _text, "val_loss", None, "METRIC",
         "what --early-stopping and --checkpoint watch: val_loss (default; smooth even on "
         "a small validation set) or a validation metric such as p@1 or ndcg@5"),
        ("checkpoint", ("--checkpoint",), _text, None, None, "MODEL",
         "save the model here after every epoch that improved --monitor (after "
         "every epoch without validation data); '{epoch}' in the name keeps one file each"),
        ("save", ("--save",), _text, None, None, "MODEL", "write the trained model here (.npz)"),
        ("progress", ("--progress",), _bool, None, None, None,
         "show a progress bar (default: when stderr is a terminal)"),
    ],
}
_TRAIN_SPEC = {row[0]: row for rows in _TRAIN_OPTIONS.values() for row in rows}
_BOOL_FLAGS = {"dense_adam": True, "shuffle": False, "strict_rows": False, "progress": True,
               "correction": False, "cosine": True}   # value the flag sets
# Keys a config file may also hold besides the options above.
_CONFIG_EXTRA_KEYS = ("train", "layers")
_CONFIG_SECTIONS = ("data", "network", "output", "lsh", "hash", "optimizer", "training")


def _add_train_options(p):
    p.add_argument("train", nargs="?", default=None, metavar="TRAIN",
                   help="training file (XC format by default); may come from --config instead")
    p.add_argument("--config", metavar="FILE",
                   help="TOML (Python >= 3.11) or JSON file of options; keys are the long "
                        "option names (dashes or underscores), e.g. hidden = [256, 128], "
                        "lr = 1e-3; flags given on the command line win")
    for group_name, rows in _TRAIN_OPTIONS.items():
        group = p.add_argument_group(group_name)
        for dest, flags, convert, default, choices, metavar, help_text in rows:
            kwargs = dict(dest=dest, default=None, help=help_text)
            if dest in _BOOL_FLAGS:
                kwargs["action"] = "store_const"
                kwargs["const"] = _BOOL_FLAGS[dest]
                group.add_argument(*flags, **kwargs)
                if dest == "progress":
                    group.add_argument("--no-progress", dest="progress", action="store_const",
                                       const=False, default=None, help="never show a progress bar")
                continue
            if dest == "hidden":
                kwargs["action"] = "append"
            kwargs["type"] = convert
            if choices:
                kwargs["choices"] = choices
            if metavar:
                kwargs["metavar"] = metavar
            group.add_argument(*flags, **kwargs)


def _read_config(path):
    """The options of a TOML or JSON file as a flat dict (sections merged)."""
    if not os.path.isfile(path):
        raise UsageError(f"--config: no such file {path!r}")
    with open(path, "rb") as f:
        raw = f.read()
    if path.lower().endswith(".json"):
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"--config {path}: not valid JSON ({exc})") from None
    else:
        try:
            import tomllib
        except ImportError:
            try:
                import tomli as tomllib
            except ImportError:
                raise UsageError(
                    f"--config {path}: TOML config files need Python 3.11 or later (tomllib); "
                    f"this is Python {sys.version_info.major}.{sys.version_info.minor}. "
                    f"Write the same keys as a JSON file (cfg.json) instead") from None
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: the top level must be a table of options")
    flat = {}
    for key, value in data.items():
        if key in _CONFIG_SECTIONS and isinstance(value, dict):
            for sub_key, sub_value in value.items():
                _put_config_key(flat, sub_key, sub_value, path, f"[{key}] ")
        else:
            _put_config_key(flat, key, value, path, "")
    base = os.path.dirname(os.path.abspath(path))
    for key in ("train", "test", "validation", "save", "checkpoint"):
        if isinstance(flat.get(key), str) and not os.path.isabs(flat[key]):
            flat[key] = os.path.join(base, flat[key])   # relative to the config file
    return flat


def _put_config_key(flat, key, value, path, where):
    name = key if key in ("K", "L") else key.replace("-", "_")
    if name in ("k", "l"):
        name = name.upper()
    if name not in _TRAIN_SPEC and name not in _CONFIG_EXTRA_KEYS:
        known = ", ".join(sorted(list(_TRAIN_SPEC) + list(_CONFIG_EXTRA_KEYS)))
        raise UsageError(f"--config {path}: unknown key {where}{key!r}; known keys: {known}")
    if name in flat:
        raise UsageError(f"--config {path}: key {key!r} is given twice")
    if name == "train":
        if not isinstance(value, str):
            raise UsageError(f"--config {path}: key 'train' must be a file path, got {value!r}")
        flat[name] = value
        return
    if name == "layers":
        flat[name] = value
        return
    _, flags, convert, _, choices, _, _ = _TRAIN_SPEC[name]
    try:
        converted = convert(value)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"--config {path}: key {key!r}: {exc}") from None
    if choices and converted not in choices:
        raise UsageError(f"--config {path}: key {key!r}: {converted!r} is not one of "
                         f"{', '.join(choices)}")
    flat[name] = converted


def _resolve_train_options(args):
    """Defaults < config file < flags, as one namespace."""
    opts = {dest: row[3] for dest, row in _TRAIN_SPEC.items()}
    opts["train"] = None
    opts["layers"] = None
    if args.config:
        opts.update(_read_config(args.config))
    for dest in _TRAIN_SPEC:
        value = getattr(args, dest)
        if value is None:
            continue
        if dest == "hidden":   # repeated flags: concatenate each flag's list
            value = [u for part in value for u in part]
        opts[dest] = value
    if args.train is not None:
        opts["train"] = args.train
    if opts["train"] is None:
        raise UsageError("the training file is missing: give TRAIN or "
                         "'train = \"file\"' in --config (see 'pyslide train --help')")
    return argparse.Namespace(**opts)


# --------------------------------------------------------------------------- network from options

def _set(**settings):
    """The settings that were given (not None): the rest are the library's to decide."""
    return {key: value for key, value in settings.items() if value is not None}


def _hash_config(opts, layer_units, in_dim):
    """The output layer's ``hash`` setting from the flags: "auto", None or a family config."""
    from .hashing import family_from_config
    from .layers import Sampled

    kind = opts.hash or "auto"
    extra = {"bin_size": opts.bin_size, "bits": opts.bits, "density": opts.density}
    allowed = {"simhash": ("density",), "wta": ("bin_size",), "dwta": ("bin_size",),
               "doph": ("bits",), "auto": (), "none": ()}[kind]
    for name, value in extra.items():
        if value is not None and name not in allowed:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} does not apply to --hash {kind}"
                             + (" (it belongs to a specific family)" if kind == "auto" else ""))
    if kind == "none":
        for name in ("K", "L"):
            if getattr(opts, name) is not None:
                raise UsageError(f"-{name} does not apply to --hash none (uniform sampling)")
        return None
    kw = _set(K=opts.K, L=opts.L, seed=opts.seed,
              **{name: extra[name] for name in allowed})
    if kind == "auto":
        if not _set(K=opts.K, L=opts.L):
            return "auto"
        # the family 'auto' would pick for this shape, with K / L replaced
        probe = Sampled(layer_units, hash="auto", active=1, **_set(share=opts.share))
        config = probe.resolve_hash(in_dim, kw.get("seed", 0)).get_config()
        config.update(kw)
        return config
    family = {"simhash": "SimHash", "wta": "WTA", "dwta": "DWTA", "doph": "DOPH"}[kind]
    # built here so that a bad K / L is reported now, as a usage error
    return family_from_config({"family": family, **kw}).get_config()


def _optimizer_config(opts):
    """The optimizer's config from the flags, or None when no optimizer flag is set."""
    schedule = None
    if opts.cosine:
        schedule = {"kind": "cosine", "epochs": opts.epochs, **_set(warmup=opts.warmup)}
    elif opts.warmup:
        schedule = {"kind": "constant", "warmup": opts.warmup}
    adam_only = _set(beta1=opts.beta1, beta2=opts.beta2, eps=opts.eps,
                     lazy=None if opts.dense_adam is None else not opts.dense_adam)
    common = _set(lr=opts.lr, weight_decay=opts.weight_decay, schedule=schedule)
    if opts.optimizer is None and not adam_only and not common:
        return None
    kind = opts.optimizer or _library_default(_network_class().__init__, "optimizer")
    if kind == "sgd" and adam_only:
        flags = ", ".join(_flag_name(d) for d in ("beta1", "beta2", "eps", "dense_adam")
                          if d in adam_only or (d == "dense_adam" and "lazy" in adam_only))
        raise UsageError(f"{flags} applies to --optimizer adam, not sgd")
    return {"kind": kind, **common, **(adam_only if kind == "adam" else {})}


def _network_class():
    from .network import Network
    return Network


def _library_default(function, name):
    """The default of ``function``'s parameter ``name``: the library's, stated once."""
    import inspect
    return inspect.signature(function).parameters[name].default


def _layers_from_flags(opts, input_dim, n_labels):
    """Layer configs (``get_config()`` form) from the flags."""
    from .layers import layer_from_config

    if opts.dropout and not opts.hidden:
        raise UsageError("--dropout applies to hidden layers, and --hidden none gives none")
    layers = [{"kind": "dense", "units": u,
               **_set(activation=opts.activation, init_std=opts.init_std,
                      dropout=opts.dropout)}
              for u in opts.hidden]
    if opts.output == "dense":
        for dest in ("active", "min_active", "max_active", "negatives", "K", "L", "bin_size", "bits",
                     "density", "bucket_size", "bias_init", "lr_scale"):
            if getattr(opts, dest) is not None:
                raise UsageError(f"{_flag_name(dest)} applies to a sampled output layer, "
                                 f"not to --output dense")
        layers.append({"kind": "dense", "units": n_labels, **_set(init_std=opts.init_std)})
        return layers
    output = {"kind": "sampled", "units": n_labels,
              **_set(active=opts.active, min_active=opts.min_active,
                     max_active=opts.max_active, negatives=opts.negatives, share=opts.share,
                     bucket_size=opts.bucket_size, policy=opts.policy, query=opts.query,
                     threshold=opts.threshold, rebuild_every=opts.rebuild_every,
                     rebuild_growth=opts.rebuild_growth, init_std=opts.init_std,
                     correction=opts.correction, bias_init=opts.bias_init,
                     lr_scale=opts.lr_scale)}
    if not opts.hidden and _output_share(output) == "batch":
        raise UsageError("--hidden 0 (or none) means no hidden layer, but the sampled output "
                         "shares its active labels across the batch (--share batch, the "
                         "default), which scores hidden vectors: give a hidden layer "
                         "(--hidden 128) or add --share sample")
    in_dim = opts.hidden[-1] if opts.hidden else input_dim
    output["hash"] = _hash_config(opts, n_labels, in_dim)
    layer_from_config(output)     # a bad value is reported before any data is read
    layers.append(output)
    return layers


def _output_share(output):
    from .layers import layer_from_config
    return layer_from_config({**output, "hash": None}).share


def _layers_from_config(specs, n_labels, source="--config"):
    """``layers = [{kind = "dense", units = 128}, {kind = "sampled", ...}]`` as layer configs."""
    from .hashing import family_from_config
    from .layers import layer_from_config

    if not isinstance(specs, list) or not specs:
        raise UsageError(f"{source}: 'layers' must be a non-empty list of tables such as "
                         f"{{kind = \"dense\", units = 128}}")
    layers = []
    for i, spec in enumerate(specs):
        where = f"{source}: layers[{i}]"
        if not isinstance(spec, dict):
            raise UsageError(f"{where} must be a table, got {spec!r}")
        spec = {k.replace("-", "_"): v for k, v in spec.items()}
        kind = spec.get("kind")
        last = i == len(specs) - 1
        units = spec.get("units", "labels" if last else None)
        if units == "labels":
            units = n_labels
        if last and units != n_labels:
            raise UsageError(f"{where} is the output layer: units must be the number of labels "
                             f"({n_labels}) or \"labels\", got {units!r}")
        spec["units"] = units
        if kind not in ("dense", "sampled"):
            raise UsageError(f"{where}: kind must be \"dense\" or \"sampled\", got {kind!r}")
        if kind == "sampled":
            family = spec.get("hash", "auto")
            if isinstance(family, dict):
                config = dict(family)
                name = str(config.pop("family", "")).lower()
                classes = {"simhash": "SimHash", "wta": "WTA", "dwta": "DWTA", "doph": "DOPH"}
                if name not in classes:
                    raise UsageError(f"{where}: hash.family must be one of "
                                     f"{', '.join(classes)}, got {name!r}")
                family = {"family": classes[name], **config}
                try:
                    family_from_config(family)
                except (TypeError, ValueError) as exc:
                    raise UsageError(f"{where}: {_one_line(exc)}") from None
            elif family in ("none", "uniform"):
                family = None
            elif family not in ("auto", None):
                raise UsageError(f"{where}: hash must be \"auto\", \"none\" or a table "
                                 f"{{family = \"simhash\", K = 9, L = 50}}, got {family!r}")
            spec["hash"] = family
        try:
            layer_from_config(spec)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: {_one_line(exc)}") from None
        layers.append(spec)
    return layers


def _check_no_layer_flags(opts):
    """A ``layers`` list describes the whole network: layer options would be ignored."""
    for group in ("network", "output layer and LSH"):
        for dest, flags, _, default, *_ in _TRAIN_OPTIONS[group]:
            if getattr(opts, dest) is not None and getattr(opts, dest) != default:
                raise UsageError(f"{flags[0]} cannot be combined with a 'layers' list in "
                                 f"--config (the list describes every layer): set it in the "
                                 f"layer's table instead")


def _flag_name(dest):
    return _TRAIN_SPEC[dest][1][0]


# --------------------------------------------------------------------------- data files

def _read_labelled(path, fmt, what, n_features=None, n_labels=None, strict_rows=True):
    """(X, Y) of a data file, widened to the given feature / label counts."""
    from . import data

    if not os.path.exists(path):
        raise CommandError(f"{what} file {path!r} does not exist")
    if os.path.isdir(path):
        raise CommandError(f"{what} file {path!r} is a directory")
    # with the model's widths given, an id beyond them is reported with its line
    try:
        if fmt == "xc":
            X, Y = data.load_xc(path, n_features=n_features, n_labels=n_labels,
                                strict_rows=strict_rows is not False)
        else:
            X, Y = data.load_libsvm(path, n_features=n_features, n_labels=n_labels)
    except data.RowCountError as exc:
        raise CommandError(str(exc.with_fix("add --no-strict-rows"))) from None
    if X.shape[1] == 0:
        raise CommandError(f"{what} file {path}: {_why_no_features(path, fmt)}; a network "
                           f"needs at least one input feature")
    return X, Y


def _warn_if_made_for_another_model(path, fmt, net, with_labels):
    """Warn when an XC file's header declares other widths than the model's:
    its ids are read against the model's widths, so a file made for another
    model loads and scores near 0 without any other sign."""
    from . import data

    if fmt != "xc":
        return
    try:
        with data._text_buffer(path) as (buffer, name, begin):
            counts, _ = data._parse_header(buffer, name, "auto", begin)
    except (OSError, ValueError):
        return      # the reader reports an unreadable header with its line
    if counts is None:
        return
    _, n_features, n_labels = counts
    if n_features == net.input_dim and (not with_labels or n_labels == net.n_outputs):
        return
    declared = f"{n_features} features" + (f" and {n_labels} labels" if with_labels else "")
    model = f"{net.input_dim} features" + (f" and {net.n_outputs} labels" if with_labels else "")
    warnings.warn(f"{path}: its header (line 1) declares {declared}, the model has {model}; "
                  f"is this the model's data? (ids are read against the model's widths)",
                  UserWarning, stacklevel=2)


def _why_no_features(path, fmt):
    """The header that declared D=0, or the absence of any 'id:value' token."""
    from . import data

    if fmt == "xc":
        try:
            with data._text_buffer(path) as (buffer, _, begin):
                end = buffer.find(b"\n", begin)
                first = bytes(buffer[begin:end if end >= 0 else len(buffer)]).decode().strip()
        except (OSError, ValueError):
            first = ""
        tokens = first.split()
        if len(tokens) == 3 and all(t.isdigit() for t in tokens):
            return f"line 1: the header '{first}' says D=0 features (the header is 'N D L')"
    return "no line has a feature ('id:value')"


def _fit_columns(M, n_columns, path, noun, plural):
    """M with exactly n_columns columns; test files may declare fewer or more."""
    import scipy.sparse as sp

    if M.shape[1] == n_columns:
        return M
    if M.shape[1] > n_columns and M.nnz and int(M.indices.max()) >= n_columns:
        raise CommandError(f"{path}: {noun} id {int(M.indices.max())} is out of range: the "
                           f"model has {n_columns} {plural} (ids 0 to {n_columns - 1})")
    M = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], n_columns))
    return M


def _describe(path, X, Y):
    return (f"{path}: {X.shape[0]} rows, {X.shape[1]} features "
            f"({X.nnz / max(X.shape[0], 1):.1f} per row), {Y.shape[1]} labels "
            f"({Y.nnz / max(Y.shape[0], 1):.2f} per row)")


# --------------------------------------------------------------------------- train

def _cmd_train(args):
    import pyslide as ps

    opts = _resolve_train_options(args)
    optimizer = _optimizer_or_usage(opts)
    _check_threads(opts.threads)
    if opts.save:
        _check_writable(opts.save, "--save", regular_only=True)
        _check_not_an_input(opts.save, "--save", [("the training file", opts.train),
                                                  ("the test file", opts.test),
                                                  ("--config", getattr(args, "config", None))])
    if opts.validation and opts.validation_split:
        raise UsageError("give --validation FILE or --validation-split FRACTION, not both")
    has_validation = bool(opts.validation or opts.validation_split)
    if opts.early_stopping and not has_validation:
        raise UsageError("--early-stopping needs validation data: add --validation-split 0.1 "
                         "(held out from the training rows) or --validation FILE")
    stopper = None
    if opts.early_stopping:
        try:
            stopper = ps.EarlyStopping(monitor=opts.monitor, patience=opts.early_stopping,
                                       restore_best=True)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--monitor: {_one_line(exc)}") from None
    if opts.checkpoint:
        try:
            checkpoint = ps.ModelCheckpoint(opts.checkpoint, monitor=opts.monitor,
                                            save_best_only=has_validation)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--checkpoint: {_one_line(exc)}") from None
        _check_writable(opts.checkpoint.format(epoch=1), "--checkpoint")
    verbose = not args.quiet
    progress = opts.progress
    if progress is None:
        progress = verbose and sys.stderr.isatty()

    X, Y = _read_labelled(opts.train, opts.format, "training", strict_rows=opts.strict_rows)
    # the test and validation files widened to the widest of the files
    others = {what: _read_labelled(path, opts.format, what, strict_rows=opts.strict_rows)
              for what, path in (("test", opts.test), ("validation", opts.validation)) if path}
    if others:
        n_features = max([X.shape[1]] + [M.shape[1] for M, _ in others.values()])
        n_labels = max([Y.shape[1]] + [L.shape[1] for _, L in others.values()])
        X = _fit_columns(X, n_features, opts.train, "feature", "features")
        Y = _fit_columns(Y, n_labels, opts.train, "label", "labels")
        for what, (M, L) in others.items():
            path = opts.test if what == "test" else opts.validation
            others[what] = (_fit_columns(M, n_features, path, "feature", "features"),
                            _fit_columns(L, n_labels, path, "label", "labels"))
    Xt, Yt = others.get("test", (None, None))
    if opts.validation_split and int(X.shape[0] * opts.validation_split) == 0:
        raise UsageError(f"--validation-split {opts.validation_split} of {X.shape[0]} training "
                         f"rows holds out no row: use a larger fraction")
    if verbose:
        print(_describe(opts.train, X, Y))
        for what, (M, L) in others.items():
            print(_describe(opts.test if what == "test" else opts.validation, M, L))

    if opts.layers is not None:
        _check_no_layer_flags(opts)
        layers = _layers_from_config(opts.layers, Y.shape[1])
    else:
        try:
            layers = _layers_from_flags(opts, X.shape[1], Y.shape[1])
        except (TypeError, ValueError) as exc:
            raise UsageError(_one_line(exc)) from None
    config = {"input_dim": X.shape[1], "layers": layers,
              **_set(loss=opts.loss, optimizer=optimizer, threads=opts.threads, seed=opts.seed)}
    try:
        net = ps.Network.from_config(config)
    except (TypeError, ValueError) as exc:
        raise UsageError(_one_line(exc)) from None
    except MemoryError as exc:
        # the library's advice names API arguments; a CLI user needs flags
        need = str(exc).split("; use ")[0]
        raise CommandError(f"not enough memory: {need}; use --optimizer sgd (no Adam moments), "
                           f"narrower or fewer --hidden layers, or smaller -K / -L / "
                           f"--bucket-size") from None
    if opts.save:
        from .persist import estimate_bytes
        # fail before training, not after it, when the model cannot be written
        _check_writable(opts.save, "--save", need_bytes=estimate_bytes(net), regular_only=True)
    if verbose:
        print(f"{net!r}")
        batch_size = opts.batch_size or _library_default(ps.Network.fit, "batch_size")
        print(f"threads: {net.n_threads}, epochs: {opts.epochs}, batch size: {batch_size}")

    state = {"steps": 0, "time": 0.0}

    def report(network, epoch, logs):
        steps = network.step_ - state["steps"]
        seconds = logs["time"] - state["time"]
        state["steps"], state["time"] = network.step_, logs["time"]
        parts = [f"epoch {epoch}/{opts.epochs}", f"loss {logs['loss']:.4f}",
                 _seconds(seconds), f"{steps / max(seconds, 1e-9):.1f} steps/s"]
        parts += [f"{k} {v:.4f}" for k, v in logs.items()
                  if k == "val_loss" or k.startswith("val_p@")]
        # with early stopping the final model is the best epoch's, tested after fit
        evaluate_now = Xt is not None and (
            (epoch == opts.epochs and not opts.early_stopping)
            or (opts.eval_every and epoch % opts.eval_every == 0))
        if evaluate_now:
            scores = network.evaluate(Xt, Yt, k=opts.eval_k)
            logs.update({f"test_{k}": v for k, v in scores.items()})
            parts += [f"{k} {v:.4f}" for k, v in scores.items()]
        if verbose:
            print("  ".join(parts), flush=True)

    callbacks = [report]
    if stopper is not None:
        callbacks.append(stopper)
    if opts.checkpoint:
        callbacks.append(checkpoint)
    validation = dict(validation_data=others.get("validation"),
                      validation_split=opts.validation_split or 0.0)
    net.fit(X, Y, epochs=opts.epochs, callbacks=callbacks, verbose=1 if progress else 0,
            eval_k=opts.eval_k, **_set(batch_size=opts.batch_size, shuffle=opts.shuffle),
            **validation)
    if stopper is not None and verbose:
        how = (f"stopped after epoch {stopper.stopped_epoch}" if stopper.stopped_epoch
               else f"ran all {opts.epochs} epochs")
        # named as the epoch lines name what --monitor watches (val_loss, val_p@1, ...)
        print(f"early stopping: {how}; kept the model of epoch {stopper.best_epoch} "
              f"({stopper.monitored_key} {stopper.best:.4f})")
    if stopper is not None and Xt is not None:
        scores = net.evaluate(Xt, Yt, k=opts.eval_k)
        if verbose:
            print(f"test, model of epoch {stopper.best_epoch}:  "
                  + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    if opts.checkpoint and verbose and checkpoint.saved:
        print(f"checkpoints: {len(checkpoint.saved)} written, the last to "
              f"{checkpoint.saved[-1]}")
    if verbose:
        total = float(sum(net.step_times_)) if len(net.step_times_) else 0.0
        # not net.step_: early stopping may have put it back to the best epoch's
        steps_run = len(net.step_times_)
        print(f"trained {steps_run} steps in {_seconds(state['time'])} "
              f"({steps_run / max(state['time'], 1e-9):.1f} steps/s)")
        if net.timings_ and total > 0:
            phases = ", ".join(f"{k} {_seconds(v)}" for k, v in net.timings_.items())
            print(f"time by phase: {phases}")
    if opts.save:
        try:
            net.save(opts.save)
        except OSError as exc:
            raise CommandError(f"--save {opts.save}: the model could not be written "
                               f"({exc.strerror or exc}); a previous file there is unchanged"
                               ) from None
        if verbose:
            print(f"saved the model to {opts.save}")
    return EXIT_OK


def _seconds(value):
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _optimizer_or_usage(opts):
    """The optimizer config of the flags (None: the library's default), checked now."""
    from .optim import optimizer_from_config
    config = _optimizer_config(opts)
    if config is not None:
        try:
            optimizer_from_config(config)
        except (TypeError, ValueError) as exc:
            raise UsageError(_one_line(exc)) from None
    return config


def _check_threads(threads):
    from ._openmp import resolve_threads
    try:
        resolve_threads(threads, "--threads")
    except (TypeError, ValueError) as exc:
        raise UsageError(_one_line(exc)) from None


def _check_writable(path, option, need_bytes=0, regular_only=False):
    from .atomic import check_writable
    try:
        check_writable(path, option, need_bytes=need_bytes, regular_only=regular_only)
    except OSError as exc:
        raise CommandError(str(exc)) from None


def _check_not_an_input(path, option, inputs):
    """Refuse to write over a file the command reads."""
    for what, other in inputs:
        if not other or not os.path.exists(path) or not os.path.exists(other):
            continue
        try:
            same = os.path.samefile(path, other)
        except OSError:
            continue
        if same:
            raise UsageError(f"{option} {path} is {what}: writing there would destroy it; "
                             f"give another file name")


# --------------------------------------------------------------------------- evaluate

def _load_model(path, threads=None):
    import pyslide as ps

    if not os.path.exists(path):
        raise CommandError(f"model file {path!r} does not exist")
    return ps.load(path, threads=threads)


def _cmd_evaluate(args):
    from . import metrics

    _check_threads(args.threads)
    ks = args.k
    net = _load_model(args.model, args.threads)
    X, Y = _read_labelled(args.test, args.format, "test", net.input_dim, net.n_outputs,
                          args.strict_rows)
    _warn_if_made_for_another_model(args.test, args.format, net, with_labels=True)
    ids, _ = _topk(net, X, max(ks), args.sampled)
    prop = None
    if args.train:
        _, Y_train = _read_labelled(args.train, args.format, "training", net.input_dim,
                                    net.n_outputs, args.strict_rows)
        prop = metrics.propensities(Y_train, A=args.propensity_a, B=args.propensity_b)
    results = metrics.evaluate_topk(ids, Y, ks=ks, propensities=prop)
    results = {key: float(value) for key, value in results.items()}
    if args.json:
        print(json.dumps(results, indent=1, sort_keys=False))
    else:
        print(f"{args.test}: {X.shape[0]} rows")
        print(_metrics_table(results, ks))
    return EXIT_OK


def _metrics_table(results, ks):
    names = [("p", "P@k"), ("ndcg", "nDCG@k"), ("psp", "PSP@k"),
             ("psp_norm", "PSP@k / best PSP@k")]
    rows = [(label, [results.get(f"{key}@{k}") for k in ks]) for key, label in names
            if any(f"{key}@{k}" in results for k in ks)]
    width = max(len(label) for label, _ in rows)
    header = " " * width + "".join(f"{'k=' + str(k):>9}" for k in ks)
    lines = [header]
    for label, values in rows:
        cells = "".join(f"{v:9.4f}" if v is not None else f"{'-':>9}" for v in values)
        lines.append(f"{label:<{width}}{cells}")
    return "\n".join(lines)


def _topk(net, X, k, sampled):
    if sampled:
        _check_sampled(net)
    try:
        return net.predict_topk(X, k=k, sampled=sampled)
    except ValueError as exc:
        if sampled:
            raise UsageError(f"--sampled: {_one_line(exc)}") from None
        raise


def _check_sampled(net):
    """--sampled needs LSH tables: say which choice at training time left none."""
    import pyslide as ps

    layer = net.layers[-1]
    if not isinstance(layer, ps.Sampled):
        raise UsageError("--sampled: this model's output layer is dense (trained with --output "
                         "dense), so it has no LSH tables to sample from; drop --sampled "
                         "(exact scoring is the default)")
    if layer.dense_equivalent:
        raise UsageError(f"--sampled: this model's output layer computes all {layer.units} "
                         f"labels at every step (its active count is at least its width), so "
                         f"it has no LSH tables; drop --sampled (exact scoring costs the same "
                         f"here)")
    if layer.hash is None:
        raise UsageError("--sampled: this model was trained with uniform sampling (--hash "
                         "none), so it has no LSH tables; drop --sampled")


# --------------------------------------------------------------------------- predict

def _cmd_predict(args):
    _check_threads(args.threads)
    if args.output != "-":
        _check_writable(args.output, "-o")
        _check_not_an_input(args.output, "-o", [("the model file", args.model),
                                                ("the input file", args.input)])
    net = _load_model(args.model, args.threads)
    # labels in the input are ignored, so their width is not checked against the model
    X, _ = _read_labelled(args.input, args.format, "input", net.input_dim, None,
                          args.strict_rows)
    _warn_if_made_for_another_model(args.input, args.format, net, with_labels=False)
    ids, scores = _topk(net, X, args.k, args.sampled)
    if args.scores == "prob":
        scores = _probabilities(net, X, ids, scores)
    if args.output == "-":
        _write_predictions(sys.stdout, ids, scores)
    else:
        from .atomic import atomic_write
        with atomic_write(args.output, "w") as out:
            _write_predictions(out, ids, scores)
    if args.output != "-" and not args.quiet:
        print(f"wrote top-{args.k} labels of {X.shape[0]} rows to {args.output}")
    return EXIT_OK


def _write_predictions(out, ids, scores):
    for row_ids, row_scores in zip(ids, scores):
        keep = row_ids >= 0
        out.write(" ".join(f"{i}:{s:.6g}" for i, s in
                           zip(row_ids[keep].tolist(), row_scores[keep].tolist())))
        out.write("\n")


def _probabilities(net, X, ids, logits):
    """Logits -> probabilities: sigmoid (bce) or softmax over every label."""
    import numpy as np

    probs = np.zeros_like(logits)
    valid = ids >= 0
    if net.loss == "bce":
        probs[valid] = 1.0 / (1.0 + np.exp(-logits[valid]))
        return probs
    # the softmax denominator needs every label's logit: dense, in row chunks
    chunk = max(1, (1 << 24) // max(1, net.n_outputs))
    for start in range(0, X.shape[0], chunk):
        rows = slice(start, start + chunk)
        p = net.predict_proba(X[rows])
        safe = np.where(valid[rows], ids[rows], 0)
        probs[rows] = np.where(valid[rows], np.take_along_axis(p, safe, axis=1), 0.0)
    return probs


# --------------------------------------------------------------------------- demo

# 20,000 rows, 4 epochs: about a minute and a half on 2 idle cores with the PyTorch
# baseline; the defaults learn from the first epoch at this size (docs/cli.md)
_DEMO_FULL = dict(samples=20_000, test=1_000, epochs=4)
# --quick keeps Delicious' densities (features and labels per row) but narrows
# the matrices, so a check of the installation takes seconds and little memory.
_DEMO_QUICK = dict(samples=400, test=100, epochs=2, n_features=20_000, n_labels=20_000)


def _cmd_demo(args):
    import pyslide as ps

    _check_threads(args.threads)
    sizes = dict(_DEMO_QUICK if args.quick else _DEMO_FULL)
    for key in ("samples", "test", "epochs"):
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)
    threads = ps.resolve_threads(args.threads, "--threads")
    ks = (1, 3, 5)
    shape = ps.data.PRESETS["delicious"]
    n_features = sizes.get("n_features", shape["n_features"])
    n_labels = sizes.get("n_labels", shape["n_labels"])
    print(f"pyslide {ps.__version__} demo: a Delicious-200K-shaped synthetic problem "
          f"({n_features:,} features, {n_labels:,} labels"
          + (", narrowed by --quick" if args.quick else "") + "), "
          f"{sizes['samples']} training and {sizes['test']} test rows, {sizes['epochs']} "
          f"epochs, {threads} threads"
          + (", OpenMP" if ps.openmp_enabled() else ", no OpenMP (serial kernels)"))
    t0 = time.perf_counter()
    X, Y, Xt, Yt = ps.data.make_xc("delicious", n_samples=sizes["samples"],
                                   n_test=sizes["test"], n_features=n_features,
                                   n_labels=n_labels, seed=args.seed)
    print(f"generated the data in {time.perf_counter() - t0:.1f} s: "
          f"{X.nnz / X.shape[0]:.0f} features and {Y.nnz / Y.shape[0]:.1f} labels per row")

    net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1])],
                     loss="softmax", optimizer=ps.Adam(lr=1e-3), threads=threads,
                     seed=args.seed)
    print(f"\npyslide: {net!r}")
    rows = []

    def report(network, epoch, logs):
        scores = network.evaluate(Xt, Yt, k=ks)
        rows.append((epoch, logs["time"], scores))
        print(f"  epoch {epoch}  loss {logs['loss']:.4f}  train {logs['time']:6.1f} s  "
              + "  ".join(f"P@{k} {scores[f'p@{k}']:.4f}" for k in ks), flush=True)

    net.fit(X, Y, epochs=sizes["epochs"], batch_size=128, callbacks=[report], verbose=0)
    summary = [("pyslide (LSH-sampled softmax)", rows[-1][1], net.step_,
                [scores for _, _, scores in rows])]

    if args.no_torch:
        print("\nPyTorch baseline skipped (--no-torch)")
    else:
        try:
            import torch  # noqa: F401
        except ImportError:
            print(f"\nPyTorch not installed: skipping the baseline (to see pyslide beside a "
                  f"PyTorch sampled softmax: {TORCH_INSTALL_HINT})")
        else:
            # the same start as pyslide's first layer (Network._init_std's rule)
            mean_sq_norm = float(X.multiply(X).sum(1).mean())
            summary.append(_demo_torch(X, Y, Xt, Yt, sizes["epochs"], threads, args.seed, ks,
                                       init_std=net._init_std(0, mean_sq_norm)))

    print("\nsummary (training time excludes data generation and evaluation; "
          "P@k after the last epoch, and the best epoch's P@1)")
    header = (f"  {'method':<38}{'train s':>9}{'steps/s':>9}"
              + "".join(f"{'P@' + str(k):>8}" for k in ks) + f"{'best P@1':>16}")
    print(header)
    for name, seconds, steps, by_epoch, *_ in summary:
        last = by_epoch[-1]
        best = max(range(len(by_epoch)), key=lambda e: by_epoch[e]["p@1"])
        print(f"  {name:<38}{seconds:9.1f}{steps / max(seconds, 1e-9):9.1f}"
              + "".join(f"{last[f'p@{k}']:8.4f}" for k in ks)
              + f"{by_epoch[best]['p@1']:8.4f} (ep {best + 1})")
    if len(summary) == 2:
        _print_equal_time(rows, summary[1])
        print(f"  pyslide steps/s / PyTorch steps/s: "
              f"{(summary[0][2] / summary[0][1]) / (summary[1][2] / summary[1][1]):.2f}x "
              f"(same data, architecture, batch, threads)")
    return EXIT_OK


def _print_equal_time(rows, torch_summary):
    """For each PyTorch epoch, pyslide's P@1 after no more training time."""
    print("  at equal training time (P@1 of the last epoch each had finished):")
    torch_scores, torch_ends = torch_summary[3], torch_summary[4]
    for epoch, seconds in enumerate(torch_ends, start=1):
        done = [r for r in rows if r[1] <= seconds]
        ours = (f"pyslide {done[-1][2]['p@1']:.4f} (epoch {done[-1][0]})" if done
                else "pyslide had not finished an epoch")
        print(f"    {seconds:6.1f} s: PyTorch {torch_scores[epoch - 1]['p@1']:.4f} "
              f"(epoch {epoch}), {ours}")


def _demo_torch(X, Y, Xt, Yt, epochs, threads, seed, ks, init_std, n_sample=8192):
    """The same architecture in PyTorch (``pyslide.torch_baseline.TorchSampled``):
    sparse input -> 128 ReLU -> sampled softmax over the batch's labels plus
    uniform negatives; exact evaluation after every epoch. ``init_std``: the
    first layer's start, pyslide's (the output starts near zero in both)."""
    import torch

    from .metrics import evaluate_topk
    from .torch_baseline import TorchSampled

    torch.set_num_threads(threads)
    model = TorchSampled(X.shape[1], Y.shape[1], lr=1e-3, seed=seed, init_std=init_std,
                         n_sample=n_sample)
    print(f"\nPyTorch {torch.__version__}: EmbeddingBag(sum) -> ReLU(128) -> sampled softmax "
          f"over the batch's labels + uniform negatives ({min(n_sample, Y.shape[1])} rows), "
          f"SparseAdam")
    totals = {"time": 0.0, "steps": 0, "scores": [], "ends": []}

    def report(_, epoch, logs):
        totals["time"] += logs["seconds"]
        totals["ends"].append(totals["time"])
        totals["steps"] += logs["steps"]
        scores = evaluate_topk(model.predict_topk(Xt, max(ks)), Yt, ks=ks)
        totals["scores"].append(scores)
        print(f"  epoch {epoch}  loss {logs['loss']:.4f}  train {totals['time']:6.1f} s  "
              + "  ".join(f"P@{k} {scores[f'p@{k}']:.4f}" for k in ks), flush=True)

    model.fit(X, Y, epochs, 128, on_epoch_end=report)
    return ("PyTorch (uniform sampled softmax)", totals["time"], totals["steps"], totals["scores"],
            totals["ends"])


# --------------------------------------------------------------------------- bench

def _find_benchmarks(folder):
    """``bench_train.py`` in ``folder``, else in the source checkout pyslide was imported
    from (never relative to the current folder, which may hold anything)."""
    if folder:
        script = os.path.join(folder, "bench_train.py")
        if not os.path.isfile(script):
            raise CommandError(f"--benchmarks-dir {folder}: no bench_train.py there")
        return script
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(checkout, "benchmarks", "bench_train.py")
    if os.path.isfile(script) and os.path.isfile(os.path.join(checkout, "pyproject.toml")):
        return script
    return None


def _check_bench_extra(script, extra):
    """The suite compares against PyTorch: without it, say what to install, once."""
    import importlib.util

    methods = None
    for i, arg in enumerate(extra):
        if arg == "--methods" and i + 1 < len(extra):
            methods = extra[i + 1]
        elif arg.startswith("--methods="):
            methods = arg.split("=", 1)[1]
    try:
        with open(script, encoding="utf-8", errors="replace") as f:
            uses_torch = "torch" in f.read()
    except OSError:
        uses_torch = False
    wants_torch = uses_torch and (methods is None or "torch" in methods)
    if wants_torch and importlib.util.find_spec("torch") is None:
        raise CommandError(f"the benchmark suite compares against PyTorch, which is not "
                           f"installed: {TORCH_INSTALL_HINT} (or run pyslide bench --builtin, "
                           f"or pass -- --methods pyslide:lsh-batch)")


def _cmd_bench(args):
    _check_threads(args.threads)
    script = _find_benchmarks(args.benchmarks_dir)
    if script is not None and not args.builtin:
        if args.out:
            out = args.out
        elif args.quick:   # a smoke run must not overwrite the recorded results
            import tempfile
            out = os.path.join(tempfile.gettempdir(), "pyslide-bench-quick.json")
        else:
            out = os.path.join(os.path.dirname(script), "results", "bench_train.json")
        _check_bench_extra(script, args.extra)
        command = [sys.executable, script, "--out", out]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        if args.quick:
            command += ["--preset", "small", "--epochs", "1", "--max-steps", "20"]
        command += args.extra
        print("running: " + " ".join(command), flush=True)
        result = subprocess.run(command)
        if result.returncode != 0:
            raise CommandError(f"{script} failed with exit status {result.returncode}")
        print(f"tables written to {out} and {os.path.splitext(out)[0]}.md")
        return EXIT_OK
    if args.extra:
        raise UsageError("extra benchmark arguments need benchmarks/bench_train.py "
                         "(a source checkout of pyslide, or --benchmarks-dir)")
    if not args.builtin:
        print("benchmarks/bench_train.py not found (pyslide runs from an installed package, "
              "not a source checkout; or give --benchmarks-dir): running the built-in quick "
              "speed benchmark instead")
    return _builtin_bench(args)


def _builtin_bench(args):
    import numpy as np
    import pyslide as ps

    threads = ps.resolve_threads(args.threads, "--threads")
    if args.quick:   # narrowed like 'pyslide demo --quick': a smoke run of seconds
        steps = 8
        X, Y = ps.data.make_xc("delicious", n_samples=128 * steps, seed=0,
                               n_features=_DEMO_QUICK["n_features"],
                               n_labels=_DEMO_QUICK["n_labels"])
    else:
        steps = 60
        X, Y = ps.data.make_xc("delicious", n_samples=128 * steps, seed=0)
    configs = [("lsh batch", dict(share="batch")),
               ("uniform batch", dict(share="batch", hash=None)),
               ("lsh sample", dict(share="sample"))]
    lines = [f"pyslide {ps.__version__}, {threads} threads, Delicious-shaped synthetic "
             f"({X.shape[1]} features, {Y.shape[1]} labels), batch 128, Dense(128) -> Sampled",
             "", "| output layer | median step ms | steps/s |", "|---|---:|---:|"]
    for name, kw in configs:
        net = ps.Network(X.shape[1], [ps.Dense(128), ps.Sampled(Y.shape[1], **kw)],
                         threads=threads, seed=0)
        net.fit(X, Y, epochs=1, batch_size=128, verbose=0)
        median = float(np.median(net.step_times_[2:] if len(net.step_times_) > 4
                                 else net.step_times_))
        lines.append(f"| {name} | {1e3 * median:.1f} | {1.0 / median:.1f} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        from .atomic import atomic_write
        _check_writable(args.out, "--out")
        with atomic_write(args.out, "w") as f:
            f.write(table + "\n")
        print(f"table written to {args.out}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser and main

def build_parser():
    """The ``pyslide`` argument parser (one sub-parser per command)."""
    from . import __version__

    parser = _Parser(prog="pyslide", description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pyslide {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name, help_text, epilog, handler):
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        p.add_argument("--debug", action="store_true",
                       help="show the full traceback of an error")
        return p

    p = command("train", "train a network on an XC-format (or libsvm) file",
                "example:\n  pyslide train train.txt --test test.txt --hidden 128 "
                "--epochs 5 --save model.npz\n  pyslide train --config cfg.toml --lr 5e-4",
                _cmd_train)
    _add_train_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")

    p = command("evaluate", "P@k, nDCG@k (and PSP@k) of a saved model on a labelled file",
                "example:\n  pyslide evaluate model.npz test.txt --train train.txt -k 1,3,5",
                _cmd_evaluate)
    p.add_argument("model", metavar="MODEL", help="model file written by 'pyslide train --save'")
    p.add_argument("test", metavar="TEST", help="labelled file to score")
    p.add_argument("--train", metavar="TRAIN",
                   help="training file: its label frequencies give the propensities of PSP@k")
    p.add_argument("-k", type=_ks, default=(1, 3, 5), metavar="K,...",
                   help="k values (default 1,3,5)")
    p.add_argument("--format", choices=("xc", "libsvm"), default="xc",
                   help="file format (default xc)")
    p.add_argument("--no-strict-rows", dest="strict_rows", action="store_false",
                   help=_NO_STRICT_ROWS_HELP)
    p.add_argument("--propensity-a", type=_positive_float, default=0.55, metavar="A",
                   help="propensity model parameter A > 0 (default 0.55; the XC repository "
                        "uses 0.5 for Amazon, 0.6 for Wikipedia datasets)")
    p.add_argument("--propensity-b", type=_non_negative_float, default=1.5, metavar="B",
                   help="propensity model parameter B >= 0 (default 1.5; 0.4 for Amazon, "
                        "2.6 for Wikipedia datasets)")
    p.add_argument("--sampled", action="store_true",
                   help="score only the labels the LSH tables return (faster, approximate)")
    p.add_argument("--threads", type=_threads, default=None, metavar="N",
                   help="threads (default: the cores available)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")

    p = command("predict", "top-k labels with scores for every row of a file",
                "output: one line per input row, best label first:\n"
                "  label:score label:score ...\n"
                "scores are the output layer's logits (--scores prob for probabilities).\n"
                "example:\n  pyslide predict model.npz test.txt -k 5 -o predictions.txt",
                _cmd_predict)
    p.add_argument("model", metavar="MODEL", help="model file written by 'pyslide train --save'")
    p.add_argument("input", metavar="INPUT",
                   help="rows to predict, in the model's file format (labels, if any, are "
                        "ignored)")
    p.add_argument("-k", type=_int_at_least(1), default=5, help="labels per row (default 5)")
    p.add_argument("-o", "--output", default="-", metavar="OUT",
                   help="output file (default '-': standard output)")
    p.add_argument("--scores", choices=("logit", "prob"), default="logit",
                   help="logit (default) or prob: sigmoid (bce) or softmax over every label")
    p.add_argument("--format", choices=("xc", "libsvm"), default="xc",
                   help="input file format (default xc)")
    p.add_argument("--no-strict-rows", dest="strict_rows", action="store_false",
                   help=_NO_STRICT_ROWS_HELP)
    p.add_argument("--sampled", action="store_true",
                   help="score only the labels the LSH tables return (faster, approximate)")
    p.add_argument("--threads", type=_threads, default=None, metavar="N",
                   help="threads (default: the cores available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")

    p = command("demo", "generate a Delicious-200K-shaped problem, train, print P@k and speed",
                "Trains Dense(128) -> Sampled(labels) with the engine defaults and, when\n"
                "PyTorch is installed, the same architecture with a PyTorch sampled softmax.\n"
                f"Default size: {_DEMO_FULL['samples']} training rows, {_DEMO_FULL['epochs']} "
                "epochs (about a minute and a half on two idle cores, with PyTorch).\n"
                "example:\n  pyslide demo\n  pyslide demo --quick", _cmd_demo)
    p.add_argument("--samples", type=_int_at_least(1), default=None, metavar="N",
                   help=f"training rows (default {_DEMO_FULL['samples']})")
    p.add_argument("--test", type=_int_at_least(1), default=None, metavar="N",
                   help=f"test rows (default {_DEMO_FULL['test']})")
    p.add_argument("--epochs", type=_int_at_least(1), default=None, metavar="N",
                   help=f"epochs (default {_DEMO_FULL['epochs']})")
    p.add_argument("--threads", type=_threads, default=None, metavar="N",
                   help="threads for pyslide and PyTorch (default: the cores available)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, metavar="N",
                   help="seed of the data and the models (default 0)")
    p.add_argument("--quick", action="store_true",
                   help=f"a tiny run ({_DEMO_QUICK['samples']} rows, {_DEMO_QUICK['epochs']} "
                        f"epoch) to check the installation")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch baseline")

    p = command("bench", "run the benchmark suite and write its tables",
                "Runs benchmarks/bench_train.py of the source checkout pyslide runs from\n"
                "(or of --benchmarks-dir); arguments after '--' go to it.\n"
                "Without it, a built-in quick speed benchmark (steps/s) runs instead.\n"
                "example:\n  pyslide bench --quick\n"
                "  pyslide bench -- --preset delicious --epochs 8 --methods pyslide:lsh-batch",
                _cmd_bench)
    p.add_argument("--benchmarks-dir", metavar="DIR",
                   help="folder holding bench_train.py (default: benchmarks/ of the source "
                        "checkout pyslide runs from)")
    p.add_argument("--out", metavar="FILE",
                   help="results file (default benchmarks/results/bench_train.json, or a "
                        "temporary file with --quick; the built-in benchmark writes a "
                        "Markdown table)")
    p.add_argument("--threads", type=_threads, default=None, metavar="N",
                   help="threads (default: the suite's own, or the cores available)")
    p.add_argument("--quick", action="store_true", help="a short smoke run")
    p.add_argument("--builtin", action="store_true",
                   help="run the built-in quick speed benchmark even in a source checkout")
    p.add_argument("extra", nargs=argparse.REMAINDER, metavar="-- ARGS",
                   help="passed on to bench_train.py")
    return parser


def _one_line(exc):
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, MemoryError):
        text = ("not enough memory" + (f": {text}" if text else "")
                + " (use a smaller network, fewer rows, or --optimizer sgd)")
    elif isinstance(exc, KeyError):
        text = f"missing entry {text}"
    return " ".join(text.split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # one line, like errors: the user needs the advice, not our source location
    print(f"pyslide: warning: {message}", file=sys.stderr if file is None else file, flush=True)


def _error(message):
    print(f"pyslide: error: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    with warnings.catch_warnings():
        if "--debug" not in argv:
            warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv):
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        if args.command == "bench" and args.extra and args.extra[0] == "--":
            args.extra = args.extra[1:]
        return args.handler(args)
    except SystemExit as exc:   # --help, --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except UsageError as exc:
        if debug:
            traceback.print_exc()
        _error(_one_line(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\npyslide: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (pyslide predict ... | head): not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except (CommandError, ValueError, TypeError, OSError, MemoryError, FloatingPointError,
            KeyError) as exc:
        if debug:
            traceback.print_exc()
        _error(_one_line(exc))
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - a bug: say so, without a wall of text
        if debug:
            traceback.print_exc()
        _error(f"internal error: {type(exc).__name__}: {_one_line(exc)} "
               f"(rerun with --debug for the traceback, and please report it)")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
