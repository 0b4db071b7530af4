"""A parameter's one-line help read from the library's own numpydoc docstrings and signatures; imports nothing of ours.

The command line's help for a flag is the first sentence of the parameter's
description in its class's (or function's) "Parameters" section, and
"(default X)" from its signature: each parameter is documented once, where
it is defined.
"""
import inspect
import re

_SECTION = re.compile(r"^Parameters\n-+\n(.*?)(?:\n\n\w[\w ]*\n-+\n|\Z)", re.S | re.M)
# a sentence ends at a full stop followed by one that starts with a capital,
# an opening parenthesis or a backquote ("e.g. 1/3" does not end one)
_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z(`])")


def signature_default(owner, name):
    """``owner``'s parameter (or, failing that, attribute) ``name``'s default; a
    float as ``%g`` writes it."""
    parameters = inspect.signature(owner).parameters if callable(owner) else {}
    value = parameters[name].default if name in parameters else getattr(owner, name)
    return f"{value:g}" if isinstance(value, float) else value


def parameter_description(owner, name):
    """The text of ``name``'s entry in ``owner``'s "Parameters" section, on one line
    (reStructuredText as written).

    An entry may document several parameters at once (``beta1, beta2 : float``).
    Raises LookupError when the docstring documents no such parameter.
    """
    section = _SECTION.search(inspect.getdoc(owner) or "")
    for entry in re.split(r"\n(?=\S)", section.group(1) if section else ""):
        head, _, body = entry.partition("\n")
        if name in [part.strip() for part in head.split(" : ")[0].split(",")]:
            return " ".join(body.split())
    raise LookupError(f"{owner.__qualname__}'s docstring documents no parameter {name!r}")


def parameter_help(owner, name):
    """The first sentence of ``name``'s description, its first letter lower-case and
    without the full stop, with "(default X)" from the signature unless the
    sentence states it or the default is None (the library decides later)."""
    sentence = _SENTENCE_END.split(parameter_description(owner, name))[0]
    sentence = sentence.replace("``", "").rstrip(".")
    if sentence[:1].isupper() and sentence[1:2].islower():
        sentence = sentence[0].lower() + sentence[1:]
    default = signature_default(owner, name)
    if default is None or isinstance(default, bool) or "default" in sentence:
        return sentence
    return f"{sentence} (default {default})"
