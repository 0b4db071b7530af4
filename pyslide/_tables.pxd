# C-level interface of the LSH bucket tables, cimported by the training kernels; cimports nothing of ours.
#
# Contract with the engine: a CompiledTables wraps BucketTables; the engine
# reads its fields directly (ids, counts, L, n_buckets, bucket_size) and
# calls query_union_row for SLIDE's per-sample union. The bucket ids the
# queries take come from _hash's hash_dense_row / hash_sparse_row.
#
# Every function below is allocation-free, thread-safe and callable from
# inside a prange.

from libc.stdint cimport int32_t, int64_t, uint64_t

cdef enum:
    POLICY_FIFO = 0
    POLICY_RESERVOIR = 1


cdef struct BucketTables:
    int32_t L
    int64_t n_buckets           # buckets per table
    int32_t bucket_size         # slots per bucket
    int32_t* ids                # (L, n_buckets, bucket_size) neuron ids
    int32_t* counts             # (L, n_buckets) insertions seen; valid slots = min(count, bucket_size)


cdef class CompiledTables:
    cdef BucketTables c
    cdef object keepalive


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
