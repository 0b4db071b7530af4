"""Ranking metrics for extreme classification (P@k, nDCG@k, PSP@k); imports data (never the model).

All functions take the top-k predictions as an ``(n_samples, k_max)``
integer array, best label first, where ``-1`` means "no prediction" (it never
counts as a hit), and the true labels as a 0/1 indicator (anything
:func:`pyslide.data.labels_to_csr` accepts). Scores are means over samples.
"""
import numpy as np

from .checks import labels_to_csr

__all__ = ["precision_at_k", "ndcg_at_k", "psp_at_k", "propensities", "evaluate_topk"]


def _check_topk(topk_ids, name="topk_ids"):
    ids = np.asarray(topk_ids)
    if ids.dtype == object or not (np.issubdtype(ids.dtype, np.integer) or ids.size == 0):
        raise TypeError(f"{name} must be an integer array of label ids, got dtype {ids.dtype}")
    if ids.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, k), ranked best first, "
                         f"got shape {ids.shape}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and ids.min() < -1:
        raise ValueError(f"{name} holds {int(ids.min())}; label ids must be >= 0 "
                         f"(or -1 for 'no prediction')")
    if ids.shape[1] > 1:
        ordered = np.sort(ids, axis=1)
        repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
        if repeated.any():
            row = int(np.argmax(repeated.any(axis=1)))
            label = int(ordered[row, 1:][repeated[row]][0])
            raise ValueError(f"{name} row {row} lists label {label} more than once")
    return ids


def _check_k(k, k_max, name="k"):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    if k > k_max:
        raise ValueError(f"{name}={k} but topk_ids has only {k_max} column(s); predict at "
                         f"least {k} labels per sample")
    return int(k)


def _prepare(topk_ids, Y):
    """Validated ids, indicator, and the (n, k_max) boolean hit matrix."""
    ids = _check_topk(topk_ids)
    Y = labels_to_csr(Y, name="Y")
    if ids.shape[0] != Y.shape[0]:
        raise ValueError(f"topk_ids has {ids.shape[0]} rows but Y has {Y.shape[0]}; "
                         f"they must describe the same samples")
    if ids.shape[0] == 0:
        raise ValueError("topk_ids and Y have no rows: nothing to evaluate")
    if ids.size and ids.max() >= Y.shape[1]:
        raise ValueError(f"topk_ids holds label id {int(ids.max())} but Y has only "
                         f"{Y.shape[1]} labels")
    return ids, Y, _hits(ids, Y)


def _hits(ids, Y):
    """hits[i, j]: is ids[i, j] one of sample i's labels.

    Every (row, label) pair becomes one int64 key ``row * n_labels + label``;
    the indicator's keys are already sorted (CSR rows in order, sorted
    indices), so membership is one ``searchsorted``.
    """
    n, n_labels = Y.shape
    width = np.int64(max(n_labels, 1))
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(Y.indptr))
    true_keys = rows * width + Y.indices
    query = np.arange(n, dtype=np.int64)[:, None] * width + ids
    if true_keys.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    where = np.searchsorted(true_keys, query)
    np.minimum(where, true_keys.size - 1, out=where)
    return (true_keys[where] == query) & (ids >= 0)


def _discounts(k):
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _precision(hits, k):
    return float(hits[:, :k].sum(axis=1).mean() / k)


def _ndcg(hits, n_true, k):
    discounts = _discounts(k)
    dcg = hits[:, :k] @ discounts
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_true, k)]
    scores = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return float(scores.mean())


def _psp(ids, hits, Y, k, inverse_propensity, normalize):
    weights = np.where(hits[:, :k], inverse_propensity[np.maximum(ids[:, :k], 0)], 0.0)
    predicted = weights.sum(axis=1).mean() / k
    if not normalize:
        return float(predicted)
    # best attainable: each sample's own labels with the k largest weights
    n = Y.shape[0]
    true_weights = inverse_propensity[Y.indices]
    rows = np.repeat(np.arange(n), np.diff(Y.indptr))
    order = np.lexsort((-true_weights, rows))
    rank = np.arange(Y.nnz) - np.repeat(Y.indptr[:-1], np.diff(Y.indptr))
    best = np.bincount(rows[order][rank < k], weights=true_weights[order][rank < k],
                       minlength=n).mean() / k
    return float(predicted / best) if best > 0 else 0.0


def _check_propensities(values, n_labels):
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 1 or p.shape[0] != n_labels:
        raise ValueError(f"propensities must be a 1-D array with one value per label "
                         f"({n_labels}), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("propensities must be finite and > 0")
    return 1.0 / p


def precision_at_k(topk_ids, Y, k):
    """Precision at k: ``|top-k ∩ y| / k``, averaged over samples.

    Parameters
    ----------
    topk_ids : array-like of int, shape (n_samples, k_max)
        Predicted label ids, best first; ``-1`` for "no prediction".
    Y : 0/1 indicator or labels accepted by :func:`pyslide.data.labels_to_csr`
        True labels, shape (n_samples, n_labels).
    k : int
        Cut-off, ``1 <= k <= k_max``.

    Returns
    -------
    float
    """
    ids, Y, hits = _prepare(topk_ids, Y)
    return _precision(hits, _check_k(k, ids.shape[1]))


def ndcg_at_k(topk_ids, Y, k):
    """Normalised discounted cumulative gain at k, averaged over samples.

    ``DCG@k = sum_{j<k} hit_j / log2(j + 2)`` and ``IDCG@k`` is the DCG of
    a perfect ranking, over ``min(k, |y|)`` positions. A sample without
    any true label scores 0 (and still counts in the mean).

    Parameters
    ----------
    topk_ids, Y, k
        As :func:`precision_at_k`.

    Returns
    -------
    float
    """
    ids, Y, hits = _prepare(topk_ids, Y)
    return _ndcg(hits, np.diff(Y.indptr), _check_k(k, ids.shape[1]))


def psp_at_k(topk_ids, Y, k, propensities, normalize=False):
    """Propensity-scored precision at k (Jain, Prabhu and Varma, KDD 2016).

    ``PSP@k = (1/k) sum_{j<k} hit_j / p_{l_j}``, averaged over samples:
    rare labels (small propensity ``p``) are worth more, so it rewards
    getting the tail right.

    Parameters
    ----------
    topk_ids, Y, k
        As :func:`precision_at_k`.
    propensities : array-like of float, shape (n_labels,)
        Each label's propensity in (0, 1], e.g. from :func:`propensities`
        computed on the training labels.
    normalize : bool, default False
        Divide by the PSP@k of the best possible predictions (each sample's
        true labels with the largest ``1/p``), computed over the whole set
        as a ratio of means — the form the XC repository reports (as a
        percentage). The unnormalised form can exceed 1.

    Returns
    -------
    float
    """
    ids, Y, hits = _prepare(topk_ids, Y)
    k = _check_k(k, ids.shape[1])
    return _psp(ids, hits, Y, k, _check_propensities(propensities, Y.shape[1]), normalize)


def propensities(Y_train, A=0.55, B=1.5):
    """Label propensities from training-label frequencies (Jain et al., 2016).

    ``p_l = 1 / (1 + C (N_l + B)^(-A))`` with ``C = (log N - 1)(B + 1)^A``,
    where ``N`` is the number of training samples and ``N_l`` the number
    with label ``l``. The defaults A=0.55, B=1.5 are the generic values;
    the XC repository uses A=0.5, B=0.4 for Amazon datasets and A=0.6,
    B=2.6 for Wikipedia datasets.

    Parameters
    ----------
    Y_train : labels accepted by :func:`pyslide.data.labels_to_csr`
    A, B : float
        The model's constants (``A > 0``, ``B >= 0``).

    Returns
    -------
    numpy.ndarray of float64, shape (n_labels,)
        Values in (0, 1); unseen labels get the smallest propensity.
    """
    for name, value, low in (("A", A, 0.0), ("B", B, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value < low or (name == "A" and value == 0):
            raise ValueError(f"{name} must be a finite number {'> 0' if name == 'A' else '>= 0'}, "
                             f"got {value!r}")
    Y = labels_to_csr(Y_train, name="Y_train")
    n = Y.shape[0]
    if n < 1:
        raise ValueError("Y_train has no rows")
    counts = np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.float64)
    C = (np.log(n) - 1.0) * (B + 1.0) ** A
    return 1.0 / (1.0 + C * np.power(counts + B, -A))


def evaluate_topk(topk_ids, Y, ks=(1, 3, 5), propensities=None):
    """Every metric at every cut-off in one pass.

    Parameters
    ----------
    topk_ids, Y
        As :func:`precision_at_k`; ``topk_ids`` needs ``max(ks)`` columns.
    ks : sequence of int, default (1, 3, 5)
    propensities : array-like of float, shape (n_labels,), optional
        When given, adds ``"psp@k"`` (unnormalised) and ``"psp_norm@k"``
        (normalised, see :func:`psp_at_k`).

    Returns
    -------
    dict
        ``{"p@1": ..., "ndcg@1": ..., "p@3": ..., ...}`` with float values,
        plus ``"psp@k"`` / ``"psp_norm@k"`` keys when ``propensities`` is
        given.
    """
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    ks = tuple(ks)
    if not ks:
        raise ValueError("ks must list at least one cut-off")
    ids, Y, hits = _prepare(topk_ids, Y)
    ks = [_check_k(k, ids.shape[1], name="ks") for k in ks]
    inverse = None if propensities is None else _check_propensities(propensities, Y.shape[1])
    n_true = np.diff(Y.indptr)
    result = {}
    for k in ks:
        result[f"p@{k}"] = _precision(hits, k)
        result[f"ndcg@{k}"] = _ndcg(hits, n_true, k)
        if inverse is not None:
            result[f"psp@{k}"] = _psp(ids, hits, Y, k, inverse, False)
            result[f"psp_norm@{k}"] = _psp(ids, hits, Y, k, inverse, True)
    return result
