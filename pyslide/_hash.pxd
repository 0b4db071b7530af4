# C-level interface of the LSH hash families, cimported by _tables and the training kernels; cimports nothing of ours.
#
# Contract with the engine (do not change the function signatures without
# changing the kernels that call them):
#   * a CompiledFamily wraps a HashFamily struct whose pointers point into
#     NumPy arrays it keeps alive; the engine treats HashFamily as opaque and
#     only passes &family.c to hash_dense_row / hash_sparse_row;
#   * the bucket tables (BucketTables, CompiledTables, the per-row queries)
#     are declared in _tables.pxd.
#
# Every function below is allocation-free, thread-safe and callable from
# inside a prange: per-row scratch lives on the stack, bounded by
# MAX_HASH_FUNCTIONS (L * K) and MAX_BIN_SIZE, which the Python
# specifications enforce before anything is compiled.

from libc.stdint cimport int8_t, int32_t, int64_t, uint32_t, uint64_t

cdef enum:
    FAMILY_SIMHASH = 0          # dense Gaussian projections, K sign bits per table
    FAMILY_SPARSE_SIMHASH = 1   # SLIDE's +-1 projections on a sampled subset of dims
    FAMILY_WTA = 2              # winner-take-all
    FAMILY_DWTA = 3             # densified WTA (sparse inputs)
    FAMILY_DOPH = 4             # densified one-permutation minhash (sparse binary inputs)

cdef enum:
    MAX_HASH_FUNCTIONS = 4096   # L * K: bounds the per-row stack scratch
    MAX_BIN_SIZE = 64           # WTA / DWTA: positions fit a uint64 mask
    MAX_CODE_BITS = 24          # bits of one table's bucket id (2^24 buckets)


cdef struct HashFamily:
    # Fields are owned by _hash.pyx and may grow; the engine never reads them.
    int32_t kind
    int32_t K                   # bits / codes per table
    int32_t L                   # tables
    int32_t dim                 # input dimension
    int64_t n_buckets           # range of one table's bucket id = 2^(K * code_bits)
    int32_t n_hashes            # L * K hash functions (projections, bins)
    int32_t code_bits           # bits of one code (1 for SimHash, log2(bin_size) for WTA)
    int32_t bin_size            # WTA / DWTA: dims per bin
    int32_t bin_width           # DOPH: permuted positions per bin
    int32_t max_probes          # DWTA / DOPH: universal-hash densification attempts
    const float* proj_t         # SimHash: projections transposed, dense (dim, n_hashes)
                                # row-major (Gaussian; sparse +-1 too when small), or NULL
    const int32_t* bin_dims     # WTA / DWTA: (n_hashes, bin_size) dims of each bin
    const int64_t* dim_ptr      # (dim + 1) CSR offsets into dim_entries, per input dim
    const int32_t* dim_entries  # sparse SimHash without proj_t: 2 * projection + (sign < 0);
                                # WTA / DWTA: bin * MAX_BIN_SIZE + position in bin
    const int32_t* perm         # DOPH: (dim,) permuted position of each dim
    uint64_t seed               # densification probes


cdef class CompiledFamily:
    cdef HashFamily c
    cdef object keepalive       # NumPy arrays that c's pointers point into


# Hash one dense row x[0:dim] into L bucket ids, each in [0, n_buckets).
cdef void hash_dense_row(const HashFamily* family, const float* x,
                         int32_t* bucket_ids) noexcept nogil

# Hash one sparse row (indices need not be sorted; values may be ignored by
# set-based families such as DOPH) into L bucket ids.
cdef void hash_sparse_row(const HashFamily* family, const int32_t* indices,
                          const float* values, int32_t nnz,
                          int32_t* bucket_ids) noexcept nogil


# Codes of n_rows dense rows X (n_rows, dim): row r's code for table l goes
# to codes[r * row_stride + l * table_stride]. Gaussian SimHash multiplies
# chunks with sgemm into projections (from projection_buffer; BLAS limited to
# one thread by the caller), the other families hash row by row; a prange
# over rows or chunks with n_threads threads.
cdef void hash_rows_codes(const HashFamily* f, const float* X, int64_t n_rows,
                          float* projections, int32_t* codes, int64_t row_stride,
                          int64_t table_stride, int n_threads) noexcept nogil

# The per-thread sgemm output hash_rows_codes needs (a 1-element dummy for
# families that do not use BLAS).
cdef object projection_buffer(CompiledFamily fam, int n_threads)
