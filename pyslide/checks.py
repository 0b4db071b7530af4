"""Input checks: features and labels in, canonical float32 CSR out; imports _validate only (never the model).

:func:`check_features` is the one check of feature matrices (the
estimators, the file writers and the hash families call it);
:func:`labels_to_csr` the one of labels (an indicator, label lists or
class ids).
"""
import numpy as np
import scipy.sparse as sp

from ._validate import integer

__all__ = ["check_features", "labels_to_csr", "non_finite_error"]


def _is_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _check_count(value, name):
    """``None`` or a positive int (TypeError for another type, ValueError below 1)."""
    return integer(value, name, 1, none_ok=True)


def _canonical_csr(M, n_columns):
    """float32 CSR with int32 indices, sorted and summed duplicates, width ``n_columns``."""
    M = M.tocsr()
    if not M.has_canonical_format:
        # Sorted indices make sparse sums add in the dense order; duplicates
        # are summed in the input's precision, as toarray() sums them.
        M = M.copy()
        M.sum_duplicates()
    if M.dtype != np.float32:
        M = M.astype(np.float32)
    if M.indices.dtype != np.int32 or M.indptr.dtype != np.int32:
        if M.nnz < 2**31:
            M = sp.csr_matrix((M.data, M.indices.astype(np.int32), M.indptr.astype(np.int32)),
                              shape=M.shape)
            M.has_canonical_format = True
    if n_columns != M.shape[1]:
        M = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], n_columns))
        M.has_canonical_format = True
    return M


def check_features(X, n_features=None, name="X", *, accept="any", widen=True,
                   check_finite=True, expected_by="the model"):
    """Validate features and convert them to float32 rows the kernels read.

    The one check of feature matrices: the estimators, the file writers and
    the hash families all call it (as scikit-learn's ``check_array``).

    Parameters
    ----------
    X : scipy.sparse matrix or array-like, shape (n_samples, n_features)
        Any SciPy sparse format (CSR, CSC, COO, ...) or a dense 2-D array.
    n_features : int, optional
        The width the caller expects. A dense ``X`` must have exactly this
        many columns; a sparse ``X`` may be narrower (it is widened: the
        missing features are zero, as when a test file has no header) but
        not wider, unless ``widen=False``.
    name : str, default "X"
        The argument name used in error messages.
    accept : {"any", "sparse", "dense"}, default "any"
        ``"any"``: sparse or dense in, CSR out. ``"sparse"``: a SciPy
        sparse matrix only, CSR out. ``"dense"``: a dense array only, a
        float32 C-contiguous ``ndarray`` out.
    widen : bool, default True
        Whether a narrower sparse ``X`` is widened to ``n_features``.
    check_finite : bool, default True
        ``False`` leaves the NaN / inf scan to the caller (e.g. a
        multi-threaded one over a large dense array; see
        :func:`non_finite_error`).
    expected_by : str, default "the model"
        Who expects ``n_features``, for the width error's message.

    Returns
    -------
    scipy.sparse.csr_matrix or numpy.ndarray
        CSR: float32 values, int32 indices, sorted within rows, duplicate
        entries summed. A matrix already in that form is returned as is (no
        copy). Dense (``accept="dense"``): float32, C order.

    Raises
    ------
    TypeError
        If ``X`` is not numeric, or sparse where ``accept="dense"`` (dense
        where ``accept="sparse"``).
    ValueError
        If ``X`` is not 2-D, has the wrong width, or holds NaN or inf.
    """
    n_features = _check_count(n_features, "n_features")
    if accept not in ("any", "sparse", "dense"):
        raise ValueError(f"accept must be 'any', 'sparse' or 'dense', got {accept!r}")
    if sp.issparse(X):
        if accept == "dense":
            raise TypeError(f"{name} is a sparse matrix; pass a dense array (or use the "
                            f"sparse variant of this call, e.g. hash_sparse)")
        X = _sparse_rows(X, n_features, name, widen, expected_by)
        values = X.data
    elif accept == "sparse":
        raise TypeError(f"{name} must be a scipy.sparse matrix, got {type(X).__name__}")
    else:
        X = _dense_rows(X, n_features, name, expected_by, accept == "any")
        values = X.reshape(-1)
        if accept == "any":
            X = _canonical_csr(sp.csr_matrix(X), X.shape[1])
            values = X.data
    if check_finite and not np.all(np.isfinite(values)):
        raise non_finite_error(values, name)
    return X


def non_finite_error(values, name):
    """The ValueError for ``values`` holding NaN or inf (counted, and named)."""
    bad = int(np.count_nonzero(~np.isfinite(values)))
    return ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")


def _real_dtype(dtype):
    return (np.issubdtype(dtype, np.number) or dtype == bool) and not np.issubdtype(
        dtype, np.complexfloating)


def _width_error(name, width, n_features, expected_by):
    return ValueError(f"{name} has {width} features (columns) but {expected_by} expects "
                      f"n_features={n_features}")


def _sparse_rows(X, n_features, name, widen, expected_by):
    """Canonical float32 CSR of a SciPy sparse ``X`` (not yet checked for NaN / inf)."""
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if not _real_dtype(X.dtype):
        raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
    if n_features is not None and (X.shape[1] > n_features
                                   or (not widen and X.shape[1] != n_features)):
        raise _width_error(name, X.shape[1], n_features, expected_by)
    return _canonical_csr(X, X.shape[1] if n_features is None else n_features)


def _dense_rows(X, n_features, name, expected_by, sparse_too):
    """float32 C-contiguous 2-D array of a dense ``X`` (not yet checked for NaN / inf)."""
    either = "a SciPy sparse matrix or " if sparse_too else ""
    try:
        dense = np.asarray(X)
    except Exception as error:  # ragged lists and the like
        raise TypeError(f"{name} must be {either}a 2-D array, "
                        f"got {type(X).__name__} ({error})") from None
    if dense.dtype == object or not (np.issubdtype(dense.dtype, np.number)
                                     or dense.dtype == bool):
        raise TypeError(f"{name} must be {either}a numeric 2-D array, "
                        f"got {type(X).__name__} with dtype {dense.dtype}")
    if np.issubdtype(dense.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {dense.dtype}")
    if dense.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {dense.shape}")
    if n_features is not None and dense.shape[1] != n_features:
        raise _width_error(name, dense.shape[1], n_features, expected_by)
    return np.ascontiguousarray(dense, dtype=np.float32)


def labels_to_csr(labels, n_labels=None, name="Y"):
    """Turn labels into a float32 CSR 0/1 indicator with int32 sorted indices.

    Parameters
    ----------
    labels : sparse matrix, 2-D array, list of label lists, or 1-D int array
        * a SciPy sparse or dense 2-D 0/1 indicator ``(n_samples, n_labels)``
          (explicitly stored zeros are dropped);
        * a sequence with one list (or array) of label ids per sample
          (multi-label; repeated ids count once; an empty list is allowed);
        * a 1-D integer array or list of ints, one class id per sample
          (multi-class).
    n_labels : int, optional
        Number of labels. Default: the indicator's width, or the largest id
        plus one. A sparse indicator may be narrower (it is widened) but
        not wider.
    name : str, default "Y"
        The argument name used in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_samples, n_labels)

    Raises
    ------
    TypeError
        For an unsupported type or non-integer ids.
    ValueError
        For negative ids, ids >= ``n_labels``, values other than 0/1 in an
        indicator, or a wrong number of dimensions.
    """
    n_labels = _check_count(n_labels, "n_labels")
    if sp.issparse(labels) or (isinstance(labels, np.ndarray) and labels.ndim == 2):
        if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == bool):
            raise TypeError(f"{name} must be a numeric 0/1 indicator, got dtype {labels.dtype}")
        M = labels if sp.issparse(labels) else sp.csr_matrix(labels)
        if M.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_labels), got shape {M.shape}")
        if n_labels is not None and M.shape[1] > n_labels:
            raise ValueError(f"{name} has {M.shape[1]} label columns but n_labels={n_labels}")
        if (sp.isspmatrix_csr(M) and M.dtype == np.float32 and M.indices.dtype == np.int32
                and M.indptr.dtype == np.int32 and (n_labels is None or n_labels == M.shape[1])
                and M.has_canonical_format and np.all(M.data == 1)):
            return M   # already what we would build: no copy
        M = M.tocsr(copy=True)
        M.eliminate_zeros()
        if M.nnz and not np.all(M.data == 1):
            raise ValueError(f"{name} must be a 0/1 label indicator; it holds values other "
                             f"than 0 and 1")
        return _canonical_csr(M, M.shape[1] if n_labels is None else n_labels)
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype != object:
        return _multiclass_to_csr(labels, n_labels, name)
    if isinstance(labels, np.ndarray) and labels.ndim not in (1, 2):
        raise ValueError(f"{name} must be a 2-D indicator, a 1-D array of class ids or a list "
                         f"of label lists, got an array of shape {labels.shape}")
    if isinstance(labels, (str, bytes)) or not hasattr(labels, "__len__"):
        raise TypeError(f"{name} must be a sparse or dense 0/1 indicator, a list of label lists "
                        f"or a 1-D int array, got {type(labels).__name__}")
    rows = list(labels)
    if all(_is_int(r) for r in rows):
        return _multiclass_to_csr(np.asarray(rows, dtype=np.int64), n_labels, name)
    lengths = np.zeros(len(rows), dtype=np.int64)
    parts = []
    for i, row in enumerate(rows):
        if _is_int(row) or isinstance(row, (str, bytes)) or not hasattr(row, "__len__"):
            raise TypeError(f"{name}[{i}] must be a list of label ids (mixing lists and single "
                            f"ids is ambiguous), got {row!r}")
        ids = np.asarray(row)
        if ids.size and (ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer)):
            raise TypeError(f"{name}[{i}] must be a flat list of integer label ids, got {row!r}")
        lengths[i] = ids.size
        parts.append(ids.astype(np.int64, copy=False).ravel())
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if flat.size and flat.min() < 0:
        i = int(np.searchsorted(np.cumsum(lengths), int(np.argmax(flat < 0)), side="right"))
        raise ValueError(f"{name}[{i}] holds a negative label id; ids must be >= 0")
    _check_label_range(flat, lengths, n_labels, name)
    width = n_labels if n_labels is not None else (int(flat.max()) + 1 if flat.size else 0)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    M = sp.csr_matrix((np.ones(flat.size, dtype=np.float32), flat, indptr),
                      shape=(len(rows), width))
    M.sum_duplicates()
    M.data[:] = 1.0
    return _canonical_csr(M, width)


def _check_label_range(flat, lengths, n_labels, name):
    if n_labels is not None and flat.size and flat.max() >= n_labels:
        i = int(np.searchsorted(np.cumsum(lengths), int(np.argmax(flat >= n_labels)),
                                side="right"))
        raise ValueError(f"{name}[{i}] holds label id {int(flat.max())} but n_labels={n_labels}; "
                         f"ids must be < n_labels")


def _multiclass_to_csr(ids, n_labels, name):
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"{name} as a 1-D array must hold integer class ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and ids.min() < 0:
        i = int(np.argmax(ids < 0))
        raise ValueError(f"{name}[{i}] is a negative class id ({int(ids[i])}); ids must be >= 0")
    _check_label_range(ids, np.ones(ids.size, dtype=np.int64), n_labels, name)
    width = n_labels if n_labels is not None else (int(ids.max()) + 1 if ids.size else 0)
    return sp.csr_matrix((np.ones(ids.size, dtype=np.float32), ids.astype(np.int32),
                          np.arange(ids.size + 1, dtype=np.int32)), shape=(ids.size, width))
