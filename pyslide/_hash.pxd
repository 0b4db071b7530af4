# C-level interface of the LSH machinery, cimported by the training kernels; cimports _common.
#
# Contract with the engine (do not change the function signatures without
# changing _kernels.pyx):
#   * a CompiledFamily wraps a HashFamily struct whose pointers point into
#     NumPy arrays it keeps alive; the engine treats HashFamily as opaque and
#     only passes &family.c to hash_dense_row / hash_sparse_row;
#   * a CompiledTables wraps BucketTables; the engine reads its fields
#     directly (ids, counts, L, n_buckets, bucket_size) and calls
#     query_union_row for SLIDE's per-sample union.
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
    POLICY_FIFO = 0
    POLICY_RESERVOIR = 1


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


cdef struct BucketTables:
    int32_t L
    int64_t n_buckets           # buckets per table
    int32_t bucket_size         # slots per bucket
    int32_t* ids                # (L, n_buckets, bucket_size) neuron ids
    int32_t* counts             # (L, n_buckets) insertions seen; valid slots = min(count, bucket_size)


cdef class CompiledFamily:
    cdef HashFamily c
    cdef object keepalive       # NumPy arrays that c's pointers point into


cdef class CompiledTables:
    cdef BucketTables c
    cdef object keepalive


# Hash one dense row x[0:dim] into L bucket ids, each in [0, n_buckets).
cdef void hash_dense_row(const HashFamily* family, const float* x,
                         int32_t* bucket_ids) noexcept nogil

# Hash one sparse row (indices need not be sorted; values may be ignored by
# set-based families such as DOPH) into L bucket ids.
cdef void hash_sparse_row(const HashFamily* family, const int32_t* indices,
                          const float* values, int32_t nnz,
                          int32_t* bucket_ids) noexcept nogil

# SLIDE's union: append to out_ids the ids of the L hit buckets whose
# stamp[id] != mark, setting stamp[id] = mark, until max_new ids were
# appended. Returns how many were appended. The caller stamps ids it already
# holds (e.g. true labels) with the same mark first, so results are
# de-duplicated without sorting or hash maps.
cdef int32_t query_union_row(const BucketTables* tables, const int32_t* bucket_ids,
                             int32_t* out_ids, int32_t max_new,
                             int32_t* stamp, int32_t mark) noexcept nogil

# Ids hit in at least `threshold` of the L buckets (each table counted once
# per id), in first-hit order, at most max_new of them. hit_count (n_items,
# all zero on entry and on return) and last_table (n_items, all
# -1 on entry and on return) are per-thread scratch; touched holds
# L * bucket_size ids. Returns how many were appended.
cdef int32_t query_threshold_row(const BucketTables* tables, const int32_t* bucket_ids,
                                 int32_t threshold, int32_t* out_ids, int32_t max_new,
                                 int32_t* hit_count, int32_t* last_table,
                                 int32_t* touched) noexcept nogil

# Exactly n_wanted distinct ids (n_wanted <= n_items): the L hit buckets probed
# in an order drawn from rng_seed, then uniformly random ids not yet taken.
# Ids already stamped with `mark` count as taken but are not appended.
# Returns how many were appended (n_wanted unless too few ids exist).
cdef int32_t query_sample_row(const BucketTables* tables, const int32_t* bucket_ids,
                              int32_t n_wanted, int32_t n_items, int32_t* out_ids,
                              int32_t* stamp, int32_t mark,
                              uint64_t rng_seed) noexcept nogil
