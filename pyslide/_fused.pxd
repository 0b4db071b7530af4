# The first Dense layer's fused gradient (state and kernels) for the engine; cimports _layer, _optim.

from libc.stdint cimport int32_t, int64_t

from pyslide._layer cimport LayerC
from pyslide._optim cimport OptimC


cdef struct FusedC:
    # the first Dense layer's gradient rows are X_batch^T @ deltas, formed
    # row by row inside the optimizer from this transpose of the batch
    int32_t* row_slot         # (in_dim,) slot of a feature in the batch, or -1
    int32_t* feat_ids         # (max_entries,) distinct features of the batch
    int64_t* feat_start       # (max_entries + 1,)
    int32_t* entry_sample     # (max_entries,)
    float* entry_value        # (max_entries,)
    float* row_scratch        # (n_threads, units) one gradient row per thread
    int32_t n_feats
    int64_t max_entries
    int32_t n_batch           # samples of the last batch


cdef inline void forget_batch(FusedC* fu) noexcept nogil:
    """Drop the batch's transpose without applying it (error / Ctrl-C)."""
    cdef int32_t s
    for s in range(fu.n_feats):
        fu.row_slot[fu.feat_ids[s]] = -1
    fu.n_feats = 0


cdef void transpose_batch(FusedC* fu, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                           const float[::1] x_data, const int64_t[::1] rows) noexcept nogil

cdef void update_fused_input(FusedC* fu, LayerC* layer, int32_t n_threads,
                             const OptimC* opt) noexcept nogil
