# Optimizer updates over weight rows, cimport nothing of ours (lazy Adam, SGD, weight decay):
# the per-row steps inline here, the prange loops in _optim.pyx.

from libc.stdint cimport int32_t, int64_t
from libc.math cimport exp, sqrtf, powf


cdef enum OptimizerKind:
    # codes the engine takes; Python resolves names through _optim.OPTIMIZERS
    OPT_SGD = 0
    OPT_ADAM = 1


cdef enum:
    # idle spans whose coasting factors OptimC tables (a row idle longer
    # computes them with powf): the factors of one span are the same for
    # every row, and three powf a touched row were a tenth of a step
    COAST_TABLE = 1024


cdef struct OptimC:
    # The optimizer as the kernels read it, passed by pointer. The engine
    # fills kind .. eps once per fit (set_optimizer) and the step's part
    # each step, with step_size and lr already times the layer's lr_scale.
    int32_t kind            # OPT_SGD / OPT_ADAM
    int32_t lazy            # Adam: only the rows touched this step (else every row)
    float beta1
    float beta2
    float eps
    float step_size         # this step's size (Adam: bias-corrected by the global step)
    float lr                # this step's learning rate (Adam's per-row bias correction)
    double log_decay        # sum of log(1 - lr_t * weight_decay) through this step
    int32_t step            # this step's number (1-based): the coasting clock
    # coast_factors of idle spans 0 .. COAST_TABLE - 1 (set_optimizer):
    float coast_sum[COAST_TABLE]    # sum_{j=1..k} (beta1 / sqrt(beta2))**j
    float coast_keep1[COAST_TABLE]  # beta1**k
    float coast_keep2[COAST_TABLE]  # beta2**k


cdef inline float catch_up_decay(double* mark, int64_t row, double log_decay) noexcept nogil:
    """Weight-decay factor a row owes, and mark it paid.

    ``log_decay`` is the sum of log(1 - lr_t * weight_decay) over every step
    so far; ``mark[row]`` that sum when the row was last decayed. A lazy row
    untouched for many steps thus takes, in one multiplication, exactly the
    decay dense AdamW would have applied step by step. NULL: no decay.
    """
    cdef double owed
    if mark == NULL:
        return 1
    owed = log_decay - mark[row]
    mark[row] = log_decay
    return <float>exp(owed)


cdef inline void catch_up_row(float* W, double* mark, int64_t row, int32_t n_cols,
                              double log_decay) noexcept nogil:
    """Decay one row of W by what it owes up to ``log_decay``."""
    cdef int32_t i
    cdef float decay
    cdef float* w = W + row * n_cols
    if mark[row] == log_decay:
        return
    decay = catch_up_decay(mark, row, log_decay)
    for i in range(n_cols):
        w[i] = w[i] * decay


cdef inline float row_step(int32_t* count, int64_t row, float step_size, float lr,
                           float beta1, float beta2, bint bump) noexcept nogil:
    """Adam's bias-corrected step size for one row.

    With per-row update counts (``count`` not NULL) the correction counts the
    row's own updates, as if each row ran its own Adam: with the global step
    count, a row first updated at step 1,000 has moments of one gradient but
    no correction for it, and moves about 2.5 times the learning rate, and
    rows touched rarely (rare labels, rare features) keep moving several
    times faster than the rest. ``bump``: count this update.
    """
    cdef int32_t k
    cdef float one = 1
    if count == NULL:
        return step_size
    if bump:
        count[row] += 1
    k = count[row]
    if k < 1:
        k = 1
    return lr * sqrtf(one - powf(beta2, k)) / (one - powf(beta1, k))


cdef inline int32_t take_idle(int32_t* mark, int64_t row, int32_t step,
                              bint updating) noexcept nogil:
    """Steps a lazy row has sat idle since its last Adam step, up to
    ``step`` (``updating``: up to the step before, as ``step`` updates it),
    and mark it moved through ``step``. NULL: rows hold still (0)."""
    cdef int32_t idle
    if mark == NULL:
        return 0
    idle = step - mark[row] - updating
    mark[row] = step
    return idle if idle > 0 else 0


cdef inline float coast_step(int32_t* count, int64_t row, int32_t idle, float step_size,
                             float lr, float beta1, float beta2) noexcept nogil:
    """Step size of ``idle`` missed steps of one row; with per-row update
    counts they count as updates, as each is one in dense Adam."""
    if count != NULL:
        count[row] += idle
    return row_step(count, row, step_size, lr, beta1, beta2, False)


cdef inline void coast_factors(const OptimC* opt, int32_t idle, float step_size,
                               float* travel, float* keep1, float* keep2) noexcept nogil:
    """What ``idle`` zero-gradient Adam steps of one row amount to.

    Dense Adam keeps moving a row with no gradient: step k after its last
    one moves it by ``step_size * beta1**k m / (sqrt(beta2**k v) + eps)``
    while its moments decay. Summed, the row travels ``travel * m / (sqrt(v)
    + eps)`` with ``travel = step_size * sum_{k=1..idle} (beta1 /
    sqrt(beta2))**k`` (at most about 9 steps' worth for 0.9 / 0.999), and its
    moments end at ``keep1 * m`` and ``keep2 * v`` (``beta1**idle``,
    ``beta2**idle``). Exact but for eps (its weight shrinks with the row's
    v) and for taking this step's size for every missed one (the momentum
    is spent within a few dozen steps).
    """
    cdef float one = 1
    cdef float ratio
    if idle < COAST_TABLE:
        travel[0] = step_size * opt.coast_sum[idle]
        keep1[0] = opt.coast_keep1[idle]
        keep2[0] = opt.coast_keep2[idle]
        return
    ratio = opt.beta1 / sqrtf(opt.beta2)
    travel[0] = step_size * ratio * (one - powf(ratio, idle)) / (one - ratio)
    keep1[0] = powf(opt.beta1, idle)
    keep2[0] = powf(opt.beta2, idle)


cdef inline void coast(const OptimC* opt, float* w, float* m, float* v, int32_t n,
                       int32_t idle, float step_size, float eps) noexcept nogil:
    """``idle`` zero-gradient Adam steps of one row at once (``coast_factors``)."""
    cdef int32_t i
    cdef float travel, keep1, keep2
    if idle <= 0:
        return
    coast_factors(opt, idle, step_size, &travel, &keep1, &keep2)
    for i in range(n):
        w[i] = w[i] - travel * m[i] / (sqrtf(v[i]) + eps)
        m[i] = keep1 * m[i]
        v[i] = keep2 * v[i]


cdef inline void adam_update(float* w, float* m, float* v, float* g, int32_t n,
                             float step_size, float beta1, float beta2, float eps,
                             float decay) noexcept nogil:
    """One Adam step of a row, decayed first (``decay`` = 1: none), its
    gradient zeroed."""
    cdef int32_t i
    cdef float gi
    # float locals: a literal 1.0 would make C compute the loop in double
    cdef float keep1 = 1, keep2 = 1
    keep1 = keep1 - beta1
    keep2 = keep2 - beta2
    for i in range(n):
        gi = g[i]
        m[i] = beta1 * m[i] + keep1 * gi
        v[i] = beta2 * v[i] + keep2 * gi * gi
        w[i] = w[i] * decay - step_size * m[i] / (sqrtf(v[i]) + eps)
        g[i] = 0


cdef inline void coast_adam_update(const OptimC* opt, float* w, float* m, float* v, float* g,
                                   int32_t n, int32_t idle, float coast_size, float step_size,
                                   float beta1, float beta2, float eps,
                                   float decay) noexcept nogil:
    """``coast`` then ``adam_update`` in one pass over the row (the rows of
    a sampled output are read from memory once, not twice)."""
    cdef int32_t i
    cdef float gi, mi, vi, wi, travel, keep1, keep2
    cdef float rest1 = 1, rest2 = 1
    rest1 = rest1 - beta1
    rest2 = rest2 - beta2
    if idle <= 0:
        adam_update(w, m, v, g, n, step_size, beta1, beta2, eps, decay)
        return
    coast_factors(opt, idle, coast_size, &travel, &keep1, &keep2)
    for i in range(n):
        gi = g[i]
        mi = m[i]
        vi = v[i]
        wi = w[i] - travel * mi / (sqrtf(vi) + eps)
        mi = beta1 * (keep1 * mi) + rest1 * gi
        vi = beta2 * (keep2 * vi) + rest2 * gi * gi
        m[i] = mi
        v[i] = vi
        w[i] = wi * decay - step_size * mi / (sqrtf(vi) + eps)
        g[i] = 0


cdef inline void sgd_update(float* w, float* g, int32_t n, float step_size,
                            float decay) noexcept nogil:
    cdef int32_t i
    for i in range(n):
        w[i] = w[i] * decay - step_size * g[i]
        g[i] = 0


cdef int fill_optimizer(OptimC* opt, int kind, float beta1, float beta2, float eps,
                        bint lazy) except -1

cdef void catch_up_rows(float* W, double* mark, const int32_t* rows, int32_t n_rows,
                        int32_t n_cols, double log_decay, int32_t n_threads) noexcept nogil

cdef void update_rows(float* W, float* mW, float* vW, float* gW, float* b, float* mb,
                      float* vb, float* gb, const int32_t* touched, int32_t n_rows,
                      int32_t n_cols, const OptimC* opt, double* decay_mark,
                      int32_t* coast_mark, int32_t* row_updates, bint bump,
                      int32_t n_threads) noexcept nogil

cdef void update_shared_rows(float* W, float* b, float* mW, float* vW, float* mb, float* vb,
                             float* grad, float* grad_b, const int32_t* ids, int32_t n_ids,
                             int32_t n_cols, const OptimC* opt, double* decay_mark,
                             int32_t* coast_mark, int32_t* row_updates,
                             int32_t n_threads) noexcept nogil

cdef void coast_all_rows(float* W, float* b, float* mW, float* vW, float* mb, float* vb,
                         int32_t n_rows, int32_t n_cols, const OptimC* opt,
                         int32_t* coast_mark, int32_t* row_updates,
                         int32_t n_threads) noexcept nogil

cdef void decay_unshared_rows(float* W, float* b, float* mW, float* vW, float* mb, float* vb,
                              const int32_t* pos, int32_t n_rows, int32_t n_cols,
                              const OptimC* opt, double* decay_mark, int32_t* row_updates,
                              int32_t n_threads) noexcept nogil
