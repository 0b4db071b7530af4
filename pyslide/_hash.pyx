"""LSH hash families: per-row and batched hashing; a kernel module (imports no Python module of ours).

Python-level validation and parameter drawing live in ``pyslide.hashing``
(which checks every argument before calling in); this module holds the
loops. The bucket tables that store the codes are ``_tables``. Every
per-row function is ``noexcept nogil``, allocation-free and thread-safe so
the engine can call it from its own ``prange`` over samples (see
``_hash.pxd`` for the contract).

Layout decisions:

* Gaussian SimHash keeps its projections transposed, ``(dim, L*K)``: a row
  is hashed by adding ``x[j] * P^T[j, :]`` for each nonzero ``x[j]``, a
  contiguous, vectorisable update of all L*K accumulators. Each accumulator
  therefore sums its terms in increasing ``j``, the order a sorted sparse row
  gives too, so dense and sparse rows produce bit-identical codes. The same
  matrix is the column-major ``(L*K, dim)`` operand of sgemm for batches.
* Sparse SimHash, WTA and DWTA keep an inverse map (per input dim, the hash
  functions that read it) so a sparse row costs O(nnz * uses per dim).
"""
import numpy as np

from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, INT32_MAX
from libc.string cimport memset
from libc.math cimport INFINITY
from scipy.linalg.cython_blas cimport sgemm

from ._common cimport mix_seed, rand_below

cdef extern from *:
    """
    static inline int pyslide_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    """
    int pyslide_ctz64(unsigned long long x) noexcept nogil

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* words[i / 64] bit i % 64 = (x[i] > 0), for i < n; words must hold
       n / 64 + 1 entries. */
    static inline void pyslide_sign_bits(const float* x, int n, uint64_t* words) {
        int i = 0;
        memset(words, 0, (size_t)(n / 64 + 1) * sizeof(uint64_t));
    #if defined(__SSE2__)
        const __m128 zero = _mm_setzero_ps();
        for (; i + 4 <= n; i += 4) {
            unsigned m = (unsigned)_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(x + i), zero));
            words[i >> 6] |= (uint64_t)m << (i & 63);
        }
    #endif
        for (; i < n; i++)
            words[i >> 6] |= (uint64_t)(x[i] > 0.0f) << (i & 63);
    }
    """
    void pyslide_sign_bits(const float* x, int n, uint64_t* words) noexcept nogil

cdef extern from *:
    """
    /* acc[p] = sum over the row's nonzeros x_j, in the order given, of
       x_j * proj_t[j * n + p], for p < n. Projections are done in blocks of
       32 accumulators that live in registers while the nonzeros stream by;
       each accumulator still adds its terms in the same order as a plain
       loop would, so every build and code path gives the same bits.
       Dense rows pass indices == NULL and walk j = 0 .. nnz - 1.
       On x86-64 Linux with GCC an AVX2 clone is picked at load time (no FMA
       contraction, so the same roundings as the SSE2 code). */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define PYSLIDE_CLONES __attribute__((target_clones("avx2", "default")))
    #else
    #define PYSLIDE_CLONES
    #endif
    #define PYSLIDE_BLOCK 32
    PYSLIDE_CLONES
    static void pyslide_project(const int32_t* indices, const float* values, int nnz,
                                const float* proj_t, int n, float* acc) {
        int p0 = 0, e, q;
        for (; p0 + PYSLIDE_BLOCK <= n; p0 += PYSLIDE_BLOCK) {
            float a[PYSLIDE_BLOCK] = {0};
            for (e = 0; e < nnz; e++) {
                float v = values[e];
                if (v != 0.0f) {
                    const float* col = proj_t + (size_t)(indices ? indices[e] : e) * n + p0;
                    for (q = 0; q < PYSLIDE_BLOCK; q++) a[q] += v * col[q];
                }
            }
            memcpy(acc + p0, a, sizeof a);
        }
        if (p0 < n) {
            int width = n - p0;
            float a[PYSLIDE_BLOCK] = {0};
            for (e = 0; e < nnz; e++) {
                float v = values[e];
                if (v != 0.0f) {
                    const float* col = proj_t + (size_t)(indices ? indices[e] : e) * n + p0;
                    for (q = 0; q < width; q++) a[q] += v * col[q];
                }
            }
            memcpy(acc + p0, a, (size_t)width * sizeof(float));
        }
    }
    """
    void pyslide_project(const int32_t* indices, const float* values, int nnz,
                         const float* proj_t, int n, float* acc) noexcept nogil


KIND_NAMES = {
    FAMILY_SIMHASH: "simhash",
    FAMILY_SPARSE_SIMHASH: "sparse_simhash",
    FAMILY_WTA: "wta",
    FAMILY_DWTA: "dwta",
    FAMILY_DOPH: "doph",
}
KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

LIMIT_HASH_FUNCTIONS = MAX_HASH_FUNCTIONS
LIMIT_BIN_SIZE = MAX_BIN_SIZE
LIMIT_CODE_BITS = MAX_CODE_BITS

cdef enum:
    # 64-bit words of a row's L*K sign bits (MAX_HASH_FUNCTIONS / 64 + 1).
    SIGN_WORDS = 65
    # Rows one thread multiplies per sgemm call: 512 x L*K floats of output
    # (0.9 MB for L*K = 450) stay in its L2 cache for the sign packing.
    BLAS_CHUNK_ROWS = 512


# ---------------------------------------------------------------------------
# Per-row hashing
# ---------------------------------------------------------------------------

cdef inline void _pack_codes(const int32_t* codes, int32_t K, int32_t L,
                             int32_t code_bits, int32_t* bucket_ids) noexcept nogil:
    # Code k of a table occupies bits [k * code_bits, (k + 1) * code_bits):
    # disjoint fields, so distinct code tuples never share a bucket.
    cdef int32_t l, k, bucket
    for l in range(L):
        bucket = 0
        for k in range(K):
            bucket |= codes[l * K + k] << (k * code_bits)
        bucket_ids[l] = bucket


cdef inline void _pack_sign_bits(const float* acc, int32_t K, int32_t L,
                                 int32_t* bucket_ids, int64_t stride) noexcept nogil:
    # Bit k of table l is 1 when projection l*K + k is strictly positive.
    # All L*K sign bits are first gathered into a bit string (4 at a time
    # with SSE2 movemask), then each table's K bits are cut out of it.
    cdef uint64_t words[SIGN_WORDS]
    cdef int32_t l, offset, shift
    cdef uint64_t bits, mask = ((<uint64_t>1) << K) - 1
    pyslide_sign_bits(acc, K * L, words)
    for l in range(L):
        offset = l * K
        shift = offset & 63
        bits = words[offset >> 6] >> shift
        if shift + K > 64:
            bits |= words[(offset >> 6) + 1] << (64 - shift)
        bucket_ids[l * stride] = <int32_t>(bits & mask)


cdef inline void _densify(int32_t* codes, int32_t n, uint64_t seed,
                          int32_t max_probes) noexcept nogil:
    """Give every empty bin (code -1) the code of an originally non-empty bin.

    Attempt t for bin c looks at bin h(c, t), a seeded hash that is the same
    for every row (the LSH property needs that); the first originally
    non-empty one lends its code. Borrowed codes are stored as ``-2 - code``
    so they never lend in turn. Bins still empty after ``max_probes``
    attempts take the nearest originally non-empty bin to their right
    (circularly); a row with no non-empty bin at all gets code 0 everywhere.
    """
    cdef int32_t c, t, donor, last, idx, remaining = 0
    cdef uint64_t state
    for c in range(n):
        if codes[c] != -1:
            continue
        for t in range(max_probes):
            state = mix_seed(seed, <uint64_t>c, <uint64_t>t)
            donor = <int32_t>rand_below(&state, <uint32_t>n)
            if codes[donor] >= 0:
                codes[c] = -2 - codes[donor]
                break
        if codes[c] == -1:
            remaining += 1
    if remaining > 0:
        last = -1
        for c in range(2 * n - 1, -1, -1):
            idx = c - n if c >= n else c
            if codes[idx] >= 0:
                last = codes[idx]
            elif c < n and codes[idx] == -1 and last >= 0:
                codes[idx] = -2 - last
    for c in range(n):
        if codes[c] == -1:
            codes[c] = 0
        elif codes[c] < -1:
            codes[c] = -2 - codes[c]


cdef inline void _sparse_simhash_add(const HashFamily* f, int32_t j, float v,
                                     float* acc) noexcept nogil:
    cdef int64_t e
    cdef int32_t entry
    for e in range(f.dim_ptr[j], f.dim_ptr[j + 1]):
        entry = f.dim_entries[e]
        if entry & 1:
            acc[entry >> 1] -= v
        else:
            acc[entry >> 1] += v


cdef void _simhash_row(const HashFamily* f, const int32_t* indices,
                       const float* values, int32_t nnz, const float* dense,
                       int32_t* bucket_ids) noexcept nogil:
    # dense != NULL: walk x in increasing j; else walk the given nonzeros.
    cdef float acc[MAX_HASH_FUNCTIONS]
    cdef int32_t j, e
    cdef float v
    # Dense projections (Gaussian, or +-1/0 when small) vectorise over the
    # L*K accumulators; adding v * 0 leaves a sum unchanged, so the dense
    # and the inverse-map layouts give the same bits for sparse SimHash.
    if f.proj_t != NULL:
        if dense != NULL:
            pyslide_project(NULL, dense, f.dim, f.proj_t, f.n_hashes, acc)
        else:
            pyslide_project(indices, values, nnz, f.proj_t, f.n_hashes, acc)
        _pack_sign_bits(acc, f.K, f.L, bucket_ids, 1)
        return
    memset(acc, 0, f.n_hashes * sizeof(float))
    if dense != NULL:
        for j in range(f.dim):
            v = dense[j]
            if v != 0:
                _sparse_simhash_add(f, j, v, acc)
    else:
        for e in range(nnz):
            v = values[e]
            if v != 0:
                _sparse_simhash_add(f, indices[e], v, acc)
    _pack_sign_bits(acc, f.K, f.L, bucket_ids, 1)


cdef void _wta_dense_row(const HashFamily* f, const float* x,
                         int32_t* bucket_ids) noexcept nogil:
    cdef int32_t codes[MAX_HASH_FUNCTIONS]
    cdef int32_t c, q, best_pos, bin_size = f.bin_size
    cdef const int32_t* dims
    cdef float best, v
    cdef bint densified = f.kind == FAMILY_DWTA
    # Branch-free argmax (which value wins is data-dependent and would
    # mispredict): a strict > keeps the first of equal values. For DWTA a
    # zero reads as -inf, so it never wins and an all-zero bin stays at -1.
    for c in range(f.n_hashes):
        dims = f.bin_dims + <int64_t>c * bin_size
        best = -INFINITY
        best_pos = -1
        for q in range(bin_size):
            v = x[dims[q]]
            if densified and v == 0:
                v = -INFINITY
            if v > best:
                best = v
                best_pos = q
        if best_pos < 0 and not densified:
            best_pos = 0                         # WTA: a bin of -inf values
        codes[c] = best_pos
    if densified:
        _densify(codes, f.n_hashes, f.seed, f.max_probes)
    _pack_codes(codes, f.K, f.L, f.code_bits, bucket_ids)


cdef void _wta_sparse_row(const HashFamily* f, const int32_t* indices,
                          const float* values, int32_t nnz,
                          int32_t* bucket_ids) noexcept nogil:
    # Through the inverse map: each nonzero updates the bins that hold its dim.
    # WTA also needs the first position of a bin holding a zero (absent dims
    # are zeros), found from a bit mask of the positions present.
    cdef int32_t codes[MAX_HASH_FUNCTIONS]
    cdef float best_val[MAX_HASH_FUNCTIONS]
    cdef uint64_t present[MAX_HASH_FUNCTIONS]
    cdef int32_t c, q, e, j, entry, first_zero, n = f.n_hashes
    cdef int64_t d
    cdef float v
    cdef bint densified = f.kind == FAMILY_DWTA
    cdef uint64_t full = (<uint64_t>0xFFFFFFFFFFFFFFFF) if f.bin_size == 64 else \
        ((<uint64_t>1 << f.bin_size) - 1)
    for c in range(n):
        codes[c] = -1
        present[c] = 0
    for e in range(nnz):
        v = values[e]
        if v == 0:
            continue
        j = indices[e]
        for d in range(f.dim_ptr[j], f.dim_ptr[j + 1]):
            entry = f.dim_entries[d]
            c = entry >> 6
            q = entry & (MAX_BIN_SIZE - 1)
            present[c] |= (<uint64_t>1) << q
            if codes[c] < 0 or v > best_val[c] or (v == best_val[c] and q < codes[c]):
                best_val[c] = v
                codes[c] = q
    if densified:
        _densify(codes, n, f.seed, f.max_probes)
    else:
        for c in range(n):
            if present[c] == full:
                continue
            first_zero = pyslide_ctz64(~present[c])
            # A zero beats a negative winner; ties go to the earlier position
            # but a nonzero never ties with a zero.
            if codes[c] < 0 or best_val[c] < 0:
                codes[c] = first_zero
    _pack_codes(codes, f.K, f.L, f.code_bits, bucket_ids)


cdef void _doph_row(const HashFamily* f, const int32_t* indices,
                    const float* values, int32_t nnz, const float* dense,
                    int32_t* bucket_ids) noexcept nogil:
    # Bin b covers permuted positions [b * width, (b + 1) * width); its code
    # is the low code_bits bits of the smallest permuted position of a
    # nonzero falling in it.
    cdef int32_t min_pos[MAX_HASH_FUNCTIONS]
    cdef int32_t c, e, j, p, b, n = f.n_hashes
    cdef int32_t mask = (1 << f.code_bits) - 1
    for c in range(n):
        min_pos[c] = INT32_MAX
    if dense != NULL:
        for j in range(f.dim):
            if dense[j] != 0:
                p = f.perm[j]
                b = p // f.bin_width
                if b < n and p < min_pos[b]:
                    min_pos[b] = p
    else:
        for e in range(nnz):
            if values[e] != 0:
                p = f.perm[indices[e]]
                b = p // f.bin_width
                if b < n and p < min_pos[b]:
                    min_pos[b] = p
    for c in range(n):
        min_pos[c] = -1 if min_pos[c] == INT32_MAX else (min_pos[c] & mask)
    _densify(min_pos, n, f.seed, f.max_probes)
    _pack_codes(min_pos, f.K, f.L, f.code_bits, bucket_ids)


cdef void hash_dense_row(const HashFamily* family, const float* x,
                         int32_t* bucket_ids) noexcept nogil:
    cdef int32_t kind = family.kind
    if kind == FAMILY_SIMHASH or kind == FAMILY_SPARSE_SIMHASH:
        _simhash_row(family, NULL, NULL, 0, x, bucket_ids)
    elif kind == FAMILY_WTA or kind == FAMILY_DWTA:
        _wta_dense_row(family, x, bucket_ids)
    else:
        _doph_row(family, NULL, NULL, 0, x, bucket_ids)


cdef void hash_sparse_row(const HashFamily* family, const int32_t* indices,
                          const float* values, int32_t nnz,
                          int32_t* bucket_ids) noexcept nogil:
    cdef int32_t kind = family.kind
    if kind == FAMILY_SIMHASH or kind == FAMILY_SPARSE_SIMHASH:
        _simhash_row(family, indices, values, nnz, NULL, bucket_ids)
    elif kind == FAMILY_WTA or kind == FAMILY_DWTA:
        _wta_sparse_row(family, indices, values, nnz, bucket_ids)
    else:
        _doph_row(family, indices, values, nnz, NULL, bucket_ids)


# ---------------------------------------------------------------------------
# Extension types
# ---------------------------------------------------------------------------

cdef class CompiledFamily:
    """A hash family with its random parameters drawn for one input dimension.

    Made by ``SimHash(...).compile(dim)`` (and the other specifications in
    :mod:`pyslide.hashing`); not constructed directly. The Python subclass
    ``pyslide.hashing.CompiledFamily`` adds ``hash_dense`` / ``hash_sparse``,
    which check their arguments and call ``_hash_dense_into`` /
    ``_hash_sparse_into`` here.
    """

    def __init__(self, spec, kind, int K, int L, int dim, int code_bits,
                 int bin_size=0, int bin_width=0, int max_probes=0,
                 uint64_t seed=0, **arrays):
        cdef const float[:, ::1] proj_t
        cdef const int32_t[:, ::1] bin_dims
        cdef const int64_t[::1] dim_ptr
        cdef const int32_t[::1] dim_entries
        cdef const int32_t[::1] perm
        self.keepalive = {"spec": spec, "arrays": arrays}
        self.c.kind = KIND_CODES[kind]
        self.c.K = K
        self.c.L = L
        self.c.dim = dim
        self.c.n_hashes = K * L
        self.c.code_bits = code_bits
        self.c.n_buckets = (<int64_t>1) << (K * code_bits)
        self.c.bin_size = bin_size
        self.c.bin_width = bin_width
        self.c.max_probes = max_probes
        self.c.seed = seed
        self.c.proj_t = NULL
        self.c.bin_dims = NULL
        self.c.dim_ptr = NULL
        self.c.dim_entries = NULL
        self.c.perm = NULL
        if "proj_t" in arrays:
            proj_t = arrays["proj_t"]
            self.c.proj_t = &proj_t[0, 0]
        if "bin_dims" in arrays:
            bin_dims = arrays["bin_dims"]
            self.c.bin_dims = &bin_dims[0, 0]
        if "dim_ptr" in arrays:
            dim_ptr = arrays["dim_ptr"]
            self.c.dim_ptr = &dim_ptr[0]
        if "dim_entries" in arrays:
            dim_entries = arrays["dim_entries"]
            # An input dim no hash function reads leaves the map empty.
            self.c.dim_entries = &dim_entries[0] if dim_entries.shape[0] else NULL
        if "perm" in arrays:
            perm = arrays["perm"]
            self.c.perm = &perm[0]

    @property
    def kind(self):
        """Family name: simhash, sparse_simhash, wta, dwta or doph."""
        return KIND_NAMES[self.c.kind]

    @property
    def K(self):
        return self.c.K

    @property
    def L(self):
        return self.c.L

    @property
    def dim(self):
        return self.c.dim

    @property
    def n_buckets(self):
        """Bucket ids of one table lie in ``[0, n_buckets)``."""
        return int(self.c.n_buckets)

    @property
    def code_bits(self):
        return self.c.code_bits

    @property
    def densify_seed(self):
        """Seed of the densification probes (DWTA, DOPH)."""
        return int(self.c.seed)

    @property
    def max_probes(self):
        return self.c.max_probes

    @property
    def bin_width(self):
        """DOPH: permuted positions per bin."""
        return self.c.bin_width

    @property
    def spec(self):
        """The specification this family was compiled from."""
        return self.keepalive["spec"]

    @property
    def arrays(self):
        """The family's random parameters (read-only NumPy arrays)."""
        return dict(self.keepalive["arrays"])

    @property
    def nbytes(self):
        return int(sum(a.nbytes for a in self.keepalive["arrays"].values()))

    def __reduce__(self):
        # Parameters are a pure function of (spec, dim): recompile on load.
        return (_recompile, (self.keepalive["spec"], self.c.dim))

    def __repr__(self):
        return (f"CompiledFamily({self.keepalive['spec']!r}, dim={self.c.dim}, "
                f"n_buckets={self.c.n_buckets})")


def _recompile(spec, dim):
    # Parameters are a pure function of (spec, dim): the specification
    # compiles them again (a method of the object pickled, no import).
    return spec.compile(dim)


# ---------------------------------------------------------------------------
# Batched hashing
# ---------------------------------------------------------------------------

cdef void _sgemm_rows(const HashFamily* f, const float* X, int32_t n_rows,
                      float* projections) noexcept nogil:
    """projections (n_rows, L*K) = X (n_rows, dim) @ P^T, one sgemm call.

    In column-major terms, with P^T stored row-major (dim, L*K):
    C^T (L*K, n_rows) = [P^T as col-major (L*K, dim)] @ [X as col-major (dim, n_rows)].
    """
    cdef char no_trans = b'N'
    cdef int m = f.n_hashes, n = n_rows, k = f.dim
    cdef float alpha = 1.0, beta = 0.0
    sgemm(&no_trans, &no_trans, &m, &n, &k, &alpha, <float*>f.proj_t, &m,
          <float*>X, &k, &beta, projections, &m)


cdef void _gaussian_codes(const HashFamily* f, const float* X, int64_t n_rows,
                          float* projections, int32_t* codes, int64_t row_stride,
                          int64_t table_stride, int n_threads) noexcept nogil:
    """SimHash of many rows with dense projections: each thread multiplies
    its chunk of rows with sgemm into its own buffer, then packs the sign
    bits while the buffer is still in cache.

    BLAS must be limited to one thread around this call (the Python side
    does it): the parallelism is the prange over chunks. One pool of
    threads, one parallel region: no hand-off between BLAS and OpenMP
    threads, each spinning while the other works.
    """
    cdef int64_t n_chunks = (n_rows + BLAS_CHUNK_ROWS - 1) // BLAS_CHUNK_ROWS
    cdef int64_t chunk, start, r
    cdef int32_t n_chunk
    cdef float* buffer = NULL
    with parallel(num_threads=n_threads):
        buffer = projections + <int64_t>threadid() * BLAS_CHUNK_ROWS * f.n_hashes
        for chunk in prange(n_chunks, schedule="dynamic"):
            start = chunk * BLAS_CHUNK_ROWS
            n_chunk = <int32_t>min(<int64_t>BLAS_CHUNK_ROWS, n_rows - start)
            _sgemm_rows(f, X + start * f.dim, n_chunk, buffer)
            for r in range(n_chunk):
                _pack_sign_bits(buffer + r * f.n_hashes, f.K, f.L,
                                codes + (start + r) * row_stride, table_stride)


cdef void _hash_row_strided(const HashFamily* f, const float* x, int32_t* codes,
                            int64_t table_stride) noexcept nogil:
    # The row's codes live on this frame's stack: private to the thread.
    cdef int32_t row_codes[MAX_HASH_FUNCTIONS]
    cdef int32_t l
    hash_dense_row(f, x, row_codes)
    for l in range(f.L):
        codes[l * table_stride] = row_codes[l]


cdef void _rows_codes(const HashFamily* f, const float* X, int64_t n_rows,
                      int32_t* codes, int64_t row_stride, int64_t table_stride,
                      int n_threads) noexcept nogil:
    """Any family, dense rows, one row kernel per prange iteration."""
    cdef int64_t r
    if table_stride == 1:
        for r in prange(n_rows, num_threads=n_threads, schedule="guided"):
            hash_dense_row(f, X + r * f.dim, codes + r * row_stride)
    else:
        for r in prange(n_rows, num_threads=n_threads, schedule="guided"):
            _hash_row_strided(f, X + r * f.dim, codes + r * row_stride, table_stride)


cdef inline bint _uses_blas(const HashFamily* f) noexcept nogil:
    return f.proj_t != NULL


cdef object projection_buffer(CompiledFamily fam, int n_threads):
    if not _uses_blas(&fam.c):
        return np.empty(1, dtype=np.float32)
    return np.empty(n_threads * BLAS_CHUNK_ROWS * fam.c.n_hashes, dtype=np.float32)


cdef void hash_rows_codes(const HashFamily* f, const float* X, int64_t n_rows,
                          float* projections, int32_t* codes, int64_t row_stride,
                          int64_t table_stride, int n_threads) noexcept nogil:
    if _uses_blas(f):
        _gaussian_codes(f, X, n_rows, projections, codes, row_stride, table_stride,
                        n_threads)
    else:
        _rows_codes(f, X, n_rows, codes, row_stride, table_stride, n_threads)


def _hash_dense_into(CompiledFamily fam, const float[:, ::1] X, int32_t[:, ::1] out,
                     int n_threads):
    """Kernel behind ``hashing.CompiledFamily.hash_dense`` (inputs already validated)."""
    cdef int64_t n_rows = X.shape[0]
    cdef float[::1] projections = projection_buffer(fam, n_threads)
    if n_rows == 0:
        return
    with nogil:
        hash_rows_codes(&fam.c, &X[0, 0], n_rows, &projections[0], &out[0, 0],
                        fam.c.L, 1, n_threads)


def _hash_sparse_into(CompiledFamily fam, const int64_t[::1] indptr,
                      const int32_t[::1] indices, const float[::1] data,
                      int32_t[:, ::1] out, int n_threads):
    """Kernel behind ``hashing.CompiledFamily.hash_sparse`` (inputs already validated)."""
    cdef int64_t r, n_rows = indptr.shape[0] - 1
    cdef const int32_t* idx = &indices[0] if indices.shape[0] else NULL
    cdef const float* val = &data[0] if data.shape[0] else NULL
    if n_rows == 0:
        return
    with nogil:
        for r in prange(n_rows, num_threads=n_threads, schedule="guided"):
            hash_sparse_row(&fam.c, idx + indptr[r], val + indptr[r],
                            <int32_t>(indptr[r + 1] - indptr[r]), &out[r, 0])


def _hash_rows_single(CompiledFamily fam, const float[:, ::1] X):
    """Test hook: the nogil single-row dense kernel, row by row, one thread."""
    out = np.empty((X.shape[0], fam.c.L), dtype=np.int32)
    cdef int32_t[:, ::1] codes = out
    cdef int64_t r
    with nogil:
        for r in range(X.shape[0]):
            hash_dense_row(&fam.c, &X[r, 0], &codes[r, 0])
    return out


def _hash_rows_single_sparse(CompiledFamily fam, const int64_t[::1] indptr,
                             const int32_t[::1] indices, const float[::1] data):
    """Test hook: the nogil single-row sparse kernel, row by row, one thread.

    Indices are used in the order given (they need not be sorted).
    """
    cdef int64_t r, n_rows = indptr.shape[0] - 1
    out = np.empty((n_rows, fam.c.L), dtype=np.int32)
    cdef int32_t[:, ::1] codes = out
    cdef const int32_t* idx = &indices[0] if indices.shape[0] else NULL
    cdef const float* val = &data[0] if data.shape[0] else NULL
    with nogil:
        for r in range(n_rows):
            hash_sparse_row(&fam.c, idx + indptr[r], val + indptr[r],
                            <int32_t>(indptr[r + 1] - indptr[r]), &codes[r, 0])
    return out


# ---------------------------------------------------------------------------
# Finite check
# ---------------------------------------------------------------------------

cdef inline bint _block_finite(const float* values, int64_t n) noexcept nogil:
    # Exponent bits all ones <=> inf or NaN; an OR-reduction over integer
    # tests vectorises, unlike calls to isfinite.
    cdef const uint32_t* bits = <const uint32_t*>values
    cdef uint32_t bad = 0
    cdef int64_t i
    for i in range(n):
        bad |= <uint32_t>((bits[i] & 0x7F800000u) == 0x7F800000u)
    return bad == 0


def _all_finite(const float[::1] values, int n_threads):
    """True when no value is inf or NaN (parallel over blocks)."""
    cdef int64_t n = values.shape[0], block = 1 << 16, b, n_blocks
    cdef int32_t n_bad = 0
    cdef int64_t lo, hi
    if n == 0:
        return True
    n_blocks = (n + block - 1) // block
    with nogil:
        for b in prange(n_blocks, num_threads=n_threads, schedule="static"):
            lo = b * block
            hi = min(lo + block, n)
            if not _block_finite(&values[lo], hi - lo):
                n_bad += 1
    return n_bad == 0



def _hash_dense_tables_layout(CompiledFamily fam, const float[:, ::1] X,
                              int32_t[:, ::1] out, int n_threads):
    """Codes of X written table-major, out (L, n) (for update)."""
    cdef int64_t n_rows = X.shape[0]
    cdef float[::1] projections = projection_buffer(fam, n_threads)
    if n_rows == 0:
        return
    with nogil:
        hash_rows_codes(&fam.c, &X[0, 0], n_rows, &projections[0], &out[0, 0],
                        1, n_rows, n_threads)

