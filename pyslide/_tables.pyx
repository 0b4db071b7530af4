"""LSH bucket tables: fill (FIFO / reservoir), per-row and batched queries; a kernel module (imports no Python module of ours).

The tables store the codes of the hash families in ``_hash`` (cimported
through ``_hash.pxd``); ``pyslide.hashing`` validates every argument before
calling in. Bucket tables are flat: ids ``(L, n_buckets, bucket_size)`` and
counts ``(L, n_buckets)``; filling is parallel over tables, in item order,
so contents never depend on the thread count. Every per-row query is
``noexcept nogil`` and allocation-free (see ``_tables.pxd``).
"""
import numpy as np

from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t, INT32_MAX
from libc.string cimport memset

from ._common cimport mix_seed, rand_below
from ._hash cimport (CompiledFamily, HashFamily, MAX_HASH_FUNCTIONS, hash_dense_row,
                     hash_sparse_row, hash_rows_codes, projection_buffer)

POLICIES = {"fifo": POLICY_FIFO, "reservoir": POLICY_RESERVOIR}

cdef enum:
    # Rows hashed then inserted per step of a build: bounds the code buffer.
    BUILD_CHUNK_ROWS = 16384
    # Separates the table-order stream of sample queries from other streams.
    SAMPLE_ORDER_SALT = 0x5A17


# ---------------------------------------------------------------------------
# Per-row queries
# ---------------------------------------------------------------------------

cdef inline int32_t _collect_bucket(const int32_t* slots, int32_t n_valid,
                                    int32_t* out_ids, int32_t n_out, int32_t max_new,
                                    int32_t* stamp, int32_t mark) noexcept nogil:
    """Append the bucket's ids not stamped with mark; stop at max_new."""
    cdef int32_t s, item
    if n_valid <= max_new - n_out:
        # Whole bucket fits: branch-free (whether an id is new is data-
        # dependent and mispredicts); out_ids[n_out] stays below max_new.
        for s in range(n_valid):
            item = slots[s]
            out_ids[n_out] = item
            n_out += stamp[item] != mark
            stamp[item] = mark
        return n_out
    for s in range(n_valid):
        item = slots[s]
        if stamp[item] != mark:
            stamp[item] = mark
            out_ids[n_out] = item
            n_out += 1
            if n_out == max_new:
                break
    return n_out


cdef int32_t query_union_row(const BucketTables* tables, const int32_t* bucket_ids,
                             int32_t* out_ids, int32_t max_new,
                             int32_t* stamp, int32_t mark) noexcept nogil:
    cdef int32_t l, n_valid, n_out = 0
    cdef int32_t bucket_size = tables.bucket_size
    cdef int64_t bucket, n_buckets = tables.n_buckets
    for l in range(tables.L):
        if n_out >= max_new:
            break
        bucket = <int64_t>l * n_buckets + bucket_ids[l]
        n_valid = tables.counts[bucket]
        if n_valid > bucket_size:
            n_valid = bucket_size
        n_out = _collect_bucket(tables.ids + bucket * bucket_size, n_valid, out_ids,
                                n_out, max_new, stamp, mark)
    return n_out


cdef int32_t query_threshold_row(const BucketTables* tables, const int32_t* bucket_ids,
                                 int32_t threshold, int32_t* out_ids, int32_t max_new,
                                 int32_t* hit_count, int32_t* last_table,
                                 int32_t* touched) noexcept nogil:
    cdef int32_t l, s, n_valid, item, n_touched = 0, n_out = 0
    cdef int32_t bucket_size = tables.bucket_size
    cdef int64_t bucket
    cdef const int32_t* slots
    for l in range(tables.L):
        bucket = <int64_t>l * tables.n_buckets + bucket_ids[l]
        n_valid = tables.counts[bucket]
        if n_valid > bucket_size:
            n_valid = bucket_size
        slots = tables.ids + bucket * bucket_size
        for s in range(n_valid):
            item = slots[s]
            # A stale duplicate inside one bucket must not count twice.
            if last_table[item] == l:
                continue
            last_table[item] = l
            if hit_count[item] == 0:
                touched[n_touched] = item
                n_touched += 1
            hit_count[item] += 1
    for s in range(n_touched):
        item = touched[s]
        if hit_count[item] >= threshold and n_out < max_new:
            out_ids[n_out] = item
            n_out += 1
        hit_count[item] = 0
        last_table[item] = -1
    return n_out


cdef int32_t query_sample_row(const BucketTables* tables, const int32_t* bucket_ids,
                              int32_t n_wanted, int32_t n_items, int32_t* out_ids,
                              int32_t* stamp, int32_t mark,
                              uint64_t rng_seed) noexcept nogil:
    cdef int32_t order[MAX_HASH_FUNCTIONS]
    cdef int32_t t, l, r, s, n_valid, item, tmp, n_out = 0
    cdef int32_t L = tables.L, bucket_size = tables.bucket_size
    cdef int64_t bucket, attempts, max_attempts
    cdef const int32_t* slots
    cdef uint64_t state = rng_seed
    if n_wanted <= 0:
        return 0
    for t in range(L):
        order[t] = t
    for t in range(L - 1, 0, -1):
        r = <int32_t>rand_below(&state, <uint32_t>(t + 1))
        tmp = order[t]
        order[t] = order[r]
        order[r] = tmp
    for t in range(L):
        l = order[t]
        bucket = <int64_t>l * tables.n_buckets + bucket_ids[l]
        n_valid = tables.counts[bucket]
        if n_valid > bucket_size:
            n_valid = bucket_size
        n_out = _collect_bucket(tables.ids + bucket * bucket_size, n_valid, out_ids,
                                n_out, n_wanted, stamp, mark)
        if n_out == n_wanted:
            return n_out
    # Top up with uniform random ids; rejection is cheap while most ids are
    # free, and a scan from a random start guarantees termination.
    attempts = 0
    max_attempts = 4 * <int64_t>n_wanted + 64
    while n_out < n_wanted and attempts < max_attempts:
        item = <int32_t>rand_below(&state, <uint32_t>n_items)
        attempts += 1
        if stamp[item] != mark:
            stamp[item] = mark
            out_ids[n_out] = item
            n_out += 1
    if n_out < n_wanted:
        item = <int32_t>rand_below(&state, <uint32_t>n_items)
        for s in range(n_items):
            if stamp[item] != mark:
                stamp[item] = mark
                out_ids[n_out] = item
                n_out += 1
                if n_out == n_wanted:
                    break
            item += 1
            if item == n_items:
                item = 0
    return n_out



cdef class CompiledTables:
    """Flat bucket arrays of an :class:`pyslide.hashing.LSHTables`."""

    def __init__(self, int32_t[:, :, ::1] ids, int32_t[:, ::1] counts):
        self.keepalive = (ids.base, counts.base)
        self.c.L = <int32_t>ids.shape[0]
        self.c.n_buckets = ids.shape[1]
        self.c.bucket_size = <int32_t>ids.shape[2]
        self.c.ids = &ids[0, 0, 0]
        self.c.counts = &counts[0, 0]

    @property
    def L(self):
        return self.c.L

    @property
    def n_buckets(self):
        return int(self.c.n_buckets)

    @property
    def bucket_size(self):
        return self.c.bucket_size


# ---------------------------------------------------------------------------
# Filling tables
# ---------------------------------------------------------------------------

cdef inline uint64_t _reservoir_key(uint64_t seed, int32_t table) noexcept nogil:
    return mix_seed(seed, <uint64_t>table, 0x7E5E)


cdef inline int32_t _reservoir_slot(uint64_t table_key, int32_t item,
                                    int32_t count) noexcept nogil:
    """Algorithm R: insertion number ``count`` (>= bucket_size) replaces a
    uniform slot with probability bucket_size / (count + 1): draw r in
    [0, count]; r < bucket_size names the slot. The draw is keyed by
    (seed, table, item, count), so contents do not depend on threads."""
    cdef uint64_t state = table_key ^ (<uint64_t>item * <uint64_t>0xD6E8FEB86659FD93) \
        ^ (<uint64_t>count * <uint64_t>0xA0761D6478BD642F)
    return <int32_t>rand_below(&state, <uint32_t>count + 1)


cdef inline bint _already_in_bucket(const int32_t* slots, int32_t n_valid,
                                    int32_t item) noexcept nogil:
    cdef int32_t s
    for s in range(n_valid):
        if slots[s] == item:
            return True
    return False


cdef void _fill_table(int32_t* ids, int32_t* counts, int32_t bucket_size,
                      const int32_t* codes, int64_t n_rows, const int32_t* items,
                      int32_t first_item, int policy, uint64_t table_key,
                      bint skip_present) noexcept nogil:
    """Insert rows [0, n_rows) into one table (ids / counts point at it)."""
    cdef int64_t r
    cdef int32_t b, count, item, slot, n_valid
    cdef int32_t mask = bucket_size - 1
    cdef int32_t* slots
    cdef int32_t discard = 0
    if (policy == POLICY_FIFO and (bucket_size & mask) == 0 and items == NULL
            and not skip_present):
        # The build's hot loop: ring slot = count & (bucket_size - 1), which
        # is also the append position while count < bucket_size. Counts stay
        # below n_rows < 2^31 (tables are cleared first).
        for r in range(n_rows):
            b = codes[r]
            count = counts[b]
            counts[b] = count + 1
            ids[<int64_t>b * bucket_size + (count & mask)] = first_item + <int32_t>r
        return
    if policy == POLICY_RESERVOIR and items == NULL and not skip_present:
        # The build's reservoir loop. Whether an insertion is kept is a coin
        # flip the branch predictor cannot learn: a rejected one is written
        # to a scratch slot instead of branching around the store.
        for r in range(n_rows):
            b = codes[r]
            item = first_item + <int32_t>r
            count = counts[b]
            counts[b] = count + 1
            slot = count if count < bucket_size else _reservoir_slot(table_key, item, count)
            slots = ids + <int64_t>b * bucket_size + slot if slot < bucket_size else &discard
            slots[0] = item
        return
    for r in range(n_rows):
        b = codes[r]
        item = items[r] if items != NULL else first_item + <int32_t>r
        count = counts[b]
        slots = ids + <int64_t>b * bucket_size
        if skip_present:
            n_valid = count if count < bucket_size else bucket_size
            if _already_in_bucket(slots, n_valid, item):
                continue
        if count < bucket_size:
            slot = count
        elif policy == POLICY_FIFO:
            slot = count % bucket_size
        else:
            slot = _reservoir_slot(table_key, item, count)
        if slot < bucket_size:
            slots[slot] = item
        if count < INT32_MAX:
            counts[b] = count + 1


cdef void _fill(BucketTables* t, const int32_t* codes, int64_t n_rows,
                const int32_t* items, int32_t first_item, int policy, uint64_t seed,
                bint skip_present, int n_threads) noexcept nogil:
    """Insert rows [0, n_rows) of codes (L, n_rows) in row order; one thread
    per table so no two threads write one table."""
    cdef int32_t l
    cdef int32_t* table_ids
    cdef int32_t* table_counts
    cdef int64_t n_buckets = t.n_buckets
    cdef int32_t bucket_size = t.bucket_size
    for l in prange(t.L, num_threads=n_threads, schedule="static"):
        table_ids = t.ids + <int64_t>l * n_buckets * bucket_size
        table_counts = t.counts + <int64_t>l * n_buckets
        _fill_table(table_ids, table_counts, bucket_size, codes + <int64_t>l * n_rows,
                    n_rows, items, first_item, policy, _reservoir_key(seed, l),
                    skip_present)


cdef void _fifo_backward_table(int32_t* ids, int32_t* counts, int32_t bucket_size,
                               const int32_t* codes, int64_t n_rows,
                               int32_t first_item) noexcept nogil:
    """FIFO fill of fresh tables, visiting rows last to first.

    counts[b] counts the rows seen so far from the end; only the first
    bucket_size of them (the newest, which FIFO keeps) are stored, newest
    first. Most rows then cost a counter increment instead of a scattered
    store; _fifo_ring_order puts the kept ids where forward insertion would.
    """
    cdef int64_t r
    cdef int32_t b, count
    for r in range(n_rows - 1, -1, -1):
        b = codes[r]
        count = counts[b]
        counts[b] = count + 1
        if count < bucket_size:
            ids[<int64_t>b * bucket_size + count] = first_item + <int32_t>r


cdef inline void _reverse(int32_t* a, int32_t n) noexcept nogil:
    cdef int32_t i, tmp
    for i in range(n // 2):
        tmp = a[i]
        a[i] = a[n - 1 - i]
        a[n - 1 - i] = tmp


cdef void _fifo_ring_order(int32_t* ids, const int32_t* counts, int64_t n_buckets,
                           int32_t bucket_size) noexcept nogil:
    """Move the k-th newest id of each bucket from slot k to its ring slot
    (total - 1 - k) % bucket_size: reversing [0, s) and [s, bucket_size),
    s = (total - 1) % bucket_size + 1, does exactly that."""
    cdef int64_t b
    cdef int32_t total, split
    for b in range(n_buckets):
        total = counts[b]
        if total <= 1:
            continue
        split = (total - 1) % bucket_size + 1
        _reverse(ids + b * bucket_size, split)
        if total > bucket_size:
            _reverse(ids + b * bucket_size + split, bucket_size - split)


cdef void _fifo_finish(BucketTables* t, int n_threads) noexcept nogil:
    cdef int32_t l
    for l in prange(t.L, num_threads=n_threads, schedule="static"):
        _fifo_ring_order(t.ids + <int64_t>l * t.n_buckets * t.bucket_size,
                         t.counts + <int64_t>l * t.n_buckets, t.n_buckets, t.bucket_size)


cdef void _fifo_backward(BucketTables* t, const int32_t* codes, int64_t n_rows,
                         int32_t first_item, int n_threads) noexcept nogil:
    cdef int32_t l
    cdef int64_t n_buckets = t.n_buckets
    for l in prange(t.L, num_threads=n_threads, schedule="static"):
        _fifo_backward_table(t.ids + <int64_t>l * n_buckets * t.bucket_size,
                             t.counts + <int64_t>l * n_buckets, t.bucket_size,
                             codes + <int64_t>l * n_rows, n_rows, first_item)


def _build(CompiledFamily fam, CompiledTables tables, const float[:, ::1] X,
           int policy, uint64_t seed, int n_threads):
    """Clear the tables, hash row i of X, insert item i (inputs validated).

    Rows go through in chunks (hash a chunk, then insert it) so the code
    buffer stays small and hot. Reservoir tables take chunks in row order;
    FIFO tables take them last to first (see _fifo_backward_table), which
    ends with the same contents.
    """
    cdef int64_t n_rows = X.shape[0], start, n_chunk, n_chunks, chunk_index
    cdef int64_t chunk = max(1, min(n_rows, <int64_t>BUILD_CHUNK_ROWS))
    cdef bint backward = policy == POLICY_FIFO
    codes_array = np.empty(chunk * fam.c.L, dtype=np.int32)
    cdef int32_t[::1] codes = codes_array
    cdef float[::1] projections = projection_buffer(fam, n_threads)
    n_chunks = (n_rows + chunk - 1) // chunk
    with nogil:
        memset(tables.c.counts, 0, tables.c.L * tables.c.n_buckets * sizeof(int32_t))
        for chunk_index in range(n_chunks):
            start = (n_chunks - 1 - chunk_index if backward else chunk_index) * chunk
            n_chunk = min(chunk, n_rows - start)
            hash_rows_codes(&fam.c, &X[start, 0], n_chunk, &projections[0], &codes[0], 1,
                            n_chunk, n_threads)
            if backward:
                _fifo_backward(&tables.c, &codes[0], n_chunk, <int32_t>start, n_threads)
            else:
                _fill(&tables.c, &codes[0], n_chunk, NULL, <int32_t>start, policy, seed,
                      False, n_threads)
        if backward and n_rows > 0:
            _fifo_finish(&tables.c, n_threads)


def _build_from_codes(CompiledTables tables, const int32_t[:, ::1] codes_by_table,
                      int policy, uint64_t seed, int n_threads):
    """Clear the tables and insert ids 0..n-1 with codes (L, n)."""
    cdef int64_t n_rows = codes_by_table.shape[1]
    with nogil:
        memset(tables.c.counts, 0, tables.c.L * tables.c.n_buckets * sizeof(int32_t))
        if n_rows == 0:
            pass
        elif policy == POLICY_FIFO:
            _fifo_backward(&tables.c, &codes_by_table[0, 0], n_rows, 0, n_threads)
            _fifo_finish(&tables.c, n_threads)
        else:
            _fill(&tables.c, &codes_by_table[0, 0], n_rows, NULL, 0, policy, seed, False,
                  n_threads)


def _fill_codes(CompiledTables tables, const int32_t[:, ::1] codes_by_table,
                items, int policy, uint64_t seed, bint skip_present, int n_threads):
    """Insert items (or ids 0..n-1 when items is None) with precomputed codes
    (L, n), in order, without clearing."""
    cdef int64_t n_rows = codes_by_table.shape[1]
    cdef const int32_t[::1] item_view
    cdef const int32_t* item_ptr = NULL
    if n_rows == 0:
        return
    if items is not None:
        item_view = items
        item_ptr = &item_view[0]
    with nogil:
        _fill(&tables.c, &codes_by_table[0, 0], n_rows, item_ptr, 0, policy, seed,
              skip_present, n_threads)


# ---------------------------------------------------------------------------
# Batched queries
# ---------------------------------------------------------------------------

cdef enum:
    QUERY_UNION = 0
    QUERY_THRESHOLD = 1
    QUERY_SAMPLE = 2

QUERY_MODES = {"union": QUERY_UNION, "threshold": QUERY_THRESHOLD, "sample": QUERY_SAMPLE}


cdef int32_t _query_row(const HashFamily* f, const BucketTables* t, int mode,
                        const int32_t* precomputed, const float* dense_row,
                        const int32_t* indices,
                        const float* values, int32_t nnz, int32_t* out,
                        int32_t row_capacity, int32_t threshold, int32_t n_items,
                        int32_t* stamp, int32_t mark, int32_t* hit_count,
                        int32_t* last_table, int32_t* touched,
                        uint64_t rng_seed) noexcept nogil:
    # bucket_ids on this frame's stack: private to the calling thread.
    cdef int32_t own_ids[MAX_HASH_FUNCTIONS]
    cdef const int32_t* bucket_ids = own_ids
    if precomputed != NULL:
        bucket_ids = precomputed
    elif dense_row != NULL:
        hash_dense_row(f, dense_row, own_ids)
    else:
        hash_sparse_row(f, indices, values, nnz, own_ids)
    if mode == QUERY_UNION:
        return query_union_row(t, bucket_ids, out, row_capacity, stamp, mark)
    if mode == QUERY_THRESHOLD:
        return query_threshold_row(t, bucket_ids, threshold, out, row_capacity,
                                   hit_count, last_table, touched)
    return query_sample_row(t, bucket_ids, row_capacity, n_items, out, stamp, mark,
                            rng_seed)


def _query(CompiledFamily fam, CompiledTables tables, int mode,
           const int32_t[:, ::1] codes, const float[:, ::1] dense,
           const int64_t[::1] indptr,
           const int32_t[::1] indices, const float[::1] data,
           int32_t row_capacity, int32_t threshold, int32_t n_items,
           int32_t[:, ::1] stamps, int32_t mark_base,
           int32_t[:, ::1] scratch, uint64_t seed, int n_threads):
    """Per-row candidate ids of a batch, hashed and looked up in one nogil
    region (prange over rows). Returns (counts per row, buffer (n, capacity)).

    ``codes`` (n, L) holds the batch's bucket ids when already computed
    (e.g. by sgemm); otherwise it is empty and rows are hashed here:
    ``dense`` has rows for a dense batch, or is empty and the CSR arrays
    describe the batch. ``stamps`` holds one int32 row of n_items per
    thread for union / sample queries (marks above every value in it are
    fresh: row r uses mark_base + r + 1). ``scratch`` holds, per thread for
    threshold queries, hit counts (n_items zeros), last tables (n_items, -1)
    and a touched list (L * bucket_size); kernels restore it on return.
    """
    cdef bint has_codes = codes.shape[0] > 0
    cdef bint is_dense = dense.shape[0] > 0
    cdef int64_t n_rows = (codes.shape[0] if has_codes else dense.shape[0] if is_dense
                           else max(indptr.shape[0] - 1, 0))
    out_array = np.empty((n_rows, max(row_capacity, 1)), dtype=np.int32)
    n_out_array = np.zeros(n_rows, dtype=np.int64)
    cdef int32_t[:, ::1] out = out_array
    cdef int64_t[::1] n_out = n_out_array
    cdef int64_t r, n_scratch = n_items
    cdef int tid
    cdef int32_t* stamp
    cdef int32_t* hit_count
    cdef int32_t* last_table
    cdef int32_t* touched
    cdef const float* dense_row
    cdef const int32_t* idx = &indices[0] if indices.shape[0] else NULL
    cdef const float* val = &data[0] if data.shape[0] else NULL
    if n_rows == 0:
        return n_out_array, out_array
    # Assigned again inside the parallel block (private per thread); set here
    # only so the compiler sees them initialised.
    tid = 0
    stamp = hit_count = last_table = touched = NULL
    with nogil, parallel(num_threads=n_threads):
        tid = threadid()
        stamp = NULL
        hit_count = NULL
        last_table = NULL
        touched = NULL
        if mode == QUERY_THRESHOLD:
            hit_count = &scratch[tid, 0]
            last_table = hit_count + n_scratch
            touched = last_table + n_scratch
        else:
            stamp = &stamps[tid, 0]
        for r in prange(n_rows, schedule="dynamic", chunksize=4):
            if has_codes:
                n_out[r] = _query_row(&fam.c, &tables.c, mode, &codes[r, 0], NULL, NULL,
                                      NULL, 0, &out[r, 0], row_capacity, threshold,
                                      n_items, stamp, mark_base + <int32_t>r + 1,
                                      hit_count, last_table, touched,
                                      mix_seed(seed, SAMPLE_ORDER_SALT, <uint64_t>r))
            elif is_dense:
                n_out[r] = _query_row(&fam.c, &tables.c, mode, NULL, &dense[r, 0], NULL,
                                      NULL, 0, &out[r, 0], row_capacity, threshold,
                                      n_items, stamp, mark_base + <int32_t>r + 1,
                                      hit_count, last_table, touched,
                                      mix_seed(seed, SAMPLE_ORDER_SALT, <uint64_t>r))
            else:
                n_out[r] = _query_row(&fam.c, &tables.c, mode, NULL, NULL, idx + indptr[r],
                                      val + indptr[r],
                                      <int32_t>(indptr[r + 1] - indptr[r]),
                                      &out[r, 0], row_capacity, threshold, n_items,
                                      stamp, mark_base + <int32_t>r + 1, hit_count,
                                      last_table, touched,
                                      mix_seed(seed, SAMPLE_ORDER_SALT, <uint64_t>r))
    return n_out_array, out_array


def _compact(const int64_t[::1] n_out, const int32_t[:, ::1] out, int n_threads):
    """(counts, padded buffer) -> (indptr int64, ids int32)."""
    cdef int64_t n_rows = n_out.shape[0], r, s
    indptr_array = np.zeros(n_rows + 1, dtype=np.int64)
    cdef int64_t[::1] indptr = indptr_array
    for r in range(n_rows):
        indptr[r + 1] = indptr[r] + n_out[r]
    ids_array = np.empty(indptr[n_rows], dtype=np.int32)
    cdef int32_t[::1] ids = ids_array
    if indptr[n_rows] == 0:
        return indptr_array, ids_array
    with nogil:
        for r in prange(n_rows, num_threads=n_threads, schedule="static"):
            for s in range(n_out[r]):
                ids[indptr[r] + s] = out[r, s]
    return indptr_array, ids_array


def _bucket_contents(CompiledTables tables, int32_t l, int64_t bucket_id):
    """Valid slots of one bucket, in slot order (a copy)."""
    cdef int64_t bucket = <int64_t>l * tables.c.n_buckets + bucket_id
    cdef int32_t n_valid = min(tables.c.counts[bucket], tables.c.bucket_size)
    out = np.empty(n_valid, dtype=np.int32)
    cdef int32_t[::1] view = out
    cdef int32_t s
    for s in range(n_valid):
        view[s] = tables.c.ids[bucket * tables.c.bucket_size + s]
    return out
