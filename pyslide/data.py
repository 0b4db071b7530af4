"""Data: synthetic XC problems, XC / libsvm text files, label helpers; imports _io, _openmp, _validate and atomic (never the model).

Everything here returns ``scipy.sparse.csr_matrix`` objects with float32
values and int32 indices: features ``X`` (``n_samples x n_features``) and a
0/1 label indicator ``Y`` (``n_samples x n_labels``).
"""
import contextlib
import gzip
import mmap
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from . import _io
from ._openmp import resolve_threads
from ._validate import integer
from .atomic import atomic_write

__all__ = [
    "make_xc", "PRESETS", "load_xc", "save_xc", "load_libsvm", "save_libsvm",
    "read_split", "load_xc_split", "labels_to_csr", "check_features", "XCFormatError",
    "RowCountError",
]


# ---------------------------------------------------------------------------
# Synthetic XC problems
# ---------------------------------------------------------------------------

# Shapes of the Extreme Classification Repository's datasets (feature and
# label counts, mean non-zero features and labels per point, training set
# size), plus the latent structure that makes labels learnable from features.
# ``n_train`` is the real training-set size, for reference only; the default
# ``n_samples`` is much smaller so a casual call stays cheap.
PRESETS = {
    "small": dict(
        n_features=5_000, n_labels=1_000, nnz=40.0, labels_per_point=3.0,
        n_samples=2_000, n_train=2_000,
        n_groups=50, group_vocabulary=400, group_labels=60,
        feature_noise=0.15, label_noise=0.10, mix_probability=0.3,
        group_label_exponent=1.2,
    ),
    "delicious": dict(
        n_features=782_585, n_labels=205_443, nnz=301.2, labels_per_point=75.5,
        n_samples=20_000, n_train=196_606,
        n_groups=1_000, group_vocabulary=4_000, group_labels=1_500,
        feature_noise=0.20, label_noise=0.15, mix_probability=0.3,
        group_label_exponent=0.57,
    ),
    "amazon": dict(
        n_features=135_909, n_labels=670_091, nnz=75.7, labels_per_point=5.45,
        n_samples=20_000, n_train=490_449,
        n_groups=5_000, group_vocabulary=800, group_labels=400,
        feature_noise=0.20, label_noise=0.10, mix_probability=0.3,
        group_label_exponent=1.2,
    ),
    "wiki": dict(
        n_features=1_617_899, n_labels=325_056, nnz=42.2, labels_per_point=3.19,
        n_samples=20_000, n_train=1_778_351,
        n_groups=5_000, group_vocabulary=600, group_labels=200,
        feature_noise=0.20, label_noise=0.10, mix_probability=0.3,
        group_label_exponent=1.2,
    ),
}

# Zipf exponents: of the global feature / label popularity (noise draws),
# of the law groups pick their vocabulary / label set from (flatter, so a
# group's ids are mostly its own), of the ranks inside a group's vocabulary,
# and of group popularity. The exponent of the ranks inside a group's label
# set is per preset (``group_label_exponent``): it sets how predictable a
# point's labels are once its group is known, i.e. the difficulty. On
# "delicious" (75 labels per point, so a flat law) it was tuned until a
# cosine 10-NN classifier on 20,000 points reached P@1 0.43, near the real
# dataset's best published 0.47. The other presets have few labels per point
# and a steeper law; the same 10-NN gets P@1 0.37 ("amazon") and 0.22
# ("wiki") from 20,000 points (5,000 groups: few points per group), and 0.37
# on "small" from 2,000.
_GLOBAL_FEATURE_EXPONENT = 1.0
_GLOBAL_LABEL_EXPONENT = 0.7
_SELECT_FEATURE_EXPONENT = 0.5
_SELECT_LABEL_EXPONENT = 0.5
_GROUP_FEATURE_EXPONENT = 1.0
_GROUP_POPULARITY_EXPONENT = 0.6
# Rows are generated in blocks so temporary token arrays stay small.
_BLOCK_ROWS = 8_192


def _zipf_ranks(u, size, exponent):
    """Map uniforms ``u`` to ranks in ``[0, size)`` with P(rank) ~ (rank+1)^-exponent.

    Inverts the CDF of the continuous power law on ``[1, size + 1)``: no
    table lookups, so it costs the same for ten ranks as for a million.
    """
    if abs(exponent - 1.0) < 1e-9:
        # float64: NumPy's float32 exp is several times slower here
        x = np.exp(u.astype(np.float64) * np.log(size + 1.0))
    else:
        a = 1.0 - exponent
        x = np.power(1.0 + u * ((size + 1.0) ** a - 1.0), 1.0 / a)
    ranks = x.astype(np.int64)
    ranks -= 1
    np.clip(ranks, 0, size - 1, out=ranks)
    return ranks


def _zipf_rank_probabilities(size, exponent):
    """Probability of each rank under :func:`_zipf_ranks`."""
    edges = np.arange(1, size + 2, dtype=np.float64)
    if abs(exponent - 1.0) < 1e-9:
        cdf = np.log(edges) / np.log(size + 1.0)
    else:
        a = 1.0 - exponent
        cdf = (edges ** a - 1.0) / ((size + 1.0) ** a - 1.0)
    return np.diff(cdf)


def _counts_per_point(rng, n, mean, minimum, dispersion=2.0):
    """Per-point counts: ``minimum`` plus a negative binomial with the right mean.

    The gamma-Poisson mixture gives the right-skewed spread real XC data
    show (a few points with many features or labels).
    """
    excess = max(mean - minimum, 1e-6)
    p = dispersion / (dispersion + excess)
    return minimum + rng.negative_binomial(dispersion, p, size=n)


class _Model:
    """The latent structure shared by every point of one ``make_xc`` call."""

    def __init__(self, rng, n_features, n_labels, n_groups, group_vocabulary,
                 group_labels, feature_noise, label_noise, mix_probability,
                 group_label_exponent):
        self.n_features = n_features
        self.n_labels = n_labels
        self.n_groups = n_groups
        self.feature_noise = feature_noise
        self.label_noise = label_noise
        self.mix_probability = mix_probability
        self.group_label_exponent = group_label_exponent
        self.group_vocabulary = min(group_vocabulary, n_features)
        self.group_labels = min(group_labels, n_labels)
        # Global popularity order of ids: random, so popular ids are spread
        # over the id range as in real data.
        self.feature_order = rng.permutation(n_features).astype(np.int32)
        self.label_order = rng.permutation(n_labels).astype(np.int32)
        self.group_cdf = np.cumsum(_zipf_rank_probabilities(n_groups, _GROUP_POPULARITY_EXPONENT))
        self.group_cdf /= self.group_cdf[-1]
        # Each group picks its vocabulary / label set from the global
        # popularity law (so popular ids are shared by many groups) and ranks
        # them in its own random order: a group's most frequent words are its
        # own, which is what makes the group recognisable from features.
        self.vocabulary = self.feature_order[_zipf_ranks(
            rng.random((n_groups, self.group_vocabulary)), n_features,
            _SELECT_FEATURE_EXPONENT)]
        self.label_sets = self.label_order[_zipf_ranks(
            rng.random((n_groups, self.group_labels)), n_labels,
            _SELECT_LABEL_EXPONENT)]

    def draw_groups(self, rng, n):
        """Main group, second group and the share of tokens from the second."""
        first = np.searchsorted(self.group_cdf, rng.random(n), side="right")
        second = np.searchsorted(self.group_cdf, rng.random(n), side="right")
        np.minimum(first, self.n_groups - 1, out=first)
        np.minimum(second, self.n_groups - 1, out=second)
        share = rng.uniform(0.1, 0.5, size=n)
        share[rng.random(n) >= self.mix_probability] = 0.0
        return first, second, share

    def draw_tokens(self, rng, counts, groups, table, noise, n_ids, order,
                    group_exponent, global_exponent):
        """Ids for ``counts[i]`` tokens of each point (duplicates allowed).

        Each point's tokens are laid out as [first group | second group |
        noise]; the split is drawn per point (binomial), so no per-token
        coin flips or per-token group lookups are needed.
        """
        first, second, share = groups
        n_noise = rng.binomial(counts, noise)
        n_second = rng.binomial(counts - n_noise, share)
        n_first = counts - n_noise - n_second
        segment_counts = np.stack([n_first, n_second, n_noise], axis=1).ravel()
        n_group_tokens = int(n_first.sum() + n_second.sum())
        vocabulary_size = table.shape[1]
        group_offsets = np.stack([first, second], axis=1).ravel() * np.int64(vocabulary_size)
        flat_index = np.repeat(group_offsets, np.stack([n_first, n_second], axis=1).ravel())
        flat_index += _zipf_ranks(rng.random(n_group_tokens, dtype=np.float32),
                                  vocabulary_size, group_exponent)
        is_noise = np.repeat(np.tile(np.array([False, False, True]), counts.size),
                             segment_counts)
        ids = np.empty(is_noise.size, dtype=np.int32)
        ids[~is_noise] = np.take(table.ravel(), flat_index)
        ids[is_noise] = np.take(order, _zipf_ranks(
            rng.random(is_noise.size - n_group_tokens, dtype=np.float32), n_ids, global_exponent))
        return ids

    def token_probabilities(self):
        """Probability that one feature token is each feature id."""
        group_p = np.diff(np.concatenate([[0.0], self.group_cdf]))
        rank_p = _zipf_rank_probabilities(self.group_vocabulary, _GROUP_FEATURE_EXPONENT)
        p = np.bincount(self.vocabulary.ravel(),
                        weights=np.outer(group_p, rank_p).ravel(),
                        minlength=self.n_features) * (1.0 - self.feature_noise)
        p[self.feature_order] += self.feature_noise * _zipf_rank_probabilities(
            self.n_features, _GLOBAL_FEATURE_EXPONENT)
        return p


def _csr_from_tokens(counts, ids, n_columns):
    """CSR with one entry per distinct id of a row, valued by its count."""
    indptr = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    m = sp.csr_matrix((np.ones(ids.size, dtype=np.float32), ids.astype(np.int32, copy=False),
                       indptr), shape=(counts.size, n_columns))
    m.sum_duplicates()
    return m


def _calibrate_draws(rng, model, mean, minimum, draw, n_columns):
    """Tokens to draw per wanted distinct id, found on a pilot sample.

    Popular ids repeat within a point, so a point needs more draws than
    distinct ids; the ratio depends on the law, so measure it.
    """
    n_pilot = 512
    scale = 1.0
    target = _counts_per_point(rng, n_pilot, mean, minimum)
    groups = model.draw_groups(rng, n_pilot)
    for _ in range(4):
        counts = np.maximum(np.rint(target * scale).astype(np.int64), minimum)
        m = _csr_from_tokens(counts, draw(rng, counts, groups), n_columns)
        got = np.diff(m.indptr).mean()
        scale *= target.mean() / max(got, 1e-9)
    return scale


def _resolve_preset(preset, overrides):
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    params = dict(PRESETS[preset])
    for name, value in overrides.items():
        if value is not None:
            params[name] = value
    for name in ("n_features", "n_labels", "n_groups", "group_vocabulary", "group_labels"):
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
        params[name] = int(value)
    for name in ("nnz", "labels_per_point"):
        value = params[name]
        if not isinstance(value, (int, float, np.integer, np.floating)) or not value >= 1:
            raise ValueError(f"{name} must be a number >= 1, got {value!r}")
    for name in ("feature_noise", "label_noise", "mix_probability"):
        value = params[name]
        if not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    if params["nnz"] > params["n_features"]:
        raise ValueError(f"nnz ({params['nnz']}) cannot exceed n_features ({params['n_features']})")
    if params["labels_per_point"] > params["n_labels"]:
        raise ValueError(f"labels_per_point ({params['labels_per_point']}) cannot exceed "
                         f"n_labels ({params['n_labels']})")
    return params


def make_xc(preset="small", n_samples=None, n_test=0, *, n_features=None,
            n_labels=None, nnz=None, labels_per_point=None, n_groups=None,
            feature_noise=None, label_noise=None, seed=0, threads=None):
    """Generate a synthetic extreme-classification problem.

    Points come from latent groups. Each group has its own vocabulary (a
    Zipf-ranked subset of the features, popular features shared by many
    groups) and its own label set (Zipf-ranked, popular labels shared). A
    point belongs to one group, or with probability 0.3 mixes in a second
    one; its features come mostly from its groups' vocabularies and its
    labels mostly from their label sets, the rest from the global power-law
    popularity (noise). Feature and label frequencies are therefore
    power-law, and labels are learnable from features, but not trivially:
    a cosine 10-nearest-neighbour classifier trained on 20,000
    ``"delicious"`` points reaches a P@1 of about 0.43 on held-out points
    (0.41-0.46 over seeds; always predicting the most popular label gets
    about 0.12; the real dataset's best published P@1 is about 0.47).

    Parameters
    ----------
    preset : {"small", "delicious", "amazon", "wiki"}
        Shape to imitate: ``"delicious"`` (Delicious-200K: 782,585 features,
        ~301 non-zeros per point, 205,443 labels, ~75.5 labels per point),
        ``"amazon"`` (Amazon-670K: 135,909 / ~75.7; 670,091 / ~5.45),
        ``"wiki"`` (WikiLSHTC-325K: 1,617,899 / ~42.2; 325,056 / ~3.19) or
        ``"small"`` (5,000 / 40; 1,000 / 3) for tests and demos. See
        :data:`PRESETS`.
    n_samples : int, optional
        Training points. Default: the preset's ``n_samples`` (2,000 for
        ``"small"``, 20,000 otherwise; the real training-set size is in
        ``PRESETS[preset]["n_train"]``).
    n_test : int, default 0
        Extra points from the same distribution, returned separately.
    n_features, n_labels : int, optional
        Override the preset's dimensions.
    nnz, labels_per_point : float, optional
        Override the mean number of distinct non-zero features / labels per
        point (every point has at least one of each).
    n_groups : int, optional
        Number of latent groups (more groups: harder problem).
    feature_noise, label_noise : float in [0, 1], optional
        Share of feature / label draws that ignore the point's groups.
    seed : int, default 0
        Seed of NumPy's ``SeedSequence``; the same arguments and seed give
        the same matrices, whatever ``threads`` is.
    threads : int, optional
        Threads drawing blocks of rows (None: the available cores, -1: all).

    Returns
    -------
    X, Y : scipy.sparse.csr_matrix
        When ``n_test == 0``. ``X`` is ``(n_samples, n_features)`` float32
        with positive tf-idf-like values, each row of unit L2 norm; ``Y`` is
        ``(n_samples, n_labels)`` float32 with ones at each point's labels.
        Both have int32 sorted indices without duplicates.
    X, Y, X_test, Y_test : scipy.sparse.csr_matrix
        When ``n_test > 0``: the training part, then ``n_test`` test points.

    Examples
    --------
    >>> X, Y = make_xc("small", n_samples=100)
    >>> X, Y, Xt, Yt = make_xc("delicious", n_samples=20_000, n_test=1_000)
    """
    params = _resolve_preset(preset, dict(
        n_features=n_features, n_labels=n_labels, nnz=nnz,
        labels_per_point=labels_per_point, n_groups=n_groups,
        feature_noise=feature_noise, label_noise=label_noise))
    if n_samples is None:
        n_samples = params["n_samples"]
    for name, value, low in (("n_samples", n_samples, 1), ("n_test", n_test, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    n_samples, n_test = int(n_samples), int(n_test)
    # Independent streams for the model, the calibration and each block of
    # rows: the result does not depend on how many threads draw the blocks.
    n_total = n_samples + n_test
    n_blocks = -(-n_total // _BLOCK_ROWS)
    streams = np.random.SeedSequence(seed).spawn(2 + n_blocks)
    rng = np.random.default_rng(streams[0])
    model = _Model(rng, params["n_features"], params["n_labels"], params["n_groups"],
                   params["group_vocabulary"], params["group_labels"],
                   params["feature_noise"], params["label_noise"], params["mix_probability"],
                   params["group_label_exponent"])

    def draw_features(r, counts, groups):
        return model.draw_tokens(r, counts, groups, model.vocabulary, model.feature_noise,
                                 model.n_features, model.feature_order,
                                 _GROUP_FEATURE_EXPONENT, _GLOBAL_FEATURE_EXPONENT)

    def draw_labels(r, counts, groups):
        return model.draw_tokens(r, counts, groups, model.label_sets, model.label_noise,
                                 model.n_labels, model.label_order,
                                 model.group_label_exponent, _GLOBAL_LABEL_EXPONENT)

    rng = np.random.default_rng(streams[1])
    feature_scale = _calibrate_draws(rng, model, params["nnz"], 1, draw_features,
                                     model.n_features)
    label_scale = _calibrate_draws(rng, model, params["labels_per_point"], 1, draw_labels,
                                   model.n_labels)

    # idf from the model's expected document frequencies, so a point's
    # values do not depend on how many other points are drawn.
    token_p = model.token_probabilities()
    draws_per_point = params["nnz"] * feature_scale
    doc_freq = -np.expm1(-draws_per_point * token_p)
    idf = (np.log((1.0 + 1e6) / (1.0 + 1e6 * doc_freq)) + 1.0).astype(np.float32)

    def block(index):
        r = np.random.default_rng(streams[2 + index])
        n = min(_BLOCK_ROWS, n_total - index * _BLOCK_ROWS)
        groups = model.draw_groups(r, n)
        wanted = _counts_per_point(r, n, params["nnz"], 1)
        counts = np.maximum(np.rint(wanted * feature_scale).astype(np.int64), 1)
        x = _csr_from_tokens(counts, draw_features(r, counts, groups), model.n_features)
        # sublinear tf times idf, then unit rows
        np.log(x.data, out=x.data)
        x.data += 1.0
        x.data *= idf[x.indices]
        norms = np.sqrt(np.add.reduceat(x.data * x.data, x.indptr[:-1]))
        x.data /= np.repeat(norms, np.diff(x.indptr)).astype(np.float32)
        wanted = _counts_per_point(r, n, params["labels_per_point"], 1)
        counts = np.maximum(np.rint(wanted * label_scale).astype(np.int64), 1)
        y = _csr_from_tokens(counts, draw_labels(r, counts, groups), model.n_labels)
        y.data[:] = 1.0
        return x, y

    # NumPy and SciPy release the GIL in the heavy steps (drawing, power,
    # take, per-row sorting), so blocks drawn in threads overlap.
    n_threads = min(resolve_threads(threads), n_blocks)
    if n_threads > 1:
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            parts = list(pool.map(block, range(n_blocks)))
    else:
        parts = [block(i) for i in range(n_blocks)]
    x_parts = [x for x, _ in parts]
    y_parts = [y for _, y in parts]
    del parts
    X = _stack_rows(x_parts, model.n_features)
    Y = _stack_rows(y_parts, model.n_labels)
    if n_test == 0:
        return X, Y
    return (X[:n_samples], Y[:n_samples], X[n_samples:], Y[n_samples:])


def _stack_rows(parts, n_columns):
    """Concatenate CSR blocks row-wise, keeping int32 indices (no re-sorting)."""
    indptr = [np.zeros(1, dtype=np.int64)]
    offset = 0
    for m in parts:
        indptr.append(m.indptr[1:].astype(np.int64) + offset)
        offset += m.indptr[-1]
    indptr = np.concatenate(indptr)
    index_dtype = np.int32 if offset < 2**31 else np.int64
    out = sp.csr_matrix(
        (np.concatenate([m.data for m in parts]).astype(np.float32, copy=False),
         np.concatenate([m.indices for m in parts]).astype(np.int32, copy=False),
         indptr.astype(index_dtype)),
        shape=(indptr.size - 1, n_columns))
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


# ---------------------------------------------------------------------------
# Validation and conversion of features and labels
# ---------------------------------------------------------------------------

def _is_int(value):
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _check_count(value, name):
    """``None`` or a positive int (TypeError for another type, ValueError below 1)."""
    return integer(value, name, 1, none_ok=True)


def _canonical_csr(M, n_columns):
    """float32 CSR with int32 indices, sorted and summed duplicates, width ``n_columns``."""
    M = M.tocsr()
    if M.dtype != np.float32:
        M = M.astype(np.float32)
    if M.indices.dtype != np.int32 or M.indptr.dtype != np.int32:
        if M.nnz < 2**31:
            M = sp.csr_matrix((M.data, M.indices.astype(np.int32), M.indptr.astype(np.int32)),
                              shape=M.shape)
    if not M.has_canonical_format:
        M = M.copy()
        M.sum_duplicates()
    if n_columns != M.shape[1]:
        M = sp.csr_matrix((M.data, M.indices, M.indptr), shape=(M.shape[0], n_columns))
        M.has_canonical_format = True
    return M


def check_features(X, n_features=None, name="X"):
    """Validate features and convert them to float32 CSR with int32 indices.

    Parameters
    ----------
    X : scipy.sparse matrix or array-like, shape (n_samples, n_features)
        Any SciPy sparse format (CSR, CSC, COO, ...) or a dense 2-D array.
    n_features : int, optional
        The width the caller expects. A dense ``X`` must have exactly this
        many columns; a sparse ``X`` may be narrower (it is widened: the
        missing features are zero, as when a test file has no header) but
        not wider.
    name : str, default "X"
        The argument name used in error messages.

    Returns
    -------
    scipy.sparse.csr_matrix
        float32 values, int32 indices, sorted within rows, duplicate entries
        summed. A matrix already in that form is returned as is (no copy).

    Raises
    ------
    TypeError
        If ``X`` is not numeric.
    ValueError
        If ``X`` is not 2-D, has the wrong width, or holds NaN or inf.
    """
    n_features = _check_count(n_features, "n_features")
    if sp.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {X.dtype}")
        if n_features is not None and X.shape[1] > n_features:
            raise ValueError(f"{name} has {X.shape[1]} features (columns) but the model expects "
                             f"n_features={n_features}")
        width = X.shape[1] if n_features is None else n_features
        X = _canonical_csr(X, width)
    else:
        try:
            dense = np.asarray(X)
        except Exception as error:  # ragged lists and the like
            raise TypeError(f"{name} must be a SciPy sparse matrix or a 2-D array, "
                            f"got {type(X).__name__} ({error})") from None
        if dense.dtype == object or not (np.issubdtype(dense.dtype, np.number)
                                         or dense.dtype == bool):
            raise TypeError(f"{name} must be a SciPy sparse matrix or a numeric 2-D array, "
                            f"got {type(X).__name__} with dtype {dense.dtype}")
        if np.issubdtype(dense.dtype, np.complexfloating):
            raise TypeError(f"{name} must hold real numbers, got dtype {dense.dtype}")
        if dense.ndim != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {dense.shape}")
        if n_features is not None and dense.shape[1] != n_features:
            raise ValueError(f"{name} has {dense.shape[1]} features (columns) but the model "
                             f"expects n_features={n_features}")
        X = _canonical_csr(sp.csr_matrix(dense.astype(np.float32, copy=False)), dense.shape[1])
    if not np.all(np.isfinite(X.data)):
        bad = int(np.count_nonzero(~np.isfinite(X.data)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return X


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


# ---------------------------------------------------------------------------
# XC-repository and libsvm text files
# ---------------------------------------------------------------------------

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
