# C-level interface of the LSH machinery, cimported by _kernels.pyx.
#
# Contract with the engine (do not change the function signatures without
# changing _kernels.pyx):
#   * a CompiledFamily wraps a HashFamily struct whose pointers point into
#     NumPy arrays it keeps alive; the engine treats HashFamily as opaque and
#     only passes &family.c to hash_dense_row / hash_sparse_row;
#   * a CompiledTables wraps BucketTables; the engine reads its fields
#     directly (ids, counts, L, n_buckets, bucket_size) and calls
#     query_union_row for SLIDE's per-sample union.

from libc.stdint cimport int8_t, int32_t, int64_t, uint32_t, uint64_t

cdef enum:
    FAMILY_SIMHASH = 0          # dense Gaussian projections, K sign bits per table
    FAMILY_SPARSE_SIMHASH = 1   # SLIDE's +-1 projections on a sampled subset of dims
    FAMILY_WTA = 2              # winner-take-all
    FAMILY_DWTA = 3             # densified WTA (sparse inputs)
    FAMILY_DOPH = 4             # densified one-permutation minhash (sparse binary inputs)


cdef struct HashFamily:
    # Fields are owned by _hash.pyx and may grow; the engine never reads them.
    int32_t kind
    int32_t K                   # bits / codes per table
    int32_t L                   # tables
    int32_t dim                 # input dimension
    int64_t n_buckets           # range of one table's bucket id
    int32_t bin_size            # WTA / DWTA / DOPH bin size
    int32_t n_nonzero           # sparse SimHash: dims per projection
    const float* gaussian       # SimHash: (L*K, dim) row-major
    const int32_t* proj_dims    # sparse SimHash: (L*K, n_nonzero)
    const int8_t* proj_signs    # sparse SimHash: (L*K, n_nonzero), +-1
    const int32_t* bin_dims     # WTA: (L*K, bin_size) dims of each bin
    const int32_t* dim_to_slot  # DWTA / DOPH: (dim, ...) inverse maps, layout owned by _hash.pyx
    const int32_t* aux          # family-specific extra table
    uint64_t seed


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
