"""The synthetic XC generator: shapes, format, determinism, learnability."""
import numpy as np
import pytest
import scipy.sparse as sp

from pyslide.data import PRESETS, make_xc


def check_csr_format(M, n_rows, n_columns):
    assert sp.isspmatrix_csr(M)
    assert M.shape == (n_rows, n_columns)
    assert M.dtype == np.float32
    assert M.indices.dtype == np.int32
    lengths = np.diff(M.indptr)
    # sorted, strictly increasing ids within each row => no duplicates
    steps = np.diff(M.indices.astype(np.int64))
    row_starts = np.cumsum(lengths)[:-1]
    inside_row = np.ones(steps.size, dtype=bool)
    inside_row[row_starts[(row_starts > 0) & (row_starts <= steps.size)] - 1] = False
    assert np.all(steps[inside_row] > 0)
    assert M.indices.min() >= 0 and M.indices.max() < n_columns
    return lengths


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_shapes_and_means_match_the_preset(preset):
    params = PRESETS[preset]
    n = 3000
    X, Y = make_xc(preset, n_samples=n, seed=1)
    nnz = check_csr_format(X, n, params["n_features"])
    labels = check_csr_format(Y, n, params["n_labels"])
    assert nnz.min() >= 1 and labels.min() >= 1
    assert abs(nnz.mean() / params["nnz"] - 1) < 0.15
    assert abs(labels.mean() / params["labels_per_point"] - 1) < 0.15
    assert np.all(X.data > 0)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(Y.data, 1.0)


def test_default_sample_count_comes_from_the_preset():
    X, Y = make_xc("small")
    assert X.shape[0] == Y.shape[0] == PRESETS["small"]["n_samples"]


def test_same_seed_same_data_other_seed_other_data():
    X1, Y1 = make_xc("small", n_samples=500, seed=7)
    X2, Y2 = make_xc("small", n_samples=500, seed=7)
    X3, Y3 = make_xc("small", n_samples=500, seed=8)
    for a, b in ((X1, X2), (Y1, Y2)):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)
    assert (X1 != X3).nnz > 0 and (Y1 != Y3).nnz > 0


def test_thread_count_does_not_change_the_data():
    # more rows than one block, so several blocks are drawn concurrently
    X1, Y1 = make_xc("small", n_samples=20_000, seed=3, threads=1)
    X2, Y2 = make_xc("small", n_samples=20_000, seed=3, threads=2)
    for a, b in ((X1, X2), (Y1, Y2)):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


def test_train_test_split_returns_four_matrices_from_one_distribution():
    X, Y, Xt, Yt = make_xc("small", n_samples=3000, n_test=1000, seed=2)
    assert X.shape == (3000, 5000) and Y.shape == (3000, 1000)
    assert Xt.shape == (1000, 5000) and Yt.shape == (1000, 1000)
    check_csr_format(Xt, 1000, 5000)
    check_csr_format(Yt, 1000, 1000)
    # same distribution: similar sizes and the same popular labels
    assert abs(np.diff(Xt.indptr).mean() / np.diff(X.indptr).mean() - 1) < 0.1
    top_train = set(np.argsort(-np.bincount(Y.indices, minlength=1000))[:20])
    top_test = set(np.argsort(-np.bincount(Yt.indices, minlength=1000))[:20])
    assert len(top_train & top_test) >= 10


def test_overrides_change_the_shape():
    X, Y = make_xc("small", n_samples=2000, n_features=700, n_labels=90,
                   nnz=12, labels_per_point=2, n_groups=10, seed=3)
    nnz = check_csr_format(X, 2000, 700)
    labels = check_csr_format(Y, 2000, 90)
    assert abs(nnz.mean() / 12 - 1) < 0.15
    assert abs(labels.mean() / 2 - 1) < 0.15


def top_share(ids, n_ids, fraction=0.01):
    counts = np.sort(np.bincount(ids, minlength=n_ids))[::-1]
    return counts[:max(1, int(n_ids * fraction))].sum() / counts.sum()


@pytest.mark.parametrize("preset", ["delicious", "amazon"])
def test_label_and_feature_frequencies_are_heavy_tailed(preset):
    X, Y = make_xc(preset, n_samples=5000, seed=4)
    # uniform frequencies would give the top 1% of ids a 1% share
    assert top_share(Y.indices, Y.shape[1]) > 0.10
    assert top_share(X.indices, X.shape[1]) > 0.10
    label_counts = np.bincount(Y.indices, minlength=Y.shape[1])
    used = label_counts[label_counts > 0]
    # a long tail: many labels are seen only once or twice
    assert np.mean(used <= 2) > 0.3


def knn_top1(X, Y, X_query, k=10):
    """Cosine k-nearest-neighbour scores summed over neighbours' labels."""
    similarity = (X_query @ X.T).toarray()
    neighbours = np.argpartition(-similarity, k, axis=1)[:, :k]
    weights = np.take_along_axis(similarity, neighbours, axis=1)
    n = X_query.shape[0]
    W = sp.csr_matrix((weights.ravel(), neighbours.ravel(), np.arange(0, n * k + 1, k)),
                      shape=(n, X.shape[0]))
    return np.asarray((W @ Y).argmax(axis=1)).ravel()


def test_delicious_shape_is_learnable_but_not_trivial():
    X, Y, Xt, Yt = make_xc("delicious", n_samples=20_000, n_test=1_000, seed=0)
    predicted = knn_top1(X, Y, Xt)
    knn_p1 = Yt[np.arange(Xt.shape[0]), predicted].A1.mean()
    popular = np.bincount(Y.indices, minlength=Y.shape[1]).argmax()
    popular_p1 = Yt[:, popular].toarray().mean()
    # the real Delicious-200K's best published P@1 is about 0.47
    assert 0.3 <= knn_p1 <= 0.6
    assert knn_p1 > 2.5 * popular_p1


def test_small_preset_is_learnable():
    X, Y, Xt, Yt = make_xc("small", n_samples=2000, n_test=500, seed=0)
    predicted = knn_top1(X, Y, Xt)
    knn_p1 = Yt[np.arange(Xt.shape[0]), predicted].A1.mean()
    popular = np.bincount(Y.indices, minlength=Y.shape[1]).argmax()
    assert knn_p1 > 3 * Yt[:, popular].toarray().mean()


@pytest.mark.parametrize("kwargs, message", [
    (dict(preset="huge"), "preset must be one of"),
    (dict(preset=None), "preset must be one of"),
    (dict(n_samples=0), "n_samples must be an int >= 1"),
    (dict(n_samples=2.5), "n_samples must be an int >= 1"),
    (dict(n_test=-1), "n_test must be an int >= 0"),
    (dict(n_features=0), "n_features must be a positive int"),
    (dict(n_labels=True), "n_labels must be a positive int"),
    (dict(n_groups=-3), "n_groups must be a positive int"),
    (dict(nnz=0.5), "nnz must be a number >= 1"),
    (dict(labels_per_point="3"), "labels_per_point must be a number >= 1"),
    (dict(feature_noise=1.5), r"feature_noise must be in \[0, 1\]"),
    (dict(label_noise=-0.1), r"label_noise must be in \[0, 1\]"),
    (dict(n_features=10, nnz=20), r"nnz \(20\) cannot exceed n_features \(10\)"),
    (dict(n_labels=2, labels_per_point=3), r"labels_per_point \(3\) cannot exceed n_labels \(2\)"),
    (dict(threads=0), "threads must be None .* or a positive int, got 0"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_xc(**kwargs)
