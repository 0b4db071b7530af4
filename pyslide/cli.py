"""The ``pyslide`` command line (train, evaluate, predict, demo, bench): parses, calls the library, prints; may import any module of ours, and none imports it.

Run ``pyslide --help`` or ``pyslide COMMAND --help``; ``docs/cli.md`` has an
example of every command. Exit status: 0 success, 1 failure (a missing or
malformed file, not enough memory, a diverging run), 2 usage error (a bad
option or option value, also inside a ``--config`` file), 130 interrupted.
Errors are one line on stderr, ``pyslide: error: ...``; ``--debug`` adds the
traceback.

The library checks every value and names the parameter; this module maps each
flag to its parameter once (``_TRAIN_OPTIONS``), reads the defaults it prints
from the library's signatures, and says which flag a refused value came from.
"""
import argparse
import contextlib
import json
import os
import re
import sys
import traceback
import warnings
from collections import namedtuple

from . import demo
from . import layers as _layers
from . import metrics as _metrics
from . import network as _network
from ._docstrings import parameter_help, signature_default
from ._validate import integer, integers, real
from .callbacks import EarlyStopping, EpochReport, ModelCheckpoint
from .config import (SETTINGS, check_setting, layers_from_list, network_from_settings,
                     optimizer_from_settings, read_config)
from .datafiles import RowCountError, read_labelled, read_labelled_files
from .hashing import FAMILIES, WTA
from .layers import ACTIVATIONS, Dense, Sampled
from .optim import SGD, Adam, CosineDecay

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

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


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as exceptions so ``main`` prints them on one line."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- values
# Text (or a config file's value) -> the Python value a parameter takes. A
# range is checked by the library's own rule (pyslide._validate).

def _value(parse, check, expected):
    """An argparse type: ``check(parse(text))``, or argparse's one-line message."""
    def convert(text):
        try:
            return check(parse(text))
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    return convert


def _to_int(value):
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise TypeError(value)
    return int(value) if isinstance(value, (int, float)) else int(str(value).strip())


def _to_float(value):
    if isinstance(value, bool):
        raise TypeError(value)
    return float(value)


def _to_list(value):
    """A flag's "a,b,c" or a config file's number or list, as a list of items."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    return [t for t in str(value).split(",") if t.strip()]


def _refuse(value=None):
    raise ValueError(value)


def _int_at_least(minimum):
    return _value(_to_int, lambda v: integer(v, "value", minimum), f"an integer >= {minimum}")


_int = _value(_to_int, lambda v: v, "an integer")
_number = _value(_to_float, lambda v: v, "a number")
_positive = _value(_to_float, lambda v: real(v, "value", 0, min_open=True), "a positive number")
_non_negative = _value(_to_float, lambda v: real(v, "value", 0), "a number >= 0")
_fraction_below_one = _value(_to_float, lambda v: real(v, "value", 0, 1, max_open=True),
                             "a fraction in [0, 1)")
_threads = _value(_to_int, lambda v: v if v >= 1 or v == -1 else _refuse(v),
                  "a thread count >= 1 (or -1 for every core)")
_ks = _value(lambda t: [_to_int(v) for v in _to_list(t)],
             lambda vs: tuple(sorted(set(integers(vs, "eval_k")))) if vs else _refuse(),
             "k values >= 1 like 1,3,5")
_hidden = _value(lambda t: [] if str(t).strip().lower() in ("", "none", "0")
                 else [_to_int(v) for v in _to_list(t)],
                 lambda vs: [Dense(v).units for v in vs],
                 "hidden layer widths like 128 or 256,128 (or 'none')")


def _lr_scale(text):
    """``auto``, a positive number, or comma-separated ones (one per epoch)."""
    if text == "auto":
        return text
    each = _value(_to_float, lambda v: real(v, "value", 0, min_open=True),
                  "'auto', a positive number or comma-separated ones (one per epoch)")
    values = [each(part) for part in (_to_list(text) or [text])]
    return values[0] if len(values) == 1 else values


def _active(text):
    """A fraction of the layer in (0, 1] (``0.01``) or a count (``4096``); Sampled checks it."""
    try:
        value = text if isinstance(text, (int, float)) else json.loads(str(text).strip())
        Sampled(1, active=value)
        return value
    except (TypeError, ValueError) as exc:
        count = isinstance(text, int) or str(text).strip().lstrip("-").isdigit()
        expected = ("an active count >= 1" if count else
                    "a fraction in (0, 1] (like 0.01) or a count (like 4096)")
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from exc


def _bool(value):
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return s in ("1", "true", "yes", "on")
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _text(value):
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected a string, got {value!r}")
    return value


# --------------------------------------------------------------------------- train options

# The one table of ``pyslide train``'s flags: each maps to one library
# parameter, and is at once a flag and a config file key. A network setting's
# parameter is pyslide.config.SETTINGS' (target None here); the others name it
# ("Owner.param": "fit." fit's, "EarlyStopping." ..., "cli.name" the command's
# own). A network or fit setting defaults to None ("unset"): the library decides,
# so ``pyslide train`` builds the network ``pyslide.Network`` builds by default
# (tests/test_cli.py checks it). Only the command's own choices (--hidden
# 128, --output sampled, --epochs 5, ...) have a default here.
# A flag without help text is helped by the library's docstring of its parameter
# (pyslide._docstrings); a help text here says what only the command line means,
# "{Owner.param}" in it is that parameter's default read from the signature and
# "{default}" the command's own.
_Option = namedtuple("_Option", "dest flags parse target metavar help default choices const",
                     defaults=(None,) * 5)
_NO_STRICT_ROWS_HELP = ("load the rows present when an XC header's row count differs from "
                        "the file's data lines (a truncated or partial file); by default "
                        "that is an error")
_O = _Option
_TRAIN_OPTIONS = {
    "data": [
        _O("test", ("--test",), _text, "cli.test", "TEST",
           "labelled file evaluated every --eval-every epochs"),
        _O("validation", ("--validation",), _text, "fit.validation_data", "FILE",
           "labelled file evaluated after every epoch, for --early-stopping and --checkpoint "
           "(or use --validation-split)"),
        _O("validation_split", ("--validation-split",), _fraction_below_one,
           "fit.validation_split", "FRACTION", "hold out this fraction of the training rows "
           "(seeded by --seed) as validation data, evaluated after every epoch"),
        _O("format", ("--format",), _text, "cli.format", None, "file format: 'xc' (XC-repository "
           "text with a header line; default) or 'libsvm' (multi-label libsvm, no header)",
           "xc", ("xc", "libsvm")),
        _O("strict_rows", ("--no-strict-rows",), _bool, "cli.strict_rows", None,
           _NO_STRICT_ROWS_HELP, const=False),
    ],
    "network": [
        _O("hidden", ("--hidden",), _hidden, None, "UNITS",
           "hidden Dense layer widths: '--hidden 256,128' or '--hidden 256 --hidden 128'; "
           "'none' for no hidden layer (default {default})", [128]),
        _O("activation", ("--activation",), _text, None, choices=ACTIVATIONS),
        _O("output", ("--output",), _text, None, None, "output layer: 'sampled' "
           "(LSH-sampled, default) or 'dense' (every label computed)", "sampled",
           ("sampled", "dense")),
        _O("init_std", ("--init-std",), _number, None, "STD"),
        _O("dropout", ("--dropout",), _number, None, "RATE"),
    ],
    "output layer and LSH": [
        _O("active", ("--active",), _active, None, "N|FRACTION",
           "active output neurons per batch (--share batch) or per sample (--share sample): "
           "a count like 4096 or a fraction like 0.02 (default: {Sampled.BATCH_ACTIVE} per "
           "batch, max({Sampled.SAMPLE_ACTIVE[0]}, labels/{Sampled.SAMPLE_ACTIVE[1]}) per "
           "sample)"),
        _O("min_active", ("--min-active",), _int, None, "N"),
        _O("max_active", ("--max-active",), _int, None, "N"),
        _O("negatives", ("--negatives",), _int, None, "N"),
        _O("share", ("--share",), _text, None, choices=Sampled.SHARES),
        _O("hash", ("--hash",), _text, None, None,
           "hash family of the output layer: auto (SimHash, or DWTA for inputs wider than "
           "{Sampled.DWTA_ABOVE}), simhash, dwta, wta, doph, or none (uniform sampling)", None,
           ("auto", *FAMILIES, "none")),
        _O("K", ("-K",), _int_at_least(1), None, "K",
           "bits (SimHash) or codes (WTA, DWTA, DOPH) per table (default: the family's, "
           "or from the layer's shape with --hash auto)"),
        _O("L", ("-L",), _int_at_least(1), None, "L", "number of hash tables (default: "
           "{Sampled.TABLES[batch]} with --share batch, {Sampled.TABLES[sample]} with "
           "--share sample)"),
        _O("bin_size", ("--bin-size",), _int_at_least(2), None, "N",
           "WTA/DWTA: dims per bin, a power of two (default {WTA.bin_size})"),
        _O("bits", ("--bits",), _int_at_least(1), None, "N",
           "DOPH: bits kept per code (default min(8, 16 // K))"),
        _O("density", ("--density",), _positive, None, "FRACTION",
           "SimHash: sparse +-1 projections over this fraction of dims (default: dense "
           "Gaussian)"),
        _O("bucket_size", ("--bucket-size",), _int, None, "N"),
        _O("policy", ("--policy",), _text, None, choices=Sampled.POLICIES),
        _O("query", ("--query",), _text, None, choices=Sampled.QUERIES),
        _O("threshold", ("--threshold",), _int, None, "TABLES"),
        _O("rebuild_every", ("--rebuild-every",), _int, None, "STEPS"),
        _O("rebuild_growth", ("--rebuild-growth",), _number, None, "FACTOR"),
        _O("correction", ("--no-correction",), _bool, None, None,
           "do not correct sampled logits for how often their labels are sampled (the "
           "correction keeps sampled training tracking the full softmax; see docs/guide.md)",
           const=False),
        _O("bias_init", ("--bias-init",), _text, None, choices=Sampled.BIAS_INITS),
        _O("lr_scale", ("--lr-scale",), _lr_scale, None,
           "auto|FACTOR[,FACTOR...]",
           "multiply the optimizer's step on the output layer's rows by FACTOR, or by one "
           "FACTOR per epoch (the last holds after); 'auto' (default), for a sampled output, "
           "whose rows are updated only on the steps that sample them, is "
           "{network.AUTO_LR_START} until its rows have been sampled {network.AUTO_LR_VISITS} "
           "times on average ({network.AUTO_LR_VISITS_COASTING} when they coast, "
           "--idle-rows) or the rows passed over {network.AUTO_LR_PASSES} times, then "
           "falls with the further of the two to {network.AUTO_LR_FLOOR}; 1 when it computes "
           "every label"),
    ],
    "loss and optimizer": [
        _O("loss", ("--loss",), _text, None, choices=_network.LOSSES),
        _O("optimizer", ("--optimizer",), _text, None,
           choices=(Adam.kind, SGD.kind)),
        _O("lr", ("--lr",), _number, None, "LR",
           "learning rate (default {Adam.lr} for adam, {SGD.lr} for sgd)"),
        _O("beta1", ("--beta1",), _number, None, "B"),
        _O("beta2", ("--beta2",), _number, None, "B"),
        _O("eps", ("--eps",), _number, None, "EPS"),
        _O("dense_adam", ("--dense-adam",), _bool, None, None,
           "update every row every step (textbook Adam; slow, for comparisons)", const=True),
        _O("idle_rows", ("--idle-rows",), _text, None, choices=Adam.IDLE_ROWS),
        _O("weight_decay", ("--weight-decay",), _number, None, "WD"),
        _O("warmup", ("--warmup",), _non_negative, None, "EPOCHS"),
        _O("cosine", ("--cosine",), _bool, None, None,
           "decay the learning rate to 0 along half a cosine over --epochs", const=True),
    ],
    "training": [
        _O("epochs", ("--epochs",), _int_at_least(1), None, "N",
           "passes over the data (default {default})", 5),
        _O("batch_size", ("--batch-size",), _int_at_least(1), "fit.batch_size", "N"),
        _O("threads", ("--threads",), _threads, None, "N"),
        _O("seed", ("--seed",), _int_at_least(0), None, "N"),
        _O("shuffle", ("--no-shuffle",), _bool, "fit.shuffle", None,
           "keep the file's row order instead of shuffling every epoch", const=False),
        _O("eval_every", ("--eval-every",), _int_at_least(0), "cli.eval_every", "EPOCHS",
           "evaluate on --test every this many epochs, and after the last (0: after the "
           "last only; default {default})", 1),
        _O("eval_k", ("--eval-k",), _ks, "fit.eval_k", "K,...",
           "k values of the periodic P@k / nDCG@k (default {default})", (1, 3, 5)),
        _O("early_stopping", ("--early-stopping",), _int_at_least(1), "EarlyStopping.patience",
           "PATIENCE", "stop when --monitor has not improved for this many epochs, and keep "
           "the model of the best epoch (needs --validation-split or --validation)"),
        _O("monitor", ("--monitor",), _text, "EarlyStopping.monitor", "METRIC",
           "what --early-stopping and --checkpoint watch: {EarlyStopping.monitor} (default; "
           "smooth even on a small validation set) or a validation metric such as p@1 or "
           "ndcg@5", "val_loss"),
        _O("checkpoint", ("--checkpoint",), _text, "ModelCheckpoint.path", "MODEL",
           "save the model here after every epoch that improved --monitor (after every epoch "
           "without validation data); '{epoch}' in the name keeps one file each"),
        _O("save", ("--save",), _text, "cli.save", "MODEL", "write the trained model here (.npz)"),
        _O("progress", ("--progress",), _bool, "fit.verbose", None,
           "show a progress bar (default: when stderr is a terminal)", const=True),
    ],
}
del _O
_TRAIN_OPTIONS = {group: [o._replace(target=o.target or SETTINGS[o.dest]) for o in options]
                  for group, options in _TRAIN_OPTIONS.items()}
_TRAIN_SPEC = {o.dest: o for options in _TRAIN_OPTIONS.values() for o in options}
# how the library's messages name a setting: by its flag
_FLAG_NAMES = {**{dest: o.flags[0] for dest, o in _TRAIN_SPEC.items()},
               "layers": "a 'layers' list in --config"}
_HELP_NAMES = {"Dense": Dense, "Sampled": Sampled, "WTA": WTA, "Adam": Adam, "SGD": SGD,
               "CosineDecay": CosineDecay, "EarlyStopping": EarlyStopping,
               "Network": _network.Network, "fit": _network.Network.fit,
               "network": _network, "layers": _layers, "layer": Dense, "optimizer": Adam,
               "schedule": CosineDecay,
               "propensities": _metrics.propensities}


def _help(text, target=None):
    """``text`` with every "{Owner.param}" (or "{Owner.CONST[key]}") read from the
    library; no text: the library's docstring of the ``target`` parameter."""
    if text is None:
        owner, name = target.split(".")
        return parameter_help(_HELP_NAMES[owner], name).replace("%", "%%")

    def default(match):
        value = signature_default(_HELP_NAMES[match.group(1)], match.group(2))
        return str(value if match.group(3) is None else
                   value[int(match.group(3)) if match.group(3).isdigit() else match.group(3)])
    return re.sub(r"\{(\w+)\.(\w+)(?:\[(\w+)\])?\}", default, text)


def _converter(option):
    """The option's parse, then the library's check of the value alone (argparse's
    message): the range is the library's, stated once."""
    if option.dest not in SETTINGS or option.parse in (_text, _bool, _active, _hidden):
        return option.parse

    def convert(text):
        value = option.parse(text)
        try:
            check_setting(option.dest, value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(_one_line(exc)) from None
        return value
    convert.__name__ = option.dest     # argparse names the type in some messages
    return convert


def _add_train_options(p):
    p.add_argument("train", nargs="?", default=None, metavar="TRAIN",
                   help="training file (XC format by default); may come from --config instead")
    p.add_argument("--config", metavar="FILE",
                   help="TOML (Python >= 3.11) or JSON file of options; keys are the long "
                        "option names (dashes or underscores), e.g. hidden = [256, 128], "
                        "lr = 1e-3; flags given on the command line win")
    for group_name, options in _TRAIN_OPTIONS.items():
        group = p.add_argument_group(group_name)
        for o in options:
            default = ",".join(map(str, o.default)) if isinstance(o.default, (list, tuple)) \
                else o.default    # the command's own default: a list as its flag writes it
            kwargs = dict(dest=o.dest, default=None,
                          help=_help(o.help, o.target).replace("{default}", str(default)))
            if o.const is not None:
                group.add_argument(*o.flags, action="store_const", const=o.const, **kwargs)
                continue
            kwargs.update(type=_converter(o), action="append" if o.dest == "hidden" else "store")
            if o.choices:
                kwargs["choices"] = o.choices
            group.add_argument(*o.flags, metavar=o.metavar, **kwargs)
        if group_name == "training":
            group.add_argument("--no-progress", dest="progress", action="store_const",
                               const=False, default=None, help="never show a progress bar")


def _config_value(name, value):
    """A config file's entry, parsed and checked as its flag would be."""
    if name in ("train", "layers"):
        if name == "train" and not isinstance(value, str):
            raise ValueError(f"must be a file path, got {value!r}")
        return value
    option = _TRAIN_SPEC[name]
    try:
        value = _converter(option)(value)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None
    if option.choices and value not in option.choices:
        raise ValueError(f"{value!r} is not one of {', '.join(option.choices)}")
    return value


def _resolve_train_options(args):
    """Defaults < config file < flags, as one namespace."""
    opts = {dest: option.default for dest, option in _TRAIN_SPEC.items()}
    opts.update(train=None, layers=None)
    if args.config:
        try:
            opts.update(read_config(args.config, [*_TRAIN_SPEC, "train", "layers"],
                                    _config_value, ("train", "test", "validation", "save",
                                                    "checkpoint")))
        except FileNotFoundError as exc:
            raise UsageError(f"--config: {exc}") from None
        except ValueError as exc:
            raise UsageError(f"--config {exc}") from None
    for dest in _TRAIN_SPEC:
        value = getattr(args, dest)
        if value is not None:   # repeated --hidden flags: each flag's list, concatenated
            opts[dest] = [u for part in value for u in part] if dest == "hidden" else value
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


@contextlib.contextmanager
def _library_error(where=""):
    """A context in which the library's refusal of a value is a usage error."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise UsageError(where + _one_line(exc)
                         + ("" if where else _flags_named(str(exc)))) from None


def _flags_named(message):
    """The flags of the parameters a library message names ("share='batch'",
    "Sampled: threshold must ...", "bucket_size"), as a hint for a command-line user."""
    named = {}
    for o in _TRAIN_SPEC.values():
        param = o.target.split(".")[-1]
        word = rf"\b{param}\b" if "_" in param else rf"\b{param}\s?=|: {param}\b"
        if param not in named and re.search(word, message):
            named[param] = o.flags[0]
    hints = [f"{param} is {flag}" for param, flag in named.items()]
    return f" (on the command line: {', '.join(hints)})" if hints else ""


def _network_settings(opts):
    """The flags' (and config file's) settings of ``pyslide.config``, named by flag."""
    settings = {key: getattr(opts, key) for key in SETTINGS}
    if opts.layers is not None:    # the command's own --hidden 128 and --output sampled
        settings.update({key: None for key in ("hidden", "output")
                         if settings[key] == _TRAIN_SPEC[key].default})
    return settings


def _build_network(opts, X, Y):
    """The network of the flags (or of the config file's ``layers``), checked by the library."""
    settings = _network_settings(opts)
    if opts.layers is not None:
        with _library_error("--config: "):
            settings["layers"] = layers_from_list(opts.layers, Y.shape[1])
    try:
        with _library_error():
            return network_from_settings(settings, X.shape[1], Y.shape[1], _FLAG_NAMES)
    except MemoryError as exc:
        # the library's advice names API arguments; a CLI user needs flags
        need = str(exc).split("; use ")[0]
        raise CommandError(f"not enough memory: {need}; use --optimizer sgd (no Adam moments), "
                           f"narrower or fewer --hidden layers, or smaller -K / -L / "
                           f"--bucket-size") from None


# --------------------------------------------------------------------------- data files

def _describe(path, X, Y):
    return (f"{path}: {X.shape[0]} rows, {X.shape[1]} features "
            f"({X.nnz / max(X.shape[0], 1):.1f} per row), {Y.shape[1]} labels "
            f"({Y.nnz / max(Y.shape[0], 1):.2f} per row)")


def _read_train_files(opts, verbose):
    """(X, Y) of the training file and {"test": (X, Y), "validation": (X, Y)} of the
    others, all widened to the widest of the files."""
    paths = {what: path for what, path in (("training", opts.train), ("test", opts.test),
                                           ("validation", opts.validation)) if path}
    # --no-strict-rows is the flag; unset (None) keeps the library's strict reading
    read = read_labelled_files(paths, opts.format, opts.strict_rows is not False)
    if verbose:
        for what, (X, Y) in read.items():
            print(_describe(paths[what], X, Y))
    X, Y = read.pop("training")
    return X, Y, read


# --------------------------------------------------------------------------- train

def _cmd_train(args):
    opts = _resolve_train_options(args)
    with _library_error():     # a bad optimizer setting is reported before reading the data
        optimizer_from_settings(_network_settings(opts), _FLAG_NAMES)
    _check_threads(opts.threads)
    if opts.save:
        _check_not_an_input(opts.save, "--save", [("the training file", opts.train),
                                                  ("the test file", opts.test),
                                                  ("--config", args.config)])
    callbacks = _train_callbacks(opts)
    verbose = not args.quiet
    X, Y, others = _read_train_files(opts, verbose)
    net = _build_network(opts, X, Y)
    if opts.save:   # fail before training, not after it, when the model cannot be written
        _checked(net.check_save_path, opts.save, "--save")
    batch_size = opts.batch_size or signature_default(_HELP_NAMES["fit"], "batch_size")
    if verbose:
        print(f"{net!r}")
        print(f"threads: {net.n_threads}, epochs: {opts.epochs}, batch size: {batch_size}")
    # -q: no epoch lines and no summary
    report = [EpochReport(others.get("test"), opts.eval_every, opts.eval_k, **callbacks)
              ] if verbose else []
    progress = verbose and sys.stderr.isatty() if opts.progress is None else opts.progress
    with _library_error():
        net.fit(X, Y, epochs=opts.epochs, callbacks=[*report, *callbacks.values()],
                verbose=1 if progress else 0, eval_k=opts.eval_k,
                validation_data=others.get("validation"),
                **_set(batch_size=opts.batch_size, shuffle=opts.shuffle,
                       validation_split=opts.validation_split))
    for each in report:
        each.summary(net)
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


def _train_callbacks(opts):
    """{"early_stopping": EarlyStopping, "checkpoint": ModelCheckpoint} of the flags given."""
    callbacks = {}
    if opts.early_stopping:
        with _library_error("--monitor: "):
            callbacks["early_stopping"] = EarlyStopping(monitor=opts.monitor,
                                              patience=opts.early_stopping, restore_best=True)
    if opts.checkpoint:
        with _library_error("--checkpoint: "):
            callbacks["checkpoint"] = ModelCheckpoint(
                opts.checkpoint, monitor=opts.monitor,
                save_best_only=bool(opts.validation or opts.validation_split))
    return callbacks


def _check_threads(threads):
    import pyslide as ps
    with _library_error():
        ps.resolve_threads(threads, "--threads")


def _checked(check, path, option):
    """``check(path, option)``; its ``OSError`` as a one-line failure."""
    try:
        check(path, option)
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
    X, Y = read_labelled(args.test, args.format, net.input_dim, net.n_outputs,
                         args.strict_rows, "test", warn_widths=True)
    ids, _ = _topk(net, X, max(ks), args.sampled)
    prop = None
    if args.train:
        _, Y_train = read_labelled(args.train, args.format, net.input_dim, net.n_outputs,
                                   args.strict_rows, "training")
        prop = metrics.propensities(Y_train, A=args.propensity_a, B=args.propensity_b)
    results = metrics.evaluate_topk(ids, Y, ks=ks, propensities=prop)
    results = {key: float(value) for key, value in results.items()}
    if args.json:
        print(json.dumps(results, indent=1, sort_keys=False))
    else:
        print(f"{args.test}: {X.shape[0]} rows")
        print(metrics.metrics_table(results, ks))
    return EXIT_OK


def _topk(net, X, k, sampled):
    try:
        return net.predict_topk(X, k=k, sampled=sampled)
    except ValueError as exc:
        if sampled:   # the library says why the model has no LSH tables
            raise UsageError(f"--sampled: {_one_line(exc)} (on the command line: drop "
                             f"--sampled)") from None
        raise


# --------------------------------------------------------------------------- predict

def _cmd_predict(args):
    from .datafiles import write_topk
    from .inference import topk_probabilities

    _check_threads(args.threads)
    if args.output != "-":
        _check_writable(args.output, "-o")
        _check_not_an_input(args.output, "-o", [("the model file", args.model),
                                                ("the input file", args.input)])
    net = _load_model(args.model, args.threads)
    # labels in the input are ignored, so their width is not checked against the model
    X, _ = read_labelled(args.input, args.format, net.input_dim, None, args.strict_rows,
                         "input", warn_widths=True)
    ids, scores = _topk(net, X, args.k, args.sampled)
    if args.scores == "prob":
        scores = topk_probabilities(net, X, ids, scores)
    if args.output == "-":
        write_topk(sys.stdout, ids, scores)
    else:
        from .atomic import atomic_write
        with atomic_write(args.output, "w") as out:
            write_topk(out, ids, scores)
    if args.output != "-" and not args.quiet:
        print(f"wrote top-{args.k} labels of {X.shape[0]} rows to {args.output}")
    return EXIT_OK


def _check_writable(path, option):
    from .atomic import check_writable
    _checked(check_writable, path, option)


# --------------------------------------------------------------------------- demo and bench

def _say(line):
    print(line, flush=True)


def _cmd_demo(args):
    import pyslide as ps

    _check_threads(args.threads)
    sizes = dict(demo.DEMO_QUICK if args.quick else demo.DEMO_FULL)
    sizes.update({key: getattr(args, key) for key in ("samples", "test", "epochs")
                  if getattr(args, key) is not None})
    demo.run_demo(sizes, args.seed, ps.resolve_threads(args.threads, "--threads"),
                  quick=args.quick, torch=not args.no_torch, say=_say)
    return EXIT_OK


def _cmd_bench(args):
    _check_threads(args.threads)
    if args.benchmarks_dir:
        script = os.path.join(args.benchmarks_dir, "bench_train.py")
        if not os.path.isfile(script):
            raise CommandError(f"--benchmarks-dir {args.benchmarks_dir}: no bench_train.py there")
    else:
        script = demo.find_bench_suite()
    if script is not None and not args.builtin:
        return _run_suite(script, args)
    if args.extra:
        raise UsageError("extra benchmark arguments need benchmarks/bench_train.py "
                         "(a source checkout of pyslide, or --benchmarks-dir)")
    if not args.builtin:
        print("benchmarks/bench_train.py not found (pyslide runs from an installed package, "
              "not a source checkout; or give --benchmarks-dir): running the built-in quick "
              "speed benchmark instead")
    import pyslide as ps
    table = demo.builtin_bench(ps.resolve_threads(args.threads, "--threads"), args.quick, _say)
    print("\n" + table)
    if args.out:
        from .atomic import atomic_write
        _check_writable(args.out, "--out")
        with atomic_write(args.out, "w") as f:
            f.write(table + "\n")
        print(f"table written to {args.out}")
    return EXIT_OK


def _run_suite(script, args):
    """benchmarks/bench_train.py, its results to --out (a temporary file with --quick,
    so that a smoke run does not overwrite the recorded results)."""
    import tempfile

    out = args.out or (os.path.join(tempfile.gettempdir(), "pyslide-bench-quick.json")
                       if args.quick else
                       os.path.join(os.path.dirname(script), "results", "bench_train.json"))
    if demo.suite_needs_missing_torch(script, args.extra):
        raise CommandError(f"the benchmark suite compares against PyTorch, which is not "
                           f"installed: {demo.TORCH_INSTALL_HINT} (or run pyslide bench "
                           f"--builtin, or pass -- --methods pyslide:lsh-batch)")
    status = demo.run_bench_suite(script, out, args.threads, args.quick, args.extra, _say)
    if status != 0:
        raise CommandError(f"{script} failed with exit status {status}")
    print(f"tables written to {out} and {os.path.splitext(out)[0]}.md")
    return EXIT_OK


# --------------------------------------------------------------------------- parser and main

_THREADS_HELP = "threads (default: the cores available)"
_SAMPLED_HELP = "score only the labels the LSH tables return (faster, approximate)"
_MODEL_HELP = "model file written by 'pyslide train --save'"
_FORMAT = dict(choices=("xc", "libsvm"), default="xc")
# the flags of evaluate, predict, demo and bench: (command, flags, argparse keywords)
_COMMAND_OPTIONS = [
    ("evaluate", ("model",), dict(metavar="MODEL", help=_MODEL_HELP)),
    ("evaluate", ("test",), dict(metavar="TEST", help="labelled file to score")),
    ("evaluate", ("--train",), dict(metavar="TRAIN", help="training file: its label "
                                    "frequencies give the propensities of PSP@k")),
    ("evaluate", ("-k",), dict(type=_ks, default=(1, 3, 5), metavar="K,...",
                               help="k values (default 1,3,5)")),
    ("evaluate", ("--format",), dict(**_FORMAT, help="file format (default xc)")),
    ("evaluate", ("--propensity-a",), dict(
        type=_positive, default=signature_default(_metrics.propensities, "A"), metavar="A",
        help="propensity model parameter A > 0 (default {propensities.A}; the XC repository "
             "uses 0.5 for Amazon, 0.6 for Wikipedia datasets)")),
    ("evaluate", ("--propensity-b",), dict(
        type=_non_negative, default=signature_default(_metrics.propensities, "B"), metavar="B",
        help="propensity model parameter B >= 0 (default {propensities.B}; 0.4 for Amazon, "
             "2.6 for Wikipedia datasets)")),
    ("evaluate", ("--json",), dict(action="store_true", help="print the metrics as JSON")),
    ("predict", ("model",), dict(metavar="MODEL", help=_MODEL_HELP)),
    ("predict", ("input",), dict(metavar="INPUT", help="rows to predict, in the model's file "
                                 "format (labels, if any, are ignored)")),
    ("predict", ("-k",), dict(type=_int_at_least(1), default=5,
                              help="labels per row (default 5)")),
    ("predict", ("-o", "--output"), dict(default="-", metavar="OUT",
                                         help="output file (default '-': standard output)")),
    ("predict", ("--scores",), dict(choices=("logit", "prob"), default="logit",
                                    help="logit (default) or prob: sigmoid (bce) or softmax "
                                         "over every label")),
    ("predict", ("--format",), dict(**_FORMAT, help="input file format (default xc)")),
    ("predict", ("-q", "--quiet"), dict(action="store_true", help="no summary line")),
    ("demo", ("--samples",), dict(type=_int_at_least(1), metavar="N",
                                  help=f"training rows (default {demo.DEMO_FULL['samples']})")),
    ("demo", ("--test",), dict(type=_int_at_least(1), metavar="N",
                               help=f"test rows (default {demo.DEMO_FULL['test']})")),
    ("demo", ("--epochs",), dict(type=_int_at_least(1), metavar="N",
                                 help=f"epochs (default {demo.DEMO_FULL['epochs']})")),
    ("demo", ("--threads",), dict(type=_threads, metavar="N", help="threads for pyslide and "
                                  "PyTorch (default: the cores available)")),
    ("demo", ("--seed",), dict(type=_int_at_least(0), default=0, metavar="N",
                               help="seed of the data and the models (default 0)")),
    ("demo", ("--quick",), dict(action="store_true", help=(
        f"a tiny run ({demo.DEMO_QUICK['samples']} rows, {demo.DEMO_QUICK['epochs']} epoch) to "
        f"check the installation"))),
    ("demo", ("--no-torch",), dict(action="store_true", help="skip the PyTorch baseline")),
    ("bench", ("--benchmarks-dir",), dict(metavar="DIR", help=(
        "folder holding bench_train.py (default: benchmarks/ of the source checkout pyslide "
        "runs from)"))),
    ("bench", ("--out",), dict(metavar="FILE", help=(
        "results file (default benchmarks/results/bench_train.json, or a temporary file "
        "with --quick; the built-in benchmark writes a Markdown table)"))),
    ("bench", ("--threads",), dict(type=_threads, metavar="N", help=(
        "threads (default: the suite's own, or the cores available)"))),
    ("bench", ("--quick",), dict(action="store_true", help="a short smoke run")),
    ("bench", ("--builtin",), dict(action="store_true", help=(
        "run the built-in quick speed benchmark even in a source checkout"))),
    ("bench", ("extra",), dict(nargs=argparse.REMAINDER, metavar="-- ARGS",
                               help="passed on to bench_train.py")),
]
for _command in ("evaluate", "predict"):
    _COMMAND_OPTIONS += [
        (_command, ("--no-strict-rows",), dict(dest="strict_rows", action="store_false",
                                               help=_NO_STRICT_ROWS_HELP)),
        (_command, ("--sampled",), dict(action="store_true", help=_SAMPLED_HELP)),
        (_command, ("--threads",), dict(type=_threads, metavar="N", help=_THREADS_HELP))]
_COMMANDS = [
    ("train", "train a network on an XC-format (or libsvm) file",
     "example:\n  pyslide train train.txt --test test.txt --hidden 128 --epochs 5 --save "
     "model.npz\n  pyslide train --config cfg.toml --lr 5e-4"),
    ("evaluate", "P@k, nDCG@k (and PSP@k) of a saved model on a labelled file",
     "example:\n  pyslide evaluate model.npz test.txt --train train.txt -k 1,3,5"),
    ("predict", "top-k labels with scores for every row of a file",
     "output: one line per input row, best label first:\n  label:score label:score ...\n"
     "scores are the output layer's logits (--scores prob for probabilities).\n"
     "example:\n  pyslide predict model.npz test.txt -k 5 -o predictions.txt"),
    ("demo", "generate a Delicious-200K-shaped problem, train, print P@k and speed",
     "Trains Dense(128) -> Sampled(labels) with the engine defaults and, when\n"
     "PyTorch is installed, the same architecture with a PyTorch sampled softmax.\n"
     f"Default size: {demo.DEMO_FULL['samples']} training rows, {demo.DEMO_FULL['epochs']} epochs "
     "(about a minute and a half on two idle cores, with PyTorch).\n"
     "example:\n  pyslide demo\n  pyslide demo --quick"),
    ("bench", "run the benchmark suite and write its tables",
     "Runs benchmarks/bench_train.py of the source checkout pyslide runs from\n"
     "(or of --benchmarks-dir); arguments after '--' go to it.\n"
     "Without it, a built-in quick speed benchmark (steps/s) runs instead.\n"
     "example:\n  pyslide bench --quick\n"
     "  pyslide bench -- --preset delicious --epochs 8 --methods pyslide:lsh-batch"),
]


def build_parser():
    """The ``pyslide`` argument parser (one sub-parser per command)."""
    from . import __version__

    parser = _Parser(prog="pyslide", description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pyslide {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text, epilog in _COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=globals()[f"_cmd_{name}"])
        p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
        if name == "train":
            _add_train_options(p)
            p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
        for command, flags, kwargs in _COMMAND_OPTIONS:
            if command == name:
                p.add_argument(*flags, **{**kwargs, "help": _help(kwargs["help"])})
    return parser
def _one_line(exc):
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, MemoryError):
        text = ("not enough memory" + (f": {text}" if text else "")
                + " (use a smaller network, fewer rows, or --optimizer sgd)")
    elif isinstance(exc, RowCountError):    # the library's fix is an argument
        text = str(exc.with_fix("add --no-strict-rows"))
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
