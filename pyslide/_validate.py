"""Argument checks every module shares; imports nothing of ours (any module may import it).

One rule for every public argument: a value of the wrong type is a
``TypeError``, a value of the right type outside its range a ``ValueError``,
and the message names the argument (with its owner, e.g. ``"Sampled:
units"``), what it must be, and the value received. ``bool`` is never an
int or a number here, although Python lets it pass as one.
"""
import math
import numbers

__all__ = ["integer", "real", "choice", "flag", "integers"]


def _range(minimum, maximum):
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def integer(value, name, minimum=None, maximum=None, *, none_ok=False, hint=""):
    """``value`` as an int, checked against [minimum, maximum].

    ``none_ok`` lets None through (the caller then picks a default); ``hint``
    (e.g. " (the number of features)") follows the requirement in messages.
    """
    if value is None and none_ok:
        return None
    what = "None or an int" if none_ok else "an int"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}{_range(minimum, maximum)}{hint}, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {'None or ' if none_ok else ''}>= {minimum}{hint}, "
                         f"got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}{hint}, got {value}")
    return value


def real(value, name, minimum=None, maximum=None, *, min_open=False, max_open=False,
         none_ok=False, hint=""):
    """``value`` as a finite float in the range (``min_open`` / ``max_open``
    exclude an end). Not a real number: TypeError; NaN, an infinity or out
    of range: ValueError."""
    if value is None and none_ok:
        return None
    bound = _interval(minimum, maximum, min_open, max_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number{bound and ' ' + bound}{hint}, "
                        f"got {value!r}")
    value = float(value)
    low_bad = minimum is not None and (value <= minimum if min_open else value < minimum)
    high_bad = maximum is not None and (value >= maximum if max_open else value > maximum)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{bound and ' ' + bound}{hint}, "
                         f"got {value:g}")
    if low_bad or high_bad:
        raise ValueError(f"{name} must be {bound}{hint}, got {value:g}")
    return value


def _interval(minimum, maximum, min_open, max_open):
    if minimum is not None and maximum is not None:
        return (f"in {'(' if min_open else '['}{minimum}, {maximum}"
                f"{')' if max_open else ']'}")
    if minimum is not None:
        return f"{'>' if min_open else '>='} {minimum}"
    if maximum is not None:
        return f"{'<' if max_open else '<='} {maximum}"
    return ""


def choice(value, name, choices):
    """``value`` if it is one of ``choices`` (strings compared as given), else a ValueError."""
    if not isinstance(value, str) or value not in choices:
        quoted = [repr(c) for c in choices]
        options = quoted[0] if len(quoted) == 1 else \
            ", ".join(quoted[:-1]) + " or " + quoted[-1]
        raise ValueError(f"{name} must be {options}, got {value!r}")
    return value


def flag(value, name):
    """``value`` if it is True or False (not 0 / 1, which usually mean a mistake)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def integers(value, name, minimum=1):
    """An int or a sequence of ints (each checked by :func:`integer`) as a tuple."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (int(value),)
    return tuple(integer(v, name if name == "k" else f"{name} values", minimum) for v in value)
