"""Synthetic XC problems (make_xc and its latent model); imports _openmp only (never the model).

``make_xc`` draws features and labels from a latent group structure shaped
like the Extreme Classification Repository's datasets (``PRESETS``), so
that labels are learnable from features. It returns ``scipy.sparse``
CSR matrices with float32 values and int32 indices.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from ._openmp import resolve_threads

__all__ = ["make_xc", "PRESETS"]


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

