"""Optimizer loops over touched weight rows; a kernel module (imports no Python module of ours)."""
# prange over rows, static schedule; rows read in random order are
# prefetched a few iterations ahead (these loops wait on memory, not on
# arithmetic). The per-row steps are inline in _optim.pxd.

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.math cimport sqrt, sqrtf

from pyslide._vec cimport pyslide_prefetch, PREFETCH_AHEAD

OPTIMIZERS = {"sgd": OPT_SGD, "adam": OPT_ADAM}


cdef int fill_optimizer(OptimC* opt, int kind, float beta1, float beta2, float eps,
                        bint lazy) except -1:
    """The once-per-fit part of ``opt`` (both engines' ``set_optimizer``)."""
    if kind != OPT_ADAM and kind != OPT_SGD:
        raise ValueError(f"pyslide internal error: unknown optimizer code {kind} "
                         f"(resolve names with _optim.OPTIMIZERS)")
    opt.kind = kind
    opt.beta1 = beta1
    opt.beta2 = beta2
    opt.eps = eps
    opt.lazy = lazy
    fill_coast_table(opt)
    return 0


cdef void fill_coast_table(OptimC* opt) noexcept:
    """The coasting factors of idle spans below COAST_TABLE, in double and
    rounded once."""
    cdef int32_t k
    cdef double ratio = <double>opt.beta1 / sqrt(<double>opt.beta2)
    cdef double total = 0, keep1 = 1, keep2 = 1, power = 1
    for k in range(COAST_TABLE):
        opt.coast_sum[k] = <float>total
        opt.coast_keep1[k] = <float>keep1
        opt.coast_keep2[k] = <float>keep2
        power = power * ratio
        total = total + power
        keep1 = keep1 * opt.beta1
        keep2 = keep2 * opt.beta2


cdef void catch_up_rows(float* W, double* mark, const int32_t* rows, int32_t n_rows,
                        int32_t n_cols, double log_decay, int32_t n_threads) noexcept nogil:
    """catch_up_row over distinct ``rows`` (no two threads write one row)."""
    cdef int32_t j
    for j in prange(n_rows, num_threads=n_threads, schedule="static"):
        catch_up_row(W, mark, rows[j], n_cols, log_decay)


cdef void update_rows(float* W, float* mW, float* vW, float* gW, float* b, float* mb,
                      float* vb, float* gb, const int32_t* touched, int32_t n_rows,
                      int32_t n_cols, const OptimC* opt, double* decay_mark,
                      int32_t* coast_mark, int32_t* row_updates, bint bump,
                      int32_t n_threads) noexcept nogil:
    """Optimizer over the rows touched in ``opt.step`` (all rows if not lazy
    or touched is NULL), zeroing their gradient in the same pass. ``b`` (and
    its moments and gradient): a bias per row, updated with its row; NULL:
    none. ``coast_mark``: lazy rows first take the Adam steps they missed
    (``coast``); NULL: they held still."""
    cdef int64_t r, off
    cdef int32_t idle
    cdef float decay, row_size, coast_size
    # locals: the loop reads registers, not the struct behind a pointer
    cdef bint adam = opt.kind == OPT_ADAM, lazy = opt.lazy
    cdef float step_size = opt.step_size, lr = opt.lr
    cdef float beta1 = opt.beta1, beta2 = opt.beta2, eps = opt.eps
    cdef double log_decay = opt.log_decay
    cdef int32_t step = opt.step
    for r in prange(n_rows, num_threads=n_threads, schedule="static"):
        if touched != NULL and lazy and touched[r] != step:
            continue
        off = r * n_cols
        decay = catch_up_decay(decay_mark, r, log_decay)
        if not adam:
            sgd_update(W + off, gW + off, n_cols, step_size, decay)
            if b != NULL:
                sgd_update(b + r, gb + r, 1, step_size, 1)
            continue
        idle = take_idle(coast_mark, r, step, True)
        coast_size = 0
        if idle > 0:
            coast_size = coast_step(row_updates, r, idle, step_size, lr, beta1, beta2)
        row_size = row_step(row_updates, r, step_size, lr, beta1, beta2, bump)
        coast_adam_update(opt, W + off, mW + off, vW + off, gW + off, n_cols, idle, coast_size,
                          row_size, beta1, beta2, eps, decay)
        if b != NULL:
            coast_adam_update(opt, b + r, mb + r, vb + r, gb + r, 1, idle, coast_size, row_size,
                              beta1, beta2, eps, 1)


cdef void update_shared_rows(float* W, float* b, float* mW, float* vW, float* mb, float* vb,
                             float* grad, float* grad_b, const int32_t* ids, int32_t n_ids,
                             int32_t n_cols, const OptimC* opt, double* decay_mark,
                             int32_t* coast_mark, int32_t* row_updates,
                             int32_t n_threads) noexcept nogil:
    """Apply a compact gradient (n_ids, n_cols) to rows ``ids`` of W; the ids
    are distinct, so no two threads write one row. ``coast_mark``: as for
    ``update_rows``."""
    cdef int64_t j, row
    cdef int32_t idle
    cdef float decay, row_size, coast_size
    cdef bint adam = opt.kind == OPT_ADAM
    cdef float step_size = opt.step_size, lr = opt.lr
    cdef float beta1 = opt.beta1, beta2 = opt.beta2, eps = opt.eps
    cdef double log_decay = opt.log_decay
    cdef int32_t step = opt.step
    for j in prange(n_ids, num_threads=n_threads, schedule="static"):
        row = ids[j]
        if j + PREFETCH_AHEAD < n_ids:
            pyslide_prefetch(W + <int64_t>ids[j + PREFETCH_AHEAD] * n_cols, n_cols * sizeof(float), 1)
            if adam:
                pyslide_prefetch(mW + <int64_t>ids[j + PREFETCH_AHEAD] * n_cols, n_cols * sizeof(float), 1)
                pyslide_prefetch(vW + <int64_t>ids[j + PREFETCH_AHEAD] * n_cols, n_cols * sizeof(float), 1)
        decay = catch_up_decay(decay_mark, row, log_decay)
        if adam:
            idle = take_idle(coast_mark, row, step, True)
            coast_size = 0
            if idle > 0:
                coast_size = coast_step(row_updates, row, idle, step_size, lr, beta1, beta2)
            row_size = row_step(row_updates, row, step_size, lr, beta1, beta2, True)
            coast_adam_update(opt, W + row * n_cols, mW + row * n_cols, vW + row * n_cols,
                              grad + j * n_cols, n_cols, idle, coast_size, row_size, beta1,
                              beta2, eps, decay)
            coast_adam_update(opt, b + row, mb + row, vb + row, grad_b + j, 1, idle, coast_size,
                              row_size, beta1, beta2, eps, 1)
        else:
            sgd_update(W + row * n_cols, grad + j * n_cols, n_cols, step_size, decay)
            sgd_update(b + row, grad_b + j, 1, step_size, 1)


cdef void coast_all_rows(float* W, float* b, float* mW, float* vW, float* mb, float* vb,
                         int32_t n_rows, int32_t n_cols, const OptimC* opt,
                         int32_t* coast_mark, int32_t* row_updates,
                         int32_t n_threads) noexcept nogil:
    """Every row takes the Adam steps it missed through ``opt.step``
    (``coast``), so that the weights are dense Adam's before they are
    evaluated or saved. ``b`` NULL: the bias is not per row."""
    cdef int64_t r, off
    cdef int32_t idle
    cdef float row_size
    cdef float step_size = opt.step_size, lr = opt.lr
    cdef float beta1 = opt.beta1, beta2 = opt.beta2, eps = opt.eps
    cdef int32_t step = opt.step
    for r in prange(n_rows, num_threads=n_threads, schedule="static"):
        idle = take_idle(coast_mark, r, step, False)
        if idle == 0:
            continue
        off = r * n_cols
        row_size = coast_step(row_updates, r, idle, step_size, lr, beta1, beta2)
        coast(opt, W + off, mW + off, vW + off, n_cols, idle, row_size, eps)
        if b != NULL:
            coast(opt, b + r, mb + r, vb + r, 1, idle, row_size, eps)


cdef void decay_unshared_rows(float* W, float* b, float* mW, float* vW, float* mb, float* vb,
                              const int32_t* pos, int32_t n_rows, int32_t n_cols,
                              const OptimC* opt, double* decay_mark, int32_t* row_updates,
                              int32_t n_threads) noexcept nogil:
    """Dense Adam for rows outside the batch's set (pos[row] < 0): a
    zero-gradient step. ``b`` NULL: the bias is not per row."""
    cdef int64_t r, off
    cdef int32_t i
    cdef float decay, row_size
    cdef float step_size = opt.step_size, lr = opt.lr
    cdef float beta1 = opt.beta1, beta2 = opt.beta2, eps = opt.eps
    cdef double log_decay = opt.log_decay
    for r in prange(n_rows, num_threads=n_threads, schedule="static"):
        if pos[r] >= 0:
            continue
        off = r * n_cols
        decay = catch_up_decay(decay_mark, r, log_decay)
        row_size = row_step(row_updates, r, step_size, lr, beta1, beta2, True)
        for i in range(n_cols):
            mW[off + i] = beta1 * mW[off + i]
            vW[off + i] = beta2 * vW[off + i]
            W[off + i] = W[off + i] * decay - row_size * mW[off + i] / (sqrtf(vW[off + i]) + eps)
        if b == NULL:
            continue
        mb[r] = beta1 * mb[r]
        vb[r] = beta2 * vb[r]
        b[r] -= row_size * mb[r] / (sqrtf(vb[r]) + eps)
