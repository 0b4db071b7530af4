"""The fused gradient of the first Dense layer (fed by sparse data): formed row by row inside the optimizer; a kernel module (imports no Python module of ours)."""
# The layer's gradient row for feature f is sum_b x[b, f] * delta[b]: after
# the batch's forward and backward, its non-zeros are grouped by feature
# (a counting sort), and the optimizer forms each row's gradient in a
# thread-local buffer and applies it at once. No gradient buffer, no race.

from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memset

from pyslide._layer cimport LayerC
from pyslide._optim cimport (OptimC, OPT_ADAM, catch_up_decay, row_step, adam_update,
                             sgd_update, decay_unshared_rows, take_idle, coast_step,
                             coast_adam_update)
from pyslide._vec cimport axpy, pyslide_prefetch, PREFETCH_AHEAD


cdef void transpose_batch(FusedC* fu, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                           const float[::1] x_data, const int64_t[::1] rows) noexcept nogil:
    """Group the batch's non-zeros by feature (a counting sort, no sort call)."""
    cdef int32_t n_batch = rows.shape[0], b, f, slot, n_feats = 0
    cdef int64_t k, r, pos
    for b in range(n_batch):
        r = rows[b]
        for k in range(x_indptr[r], x_indptr[r + 1]):
            f = x_indices[k]
            if fu.row_slot[f] < 0:
                fu.row_slot[f] = n_feats
                fu.feat_ids[n_feats] = f
                fu.feat_start[n_feats + 1] = 0
                n_feats += 1
            fu.feat_start[fu.row_slot[f] + 1] += 1
    fu.feat_start[0] = 0
    for slot in range(n_feats):
        fu.feat_start[slot + 1] += fu.feat_start[slot]
    # fill, using feat_start[slot] as a cursor, then shift the cursors back
    for b in range(n_batch):
        r = rows[b]
        for k in range(x_indptr[r], x_indptr[r + 1]):
            slot = fu.row_slot[x_indices[k]]
            pos = fu.feat_start[slot]
            fu.entry_sample[pos] = b
            fu.entry_value[pos] = x_data[k]
            fu.feat_start[slot] = pos + 1
    for slot in range(n_feats - 1, 0, -1):
        fu.feat_start[slot] = fu.feat_start[slot - 1]
    fu.feat_start[0] = 0
    fu.n_feats = n_feats


cdef void update_fused_input(FusedC* fu, LayerC* layer, int32_t n_threads,
                             const OptimC* opt) noexcept nogil:
    """Optimizer for the first Dense layer: each of the batch's features gets
    its gradient row (sum of value * delta over the samples holding it)
    formed in thread-local scratch and applied at once: no gradient
    buffer, no race, one pass over w, m, v."""
    cdef int32_t units = layer.units, s, b, tid
    cdef int64_t e, f, r
    cdef float* g
    cdef float decay, coast_size
    cdef float* gb = fu.row_scratch
    # locals: the loop reads registers, not the struct behind a pointer
    cdef bint adam = opt.kind == OPT_ADAM
    cdef float step_size = opt.step_size, lr = opt.lr
    cdef float beta1 = opt.beta1, beta2 = opt.beta2, eps = opt.eps
    cdef double log_decay = opt.log_decay
    cdef int32_t step = opt.step, idle
    if adam and not opt.lazy:
        decay_unshared_rows(layer.W, NULL, layer.mW, layer.vW, NULL, NULL,
                            fu.row_slot, layer.in_dim, units, opt, layer.decay_mark,
                            layer.row_updates, n_threads)
    for s in prange(fu.n_feats, num_threads=n_threads, schedule="static"):
        tid = threadid()
        if s + PREFETCH_AHEAD < fu.n_feats:
            r = <int64_t>fu.feat_ids[s + PREFETCH_AHEAD] * units
            pyslide_prefetch(layer.W + r, units * sizeof(float), 1)
            if adam:
                pyslide_prefetch(layer.mW + r, units * sizeof(float), 1)
                pyslide_prefetch(layer.vW + r, units * sizeof(float), 1)
        g = fu.row_scratch + <int64_t>tid * units
        memset(g, 0, units * sizeof(float))
        for e in range(fu.feat_start[s], fu.feat_start[s + 1]):
            axpy(g, layer.deltas + <int64_t>fu.entry_sample[e] * layer.width,
                 fu.entry_value[e], units)
        f = fu.feat_ids[s]
        decay = catch_up_decay(layer.decay_mark, f, log_decay)
        if adam:
            idle = take_idle(layer.coast_mark, f, step, True)
            coast_size = 0
            if idle > 0:
                coast_size = coast_step(layer.row_updates, f, idle, step_size, lr, beta1, beta2)
            coast_adam_update(opt, layer.W + f * units, layer.mW + f * units, layer.vW + f * units,
                              g, units, idle, coast_size,
                              row_step(layer.row_updates, f, step_size, lr, beta1, beta2, True),
                              beta1, beta2, eps, decay)
        else:
            sgd_update(layer.W + f * units, g, units, step_size, decay)
        fu.row_slot[f] = -1
    # the bias gradient is the sum of the batch's deltas
    memset(gb, 0, units * sizeof(float))
    for b in range(fu.n_batch):
        axpy(gb, layer.deltas + <int64_t>b * layer.width, 1.0, units)
    if adam:
        adam_update(layer.b, layer.mb, layer.vb, gb, units, step_size, beta1, beta2, eps, 1)
    else:
        sgd_update(layer.b, gb, units, step_size, 1)
    fu.n_feats = 0
