"""Fuzzing the readers with hypothesis: no input crashes or hangs the process.

Every XC / libsvm input either parses into matrices that round-trip through
``save_xc`` / ``save_libsvm``, or raises a ``ValueError`` naming the file (and
the line, where the input has lines). Every mutated model file either loads
as a model identical to the saved one or raises a ``ValueError``.

The CI run tries a few hundred inputs per test; set ``PYSLIDE_FUZZ_EXAMPLES``
for a longer run (docs/reliability.md records one).
"""
import io
import os
import re

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import pyslide as ps  # noqa: E402
from pyslide import persist  # noqa: E402
from pyslide.data import load_libsvm, load_xc, save_libsvm, save_xc  # noqa: E402

EXAMPLES = int(os.environ.get("PYSLIDE_FUZZ_EXAMPLES", "300"))
# no example database: a test run leaves no files behind
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 300, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

NAME = "fuzz.txt"


def named(data):
    buffer = io.BytesIO(data)
    buffer.name = NAME
    return buffer


def _valid_files():
    X, Y = ps.data.make_xc("small", n_samples=12, n_features=40, n_labels=15, nnz=4,
                           labels_per_point=2, seed=3)
    xc, svm = io.BytesIO(), io.BytesIO()
    save_xc(xc, X, Y)
    save_libsvm(svm, X, Y)
    return xc.getvalue(), svm.getvalue()


VALID_XC, VALID_SVM = _valid_files()


@st.composite
def mutated(draw, base):
    """``base`` with a few random byte and token edits."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "delete", "duplicate", "insert", "token_delete",
                                     "token_duplicate", "token_swap"]))
        if not data:
            data = bytearray(draw(st.binary(min_size=1, max_size=8)))
            continue
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "delete":
            del data[i:i + draw(st.integers(1, 16))]
        elif kind == "duplicate":
            n = draw(st.integers(1, 16))
            data[i:i] = data[i:i + n]
        elif kind == "insert":
            data[i:i] = draw(st.sampled_from([b"\x00", b" ", b"\n", b":", b",", b"-", b"1",
                                              b"e", b".", b"\r", b"\xff", b"nan", b"9" * 12,
                                              b"\xef\xbb\xbf"]))
        else:
            tokens = re.split(rb"([ \n])", bytes(data))
            j = draw(st.integers(0, len(tokens) - 1))
            if kind == "token_delete":
                del tokens[j]
            elif kind == "token_duplicate":
                tokens.insert(j, tokens[j])
            else:
                k = draw(st.integers(0, len(tokens) - 1))
                tokens[j], tokens[k] = tokens[k], tokens[j]
            data = bytearray(b"".join(tokens))
    return bytes(data)


def check_error(exc):
    message = str(exc)
    assert message.startswith(NAME), message
    assert re.match(re.escape(NAME) + r"(, line \d+: |: empty file|: damaged gzip file|: the "
                    r"header \(line 1\))", message), message
    assert message.isprintable(), message


def same(A, B):
    return A.shape == B.shape and (A != B).nnz == 0


def check_xc(data):
    try:
        X, Y = load_xc(named(data))
    except ValueError as exc:
        check_error(exc)
        return
    out = io.BytesIO()
    save_xc(out, X, Y)
    X2, Y2 = load_xc(named(out.getvalue()))
    assert same(X, X2) and same(Y, Y2)


def check_libsvm(data):
    try:
        X, Y = load_libsvm(named(data))
    except ValueError as exc:
        check_error(exc)
        return
    out = io.BytesIO()
    save_libsvm(out, X, Y)
    X2, Y2 = load_libsvm(named(out.getvalue()), n_features=X.shape[1] or None,
                         n_labels=Y.shape[1] or None)
    assert same(X, X2) and same(Y, Y2)


@FUZZ
@given(st.binary(max_size=600))
def test_xc_reader_on_random_bytes(data):
    check_xc(data)


@FUZZ
@given(st.binary(max_size=600))
def test_libsvm_reader_on_random_bytes(data):
    check_libsvm(data)


@FUZZ
@given(mutated(VALID_XC))
def test_xc_reader_on_mutated_files(data):
    check_xc(data)


@FUZZ
@given(mutated(VALID_SVM))
def test_libsvm_reader_on_mutated_files(data):
    check_libsvm(data)


def _model():
    X, Y = ps.data.make_xc("small", n_samples=64, n_features=30, n_labels=40, nnz=4, seed=0)
    net = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(
        Y.shape[1], active=8, hash=ps.SimHash(K=3, L=2), bucket_size=8)], threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    return net


MODEL = _model()
MODEL_BYTES = persist.to_bytes(MODEL)


def identical(a, b):
    if a.get_config() != b.get_config() or (a.step_, a.epoch_, a.history_, a._initialized) != (
            b.step_, b.epoch_, b.history_, b._initialized):
        return False
    for pa, pb in zip(a._params, b._params):
        for name in persist.PERSISTENT_ARRAYS:
            if name in pa and pa[name].tobytes() != pb[name].tobytes():
                return False
    for i, (ta, tb) in enumerate(zip(a._tables, b._tables)):
        if (ta is None) != (tb is None):
            return False
        if ta is not None and not (np.array_equal(ta.ids, tb.ids)
                                   and np.array_equal(ta.counts, tb.counts)
                                   and np.array_equal(a._dirty[i], b._dirty[i])):
            return False
    return (a._next_rebuild, a._rebuild_interval, a._hashed_at, a._rebuilds_since_full) == (
        b._next_rebuild, b._rebuild_interval, b._hashed_at, b._rebuilds_since_full)


@st.composite
def mutated_model(draw):
    data = bytearray(MODEL_BYTES)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "delete", "duplicate", "truncate", "byte"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            n = draw(st.integers(1, 64))
            data[i:i] = data[i:i + n]
        else:
            del data[i:]
    return bytes(data)


@FUZZ
@given(mutated_model())
def test_load_on_mutated_model_files(data):
    try:
        net = ps.load(io.BytesIO(data))
    except ValueError as exc:
        assert "pyslide model" in str(exc) or "the model's" in str(exc), str(exc)
        return
    assert identical(net, MODEL)


def test_the_unmutated_model_loads_identical():
    assert identical(ps.load(io.BytesIO(MODEL_BYTES)), MODEL)
