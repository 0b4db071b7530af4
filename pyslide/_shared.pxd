# The batch-shared output's state and step, for the engine; cimports _layer.

from libc.stdint cimport int32_t, int64_t, uint64_t

from pyslide._layer cimport LayerC, NetC


cdef struct SharedC:
    int32_t max_shared
    int32_t min_negatives     # rows the set holds beyond the batch's labels, at least
    int32_t n_shared
    int32_t* shared_ids       # (max_shared,) the batch's active output ids
    int32_t* shared_pos       # (units,) position of an id in shared_ids, or -1
    int32_t* cand_count       # (units,) (sample, table) hits of a candidate; 0 between steps
    int32_t* cand_ids         # (units,) candidates in first-hit order
    int32_t* count_hist       # (batch * L + 2,) histogram of hit counts
    float* hidden             # (batch, d) last hidden vectors
    float* d_hidden           # (batch, d) their gradient
    float* w_shared           # (max_shared, d) the shared rows, gathered
    float* b_shared           # (max_shared,)
    float* logits             # (batch, max_shared) logits, then deltas in place
    float* grad_shared        # (max_shared, d) compact weight gradient
    float* gb_shared          # (max_shared,)
    float* corr_shared        # (max_shared,) sampling correction of each shared id
    int32_t n_shared_labels   # shared ids [0, n_shared_labels) are the batch's labels
    int32_t n_shared_det      # ... [n_shared_labels, n_shared_det) LSH candidates, then uniform
    int32_t n_cand            # candidates collected (cand_ids) and not yet taken
    int32_t max_count         # their largest hit count
    # serial phases: selection (part of "hash"), and the shared output's
    # products on the forward and on the backward side
    double t_hash
    double t_shared_forward
    double t_shared_backward


# The scratch of a batch-shared output over layer (its set: every row when
# all are active, else the bounds on the chosen rows plus the batch's label
# slots and the negatives, at most every row), into keepalive. For Engine
# and ShardEngine alike.
cdef int alloc_shared(SharedC* sh, const LayerC* layer, int32_t batch_size,
                      int32_t max_labels, int32_t negatives, list keepalive) except -1

# The sampling correction on for a sampled output layer ``out`` that does
# not compute every row, when label_log1m (log(1 - frequency), one per row)
# is given; sh (NULL for a per-sample output) gets its per-row scratch.
cdef int set_correction(NetC* net, SharedC* sh, const LayerC* out, object label_log1m,
                        float q_floor, list keepalive) except -1


cdef inline void clear_shared(int32_t* pos, const int32_t* ids, int32_t n) noexcept nogil:
    cdef int32_t j
    for j in range(n):
        pos[ids[j]] = -1


# the steps of the selection, in order (a label shard runs them across
# two calls: it reports its candidates before it is told how many to take)
cdef void shared_add_labels(LayerC* layer, SharedC* sh, const int64_t[::1] y_indptr,
                            const int32_t[::1] y_indices, const int64_t[::1] rows) noexcept nogil
cdef void shared_add_all(LayerC* layer, SharedC* sh) noexcept nogil
cdef void shared_collect(LayerC* layer, SharedC* sh, int32_t n_batch) noexcept nogil
cdef void shared_take(SharedC* sh, int32_t max_active) noexcept nogil
cdef void shared_top_up(LayerC* layer, SharedC* sh, int32_t min_active, uint64_t seed,
                        int32_t step) noexcept nogil

cdef void select_shared(NetC* net, SharedC* sh, const int64_t[::1] y_indptr,
                        const int32_t[::1] y_indices, const int64_t[::1] rows,
                        int32_t step) noexcept nogil

cdef void train_shared(NetC* net, SharedC* sh, const int64_t[::1] x_indptr,
                       const int32_t[::1] x_indices, const float[::1] x_data,
                       const int64_t[::1] y_indptr, const int32_t[::1] y_indices,
                       const int64_t[::1] rows, int32_t step, float[::1] losses,
                       int32_t mark_base, double log_decay_read) noexcept

# deltas in sh.logits -> grad_shared, gb_shared and d_hidden (batch, d)
cdef void shared_products_backward(SharedC* sh, int32_t n_batch, int32_t n_shared, int32_t d,
                                   float* d_hidden, int32_t n_threads) noexcept nogil

# the hidden layers of a batch, forward and backward (shared output, and a
# headless trunk whose output lives in label shards)
cdef void forward_hidden_rows(NetC* net, const int64_t[::1] x_indptr,
                              const int32_t[::1] x_indices, const float[::1] x_data,
                              const int64_t[::1] rows, int32_t step, int32_t mark_base,
                              int32_t n_hidden, float* hidden, int32_t d,
                              LayerC* hash_layer) noexcept nogil

cdef void backward_hidden_rows(NetC* net, const int64_t[::1] x_indptr,
                               const int32_t[::1] x_indices, const float[::1] x_data,
                               const int64_t[::1] rows, int32_t step, int32_t n_hidden,
                               const float* d_hidden, int32_t d) noexcept nogil
