"""Every validation path of pyslide.hashing, with its message."""
import numpy as np
import pytest
import scipy.sparse as sp

from pyslide import hashing
from pyslide.hashing import (DOPH, DWTA, FAMILIES, WTA, LSHTables, SimHash,
                             estimate_table_bytes, family_class, family_from_config)


@pytest.mark.parametrize("make,exc,match", [
    (lambda: SimHash(K=0), ValueError, r"K must be >= 1, got 0"),
    (lambda: SimHash(L=0), ValueError, r"L must be >= 1, got 0"),
    (lambda: SimHash(K=2.5), TypeError, r"K must be an int >= 1, got 2.5"),
    (lambda: SimHash(L=True), TypeError, r"L must be an int >= 1, got True"),
    (lambda: SimHash(seed=-1), ValueError, r"seed must be >= 0"),
    (lambda: SimHash(K=25, L=1), ValueError,
     r"K = 25 gives 25-bit bucket ids \(one bit per projection\); the limit is 24 bits.*K <= 24"),
    (lambda: SimHash(K=20, L=300), ValueError,
     r"K \* L = 6000 exceeds 4096 hash functions"),
    (lambda: SimHash(density=0), ValueError, r"density must be None \(Gaussian projections\) or in \(0, 1\]"),
    (lambda: SimHash(density=1.5), ValueError, r"density must be None .* got 1.5"),
    (lambda: SimHash(density="a"), TypeError, r"density must be None or a float in \(0, 1\]"),
    (lambda: WTA(bin_size=6), ValueError, r"bin_size must be a power of two in \[2, 64\], got 6"),
    (lambda: WTA(bin_size=128), ValueError, r"bin_size must be <= 64, got 128"),
    (lambda: DWTA(bin_size=1), ValueError, r"bin_size must be >= 2, got 1"),
    (lambda: WTA(K=9, bin_size=8), ValueError,
     r"K = 9 gives 27-bit bucket ids \(3 bits per code with bin_size=8\).*use K <= 8"),
    (lambda: DOPH(K=5, bits=5), ValueError, r"K = 5 gives 25-bit bucket ids \(bits=5 per code\)"),
    (lambda: DOPH(bits=0), ValueError, r"bits must be >= 1, got 0"),
])
def test_spec_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_compile_validation():
    with pytest.raises(ValueError, match=r"dim must be >= 1, got 0"):
        SimHash().compile(0)
    with pytest.raises(TypeError, match=r"dim must be an int"):
        SimHash().compile(3.0)
    with pytest.raises(ValueError, match=r"bin_size = 8 exceeds the input dimension 5; use bin_size <= 5"):
        DWTA(K=2, L=2).compile(5)


def test_family_from_config_unknown():
    with pytest.raises(ValueError, match=r"hash family must be one of simhash, dwta, wta, doph "
                                         r"\(in any case\), got 'Nope'"):
        family_from_config({"family": "Nope"})


@pytest.mark.parametrize("name", ["SimHash", "simhash", "SIMHASH"])
def test_family_from_config_any_case(name):
    family = family_from_config({"family": name, "K": 5, "L": 3})
    assert type(family) is SimHash and (family.K, family.L) == (5, 3)


@pytest.mark.parametrize("name, cls", [("DWTA", DWTA), ("doph", DOPH), ("Wta", WTA),
                                       ("simhash", SimHash)])
def test_family_class_by_name_in_any_case(name, cls):
    assert family_class(name) is cls
    assert FAMILIES[name.lower()] is cls


def test_family_class_unknown_names_the_choices():
    with pytest.raises(ValueError, match=r"hash family must be one of simhash, dwta, wta, doph "
                                         r"\(in any case\), got None"):
        family_class(None)


@pytest.fixture
def fam():
    return SimHash(K=3, L=4, seed=0).compile(6)


@pytest.mark.parametrize("method", ["hash_dense", "query"])
@pytest.mark.parametrize("X,exc,match", [
    (np.zeros((2, 6), dtype=complex), TypeError,
     r"must hold real numbers, got dtype complex128"),
    (np.array([["a"] * 6]), TypeError, r"must be a numeric 2-D array, got ndarray with dtype <U1"),
    (np.zeros((2, 6), dtype=object), TypeError, r"must be a numeric 2-D array, got ndarray with dtype object"),
    (np.zeros(6), ValueError, r"must be 2-D \(n_samples, n_features\), got shape \(6,\)"),
    (np.zeros((2, 5)), ValueError, r"has 5 features \(columns\) but the hash family expects n_features=6"),
    (np.array([[0, 1, 2, np.nan, 0, 0]]), ValueError, r"contains 1 non-finite value\(s\) \(NaN or inf\)"),
    (np.array([[0, 1, 2, np.inf, 0, 0]]), ValueError, r"contains 1 non-finite value\(s\) \(NaN or inf\)"),
])
def test_dense_input_validation(fam, method, X, exc, match):
    if method == "hash_dense":
        with pytest.raises(exc, match=r"X " + match):
            fam.hash_dense(X)
    else:
        tables = LSHTables(fam, bucket_size=2).build(np.ones((3, 6)))
        with pytest.raises(exc, match=r"batch " + match):
            tables.query(X)


def test_sparse_input_validation(fam):
    with pytest.raises(TypeError, match=r"X must be a scipy.sparse matrix, got ndarray"):
        fam.hash_sparse(np.zeros((2, 6)))
    with pytest.raises(TypeError, match=r"X is a sparse matrix; pass a dense array \(or use the sparse variant of this call, e.g. hash_sparse\)"):
        fam.hash_dense(sp.csr_matrix(np.zeros((2, 6))))
    with pytest.raises(ValueError, match=r"X has 7 features \(columns\) but the hash family expects n_features=6"):
        fam.hash_sparse(sp.csr_matrix(np.zeros((2, 7))))
    with pytest.raises(TypeError, match=r"X must hold real numbers, got dtype complex128"):
        fam.hash_sparse(sp.csr_matrix(np.ones((2, 6), dtype=complex)))
    bad = sp.csr_matrix(np.array([[0, 1, 0, 0, 0, 2.0]]))
    bad.data[1] = np.inf
    with pytest.raises(ValueError, match=r"X contains 1 non-finite value\(s\)"):
        fam.hash_sparse(bad)


def test_threads_validation(fam):
    with pytest.raises(ValueError, match=r"threads must be None"):
        fam.hash_dense(np.zeros((1, 6)), threads=0)


def test_table_validation(fam):
    with pytest.raises(TypeError, match=r"family must be a CompiledFamily, got SimHash "
                                        r"\(call .compile\(dim\) on the specification first\)"):
        LSHTables(SimHash())
    with pytest.raises(ValueError, match=r"bucket_size must be >= 1, got 0"):
        LSHTables(fam, bucket_size=0)
    with pytest.raises(ValueError, match=r"policy must be 'fifo' or 'reservoir', got 'lru'"):
        LSHTables(fam, policy="lru")
    with pytest.raises(ValueError, match=r"n_buckets must be >= 1"):
        estimate_table_bytes(0, 1, 1)
    assert estimate_table_bytes(512, 50, 128) == 4 * 50 * 512 * 129


def test_memory_estimate_is_checked_before_allocating(fam, monkeypatch):
    monkeypatch.setattr(hashing, "_available_memory_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match=(
            r"LSH tables \(L=4 x 8 buckets x bucket_size=128\) would need about 0.00 GiB "
            r"but only 0.00 GiB of memory is available; use a smaller K \(fewer buckets\), "
            r"fewer tables L or a smaller bucket_size")):
        LSHTables(fam, bucket_size=128)
    with pytest.raises(MemoryError, match=r"SimHash projections \(12 x 100\) would need"):
        SimHash(K=3, L=4).compile(100)
    with pytest.raises(MemoryError, match=r"sparse SimHash projections"):
        SimHash(K=3, L=4, density=0.5).compile(100)
    with pytest.raises(MemoryError, match=r"DWTA bins would need"):
        DWTA(K=3, L=40).compile(100)
    with pytest.raises(MemoryError, match=r"DOPH permutation would need"):
        DOPH(K=3, L=4).compile(1000)


def test_huge_tables_are_refused_with_estimate():
    fam = DWTA(K=8, L=400, bin_size=8, seed=0).compile(16)      # 2^24 buckets
    with pytest.raises(MemoryError, match=r"would need about [0-9,.]+ GiB"):
        LSHTables(fam, bucket_size=64)


def test_fill_and_query_validation(fam):
    tables = LSHTables(fam, bucket_size=2)
    W = np.random.default_rng(0).standard_normal((5, 6))
    with pytest.raises(ValueError, match=r"vectors has 4 features \(columns\) but the hash family expects n_features=6"):
        tables.build(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"vectors contains \d+ non-finite value\(s\)"):
        tables.build(np.full((3, 6), np.nan))
    with pytest.raises(TypeError, match=r"codes must hold integers, got dtype float64"):
        tables.build_from_codes(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"codes must have shape \(n_items, L=4\), got \(3, 2\)"):
        tables.build_from_codes(np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match=r"codes must lie in \[0, n_buckets=8\)"):
        tables.build_from_codes(np.full((3, 4), 8))
    tables.build(W)
    with pytest.raises(TypeError, match=r"ids must hold integers, got dtype float64"):
        tables.update(np.zeros(2), W[:2])
    with pytest.raises(ValueError, match=r"ids must be 1-D, got shape \(1, 2\)"):
        tables.update(np.zeros((1, 2), dtype=int), W[:2])
    with pytest.raises(ValueError, match=r"ids has 3 entries but vectors has 2 rows"):
        tables.update([0, 1, 2], W[:2])
    with pytest.raises(ValueError, match=r"ids must lie in \[0, n_items=5\) \(build the tables first\)"):
        tables.update([0, 5], W[:2])
    with pytest.raises(ValueError, match=r"mode must be 'union', 'threshold' or 'sample', got 'all'"):
        tables.query(W, mode="all")
    with pytest.raises(ValueError, match=r"n \(ids per row\) is required when mode='sample'"):
        tables.query(W, mode="sample")
    with pytest.raises(ValueError, match=r"n = 6 exceeds the 5 items in the tables"):
        tables.query(W, mode="sample", n=6)
    with pytest.raises(ValueError, match=r"n must be >= 1, got 0"):
        tables.query(W, mode="sample", n=0)
    with pytest.raises(ValueError, match=r"cap must be >= 1, got 0"):
        tables.query(W, cap=0)
    with pytest.raises(ValueError, match=r"threshold must be <= 4, got 5"):
        tables.query(W, mode="threshold", threshold=5)
    with pytest.raises(ValueError, match=r"seed must be >= 0"):
        tables.query(W, seed=-2)
    with pytest.raises(ValueError, match=r"table must be <= 3, got 4"):
        tables.bucket(4, 0)
    with pytest.raises(ValueError, match=r"bucket_id must be <= 7, got 8"):
        tables.bucket(0, 8)


def test_empty_inputs(fam):
    assert fam.hash_dense(np.zeros((0, 6))).shape == (0, 4)
    assert fam.hash_sparse(sp.csr_matrix((0, 6))).shape == (0, 4)
    tables = LSHTables(fam, bucket_size=2)
    indptr, ids = tables.query(np.ones((2, 6)))          # nothing built yet
    assert list(indptr) == [0, 0, 0] and ids.size == 0
    tables.build(np.zeros((0, 6)))
    assert tables.n_items == 0 and tables.counts.sum() == 0
