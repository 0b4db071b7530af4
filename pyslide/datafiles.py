"""XC-repository and libsvm text files: read, write, splits; imports _io, checks and atomic (never the model).

Readers return ``scipy.sparse`` CSR matrices with float32 values and int32
indices: features ``X`` and a 0/1 label indicator ``Y``. Writers accept
what :func:`pyslide.checks.check_features` and
:func:`pyslide.checks.labels_to_csr` accept.
"""
import contextlib
import gzip
import mmap
import os
import stat
import warnings

import numpy as np
import scipy.sparse as sp

from . import _io
from .atomic import atomic_write
from .checks import _check_count, _is_int, check_features, labels_to_csr

__all__ = ["load_xc", "save_xc", "load_libsvm", "save_libsvm", "read_split", "load_xc_split",
           "XCFormatError", "RowCountError", "read_xc_header", "header_mismatch",
           "why_no_features", "write_topk", "read_labelled", "read_labelled_files"]


class XCFormatError(ValueError):
    """A data file that does not follow the XC / libsvm text format.

    The message names the file and the 1-based line number (the header
    line counts as line 1).
    """


class RowCountError(XCFormatError):
    """An XC header whose row count differs from the file's data lines.

    ``fix`` is what loads the rows present: ``strict_rows=False`` here, a
    command-line flag where the CLI reads the file (``with_fix``).
    """

    def __init__(self, name, declared, found, fix="pass strict_rows=False"):
        self.name, self.declared, self.found = name, declared, found
        super().__init__(f"{name}: the header (line 1) says {declared} rows but the file has "
                         f"{found} data lines (blank lines count as rows); {fix} to load "
                         f"the rows present")

    def with_fix(self, fix):
        """The same error with another way of loading the rows named."""
        return RowCountError(self.name, self.declared, self.found, fix)


_PARSE_ERRORS = {
    _io.ERR_LABEL_SYNTAX: "malformed label list (expected 'l1,l2,...' of non-negative integers)",
    _io.ERR_LABEL_NEGATIVE: "negative label id (ids must be >= 0)",
    _io.ERR_FEATURE_SYNTAX: "malformed feature token (expected 'id:value')",
    _io.ERR_FEATURE_NEGATIVE: "negative feature id (ids must be >= 0)",
    _io.ERR_MISSING_COLON: "feature token without ':' (expected 'id:value')",
    _io.ERR_VALUE_SYNTAX: "malformed feature value (expected a decimal number)",
    _io.ERR_VALUE_NONFINITE: "non-finite feature value (nan, inf or beyond float32 range)",
    _io.ERR_ID_TOO_LARGE: "id too large (ids must be < 2**31)",
}


def _read_bytes(path):
    """The whole file as bytes, and a name for messages."""
    if hasattr(path, "read"):
        data = path.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        return bytes(data), getattr(path, "name", "<file>")
    try:
        with open(path, "rb") as f:
            return f.read(), str(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"data file not found: {path}") from None


@contextlib.contextmanager
def _file_buffer(path):
    """The file's bytes without a copy (memory-mapped) where possible, and its name."""
    if hasattr(path, "read"):
        yield _read_bytes(path)
        return
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"data file not found: {path}") from None
    with f:
        info = os.fstat(f.fileno())
        if info.st_size == 0 or not stat.S_ISREG(info.st_mode):
            yield f.read(), str(path)
            return
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            yield mapped, str(path)
        finally:
            mapped.close()


_TOKEN_LIMIT = 40     # bytes of a bad token shown in a message


def _token_at(buffer, position):
    """The raw bytes of the token at ``position`` (at most ``_TOKEN_LIMIT``)."""
    end = position
    limit = min(len(buffer), position + _TOKEN_LIMIT)
    while end < limit and buffer[end] not in b" \t\r\n":
        end += 1
    return bytes(buffer[position:end])


_CONTROL_BYTES = frozenset(b for b in range(32) if b not in b"\t\n\r\v\f") | {0x7f}


def _check_text(raw, name, line, limit=_TOKEN_LIMIT):
    """Raise for bytes no XC / libsvm line holds: control bytes (binary data),
    or bytes that are not UTF-8 (a file in Latin-1 or another 8-bit
    encoding; the formats hold ASCII ids and numbers, so nothing could be
    decoded into a valid token). ``raw`` is at most ``limit`` bytes of the
    line, so a character cut at that limit is not an error."""
    if any(b in _CONTROL_BYTES for b in raw):
        raise _not_text(name, line)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and len(raw) >= limit:
            return      # a character cut by the token limit, not an encoding error
        # bad bytes as \xe9, other unprintable characters escaped as repr does
        shown = "".join(c if c.isprintable() else repr(c)[1:-1]
                        for c in raw.decode("utf-8", "backslashreplace"))
        raise XCFormatError(f"{name}, line {line}: not UTF-8 text: byte 0x{raw[exc.start]:02X} "
                            f"in '{shown}' (a Latin-1 or other 8-bit encoding?); the file may "
                            f"hold only ASCII ids and numbers: remove or replace that "
                            f"character") from None


def _not_text(name, line):
    # never echo the bytes: they would garble the user's terminal
    return XCFormatError(f"{name}, line {line}: not an XC text file (binary data: a file "
                         f"compressed other than with gzip, or not a data file)")


_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def _text_buffer(path):
    """``_file_buffer`` after gunzip (gzip files are recognised by their signature).

    Yields the buffer, the file's name and the offset where the text starts
    (past a UTF-8 byte-order mark, which some Windows editors write).
    """
    with _file_buffer(path) as (buffer, name):
        if buffer[:2] == _GZIP_MAGIC:
            try:
                buffer = gzip.decompress(bytes(buffer))
            except (OSError, EOFError, ValueError) as exc:
                raise XCFormatError(f"{name}: damaged gzip file ({exc})") from None
        yield buffer, name, (len(_BOM) if buffer[:3] == _BOM else 0)


def _looks_like_header(tokens):
    """A first line meant as a header: integers and no 'id:value' token."""
    return (len(tokens) >= 2 and tokens[0].isdigit()
            and not any(b":" in t or b"," in t for t in tokens))


def _parse_header(buffer, name, header, begin=0):
    """``(N, D, L)`` or None, and the offset where the data lines start."""
    newline = buffer.find(b"\n", begin)
    first = bytes(buffer[begin:newline if newline >= 0 else len(buffer)])
    tokens = first.split()
    is_header = len(tokens) == 3 and all(t.isdigit() for t in tokens)
    if header == "auto":
        header = is_header or _looks_like_header(tokens)
    if not header:
        return None, begin
    if not is_header:
        _check_text(first[:200], name, 1, limit=200)
        shown = first.decode("utf-8", "replace").strip()[:60]
        raise XCFormatError(f"{name}, line 1: the header must be 'N D L' (three non-negative "
                            f"integers: rows, features, labels), got {shown!r}")
    counts = tuple(int(t) for t in tokens)
    for value, what in zip(counts[1:], ("D (features)", "L (labels)")):
        if value > _MAX_WIDTH:
            # ids are int32 everywhere; a wider matrix gets int64 indices
            raise XCFormatError(f"{name}, line 1: the header's {what} is {value}, more than "
                                f"the {_MAX_WIDTH} ids pyslide can address (2**31 - 1)")
    return counts, (newline + 1 if newline >= 0 else len(buffer))


_MAX_WIDTH = 2**31 - 1


def _parse(buffer, name, start, first_line, feature_bound, label_bound,
           feature_bound_source, label_bound_source, feature_offset=0):
    result = _io.parse_xc(buffer, start, -1 if feature_bound is None else feature_bound,
                          -1 if label_bound is None else label_bound)
    status = result["status"]
    if status != _io.OK:
        line = result["row"] + first_line
        token = _token_at(buffer, result["position"])
        _check_text(token, name, line)
        token = token.decode("utf-8", "replace")
        if status == _io.ERR_FEATURE_RANGE:
            n = feature_bound - feature_offset
            note = f"; one-based ids go up to {n}" if feature_offset else ""
            what = (f"feature id {result['bad_id']} out of range: n_features={n} "
                    f"({feature_bound_source}{note})")
        elif status == _io.ERR_LABEL_RANGE:
            what = (f"label id {result['bad_id']} out of range: n_labels={label_bound} "
                    f"({label_bound_source})")
        else:
            what = _PARSE_ERRORS[status]
        raise XCFormatError(f"{name}, line {line}: {what}: {token!r}")
    return result


def _build(result, n_features, n_labels):
    n_rows = result["n_rows"]
    x_indptr, y_indptr = result["x_indptr"], result["y_indptr"]
    if x_indptr[-1] < 2**31 and y_indptr[-1] < 2**31:
        x_indptr = x_indptr.astype(np.int32)
        y_indptr = y_indptr.astype(np.int32)
    X = sp.csr_matrix((result["x_data"], result["x_indices"], x_indptr),
                      shape=(n_rows, n_features), copy=False)
    Y = sp.csr_matrix((np.ones(result["y_indices"].size, dtype=np.float32),
                       result["y_indices"], y_indptr), shape=(n_rows, n_labels), copy=False)
    if result["unsorted"]:
        X.sum_duplicates()
        Y.sum_duplicates()
        Y.data[:] = 1.0
    else:
        X.has_canonical_format = True
        Y.has_canonical_format = True
    return X, Y


def load_xc(path, n_features=None, n_labels=None, header="auto", strict_rows=True):
    """Read an Extreme Classification Repository text file.

    The format: an optional header line ``N D L`` (rows, features, labels),
    then one line per point, ``l1,l2,... f:v f:v ...`` with 0-based label
    and feature ids. A line starting with white space (or directly with
    ``f:v``) has no labels; a line with no ``f:v`` tokens has no features;
    such rows are kept. Every line is one row, blank lines included (a
    final newline does not add a row). CRLF line ends are accepted, a UTF-8
    byte-order mark is skipped, and a gzip-compressed file (recognised by
    its signature, whatever its name) is decompressed.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
        The file to read.
    n_features, n_labels : int, optional
        Widths of the returned matrices; ids must be below them. Default:
        the header's ``D`` and ``L``, or without a header the largest id
        plus one.
    header : {"auto", True, False}, default "auto"
        Whether the first line is ``N D L``. ``"auto"`` takes it as a
        header when it is exactly three non-negative integers (a data line
        never is).
    strict_rows : bool, default True
        When the header's ``N`` differs from the number of data lines,
        raise :class:`XCFormatError`. ``False`` loads the rows present (for
        truncated files such as partial dumps whose header still counts
        the full set).

    Returns
    -------
    X : scipy.sparse.csr_matrix, float32, shape (n_rows, n_features)
    Y : scipy.sparse.csr_matrix, float32 0/1, shape (n_rows, n_labels)
        Both with int32 indices sorted within each row. A feature id listed
        twice in one line has its values summed; a repeated label counts
        once.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    XCFormatError
        (a ``ValueError``) for an empty file, a malformed token, a negative
        or out-of-range id, a non-finite value or a header that does not
        match; the message names the file and the 1-based line number.
    """
    n_features = _check_count(n_features, "n_features")
    n_labels = _check_count(n_labels, "n_labels")
    if not isinstance(strict_rows, (bool, np.bool_)):
        raise ValueError(f"strict_rows must be True or False, got {strict_rows!r}")
    if not (isinstance(header, (bool, np.bool_)) or header == "auto"):
        raise ValueError(f"header must be 'auto', True or False, got {header!r}")
    with _text_buffer(path) as (buffer, name, begin):
        if len(buffer) == begin:
            raise XCFormatError(f"{name}: empty file (expected an XC header 'N D L' or data lines)")
        counts, start = _parse_header(buffer, name, header, begin)
        feature_bound, label_bound = n_features, n_labels
        feature_source = label_source = "given"
        if counts is not None:
            if feature_bound is None:
                feature_bound, feature_source = counts[1], "from the header"
            if label_bound is None:
                label_bound, label_source = counts[2], "from the header"
        first_line = 2 if counts is not None else 1
        result = _parse(buffer, name, start, first_line, feature_bound, label_bound,
                        feature_source, label_source)
    if counts is not None and strict_rows and result["n_rows"] != counts[0]:
        raise RowCountError(name, counts[0], result["n_rows"])
    if feature_bound is None:
        feature_bound = result["max_feature"] + 1
    if label_bound is None:
        label_bound = result["max_label"] + 1
    return _build(result, feature_bound, label_bound)


def read_xc_header(path):
    """The ``(rows, features, labels)`` an XC file's header line declares.

    Reads the first line only (of a gzip file, after decompressing it).

    Returns
    -------
    tuple of int or None
        ``(N, D, L)``, or None when the first line is a data line (no header).

    Raises
    ------
    OSError
        If ``path`` cannot be read.
    XCFormatError
        When the first line looks like a header but is not ``N D L``.
    """
    with _text_buffer(path) as (buffer, name, begin):
        counts, _ = _parse_header(buffer, name, "auto", begin)
    return counts


def why_no_features(path, file_format="xc"):
    """Why a file read with 0 feature columns has none: its header's ``D=0``
    or no ``id:value`` token on any line (a phrase for an error message)."""
    if file_format == "xc":
        try:
            counts = read_xc_header(path)
        except (OSError, ValueError):
            counts = None
        if counts is not None and counts[1] == 0:
            header = " ".join(map(str, counts))
            return f"line 1: the header '{header}' says D=0 features (the header is 'N D L')"
    return "no line has a feature ('id:value')"


def header_mismatch(path, n_features, n_labels=None, whose="the model"):
    """A warning's text when an XC file's header declares other widths than
    ``n_features`` (and ``n_labels``, when given), else None.

    A file written for other widths still loads when its ids fit, and a
    model then scores it near 0 with no other sign: callers that read a file
    against known widths say so. A file without a header, or one the reader
    will refuse anyway, gives None.
    """
    try:
        counts = read_xc_header(path)
    except (OSError, ValueError):
        return None     # the reader reports an unreadable header with its line
    if counts is None:
        return None
    _, file_features, file_labels = counts
    with_labels = n_labels is not None
    if file_features == n_features and (not with_labels or file_labels == n_labels):
        return None
    declared = f"{file_features} features" + (f" and {file_labels} labels" if with_labels else "")
    expected = f"{n_features} features" + (f" and {n_labels} labels" if with_labels else "")
    return (f"{path}: its header (line 1) declares {declared}, {whose} has {expected}; "
            f"is this {whose}'s data? (ids are read against {whose}'s widths)")


def load_libsvm(path, n_features=None, n_labels=None, zero_based="auto"):
    """Read a multi-label libsvm / svmlight file: ``l1,l2,... f:v f:v ...``.

    Same line format as :func:`load_xc`, without a header. Label ids are
    taken as written (0-based); feature ids are 0- or 1-based.

    Parameters
    ----------
    path : str, os.PathLike or binary file object
    n_features, n_labels : int, optional
        Widths of the returned matrices. Default: largest id plus one
        (after the one-based shift).
    zero_based : {"auto", True, False}, default "auto"
        Whether feature ids start at 0. ``"auto"``: 0-based if some feature
        id is 0, else 1-based (ids are shifted down by one), as
        scikit-learn's ``load_svmlight_file`` guesses.

    Returns
    -------
    X, Y : scipy.sparse.csr_matrix
        As :func:`load_xc`.

    Raises
    ------
    FileNotFoundError, XCFormatError
        As :func:`load_xc`; also a feature id 0 in a file read as 1-based.
    """
    n_features = _check_count(n_features, "n_features")
    n_labels = _check_count(n_labels, "n_labels")
    if not (isinstance(zero_based, (bool, np.bool_)) or zero_based == "auto"):
        raise ValueError(f"zero_based must be 'auto', True or False, got {zero_based!r}")
    # Parse raw ids; a one-based file may use id n_features.
    if not isinstance(zero_based, str):
        zero_based = bool(zero_based)
    offset_bound = 0 if zero_based is True else 1
    feature_bound = None if n_features is None else n_features + offset_bound
    with _text_buffer(path) as (buffer, name, begin):
        if len(buffer) == begin:
            raise XCFormatError(f"{name}: empty file (expected libsvm data lines)")
        result = _parse(buffer, name, begin, 1, feature_bound, n_labels, "given", "given",
                        feature_offset=offset_bound)
    indices = result["x_indices"]
    has_zero = result["min_feature"] == 0
    one_based = zero_based is False or (zero_based == "auto" and not has_zero)
    if one_based and has_zero:
        position = int(np.argmax(indices == 0))
        row = int(np.searchsorted(result["x_indptr"], position, side="right")) - 1
        raise XCFormatError(f"{name}, line {row + 1}: feature id 0 in a file read as one-based "
                            f"(zero_based=False); pass zero_based=True or 'auto'")
    if one_based:
        indices -= 1
        max_feature = result["max_feature"] - 1
    else:
        max_feature = result["max_feature"]
        if n_features is not None and max_feature >= n_features:
            position = int(np.argmax(indices >= n_features))
            row = int(np.searchsorted(result["x_indptr"], position, side="right")) - 1
            raise XCFormatError(f"{name}, line {row + 1}: feature id {int(indices[position])} "
                                f"out of range: n_features={n_features} (given; ids read as "
                                f"zero-based)")
    if n_features is None:
        n_features = max_feature + 1 if result["x_indices"].size else 0
    if n_labels is None:
        n_labels = result["max_label"] + 1
    return _build(result, n_features, n_labels)


_WRITE_BLOCK_ROWS = 4096


def _write(path, X, Y, header_line, feature_offset):
    X = check_features(X, name="X")
    Y = labels_to_csr(Y, name="Y")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows, got {X.shape[0]} "
                         f"and {Y.shape[0]}")
    x_indptr = X.indptr.astype(np.int64)
    y_indptr = Y.indptr.astype(np.int64)
    if hasattr(path, "write"):
        _write_rows(path, X, Y, x_indptr, y_indptr, header_line, feature_offset)
        return
    # atomic: an interrupted write never leaves a half file where a good one was
    with atomic_write(path, "wb") as f:
        _write_rows(f, X, Y, x_indptr, y_indptr, header_line, feature_offset)


def _write_rows(f, X, Y, x_indptr, y_indptr, header_line, feature_offset):
    # scipy may hold int64 indices (a wide matrix, a concatenation); ids fit int32
    x_indices = X.indices.astype(np.int32, copy=False)
    y_indices = Y.indices.astype(np.int32, copy=False)
    if header_line:
        f.write(f"{X.shape[0]} {X.shape[1]} {Y.shape[1]}\n".encode())
    for start in range(0, X.shape[0], _WRITE_BLOCK_ROWS):
        stop = min(start + _WRITE_BLOCK_ROWS, X.shape[0])
        size = ((x_indptr[stop] - x_indptr[start]) * _io.MAX_FEATURE_CHARS
                + (y_indptr[stop] - y_indptr[start]) * _io.MAX_LABEL_CHARS
                + (stop - start) * _io.MAX_LINE_EXTRA)
        out = np.empty(max(int(size), 1), dtype=np.uint8)
        n = _io.format_rows(x_indptr, x_indices, X.data, y_indptr, y_indices,
                            start, stop, feature_offset, out)
        f.write(memoryview(out)[:n])


def save_xc(path, X, Y, header=True):
    """Write features and labels in the Extreme Classification Repository text format.

    Each value is written as the shortest plain decimal (6 to 9
    significant digits) that reads back as the same float32, so
    ``load_xc(save_xc(...))`` returns identical matrices.

    Parameters
    ----------
    path : str or os.PathLike
    X : sparse matrix or 2-D array, shape (n_samples, n_features)
        Converted with :func:`check_features` (float32: values of a float64
        ``X`` are rounded to float32).
    Y : labels accepted by :func:`labels_to_csr`
    header : bool, default True
        Write the ``N D L`` header line first.
    """
    _write(path, X, Y, header, 0)


def save_libsvm(path, X, Y, zero_based=False):
    """Write a multi-label libsvm file (no header), one-based feature ids by default.

    One-based ids (libsvm's convention) also make ``load_libsvm``'s
    ``zero_based="auto"`` read the file back correctly even when feature 0
    never occurs.
    """
    if not isinstance(zero_based, (bool, np.bool_)):
        raise ValueError(f"zero_based must be True or False, got {zero_based!r}")
    _write(path, X, Y, False, 0 if zero_based else 1)


def write_topk(out, ids, scores):
    """Top-k predictions as text on ``out``: one line per row, ``label:score``
    pairs best first (scores as ``%.6g``), an id of -1 (an empty slot) left out."""
    for row_ids, row_scores in zip(ids, scores):
        keep = row_ids >= 0
        out.write(" ".join(f"{i}:{s:.6g}" for i, s in
                           zip(row_ids[keep].tolist(), row_scores[keep].tolist())))
        out.write("\n")


def read_split(path, column=0):
    """Row indices of one split from an XC repository ``trSplit`` / ``tstSplit`` file.

    Those files hold one column per random split, white-space separated,
    with 1-based row numbers into the full data file.

    Parameters
    ----------
    path : str or os.PathLike
    column : int, default 0
        Which split (0-based column).

    Returns
    -------
    numpy.ndarray of int64
        0-based row indices.
    """
    if not _is_int(column) or column < 0:
        raise ValueError(f"column must be a non-negative int, got {column!r}")
    buffer, name = _read_bytes(path)
    values = []
    n_columns = None
    for line_number, line in enumerate(buffer.decode("utf-8", "replace").splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if n_columns is None:
            n_columns = len(tokens)
            if column >= n_columns:
                raise ValueError(f"{name} has {n_columns} split column(s); column={column} "
                                 f"is out of range")
        elif len(tokens) != n_columns:
            raise XCFormatError(f"{name}, line {line_number}: expected {n_columns} columns, "
                                f"got {len(tokens)}")
        token = tokens[column]
        if not token.isdigit() or int(token) < 1:
            raise XCFormatError(f"{name}, line {line_number}: expected a 1-based row number, "
                                f"got {token!r}")
        values.append(int(token))
    if n_columns is None:
        raise XCFormatError(f"{name}: empty split file")
    return np.asarray(values, dtype=np.int64) - 1


def load_xc_split(data_path, train_split_path, test_split_path=None, column=0, **load_kwargs):
    """Load an XC repository data file and cut it with its split files.

    Parameters
    ----------
    data_path : str or os.PathLike
        The full data file (e.g. ``Bibtex_data.txt``), read with
        :func:`load_xc` (extra keyword arguments are passed on).
    train_split_path : str or os.PathLike
        Its ``trSplit`` file.
    test_split_path : str or os.PathLike, optional
        Its ``tstSplit`` file. Default: the test part is every row not in
        the training split.
    column : int, default 0
        Which of the random splits to use.

    Returns
    -------
    X_train, Y_train, X_test, Y_test : scipy.sparse.csr_matrix
    """
    X, Y = load_xc(data_path, **load_kwargs)
    train = read_split(train_split_path, column)
    if test_split_path is None:
        mask = np.ones(X.shape[0], dtype=bool)
        mask[train[train < X.shape[0]]] = False
        test = np.flatnonzero(mask)
    else:
        test = read_split(test_split_path, column)
    for split, path in ((train, train_split_path), (test, test_split_path)):
        if split.size and split.max() >= X.shape[0]:
            raise ValueError(f"{path} refers to row {int(split.max()) + 1} but {data_path} has "
                             f"only {X.shape[0]} rows")
    return X[train], Y[train], X[test], Y[test]


def read_labelled(path, file_format="xc", n_features=None, n_labels=None, strict_rows=True,
                  what="data", warn_widths=False):
    """Read a labelled XC or libsvm file for training or scoring, with the
    checks a user's file needs.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    file_format : {"xc", "libsvm"}
        Read with :func:`load_xc` or :func:`load_libsvm`.
    n_features, n_labels : int, optional
        Widths of the returned matrices (a model's): an id beyond them is an
        error naming its line. Default: the file's own.
    strict_rows : bool
        XC only: False loads the rows present when the header's row count
        differs from the file's data lines.
    what : str
        What the file is, for the messages ("training", "test", ...).
    warn_widths : bool
        Warn (``UserWarning``) when an XC header declares other widths than
        ``n_features`` and ``n_labels``: such a file loads when its ids fit,
        and a model scores it near 0 with no other sign.

    Returns
    -------
    X, Y : scipy.sparse.csr_matrix

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        When ``path`` does not exist or is a folder.
    RowCountError
        When ``strict_rows`` and the XC header's row count is wrong.
    XCFormatError
        When the file has no feature column (a network needs one input
        feature), or is not in the format.
    """
    if file_format not in ("xc", "libsvm"):
        raise ValueError(f"file_format must be 'xc' or 'libsvm', got {file_format!r}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file {os.fspath(path)!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} file {os.fspath(path)!r} is a directory")
    if file_format == "xc":
        X, Y = load_xc(path, n_features=n_features, n_labels=n_labels, strict_rows=strict_rows)
    else:
        X, Y = load_libsvm(path, n_features=n_features, n_labels=n_labels)
    if X.shape[1] == 0:
        raise XCFormatError(f"{what} file {os.fspath(path)}: "
                            f"{why_no_features(path, file_format)}; a network needs at least "
                            f"one input feature")
    message = header_mismatch(path, n_features, n_labels) \
        if warn_widths and file_format == "xc" else None
    if message:
        warnings.warn(message, UserWarning, stacklevel=2)
    return X, Y


def read_labelled_files(paths, file_format="xc", strict_rows=True):
    """Read labelled files that go together (training, test, validation),
    every one widened to the widest's features and labels.

    Parameters
    ----------
    paths : dict
        ``{what: path}``, e.g. ``{"training": "train.txt", "test": "test.txt"}``;
        ``what`` names the file in messages, as in :func:`read_labelled`.
    file_format, strict_rows
        As in :func:`read_labelled`.

    Returns
    -------
    dict
        ``{what: (X, Y)}`` in the order of ``paths``, all with the same widths.
    """
    read = {what: read_labelled(path, file_format, strict_rows=strict_rows, what=what)
            for what, path in paths.items()}
    n_features = max([X.shape[1] for X, _ in read.values()], default=0)
    n_labels = max([Y.shape[1] for _, Y in read.values()], default=0)
    return {what: (_widened(X, n_features), _widened(Y, n_labels))
            for what, (X, Y) in read.items()}


def _widened(M, n_columns):
    """M with ``n_columns`` columns (the ids it holds are all below its own width)."""
    if M.shape[1] == n_columns:
        return M
    return sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], n_columns))
