"""Write docs/api.md from the docstrings of pyslide's public names.

    python docs/gen_api.py            # rewrites docs/api.md
    python docs/gen_api.py --check    # exit 1 if docs/api.md is out of date

Covers everything in ``pyslide.__all__``, ``pyslide.data.__all__``,
``pyslide.metrics.__all__``, ``pyslide.hashing.__all__``,
``pyslide.config.__all__``, ``pyslide.distributed.__all__`` and
``pyslide.sklearn.__all__`` (when
scikit-learn is installed), with the public methods of every class.
Numpydoc sections become Markdown lists.
"""
import argparse
import inspect
import re
import sys
from pathlib import Path

import pyslide as ps
from pyslide import config, data, distributed, hashing, metrics

try:
    from pyslide import sklearn as sklearn_api
except ImportError:   # the optional [sklearn] extra is not installed
    sklearn_api = None

HERE = Path(__file__).resolve().parent
ITEM_SECTIONS = {"Parameters", "Other Parameters", "Returns", "Yields", "Raises",
                 "Attributes", "Warns"}

INTRO = """\
# API reference

Generated from the docstrings by `python docs/gen_api.py`; do not edit by
hand. Start with the [tutorial](tutorial.md); the command line is in
[cli.md](cli.md).

Conventions everywhere: features `X` are a `scipy.sparse` CSR matrix (or a
dense `ndarray`) of float32 values, shape `(n_rows, n_features)`; labels `Y`
are a CSR 0/1 indicator matrix `(n_rows, n_labels)`, a list of label-id
lists, or a 1-D int array (one label per row). Ids are 0-based. Every
argument is validated; a bad one raises `ValueError` / `TypeError` naming it.

Contents: [pyslide](#pyslide) · [pyslide.data](#pyslidedata) ·
[pyslide.metrics](#pyslidemetrics) · [pyslide.hashing](#pyslidehashing) ·
[pyslide.config](#pyslideconfig) ·
[pyslide.distributed](#pyslidedistributed) · [pyslide.sklearn](#pyslidesklearn)
"""

def rst_to_md(text):
    text = re.sub(r":(?:func|class|data|meth|attr|mod):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"(?<!`)``([^`]+)``(?!`)", r"`\1`", text)


# Said where a public method has no docstring of its own.
FALLBACK_DOCS = {
    "get_config": "The JSON-able description of the object's settings (what `save` "
                  "stores, and what rebuilds it).",
    "step_size": "The step size of step `t` (1-based).",
    "nbytes": "Bytes held by the tables' arrays.",
}


def numpydoc_to_md(doc, name=None):
    """A numpydoc docstring as Markdown."""
    if not doc:
        return FALLBACK_DOCS.get(name, "*(no docstring)*") + "\n"
    lines = inspect.cleandoc(doc).splitlines()
    if lines and name and re.fullmatch(rf"{re.escape(name)}\(.*\)", lines[0].strip()):
        lines = lines[1:]   # the signature a compiled function embeds in its docstring
    out, section, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", underline):
            section = line.strip()
            out += ["", f"**{section}**", ""]
            i += 2
            continue
        if section in ITEM_SECTIONS and line and not line.startswith(" "):
            name, sep, kind = line.partition(" : ")
            desc = []
            i += 1
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                if lines[i].strip():
                    desc.append(lines[i].strip())
                elif i + 1 < len(lines) and not lines[i + 1].startswith(" "):
                    break
                i += 1
            head = f"- `{name.strip()}`" + (f" ({kind.strip()})" if sep else "")
            out.append(head + (": " + " ".join(desc) if desc else ""))
            continue
        if section == "Examples":
            block = []
            while i < len(lines) and not (lines[i].strip() and i + 1 < len(lines)
                                          and re.fullmatch(r"-{3,}", lines[i + 1].strip())):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["```python", *block, "```"]
            continue
        out.append(line)
        i += 1
    return rst_to_md("\n".join(out)).strip() + "\n"


def signature(obj, name):
    try:
        sig = inspect.signature(obj)
        params = list(sig.parameters.values())
        if params and params[0].name in ("self", "cls"):
            sig = sig.replace(parameters=params[1:])
        sig = str(sig)
    except (TypeError, ValueError):
        text = getattr(obj, "__text_signature__", None)
        sig = text.replace("$module, ", "").replace("$module", "") if text else "(...)"
    return f"{name}{sig}"


def public_methods(cls):
    names = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or inspect.ismethod(member) or isinstance(
                inspect.getattr_static(cls, name), (property, classmethod, staticmethod)):
            names.append(name)
    return names


def render_class(cls, qualname, own_methods_only=False):
    parts = [f"### `{signature(cls, qualname)}`", "", numpydoc_to_md(cls.__doc__)]
    names = public_methods(cls)
    if own_methods_only:
        names = [name for name in names if name in vars(cls)]
    for name in names:
        static = inspect.getattr_static(cls, name)
        member = getattr(cls, name)
        if isinstance(static, property):
            parts += [f"#### `{cls.__name__}.{name}` (property)", "",
                      numpydoc_to_md(static.__doc__, name)]
        else:
            parts += [f"#### `{signature(member, f'{cls.__name__}.{name}')}`", "",
                      numpydoc_to_md(inspect.getdoc(member), name)]
    return "\n".join(parts)


def render(obj, qualname):
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "\n".join([f"### `{qualname}` (exception, subclass of "
                              f"`{obj.__mro__[1].__name__}`)", "",
                              numpydoc_to_md(obj.__doc__)])
        # scikit-learn's own methods (get_params, set_params, and the
        # metadata-routing ones, which vary between its versions) are
        # documented by scikit-learn
        return render_class(obj, qualname,
                            own_methods_only=qualname.startswith("pyslide.sklearn."))
    if callable(obj):
        return "\n".join([f"### `{signature(obj, qualname)}`", "",
                          numpydoc_to_md(obj.__doc__, qualname.rsplit(".", 1)[-1])])
    return None


def render_value(name, qualname, value, note):
    return "\n".join([f"### `{qualname}`", "", note.format(value=value), ""])


def module_section(title, module, names, intro, skip=()):
    parts = [f"## {title}", "", intro, ""]
    for name in names:
        if name in skip:
            continue
        obj = getattr(module, name)
        text = render(obj, f"{title}.{name}")
        if text is None:
            continue
        parts += [text, ""]
    return parts


def generate():
    parts = [INTRO]
    top_intro = ("`import pyslide as ps`. The network and its parts; `ps.data` and "
                 "`ps.metrics` are below.")
    parts += ["## pyslide", "", top_intro, ""]
    order = ["Network", "load", "Dense", "Sampled", "Adam", "SGD", "EarlyStopping",
             "ModelCheckpoint", "Callback", "SimHash", "WTA", "DWTA", "DOPH", "LSHTables",
             "openmp_enabled", "resolve_threads"]
    names = order + [n for n in ps.__all__ if n not in order]
    for name in names:
        if name not in ps.__all__:
            continue
        obj = getattr(ps, name)
        if name == "__version__":
            parts += [render_value(name, "pyslide.__version__", obj,
                                   "The package version, `\"{value}\"`."), ""]
            continue
        if inspect.ismodule(obj):
            anchor = f"pyslide{name}"
            parts += [f"### `pyslide.{name}`", "",
                      f"Module; see [pyslide.{name}](#{anchor}).", ""]
            continue
        parts += [render(obj, f"pyslide.{name}"), ""]
    parts += module_section(
        "pyslide.data", data, data.__all__,
        rst_to_md(inspect.cleandoc(data.__doc__ or "")), skip=("PRESETS",))
    if "PRESETS" in data.__all__:
        rows = ["| preset | " + " | ".join(["n_features", "n_labels", "nnz", "labels_per_point",
                                             "n_samples"]) + " |",
                "|---|" + "---:|" * 5]
        for key, p in data.PRESETS.items():
            rows.append(f"| `{key}` | {p['n_features']:,} | {p['n_labels']:,} | {p['nnz']} | "
                        f"{p['labels_per_point']} | {p['n_samples']:,} |")
        parts += ["### `pyslide.data.PRESETS`", "",
                  "Dict of the shapes `make_xc` imitates (name -> parameters); the main ones:",
                  "", *rows, ""]
    parts += module_section(
        "pyslide.metrics", metrics, metrics.__all__,
        rst_to_md(inspect.cleandoc(metrics.__doc__ or "")))
    hashing_names = [n for n in hashing.__all__ if n not in ps.__all__]
    parts += module_section(
        "pyslide.hashing", hashing, hashing_names,
        "Hash families and bucket tables. `SimHash`, `WTA`, `DWTA`, `DOPH` and "
        "`LSHTables` are documented under [pyslide](#pyslide) (also importable from "
        "`pyslide.hashing`); the helpers:")
    parts += module_section(
        "pyslide.config", config, config.__all__,
        rst_to_md(inspect.cleandoc(config.__doc__ or "").split("\n", 1)[1]),
        skip=("SETTINGS", "SECTIONS"))
    rows = ["| key | parameter |", "|---|---|"]
    rows += [f"| `{key}` | `{target}` |" for key, target in config.SETTINGS.items()]
    parts += ["### `pyslide.config.SETTINGS`", "",
              "Dict of the flat settings, each key and the parameter it sets (`Dense.` every "
              "hidden layer's, `layer.` every layer's, `family.` the output layer's hash "
              "family's, `optimizer.` Adam's and SGD's):", "", *rows, "",
              "### `pyslide.config.SECTIONS`", "",
              "The tables a config file may group its keys in: "
              + ", ".join(f"`[{name}]`" for name in config.SECTIONS) + ".", ""]
    parts += module_section(
        "pyslide.distributed", distributed, distributed.__all__,
        "`from pyslide.distributed import ShardedNetwork` (needs the `distributed` extra, "
        "Ray). The output layer split by rows over Ray actors; see "
        "[distributed.md](distributed.md).")
    if sklearn_api is None:
        print("scikit-learn is not installed: pyslide.sklearn is left out (pip install "
              "\".[sklearn]\")", file=sys.stderr)
    else:
        parts += module_section(
            "pyslide.sklearn", sklearn_api, sklearn_api.__all__,
            "`from pyslide.sklearn import SlideClassifier` (needs the `sklearn` extra, "
            "scikit-learn). A scikit-learn classifier over `Network`, and scorers for "
            "`GridSearchCV` / `cross_val_score`; besides the methods below it has "
            "scikit-learn's `get_params` and `set_params`. See the "
            "[tutorial](tutorial.md#10-with-scikit-learn).")
    text = "\n".join(parts)
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if api.md is out of date")
    p.add_argument("--out", default=str(HERE / "api.md"))
    args = p.parse_args(argv)
    text = generate()
    out = Path(args.out)
    if args.check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            print(f"{out} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    out.write_text(text)
    print(f"wrote {out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
