"""Hash families: kernels (batched dense, batched sparse, single-row) against
NumPy references, and statistical properties."""
import numpy as np
import pytest
import scipy.sparse as sp

from pyslide import _hash
from pyslide.hashing import DOPH, DWTA, WTA, SimHash

import hash_reference as ref

THREADS = [1, 2]


def _sparse_rows(rng, n, dim, density, integer=False, negative=True):
    X = rng.standard_normal((n, dim)).astype(np.float32)
    if integer:
        X = np.round(X * 2).astype(np.float32)
    if not negative:
        X = np.abs(X)
    X[rng.random((n, dim)) > density] = 0
    X[0] = 0                                     # an all-zero row
    return X


FAMILIES = [
    pytest.param(SimHash(K=7, L=9, seed=3), 40, id="simhash"),
    pytest.param(SimHash(K=5, L=11, density=1 / 3, seed=4), 40, id="sparse_simhash"),
    pytest.param(WTA(K=3, L=8, bin_size=8, seed=5), 40, id="wta"),
    pytest.param(WTA(K=2, L=6, bin_size=64, seed=5), 70, id="wta64"),
    pytest.param(DWTA(K=4, L=10, bin_size=4, seed=6), 40, id="dwta"),
    pytest.param(DOPH(K=3, L=10, bits=3, seed=7), 100, id="doph"),
    pytest.param(DOPH(K=2, L=40, seed=8), 30, id="doph_dim_below_bins"),
]


def _check_equal_codes(codes, expected, X, fam):
    if fam.kind in ("simhash", "sparse_simhash"):
        # Dense projections: float32 sums in different orders (BLAS,
        # row kernel, float64 reference) may disagree on the sign of a
        # projection within rounding of zero; every other table must agree.
        clear = ~ref.simhash_ambiguous(X, fam)
        assert clear.mean() > 0.99
        np.testing.assert_array_equal(codes[clear], expected[clear])
    else:
        np.testing.assert_array_equal(codes, expected)


@pytest.mark.parametrize("spec,dim", FAMILIES)
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("density", [0.05, 0.5, 1.0])
def test_dense_sparse_single_row_and_reference_agree(spec, dim, threads, density):
    rng = np.random.default_rng(11)
    fam = spec.compile(dim)
    integer = fam.kind in ("sparse_simhash", "wta")   # exact sums; many ties
    X = _sparse_rows(rng, 60, dim, density, integer=integer)
    dense = fam.hash_dense(X, threads=threads)
    assert dense.shape == (60, spec.L) and dense.dtype == np.int32
    assert dense.min() >= 0 and dense.max() < fam.n_buckets
    sparse = fam.hash_sparse(sp.csr_matrix(X), threads=threads)
    single = _hash._hash_rows_single(fam, X)
    csr = sp.csr_matrix(X)
    single_sparse = _hash._hash_rows_single_sparse(
        fam, csr.indptr.astype(np.int64), csr.indices.astype(np.int32), csr.data)
    # Row kernels (dense and sparse) add in the same order: bit-identical.
    np.testing.assert_array_equal(single, sparse)
    np.testing.assert_array_equal(single, single_sparse)
    _check_equal_codes(dense, single, X, fam)
    _check_equal_codes(dense, ref.hash_reference(X, fam), X, fam)


@pytest.mark.parametrize("threads", THREADS)
def test_sparse_simhash_inverse_map_path(monkeypatch, threads):
    # Wide inputs keep sparse projections as a per-dim inverse map instead of
    # a dense matrix; both layouts must give the same bits.
    from pyslide import hashing
    spec = SimHash(K=5, L=11, density=1 / 3, seed=4)
    dense_layout = spec.compile(40)
    monkeypatch.setattr(hashing, "DENSE_SPARSE_SIMHASH_FLOATS", 0)
    fam = spec.compile(40)
    assert "proj_t" not in fam.arrays and "proj_t" in dense_layout.arrays
    X = _sparse_rows(np.random.default_rng(2), 50, 40, 0.4, integer=True)
    codes = fam.hash_dense(X, threads=threads)
    np.testing.assert_array_equal(codes, ref.hash_reference(X, fam))
    np.testing.assert_array_equal(codes, fam.hash_sparse(sp.csr_matrix(X), threads=threads))
    np.testing.assert_array_equal(codes, dense_layout.hash_dense(X, threads=threads))
    X = _sparse_rows(np.random.default_rng(3), 50, 40, 0.4)      # float values
    np.testing.assert_array_equal(_hash._hash_rows_single(fam, X),
                                  _hash._hash_rows_single(dense_layout, X))


@pytest.mark.parametrize("spec,dim", FAMILIES)
def test_unsorted_and_duplicate_sparse_indices(spec, dim):
    rng = np.random.default_rng(12)
    fam = spec.compile(dim)
    X = _sparse_rows(rng, 20, dim, 0.3, integer=True)
    coo = sp.coo_matrix(X)
    order = rng.permutation(coo.nnz)
    # split every value in two halves stored as duplicates, shuffled
    rows = np.concatenate([coo.row, coo.row])[np.concatenate([order, order])]
    cols = np.concatenate([coo.col, coo.col])[np.concatenate([order, order])]
    vals = np.concatenate([coo.data / 2, coo.data / 2])[np.concatenate([order, order])]
    messy = sp.csr_matrix((vals, (rows, cols)), shape=X.shape)
    messy.has_canonical_format = False
    np.testing.assert_array_equal(fam.hash_sparse(messy), fam.hash_sparse(sp.csr_matrix(X)))


def test_sparse_row_kernel_ignores_index_order_for_set_families():
    rng = np.random.default_rng(13)
    for spec, dim in [(DWTA(K=3, L=8, seed=1), 50), (DOPH(K=2, L=8, seed=1), 50),
                      (WTA(K=3, L=8, seed=1), 50)]:
        fam = spec.compile(dim)
        X = _sparse_rows(rng, 15, dim, 0.3)
        csr = sp.csr_matrix(X)
        shuffled_indices = csr.indices.copy()
        shuffled_data = csr.data.copy()
        for r in range(15):
            lo, hi = csr.indptr[r], csr.indptr[r + 1]
            p = rng.permutation(hi - lo) + lo
            shuffled_indices[lo:hi] = csr.indices[p]
            shuffled_data[lo:hi] = csr.data[p]
        got = _hash._hash_rows_single_sparse(fam, csr.indptr.astype(np.int64),
                                             shuffled_indices, shuffled_data)
        np.testing.assert_array_equal(got, fam.hash_dense(X))


def test_compiled_family_attributes_and_determinism():
    fam = SimHash(K=9, L=50, seed=0).compile(128)
    assert (fam.kind, fam.K, fam.L, fam.dim, fam.n_buckets) == ("simhash", 9, 50, 128, 512)
    assert DWTA(K=6, L=50).compile(128).n_buckets == 8 ** 6
    assert DOPH(K=4, L=50, bits=5).compile(1000).n_buckets == 2 ** 20
    # positions < 100 need 7 bits: no unreachable buckets
    assert DOPH(K=2, L=5, bits=8).compile(100).n_buckets == 2 ** 14
    assert DOPH(K=2, L=5, bits=8).n_buckets_for(100) == 2 ** 14
    X = _sparse_rows(np.random.default_rng(0), 30, 128, 0.2)   # DOPH needs sets
    for spec in [SimHash(K=9, L=5, seed=2), SimHash(K=9, L=5, density=0.3, seed=2),
                 WTA(K=3, L=5, seed=2), DWTA(K=3, L=5, seed=2), DOPH(K=3, L=5, seed=2)]:
        a = spec.compile(128).hash_dense(X)
        np.testing.assert_array_equal(a, spec.compile(128).hash_dense(X))
        config = spec.get_config()
        config.pop("family")
        other = type(spec)(**{**config, "seed": 3}).compile(128).hash_dense(X)
        assert (other != a).any()
    import pickle
    fam2 = pickle.loads(pickle.dumps(fam))
    np.testing.assert_array_equal(fam2.hash_dense(X), fam.hash_dense(X))


def test_wta_ties_go_to_first_position():
    fam = WTA(K=1, L=4, bin_size=4, seed=0).compile(4)
    X = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [-1, -1, -1, -1]], dtype=np.float32)
    np.testing.assert_array_equal(fam.hash_dense(X), 0)
    np.testing.assert_array_equal(fam.hash_sparse(sp.csr_matrix(X)), 0)


def test_dwta_densifies_every_bin_and_packs_without_overlap():
    # 3-bit codes, K=3: bucket ids use all 9 bits (SLIDE's shift-by-2 would
    # collapse codes); empty bins borrow.
    fam = DWTA(K=3, L=200, bin_size=8, seed=1).compile(64)
    rng = np.random.default_rng(3)
    X = _sparse_rows(rng, 300, 64, 0.2)
    codes = fam.hash_dense(X)
    assert codes.max() >= 2 ** 8                  # the top field is used
    assert len(np.unique(codes)) > 300
    # an empty row: every bin falls back to code 0
    np.testing.assert_array_equal(codes[0], 0)


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------

def _pairs_at_angle(rng, n_pairs, dim, theta):
    x = rng.standard_normal((n_pairs, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    z = rng.standard_normal((n_pairs, dim))
    z -= (z * x).sum(1, keepdims=True) * x
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    y = np.cos(theta) * x + np.sin(theta) * z
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.parametrize("theta", [np.pi / 8, np.pi / 4, np.pi / 2, 3 * np.pi / 4])
def test_simhash_bit_collision_probability(theta):
    # K=1: each bucket id is one sign bit; given a pair, the L bits use
    # independent Gaussian projections, so agreements are Bernoulli(1 - theta/pi).
    rng = np.random.default_rng(int(theta * 1000))
    fam = SimHash(K=1, L=2000, seed=21).compile(32)
    x, y = _pairs_at_angle(rng, 100, 32, theta)
    agree = fam.hash_dense(x) == fam.hash_dense(y)
    p = 1 - theta / np.pi
    se = np.sqrt(p * (1 - p) / agree.size)
    assert abs(agree.mean() - p) < 3 * se, (agree.mean(), p, se)


def _collision_rate(fam, X, Y, sparse=False):
    if sparse:
        a, b = fam.hash_sparse(sp.csr_matrix(X)), fam.hash_sparse(sp.csr_matrix(Y))
    else:
        a, b = fam.hash_dense(X), fam.hash_dense(Y)
    return (a == b).mean()


@pytest.mark.parametrize("spec", [SimHash(K=4, L=100, density=1 / 3, seed=1),
                                  WTA(K=2, L=100, seed=1), DWTA(K=2, L=100, seed=1)],
                         ids=["sparse_simhash", "wta", "dwta"])
def test_collision_rate_increases_with_similarity(spec):
    rng = np.random.default_rng(5)
    dim = 64
    fam = spec.compile(dim)
    rates = []
    for theta in [0.1, 0.5, 1.0, 1.5]:
        x, y = _pairs_at_angle(rng, 200, dim, theta)
        if fam.kind == "dwta":
            mask = rng.random((200, dim)) < 0.5
            x, y = x * mask, y * mask           # same support, like ReLU outputs
        rates.append(_collision_rate(fam, x, y))
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert rates[0] > 0.5


def test_doph_collision_rate_tracks_jaccard():
    rng = np.random.default_rng(6)
    dim = 2000
    fam = DOPH(K=1, L=400, bits=8, seed=2).compile(dim)
    rates = []
    for jaccard in [0.1, 0.4, 0.7, 1.0]:
        X = np.zeros((100, dim), np.float32)
        Y = np.zeros((100, dim), np.float32)
        for r in range(100):
            items = rng.choice(dim, 200, replace=False)
            n_shared = int(round(2 * 100 * jaccard / (1 + jaccard)))   # |X| = |Y| = 100
            X[r, items[:100]] = 1
            Y[r, np.concatenate([items[:n_shared], items[100:200 - n_shared]])] = 1
        rates.append(_collision_rate(fam, X, Y, sparse=True))
    assert all(a < b for a, b in zip(rates, rates[1:])), rates
    assert rates[-1] == 1.0
    # minhash: agreement ~ Jaccard (+ 2^-bits chance agreements)
    for jaccard, rate in zip([0.1, 0.4, 0.7], rates):
        assert abs(rate - jaccard) < 0.08, (jaccard, rate)
