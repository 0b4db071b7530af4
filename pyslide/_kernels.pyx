"""The training engine: per-sample forward / backward, the batch-shared output and the fused input gradient; a kernel module (imports no Python module of ours)."""
# Losses live in _loss, optimizer loops in _optim, top-k in _topk, shared
# inline helpers in _vec / _common; Engine holds the layer table and
# dispatches to them.
#
# Memory layout (see docs/architecture.md):
#   Dense layer   W (in_dim, units)  a sparse input row is a sum of rows of W
#   Sampled layer W (units, in_dim)  an active neuron reads one row of W
# Gradients accumulate HogWild (no locks, no atomics) into buffers of W's
# shape; ``touched[row] == step`` marks the rows the batch wrote so the
# optimizer visits only those and zeroes them in the same pass.
#
# A batch-shared output layer (share="batch") is computed differently: one
# active set for the whole batch, logits as one sgemm, and a compact
# gradient (n_shared, in_dim) that the optimizer applies directly, so that
# layer needs no full-size gradient buffer.

from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.math cimport expf, expm1f, exp, logf, log1pf, sqrtf, fabsf, powf, INFINITY
from libc.string cimport memset, memcpy
from libc.stdlib cimport malloc, free, calloc

from scipy.linalg.cython_blas cimport sgemm, sgemv

from pyslide._common cimport splitmix64_next, mix_seed, rand_below, rand_uniform
from pyslide._vec cimport axpy, dot, sparse_dot, now, pyslide_prefetch, PREFETCH_AHEAD
from pyslide._loss cimport LOSS_SOFTMAX, LOSS_BCE, inclusion_log_correction, loss_and_delta
from pyslide._optim cimport (OPT_SGD, OPT_ADAM, catch_up_decay, catch_up_row, catch_up_rows,
                             row_step, adam_update, sgd_update, update_rows,
                             update_shared_rows, decay_unshared_rows)
from pyslide._hash cimport (HashFamily, BucketTables, CompiledFamily, CompiledTables,
                            hash_dense_row, hash_sparse_row, query_union_row,
                            query_threshold_row, query_sample_row)

import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef enum QueryMode:
    QUERY_UNION = 0
    QUERY_THRESHOLD = 1
    QUERY_SAMPLE = 2

# the codes Python resolves a Sampled layer's ``query`` to
QUERIES = {"union": QUERY_UNION, "threshold": QUERY_THRESHOLD, "sample": QUERY_SAMPLE}

cdef enum:
    # per-thread timing slots, padded to a cache line against false sharing
    TIME_STRIDE = 8
    # the phases: "hash" (active sets), "forward", "backward"
    T_HASH = 0
    T_FORWARD = 1
    T_BACKWARD = 2


cdef struct LayerC:
    int32_t sampled         # 0: Dense (in, out); 1: Sampled (out, in)
    int32_t in_dim
    int32_t units
    int32_t relu            # hidden activation is ReLU (else linear)
    int32_t width           # per-sample slots of this layer's output
    int32_t min_active
    int32_t max_active
    int32_t all_active      # min_active >= units: no sampling at all
    int32_t fused_grad      # first Dense layer: gradient formed inside the optimizer
    float* W
    float* b
    float* gW               # NULL for a batch-shared output layer
    float* gb
    float* mW               # Adam moments, W's shape (NULL for SGD)
    float* vW
    float* mb
    float* vb
    int32_t* touched        # per weight row: the step that last wrote its gradient
    const HashFamily* family    # NULL: uniform sampling
    const BucketTables* tables
    int32_t n_tables
    int32_t* stamp          # (n_threads, units) de-duplication marks
    int32_t query_mode      # QUERY_UNION / QUERY_THRESHOLD / QUERY_SAMPLE
    int32_t threshold       # tables an id must be hit in (QUERY_THRESHOLD)
    int32_t* hit_count      # (n_threads, units) zero between queries (threshold)
    int32_t* last_table     # (n_threads, units) -1 between queries (threshold)
    int32_t* hit_list       # (n_threads, L * bucket_size) (threshold)
    int32_t* bucket_ids     # (batch, n_tables)
    int32_t* act_ids        # (batch, width); NULL for Dense layers
    float* act_vals         # (batch, width)
    float* deltas           # (batch, width)
    int32_t* n_act          # (batch,)
    int32_t* n_det          # (batch,) ids chosen before the uniform top-up (output layer)
    float dropout           # Dense hidden layer: probability of dropping a unit
    uint64_t dropout_seed   # keys the per-(step, sample) dropout masks
    double* decay_mark      # per weight row: cumulative log weight decay last applied
    int32_t* row_updates    # per weight row: Adam updates it has had (per-row bias correction)


# ---------------------------------------------------------------- sampling

cdef int32_t choose_active(LayerC* layer, int32_t tid, int32_t b,
                           const int32_t* in_ids, const float* in_vals, int32_t n_in,
                           const int32_t* labels, int32_t n_labels,
                           int32_t mark, uint64_t* rng) noexcept nogil:
    """Fill layer.act_ids[b] with the sample's active neurons; returns count.

    True labels first (so the loss finds them at positions 0..n_labels-1),
    then the union of the hit LSH buckets up to max_active, then uniform
    random neurons up to min_active. De-duplicated with the thread's stamp
    array: no sort, no hash map.
    """
    cdef int32_t* ids = layer.act_ids + <int64_t>b * layer.width
    cdef int32_t* stamp = layer.stamp + <int64_t>tid * layer.units
    cdef int32_t n = 0, j, room, hits, t, base
    cdef int32_t* bucket_ids
    for j in range(n_labels):
        if stamp[labels[j]] != mark:
            stamp[labels[j]] = mark
            ids[n] = labels[j]
            n += 1
    if layer.all_active:
        for j in range(layer.units):
            if stamp[j] != mark:
                stamp[j] = mark
                ids[n] = j
                n += 1
        if layer.n_det != NULL:
            layer.n_det[b] = n
        return n
    if layer.family != NULL and n < layer.max_active:
        bucket_ids = layer.bucket_ids + <int64_t>b * layer.n_tables
        if in_ids == NULL:
            hash_dense_row(layer.family, in_vals, bucket_ids)
        else:
            hash_sparse_row(layer.family, in_ids, in_vals, n_in, bucket_ids)
        room = layer.max_active - n
        if layer.query_mode == QUERY_UNION:
            n += query_union_row(layer.tables, bucket_ids, ids + n, room, stamp, mark)
        elif layer.query_mode == QUERY_SAMPLE:
            n += query_sample_row(layer.tables, bucket_ids, room, layer.units, ids + n,
                                  stamp, mark, splitmix64_next(rng))
        else:
            hits = query_threshold_row(
                layer.tables, bucket_ids, layer.threshold, ids + n, room + n,
                layer.hit_count + <int64_t>tid * layer.units,
                layer.last_table + <int64_t>tid * layer.units,
                layer.hit_list + <int64_t>tid * layer.n_tables * layer.tables.bucket_size)
            # the threshold query does not know the labels already held:
            # keep the ids not yet stamped, up to max_active (compacting in
            # place: the write position n never passes the read position)
            base = n
            for t in range(hits):
                j = ids[base + t]
                if stamp[j] != mark and n < layer.max_active:
                    stamp[j] = mark
                    ids[n] = j
                    n += 1
    if layer.n_det != NULL:
        layer.n_det[b] = n
    while n < layer.min_active:
        j = <int32_t>rand_below(rng, <uint32_t>layer.units)
        if stamp[j] != mark:
            stamp[j] = mark
            ids[n] = j
            n += 1
    return n


# ---------------------------------------------------------------- dropout

cdef inline void dropout_mask(float* x, int32_t n, float rate, uint64_t seed) noexcept nogil:
    """Zero each of x's n values with probability ``rate`` and scale the
    rest by 1 / (1 - rate). One seed gives one mask, so the forward pass (on
    activations) and the backward pass (on deltas) draw the same units."""
    cdef uint64_t state = seed
    cdef float keep = 1
    cdef int32_t t
    keep = keep / (keep - rate)
    for t in range(n):
        if rand_uniform(&state) < rate:
            x[t] = 0
        else:
            x[t] = x[t] * keep


cdef inline uint64_t dropout_stream(const LayerC* layer, int32_t step, int32_t b) noexcept nogil:
    return mix_seed(layer.dropout_seed, <uint64_t>step, <uint64_t>b)


# ---------------------------------------------------------------- forward

cdef void forward_layer(LayerC* layer, int32_t b, const int32_t* in_ids,
                        const float* in_vals, int32_t n_in, bint is_output,
                        int32_t step) noexcept nogil:
    """Activations of one layer for sample b (active set already chosen)."""
    cdef float* out = layer.act_vals + <int64_t>b * layer.width
    cdef const int32_t* ids
    cdef int32_t t, j, n
    cdef int64_t units = layer.units, in_dim = layer.in_dim
    cdef float x
    if not layer.sampled:
        memcpy(out, layer.b, units * sizeof(float))
        if in_ids == NULL:
            for t in range(n_in):
                x = in_vals[t]
                if x != 0:
                    axpy(out, layer.W + t * units, x, <int32_t>units)
        else:
            for t in range(n_in):
                if t + PREFETCH_AHEAD < n_in:
                    pyslide_prefetch(layer.W + in_ids[t + PREFETCH_AHEAD] * units,
                                     units * sizeof(float), 0)
                axpy(out, layer.W + in_ids[t] * units, in_vals[t], <int32_t>units)
        n = <int32_t>units
    else:
        ids = layer.act_ids + <int64_t>b * layer.width
        n = layer.n_act[b]
        if in_ids == NULL:
            for t in range(n):
                j = ids[t]
                if t + PREFETCH_AHEAD < n:
                    pyslide_prefetch(layer.W + ids[t + PREFETCH_AHEAD] * in_dim,
                                     in_dim * sizeof(float), 0)
                out[t] = layer.b[j] + dot(layer.W + j * in_dim, in_vals, n_in)
        else:
            for t in range(n):
                j = ids[t]
                out[t] = layer.b[j] + sparse_dot(layer.W + j * in_dim, in_ids, in_vals, n_in)
    if layer.relu and not is_output:
        for t in range(n):
            if out[t] < 0:
                out[t] = 0
    if layer.dropout > 0 and not is_output:
        dropout_mask(out, n, layer.dropout, dropout_stream(layer, step, b))


cdef inline void layer_output(LayerC* layer, int32_t b, const int32_t** ids,
                              const float** vals, int32_t* n) noexcept nogil:
    """The view of layer's output for sample b as the next layer's input."""
    vals[0] = layer.act_vals + <int64_t>b * layer.width
    if layer.sampled:
        ids[0] = layer.act_ids + <int64_t>b * layer.width
        n[0] = layer.n_act[b]
    else:
        ids[0] = NULL
        n[0] = layer.units


# ---------------------------------------------------------------- losses

cdef inline void correct_uniform_draws(LayerC* layer, int32_t b, int32_t n,
                                      float q_floor) noexcept nogil:
    """Sampling correction of one sample's own active set: its labels and
    LSH candidates are chosen (no correction); the uniform top-up is n_unif
    draws from the units - n_det others, so each draw's logit gets
    -log q = log((units - n_det) / n_unif)."""
    cdef int32_t n_det = layer.n_det[b], t
    cdef float c, q
    cdef float* z = layer.act_vals + <int64_t>b * layer.width
    if n <= n_det:
        return
    q = (n - n_det) / <float>(layer.units - n_det)
    if q < q_floor:
        q = q_floor
    c = -logf(q)
    for t in range(n_det, n):
        z[t] += c


# ---------------------------------------------------------------- backward

cdef void backward_layer(LayerC* layer, LayerC* below, int32_t b,
                         const int32_t* in_ids, const float* in_vals, int32_t n_in,
                         int32_t step) noexcept nogil:
    """Accumulate layer's gradients for sample b; push deltas to ``below``.

    ``below`` is NULL for the first layer. Its deltas are finished by the
    ReLU derivative here, so the next call can use them directly.
    """
    cdef const float* d = layer.deltas + <int64_t>b * layer.width
    cdef float* grad_in = NULL
    cdef const float* below_act
    cdef const int32_t* ids
    cdef int64_t units = layer.units, in_dim = layer.in_dim, row
    cdef int32_t t, j, n
    cdef float dj, x
    if below != NULL:
        grad_in = below.deltas + <int64_t>b * below.width
        memset(grad_in, 0, n_in * sizeof(float))
    if not layer.sampled:
        for j in range(layer.units):
            layer.gb[j] += d[j]
        for t in range(n_in):
            if in_ids == NULL:
                row = t
            else:
                row = in_ids[t]
            x = in_vals[t]
            # a zero input (a ReLU that did not fire) adds no weight
            # gradient, and its own delta is cleared by the ReLU below
            if x != 0:
                axpy(layer.gW + row * units, d, x, <int32_t>units)
                layer.touched[row] = step
            if grad_in != NULL and (x != 0 or not below.relu):
                grad_in[t] = dot(layer.W + row * units, d, <int32_t>units)
    else:
        ids = layer.act_ids + <int64_t>b * layer.width
        n = layer.n_act[b]
        for t in range(n):
            dj = d[t]
            if dj == 0:
                continue
            j = ids[t]
            layer.gb[j] += dj
            layer.touched[j] = step
            if in_ids == NULL:
                axpy(layer.gW + j * in_dim, in_vals, dj, n_in)
                if grad_in != NULL:
                    axpy(grad_in, layer.W + j * in_dim, dj, n_in)
            else:
                for row in range(n_in):
                    layer.gW[j * in_dim + in_ids[row]] += dj * in_vals[row]
                if grad_in != NULL:
                    for row in range(n_in):
                        grad_in[row] += dj * layer.W[j * in_dim + in_ids[row]]
    if below != NULL and below.relu:
        below_act = below.act_vals + <int64_t>b * below.width
        for t in range(n_in):
            if below_act[t] <= 0:
                grad_in[t] = 0
    if below != NULL and below.dropout > 0:
        dropout_mask(grad_in, n_in, below.dropout, dropout_stream(below, step, b))


cdef inline void layer_shape(const LayerC* layer, int32_t* n_rows, int32_t* n_cols) noexcept nogil:
    """Rows and columns of a layer's weights as stored: (out, in) for a
    sampled layer, (in, out) for a dense one."""
    if layer.sampled:
        n_rows[0], n_cols[0] = layer.units, layer.in_dim
    else:
        n_rows[0], n_cols[0] = layer.in_dim, layer.units


# ---------------------------------------------------------------- BLAS

cdef inline void gemm_rm(bint trans_a, bint trans_b, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta,
                         float* c, int ldc) noexcept nogil:
    """Row-major C(m, n) = alpha op(A) op(B) + beta C through column-major sgemm.

    A row-major matrix is its transpose in column-major order, so
    C^T = op(B)^T op(A)^T is what sgemm computes.
    """
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    sgemm(&tb, &ta, &n, &m, &k, &alpha, <float*>b, &ldb, <float*>a, &lda, &beta, c, &ldc)


cdef class Engine:
    """Per-fit state: layer descriptors, scratch and timing counters.

    Built by ``Network`` at the start of ``fit`` around the network's own
    NumPy arrays (weights, moments, gradient buffers), which it keeps alive.
    """
    cdef LayerC* layers
    cdef int32_t n_layers
    cdef int32_t batch_size
    cdef int32_t n_threads
    cdef int32_t loss_kind
    cdef int32_t shared_output
    cdef int32_t max_labels
    # the first Dense layer's gradient rows are X_batch^T @ deltas, formed
    # row by row inside the optimizer from this transpose of the batch
    cdef int32_t* row_slot        # (in_dim,) slot of a feature in the batch, or -1
    cdef int32_t* feat_ids        # (max_entries,) distinct features of the batch
    cdef int64_t* feat_start      # (max_entries + 1,)
    cdef int32_t* entry_sample    # (max_entries,)
    cdef float* entry_value       # (max_entries,)
    cdef float* row_scratch       # (n_threads, units) one gradient row per thread
    cdef int32_t n_feats
    cdef int64_t max_entries
    cdef int32_t _last_batch
    cdef double log_decay_read    # weight-decay sum through the step before this one
    cdef uint64_t seed
    cdef int32_t mark_base
    cdef object keepalive
    # batch-shared output state
    cdef int32_t max_shared
    cdef int32_t n_shared
    cdef int32_t* shared_ids
    cdef int32_t* shared_pos
    cdef int32_t* cand_count
    cdef int32_t* cand_ids
    cdef int32_t* count_hist
    cdef int32_t* label_pos
    cdef float* hidden
    cdef float* w_shared
    cdef float* b_shared
    cdef float* logits
    cdef float* grad_shared
    cdef float* gb_shared
    cdef float* corr_shared       # (max_shared,) sampling correction of each shared id
    cdef float* label_log1m       # (units,) log(1 - p) of each label's training frequency
    cdef int32_t correction       # subtract log inclusion probabilities from sampled logits
    cdef float q_floor            # inclusion probabilities below it count as it
    cdef int32_t n_shared_labels  # shared ids [0, n_shared_labels) are the batch's labels
    cdef int32_t n_shared_det     # ... [n_shared_labels, n_shared_det) LSH candidates, then uniform
    cdef float* d_hidden
    cdef double* thread_time
    # serial phases of the shared step: selection, and the shared
    # output's products on the forward and on the backward side
    cdef public double t_hash, t_shared_forward, t_shared_backward

    def __cinit__(self):
        self.layers = NULL
        self.thread_time = NULL

    def __dealloc__(self):
        if self.layers != NULL:
            free(self.layers)
        if self.thread_time != NULL:
            free(self.thread_time)

    def __init__(self, list layer_specs, int batch_size, int n_threads, int loss,
                 int max_labels, uint64_t seed, bint shared_output, int64_t max_row_nnz=0,
                 label_log1m=None, float q_floor=1e-12):
        """layer_specs: one dict per layer with the arrays named in LayerC.

        ``label_log1m`` (float32, one per output neuron: log(1 - training
        frequency)) turns on the sampling correction of a sampled output.
        """
        cdef int32_t l
        cdef LayerC* layer
        cdef int32_t max_tables = 1
        self.n_layers = len(layer_specs)
        self.batch_size = batch_size
        self.n_threads = n_threads
        if loss != LOSS_SOFTMAX and loss != LOSS_BCE:
            raise ValueError(f"pyslide internal error: unknown loss code {loss} "
                             f"(resolve names with _loss.LOSSES)")
        self.loss_kind = loss
        self.shared_output = shared_output
        self.max_labels = max(1, max_labels)
        self.seed = seed
        self.mark_base = 0
        self.keepalive = []
        self.layers = <LayerC*>calloc(self.n_layers, sizeof(LayerC))
        self.thread_time = <double*>calloc(n_threads * TIME_STRIDE, sizeof(double))
        if self.layers == NULL or self.thread_time == NULL:
            raise MemoryError("pyslide: cannot allocate the engine's layer table")
        self.reset_timers()
        for l, spec in enumerate(layer_specs):
            layer = &self.layers[l]
            layer.sampled = spec["sampled"]
            layer.in_dim = spec["in_dim"]
            layer.units = spec["units"]
            layer.relu = spec["relu"]
            layer.min_active = spec.get("min_active", spec["units"])
            layer.max_active = spec.get("max_active", spec["units"])
            layer.all_active = layer.min_active >= layer.units
            is_output = l == self.n_layers - 1
            if not layer.sampled:
                layer.width = layer.units
            elif is_output:
                layer.width = max(layer.max_active, layer.min_active) + max_labels
            else:
                layer.width = max(layer.max_active, layer.min_active)
            layer.W = self._ptr(spec["W"])
            layer.b = self._ptr(spec["b"])
            layer.gW = self._ptr(spec["gW"]) if spec.get("gW") is not None else NULL
            layer.gb = self._ptr(spec["gb"]) if spec.get("gb") is not None else NULL
            layer.fused_grad = l == 0 and not layer.sampled and spec.get("gW") is None
            layer.touched = self._iptr(spec["touched"]) if spec.get("touched") is not None else NULL
            layer.mW = layer.vW = layer.mb = layer.vb = NULL
            if spec.get("mW") is not None:
                layer.mW = self._ptr(spec["mW"])
                layer.vW = self._ptr(spec["vW"])
                layer.mb = self._ptr(spec["mb"])
                layer.vb = self._ptr(spec["vb"])
            family = spec.get("family")
            tables = spec.get("tables")
            if family is not None:
                layer.family = &(<CompiledFamily>family).c
                layer.tables = &(<CompiledTables>tables).c
                layer.n_tables = (<CompiledFamily>family).c.L
                self.keepalive.extend([family, tables])
            else:
                layer.family = NULL
                layer.tables = NULL
                layer.n_tables = 0
            max_tables = max(max_tables, layer.n_tables)
            layer.bucket_ids = self._iptr(np.zeros(batch_size * max(1, layer.n_tables), np.int32))
            layer.query_mode = spec.get("query", QUERY_UNION)
            if layer.query_mode not in (QUERY_UNION, QUERY_THRESHOLD, QUERY_SAMPLE):
                raise ValueError(f"pyslide internal error: unknown query code "
                                 f"{layer.query_mode} (resolve names with QUERIES)")
            layer.threshold = spec.get("threshold", 1)
            if layer.sampled and layer.family != NULL and layer.query_mode == QUERY_THRESHOLD:
                layer.hit_count = self._iptr(np.zeros(n_threads * layer.units, np.int32))
                layer.last_table = self._iptr(np.full(n_threads * layer.units, -1, np.int32))
                layer.hit_list = self._iptr(np.zeros(
                    n_threads * layer.n_tables * layer.tables.bucket_size, np.int32))
            if layer.sampled:
                layer.stamp = self._iptr(np.zeros(n_threads * layer.units, np.int32))
                layer.act_ids = self._iptr(np.zeros(batch_size * layer.width, np.int32))
            layer.act_vals = self._ptr(np.zeros(batch_size * layer.width, np.float32))
            layer.deltas = self._ptr(np.zeros(batch_size * layer.width, np.float32))
            layer.n_act = self._iptr(np.zeros(batch_size, np.int32))
            layer.dropout = spec.get("dropout", 0.0)
            layer.dropout_seed = mix_seed(seed, <uint64_t>0xD50F, <uint64_t>l)
            if spec.get("decay_mark") is not None:
                mark = spec["decay_mark"]
                if mark.dtype != np.float64 or not mark.flags.c_contiguous:
                    raise ValueError("pyslide internal error: decay_mark must be C-contiguous float64")
                self.keepalive.append(mark)
                layer.decay_mark = <double*>cnp.PyArray_DATA(mark)
            if is_output and layer.sampled:
                layer.n_det = self._iptr(np.zeros(batch_size, np.int32))
            if spec.get("row_updates") is not None:
                layer.row_updates = self._iptr(spec["row_updates"])
        self.max_shared = 0
        self.n_shared = 0
        if shared_output:
            layer = &self.layers[self.n_layers - 1]
            self.max_shared = max(layer.max_active, layer.min_active) + batch_size * max_labels
            self.max_shared = min(self.max_shared, layer.units)
            d = layer.in_dim
            self.shared_ids = self._iptr(np.zeros(self.max_shared, np.int32))
            self.shared_pos = self._iptr(np.full(layer.units, -1, np.int32))
            self.cand_count = self._iptr(np.zeros(layer.units, np.int32))
            self.cand_ids = self._iptr(np.zeros(layer.units, np.int32))
            self.count_hist = self._iptr(np.zeros(batch_size * max_tables + 2, np.int32))
            self.hidden = self._ptr(np.zeros(batch_size * d, np.float32))
            self.d_hidden = self._ptr(np.zeros(batch_size * d, np.float32))
            self.w_shared = self._ptr(np.zeros(self.max_shared * d, np.float32))
            self.b_shared = self._ptr(np.zeros(self.max_shared, np.float32))
            self.logits = self._ptr(np.zeros(batch_size * self.max_shared, np.float32))
            self.grad_shared = self._ptr(np.zeros(self.max_shared * d, np.float32))
            self.gb_shared = self._ptr(np.zeros(self.max_shared, np.float32))
        self.label_pos = self._iptr(np.zeros(batch_size * self.max_labels, np.int32))
        self.correction = 0
        out = &self.layers[self.n_layers - 1]
        if label_log1m is not None and out.sampled and not out.all_active:
            if len(label_log1m) != out.units:
                raise ValueError("pyslide internal error: one label frequency per output")
            self.label_log1m = self._ptr(np.ascontiguousarray(label_log1m, np.float32))
            self.correction = 1
            self.q_floor = max(q_floor, 1e-12)
            if shared_output:
                self.corr_shared = self._ptr(np.zeros(self.max_shared, np.float32))
        self.n_feats = 0
        self.max_entries = 0
        if self.layers[0].fused_grad:
            self.max_entries = max(1, <int64_t>batch_size * max_row_nnz)
            self.row_slot = self._iptr(np.full(self.layers[0].in_dim, -1, np.int32))
            self.feat_ids = self._iptr(np.zeros(self.max_entries, np.int32))
            self.entry_sample = self._iptr(np.zeros(self.max_entries, np.int32))
            self.entry_value = self._ptr(np.zeros(self.max_entries, np.float32))
            starts = np.zeros(self.max_entries + 1, np.int64)
            self.keepalive.append(starts)
            self.feat_start = <int64_t*>cnp.PyArray_DATA(starts)
            self.row_scratch = self._ptr(np.zeros(n_threads * self.layers[0].units, np.float32))

    cdef float* _ptr(self, object arr) except NULL:
        cdef float[::1] view = arr.reshape(-1)
        if not arr.flags.c_contiguous or arr.dtype != np.float32:
            raise ValueError("pyslide internal error: engine arrays must be C-contiguous float32")
        self.keepalive.append(arr)
        if view.shape[0] == 0:
            return <float*>self.thread_time  # never dereferenced; a non-NULL placeholder
        return &view[0]

    cdef int32_t* _iptr(self, object arr) except NULL:
        cdef int32_t[::1] view = arr.reshape(-1)
        if not arr.flags.c_contiguous or arr.dtype != np.int32:
            raise ValueError("pyslide internal error: engine index arrays must be C-contiguous int32")
        self.keepalive.append(arr)
        return &view[0]

    def reset_timers(self):
        self.t_hash = self.t_shared_forward = self.t_shared_backward = 0
        memset(self.thread_time, 0, self.n_threads * TIME_STRIDE * sizeof(double))

    def timings(self):
        """Seconds per phase since reset_timers (per-thread time / threads)."""
        cdef int32_t t
        cdef double s = 0, f = 0, bw = 0
        for t in range(self.n_threads):
            s += self.thread_time[t * TIME_STRIDE + T_HASH]
            f += self.thread_time[t * TIME_STRIDE + T_FORWARD]
            bw += self.thread_time[t * TIME_STRIDE + T_BACKWARD]
        n = float(self.n_threads)
        return {"hash": s / n + self.t_hash, "forward": f / n + self.t_shared_forward,
                "backward": bw / n + self.t_shared_backward}

    def reset_stamps(self):
        """Clear de-duplication marks (needed before the int32 mark wraps)."""
        cdef int32_t l
        for l in range(self.n_layers):
            if self.layers[l].sampled:
                memset(self.layers[l].stamp, 0,
                       <int64_t>self.n_threads * self.layers[l].units * sizeof(int32_t))
        self.mark_base = 0

    @property
    def n_shared_active(self):
        return self.n_shared

    def active_sets(self, int layer_index, int n_samples):
        """Copy of the last step's active ids per sample (tests, diagnostics)."""
        cdef LayerC* layer = &self.layers[layer_index]
        out = []
        if self.shared_output and layer_index == self.n_layers - 1:
            return [np.array(<int32_t[:self.n_shared]>self.shared_ids, copy=True)] if self.n_shared else [np.zeros(0, np.int32)]
        for b in range(n_samples):
            if layer.sampled:
                n = layer.n_act[b]
                out.append(np.array(<int32_t[:max(n, 1)]>(layer.act_ids + <int64_t>b * layer.width), copy=True)[:n])
            else:
                out.append(np.arange(layer.units, dtype=np.int32))
        return out

    def sampling_parts(self, int n_samples):
        """Where the output's drawn ids start (tests of the correction): for a
        batch-shared set ``(n_labels, n_det, n_shared)`` (its ids are the
        batch's labels, then LSH candidates up to n_det, then uniform draws);
        per sample an array of n_det (labels and LSH candidates come first)."""
        cdef LayerC* out = &self.layers[self.n_layers - 1]
        if self.shared_output:
            return self.n_shared_labels, self.n_shared_det, self.n_shared
        if out.n_det == NULL:
            raise ValueError("the output layer is not sampled")
        return np.array(<int32_t[:n_samples]>out.n_det, copy=True)

    def last_shared_ids(self):
        """The last step's shared active ids of the output layer (a view)."""
        if not self.shared_output or self.n_shared == 0:
            return np.zeros(0, np.int32)
        return np.asarray(<int32_t[:self.n_shared]>self.shared_ids)

    def shared_gradient(self):
        """(ids, grad_W, grad_b) of the last batch-shared step (tests, diagnostics)."""
        cdef LayerC* out_layer = &self.layers[self.n_layers - 1]
        cdef int32_t n = self.n_shared, d = out_layer.in_dim
        if not self.shared_output or n == 0:
            return (np.zeros(0, np.int32), np.zeros((0, d), np.float32), np.zeros(0, np.float32))
        ids = np.array(<int32_t[:n]>self.shared_ids, copy=True)
        grad = np.array(<float[:n * d]>self.grad_shared, copy=True).reshape(n, d)
        grad_b = np.array(<float[:n]>self.gb_shared, copy=True)
        return ids, grad, grad_b

    # ------------------------------------------------------------ training

    def train_step(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                   const float[::1] x_data, const int64_t[::1] y_indptr,
                   const int32_t[::1] y_indices, const int64_t[::1] rows,
                   int32_t step, float[::1] losses, double log_decay=0):
        """Forward and backward of one batch; gradients left in the buffers.

        BLAS must be limited to one thread while this runs (``Network.fit``
        does it): a batch-shared output calls sgemm from every OpenMP thread.

        ``rows`` are the batch's row numbers in X / Y; ``step`` (>= 1) marks
        touched rows and keys the sample random streams; ``losses`` receives
        one loss per sample. ``log_decay``: the weight-decay sum through the
        previous step; the rows of the first layer and of a batch-shared
        output that the batch reads take the decay they owe before they are
        read, so the forward pass sees dense AdamW's weights.
        """
        cdef int32_t n_batch = rows.shape[0], b
        cdef int32_t mark_base
        cdef int64_t entries
        self._last_batch = n_batch
        if n_batch > self.batch_size or n_batch > losses.shape[0]:
            raise ValueError("pyslide internal error: batch larger than the engine's scratch")
        if self.mark_base > 2000000000 - n_batch:
            self.reset_stamps()
        mark_base = self.mark_base
        self.mark_base += n_batch
        if self.layers[0].fused_grad:
            entries = 0
            for b in range(n_batch):
                entries += x_indptr[rows[b] + 1] - x_indptr[rows[b]]
            if entries > self.max_entries:
                raise ValueError("pyslide internal error: the batch has more non-zeros than "
                                 "the engine was sized for")
            with nogil:
                self._transpose_batch(x_indptr, x_indices, x_data, rows)
                if self.layers[0].decay_mark != NULL:
                    catch_up_rows(self.layers[0].W, self.layers[0].decay_mark, self.feat_ids,
                                  self.n_feats, self.layers[0].units, log_decay, self.n_threads)
        self.log_decay_read = log_decay
        if self.shared_output:
            self._train_shared(x_indptr, x_indices, x_data, y_indptr, y_indices, rows,
                               step, losses, mark_base)
        else:
            self._train_per_sample(x_indptr, x_indices, x_data, y_indptr, y_indices, rows,
                                   step, losses, mark_base)

    cdef void _transpose_batch(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                               const float[::1] x_data, const int64_t[::1] rows) noexcept nogil:
        """Group the batch's non-zeros by feature (a counting sort, no sort call)."""
        cdef int32_t n_batch = rows.shape[0], b, f, slot, n_feats = 0
        cdef int64_t k, r, pos
        for b in range(n_batch):
            r = rows[b]
            for k in range(x_indptr[r], x_indptr[r + 1]):
                f = x_indices[k]
                if self.row_slot[f] < 0:
                    self.row_slot[f] = n_feats
                    self.feat_ids[n_feats] = f
                    self.feat_start[n_feats + 1] = 0
                    n_feats += 1
                self.feat_start[self.row_slot[f] + 1] += 1
        self.feat_start[0] = 0
        for slot in range(n_feats):
            self.feat_start[slot + 1] += self.feat_start[slot]
        # fill, using feat_start[slot] as a cursor, then shift the cursors back
        for b in range(n_batch):
            r = rows[b]
            for k in range(x_indptr[r], x_indptr[r + 1]):
                slot = self.row_slot[x_indices[k]]
                pos = self.feat_start[slot]
                self.entry_sample[pos] = b
                self.entry_value[pos] = x_data[k]
                self.feat_start[slot] = pos + 1
        for slot in range(n_feats - 1, 0, -1):
            self.feat_start[slot] = self.feat_start[slot - 1]
        self.feat_start[0] = 0
        self.n_feats = n_feats

    def input_gradient(self):
        """(feature ids, gradient rows, bias gradient) of the first layer for
        the last batch, when that layer's gradient is fused (tests)."""
        cdef LayerC* layer = &self.layers[0]
        cdef int32_t s, units = layer.units
        cdef int64_t e
        if not layer.fused_grad:
            raise ValueError("the first layer's gradient is not fused")
        ids = np.array(<int32_t[:max(1, self.n_feats)]>self.feat_ids, copy=True)[:self.n_feats]
        grad = np.zeros((self.n_feats, units), np.float32)
        cdef float[:, ::1] g = grad
        for s in range(self.n_feats):
            for e in range(self.feat_start[s], self.feat_start[s + 1]):
                axpy(&g[s, 0], layer.deltas + <int64_t>self.entry_sample[e] * layer.width,
                     self.entry_value[e], units)
        grad_b = np.zeros(units, np.float32)
        cdef float[::1] gb = grad_b
        for s in range(self._last_batch):
            axpy(&gb[0], layer.deltas + <int64_t>s * layer.width, 1.0, units)
        return ids, grad, grad_b

    # One sample through layers [0, n_forward): the active sets, then the
    # activations. Each sample is carried end to end by one thread.
    cdef void _forward_sample(self, int32_t b, int32_t tid, const int32_t* x_ids,
                              const float* x_vals, int32_t x_n, const int32_t* labels,
                              int32_t n_labels, int32_t n_forward, int32_t step,
                              int32_t mark) noexcept nogil:
        cdef int32_t l, n_in = x_n
        cdef const int32_t* in_ids = x_ids
        cdef const float* in_vals = x_vals
        cdef LayerC* layer
        cdef uint64_t rng
        cdef double t0, t1
        cdef bint is_output
        for l in range(n_forward):
            layer = &self.layers[l]
            is_output = l == self.n_layers - 1
            t0 = now()
            if layer.sampled:
                rng = mix_seed(self.seed + <uint64_t>(l + 1) * <uint64_t>0x9E3779B97F4A7C15,
                               <uint64_t>step, <uint64_t>b)
                if is_output:
                    layer.n_act[b] = choose_active(layer, tid, b, in_ids, in_vals, n_in,
                                                   labels, n_labels, mark, &rng)
                else:
                    layer.n_act[b] = choose_active(layer, tid, b, in_ids, in_vals, n_in,
                                                   NULL, 0, mark, &rng)
            t1 = now()
            forward_layer(layer, b, in_ids, in_vals, n_in, is_output, step)
            self.thread_time[tid * TIME_STRIDE + T_HASH] += t1 - t0
            self.thread_time[tid * TIME_STRIDE + T_FORWARD] += now() - t1
            layer_output(layer, b, &in_ids, &in_vals, &n_in)

    # Backward of one sample from layer `top` (its deltas already set) down
    # to the first layer.
    cdef void _backward_sample(self, int32_t b, int32_t top, const int32_t* x_ids,
                               const float* x_vals, int32_t x_n, int32_t step) noexcept nogil:
        cdef int32_t l, n_in
        cdef const int32_t* in_ids
        cdef const float* in_vals
        for l in range(top, -1, -1):
            if l > 0:
                layer_output(&self.layers[l - 1], b, &in_ids, &in_vals, &n_in)
                backward_layer(&self.layers[l], &self.layers[l - 1], b, in_ids, in_vals, n_in, step)
            elif not self.layers[0].fused_grad:
                backward_layer(&self.layers[0], NULL, b, x_ids, x_vals, x_n, step)

    cdef void _train_per_sample(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                                const float[::1] x_data, const int64_t[::1] y_indptr,
                                const int32_t[::1] y_indices, const int64_t[::1] rows,
                                int32_t step, float[::1] losses, int32_t mark_base) noexcept:
        cdef int32_t n_batch = rows.shape[0]
        cdef int32_t b, tid, x_n, n_labels, t, n_out
        cdef int64_t r
        cdef const int32_t* x_ids
        cdef const float* x_vals
        cdef const int32_t* labels
        cdef LayerC* out_layer = &self.layers[self.n_layers - 1]
        cdef double t0
        cdef float scale = 1.0 / n_batch
        cdef int32_t* label_pos
        with nogil:
            for b in prange(n_batch, num_threads=self.n_threads, schedule="dynamic"):
                tid = threadid()
                r = rows[b]
                labels = &y_indices[0] + y_indptr[r]
                n_labels = <int32_t>(y_indptr[r + 1] - y_indptr[r])
                x_ids = &x_indices[0] + x_indptr[r]
                x_vals = &x_data[0] + x_indptr[r]
                x_n = <int32_t>(x_indptr[r + 1] - x_indptr[r])
                self._forward_sample(b, tid, x_ids, x_vals, x_n, labels, n_labels,
                                     self.n_layers, step, mark_base + b + 1)
                t0 = now()
                # labels sit at positions 0..n_labels-1 of a sampled output
                # (choose_active put them first) and at their ids in a Dense one
                label_pos = self.label_pos + <int64_t>b * self.max_labels
                for t in range(n_labels):
                    label_pos[t] = t if out_layer.sampled else labels[t]
                n_out = out_layer.n_act[b] if out_layer.sampled else out_layer.units
                if self.correction:
                    correct_uniform_draws(out_layer, b, n_out, self.q_floor)
                losses[b] = loss_and_delta(out_layer.act_vals + <int64_t>b * out_layer.width,
                                           out_layer.deltas + <int64_t>b * out_layer.width,
                                           n_out, label_pos, n_labels, self.loss_kind, scale)
                self._backward_sample(b, self.n_layers - 1, x_ids, x_vals, x_n, step)
                self.thread_time[tid * TIME_STRIDE + T_BACKWARD] += now() - t0

    cdef void _select_shared(self, const int64_t[::1] y_indptr, const int32_t[::1] y_indices,
                             const int64_t[::1] rows, int32_t step) noexcept nogil:
        """The batch's shared active set of the output layer.

        The batch's true labels first; then LSH candidates ranked by how many
        (sample, table) pairs hit them, best first, up to max_active; then
        uniform random neurons up to min_active. Ranking uses a histogram of
        hit counts (counts are at most batch * L): no sort.
        """
        cdef LayerC* layer = &self.layers[self.n_layers - 1]
        cdef int32_t n_batch = rows.shape[0]
        cdef int32_t n = 0, n_cand = 0, b, l, s, j, c, need, threshold, taken, max_count
        cdef int64_t k, r, bucket, n_valid
        cdef const int32_t* bucket_ids
        cdef const int32_t* slot
        cdef const BucketTables* tables = layer.tables
        cdef uint64_t rng
        cdef int32_t limit = self.max_shared
        for b in range(n_batch):
            r = rows[b]
            for k in range(y_indptr[r], y_indptr[r + 1]):
                j = y_indices[k]
                if self.shared_pos[j] < 0 and n < limit:
                    self.shared_pos[j] = n
                    self.shared_ids[n] = j
                    n += 1
        self.n_shared_labels = n
        if layer.all_active:
            for j in range(layer.units):
                if self.shared_pos[j] < 0:
                    self.shared_pos[j] = n
                    self.shared_ids[n] = j
                    n += 1
            self.n_shared = self.n_shared_det = n
            return
        if layer.family != NULL and n < layer.max_active:
            max_count = 0
            for b in range(n_batch):
                bucket_ids = layer.bucket_ids + <int64_t>b * layer.n_tables
                for l in range(layer.n_tables):
                    bucket = <int64_t>l * tables.n_buckets + bucket_ids[l]
                    n_valid = tables.counts[bucket]
                    if n_valid > tables.bucket_size:
                        n_valid = tables.bucket_size
                    slot = tables.ids + bucket * tables.bucket_size
                    for s in range(n_valid):
                        j = slot[s]
                        if self.shared_pos[j] >= 0:
                            continue
                        if self.cand_count[j] == 0:
                            self.cand_ids[n_cand] = j
                            n_cand += 1
                        self.cand_count[j] += 1
                        if self.cand_count[j] > max_count:
                            max_count = self.cand_count[j]
            need = layer.max_active - n
            if n_cand <= need:
                threshold = 1
            else:
                memset(self.count_hist, 0, (max_count + 2) * sizeof(int32_t))
                for c in range(n_cand):
                    self.count_hist[self.cand_count[self.cand_ids[c]]] += 1
                # smallest hit count whose candidates, with all better ones, fill `need`
                taken = 0
                threshold = max_count
                while threshold > 1 and taken + self.count_hist[threshold] < need:
                    taken += self.count_hist[threshold]
                    threshold -= 1
            # strictly better candidates first, then ties in first-hit order
            for c in range(n_cand):
                j = self.cand_ids[c]
                if self.cand_count[j] > threshold:
                    self.shared_pos[j] = n
                    self.shared_ids[n] = j
                    n += 1
            for c in range(n_cand):
                j = self.cand_ids[c]
                if self.cand_count[j] == threshold and n < layer.max_active:
                    self.shared_pos[j] = n
                    self.shared_ids[n] = j
                    n += 1
                self.cand_count[j] = 0
        self.n_shared_det = n
        rng = mix_seed(self.seed, <uint64_t>step, <uint64_t>0xFFFFFFFF)
        while n < layer.min_active and n < limit:
            j = <int32_t>rand_below(&rng, <uint32_t>layer.units)
            if self.shared_pos[j] < 0:
                self.shared_pos[j] = n
                self.shared_ids[n] = j
                n += 1
        self.n_shared = n

    cdef void _train_shared(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                            const float[::1] x_data, const int64_t[::1] y_indptr,
                            const int32_t[::1] y_indices, const int64_t[::1] rows,
                            int32_t step, float[::1] losses, int32_t mark_base) noexcept:
        cdef int32_t n_batch = rows.shape[0]
        cdef LayerC* out_layer = &self.layers[self.n_layers - 1]
        cdef LayerC* last = &self.layers[self.n_layers - 2]
        cdef int32_t d = out_layer.in_dim
        cdef int32_t b, tid, x_n, n_labels, t, j, n_in, n_shared
        cdef int64_t r, k
        cdef const int32_t* x_ids
        cdef const float* x_vals
        cdef const int32_t* labels
        cdef const int32_t* in_ids
        cdef const float* in_vals
        cdef float* h
        cdef float* dh
        cdef float* last_delta
        cdef const float* last_act
        cdef int32_t* label_pos
        cdef double t0
        cdef float scale = 1.0 / n_batch
        cdef float one = 1.0, zero = 0.0
        cdef float q_uniform = 0
        cdef int32_t n_blocks, block, batch_block, c, s0, s1, b0, b1
        with nogil:
            # forward through the hidden layers; hidden vectors into `hidden`
            for b in prange(n_batch, num_threads=self.n_threads, schedule="dynamic"):
                tid = threadid()
                r = rows[b]
                x_ids = &x_indices[0] + x_indptr[r]
                x_vals = &x_data[0] + x_indptr[r]
                x_n = <int32_t>(x_indptr[r + 1] - x_indptr[r])
                self._forward_sample(b, tid, x_ids, x_vals, x_n, NULL, 0,
                                     self.n_layers - 1, step, mark_base + b + 1)
                t0 = now()
                # assigned here so that prange makes them thread-private (it
                # cannot see the writes layer_output makes through pointers)
                in_ids = NULL
                in_vals = NULL
                n_in = 0
                layer_output(last, b, &in_ids, &in_vals, &n_in)
                h = self.hidden + <int64_t>b * d
                if in_ids == NULL:
                    memcpy(h, in_vals, d * sizeof(float))
                else:
                    memset(h, 0, d * sizeof(float))
                    for t in range(n_in):
                        h[in_ids[t]] = in_vals[t]
                if out_layer.family != NULL:
                    hash_dense_row(out_layer.family, h,
                                   out_layer.bucket_ids + <int64_t>b * out_layer.n_tables)
                self.thread_time[tid * TIME_STRIDE + T_HASH] += now() - t0

            t0 = now()
            self._select_shared(y_indptr, y_indices, rows, step)
            n_shared = self.n_shared
            self.t_hash += now() - t0

            # BLAS runs single-threaded while fit runs (OpenBLAS threads that
            # spin after a call steal the cores from the OpenMP threads of
            # the next region), so each thread multiplies its own block of
            # shared rows: gather the rows, then logits[:, block] =
            # hidden @ w_shared[block]^T
            t0 = now()
            if self.correction:
                # uniform draws avoid the ids already in the set
                q_uniform = (n_shared - self.n_shared_det) / <float>max(
                    1, out_layer.units - self.n_shared_det)
            n_blocks = self.n_threads
            block = (n_shared + n_blocks - 1) // n_blocks
            for c in prange(n_blocks, num_threads=self.n_threads, schedule="static"):
                s0 = c * block
                s1 = min(n_shared, s0 + block)
                if s1 <= s0:
                    continue
                for j in range(s0, s1):
                    if out_layer.decay_mark != NULL:
                        catch_up_row(out_layer.W, out_layer.decay_mark, self.shared_ids[j], d,
                                     self.log_decay_read)
                    if j + PREFETCH_AHEAD < s1:
                        pyslide_prefetch(out_layer.W + <int64_t>self.shared_ids[j + PREFETCH_AHEAD] * d,
                                         d * sizeof(float), 0)
                    memcpy(self.w_shared + <int64_t>j * d,
                           out_layer.W + <int64_t>self.shared_ids[j] * d, d * sizeof(float))
                    self.b_shared[j] = out_layer.b[self.shared_ids[j]]
                    if not self.correction:
                        continue
                    # LSH candidates are chosen, not drawn: they stand for
                    # themselves and take no correction
                    if self.n_shared_labels <= j < self.n_shared_det:
                        self.corr_shared[j] = 0
                    else:
                        self.corr_shared[j] = inclusion_log_correction(
                            self.label_log1m[self.shared_ids[j]], n_batch - 1, q_uniform,
                            self.q_floor)
                gemm_rm(False, True, n_batch, s1 - s0, d, one, self.hidden, d,
                        self.w_shared + <int64_t>s0 * d, d, zero, self.logits + s0, n_shared)
            self.t_shared_forward += now() - t0

            t0 = now()
            for b in prange(n_batch, num_threads=self.n_threads, schedule="static"):
                r = rows[b]
                labels = &y_indices[0] + y_indptr[r]
                n_labels = <int32_t>(y_indptr[r + 1] - y_indptr[r])
                label_pos = self.label_pos + <int64_t>b * self.max_labels
                k = 0
                for t in range(n_labels):
                    j = self.shared_pos[labels[t]]
                    if j >= 0:
                        label_pos[k] = j
                        k = k + 1
                h = self.logits + <int64_t>b * n_shared
                if self.correction:
                    for j in range(n_shared):
                        h[j] = h[j] + self.b_shared[j] + self.corr_shared[j]
                    # a sample's own labels are in the set for sure
                    for t in range(<int32_t>k):
                        h[label_pos[t]] = h[label_pos[t]] - self.corr_shared[label_pos[t]]
                else:
                    for j in range(n_shared):
                        h[j] = h[j] + self.b_shared[j]
                # loss_and_delta works in place: delta overwrites the logits
                losses[b] = loss_and_delta(h, h, n_shared, label_pos, <int32_t>k,
                                           self.loss_kind, scale)
            # per thread: grad[block] = delta[:, block]^T @ hidden and the bias
            # gradient of its block of shared rows; d_hidden[rows] =
            # delta[rows] @ w_shared for its block of batch rows
            batch_block = (n_batch + n_blocks - 1) // n_blocks
            for c in prange(n_blocks, num_threads=self.n_threads, schedule="static"):
                s0 = c * block
                s1 = min(n_shared, s0 + block)
                if s1 > s0:
                    gemm_rm(True, False, s1 - s0, d, n_batch, one, self.logits + s0, n_shared,
                            self.hidden, d, zero, self.grad_shared + <int64_t>s0 * d, d)
                    memset(self.gb_shared + s0, 0, (s1 - s0) * sizeof(float))
                    for b in range(n_batch):
                        axpy(self.gb_shared + s0, self.logits + <int64_t>b * n_shared + s0,
                             1.0, s1 - s0)
                b0 = c * batch_block
                b1 = min(n_batch, b0 + batch_block)
                if b1 > b0:
                    gemm_rm(False, False, b1 - b0, d, n_shared, one,
                            self.logits + <int64_t>b0 * n_shared, n_shared, self.w_shared, d,
                            zero, self.d_hidden + <int64_t>b0 * d, d)
            self.t_shared_backward += now() - t0

            for b in prange(n_batch, num_threads=self.n_threads, schedule="dynamic"):
                tid = threadid()
                t0 = now()
                r = rows[b]
                dh = self.d_hidden + <int64_t>b * d
                last_delta = last.deltas + <int64_t>b * last.width
                # assigned here so that prange makes them thread-private (it
                # cannot see the writes layer_output makes through pointers)
                in_ids = NULL
                in_vals = NULL
                n_in = 0
                layer_output(last, b, &in_ids, &in_vals, &n_in)
                if in_ids == NULL:
                    for t in range(n_in):
                        last_delta[t] = dh[t] if (in_vals[t] > 0 or not last.relu) else 0
                else:
                    for t in range(n_in):
                        last_delta[t] = dh[in_ids[t]] if (in_vals[t] > 0 or not last.relu) else 0
                if last.dropout > 0:
                    dropout_mask(last_delta, n_in, last.dropout, dropout_stream(last, step, b))
                x_ids = &x_indices[0] + x_indptr[r]
                x_vals = &x_data[0] + x_indptr[r]
                x_n = <int32_t>(x_indptr[r + 1] - x_indptr[r])
                self._backward_sample(b, self.n_layers - 2, x_ids, x_vals, x_n, step)
                self.thread_time[tid * TIME_STRIDE + T_BACKWARD] += now() - t0

    # ------------------------------------------------------------ optimizer

    def optimizer_step(self, int32_t step, int kind, float step_size, float beta1,
                       float beta2, float eps, bint lazy, double log_decay=0, float lr=0):
        """Update the rows touched in ``step`` and zero their gradients.

        A batch-shared output layer is updated from its compact gradient.
        ``log_decay``: the sum of log(1 - lr_t * weight_decay) over steps 1 to
        ``step``; layers given a ``decay_mark`` array decay each updated row
        by what it owes (decoupled weight decay, biases excepted). Layers
        given a ``row_updates`` array bias-correct Adam per row from ``lr``
        (this step's learning rate) instead of using ``step_size``.
        """
        cdef int32_t l, n_rows, n_cols
        cdef LayerC* layer
        cdef bint adam = kind == OPT_ADAM
        if kind != OPT_ADAM and kind != OPT_SGD:
            raise ValueError(f"pyslide internal error: unknown optimizer code {kind} "
                             f"(resolve names with _optim.OPTIMIZERS)")
        cdef int32_t last = self.n_layers - 1
        if adam:
            for l in range(self.n_layers):
                if self.layers[l].mW == NULL:
                    raise ValueError("pyslide internal error: Adam needs moment arrays")
        for l in range(self.n_layers):
            layer = &self.layers[l]
            layer_shape(layer, &n_rows, &n_cols)
            if layer.fused_grad:
                with nogil:
                    self._update_fused_input(adam, lazy, step_size, beta1, beta2, eps,
                                             log_decay, lr)
                continue
            with nogil:
                if self.shared_output and l == last:
                    update_shared_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb, layer.vb,
                                       self.grad_shared, self.gb_shared, self.shared_ids,
                                       self.n_shared, n_cols, adam, step_size, beta1, beta2,
                                       eps, layer.decay_mark, log_decay, layer.row_updates, lr,
                                       self.n_threads)
                    if adam and not lazy:
                        decay_unshared_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb,
                                            layer.vb, self.shared_pos, n_rows, n_cols,
                                            step_size, beta1, beta2, eps, layer.decay_mark,
                                            log_decay, layer.row_updates, lr, self.n_threads)
                    clear_shared(self.shared_pos, self.shared_ids, self.n_shared)
                    continue
                update_rows(layer.W, layer.mW, layer.vW, layer.gW, layer.touched, step,
                            n_rows, n_cols, adam, lazy, step_size, beta1, beta2, eps,
                            layer.decay_mark, log_decay, layer.row_updates, lr, True,
                            self.n_threads)
                # a sampled layer's bias is per row: its step was counted above
                if layer.sampled:
                    update_rows(layer.b, layer.mb, layer.vb, layer.gb, layer.touched, step,
                                n_rows, 1, adam, lazy, step_size, beta1, beta2, eps,
                                NULL, 0, layer.row_updates, lr, False, self.n_threads)
                else:
                    update_rows(layer.b, layer.mb, layer.vb, layer.gb, NULL, step, 1, n_cols,
                                adam, lazy, step_size, beta1, beta2, eps, NULL, 0, NULL, 0,
                                False, 1)

    cdef void _update_fused_input(self, bint adam, bint lazy, float step_size, float beta1,
                                  float beta2, float eps, double log_decay,
                                  float lr) noexcept nogil:
        """Optimizer for the first Dense layer: each of the batch's features gets
        its gradient row (sum of value * delta over the samples holding it)
        formed in thread-local scratch and applied at once: no gradient
        buffer, no race, one pass over w, m, v."""
        cdef LayerC* layer = &self.layers[0]
        cdef int32_t units = layer.units, s, b, tid
        cdef int64_t e, f, r
        cdef float* g
        cdef float decay
        cdef float* gb = self.row_scratch
        if adam and not lazy:
            decay_unshared_rows(layer.W, NULL, layer.mW, layer.vW, NULL, NULL,
                                self.row_slot, layer.in_dim, units, step_size, beta1, beta2,
                                eps, layer.decay_mark, log_decay, layer.row_updates, lr,
                                self.n_threads)
        for s in prange(self.n_feats, num_threads=self.n_threads, schedule="static"):
            tid = threadid()
            if s + PREFETCH_AHEAD < self.n_feats:
                r = <int64_t>self.feat_ids[s + PREFETCH_AHEAD] * units
                pyslide_prefetch(layer.W + r, units * sizeof(float), 1)
                if adam:
                    pyslide_prefetch(layer.mW + r, units * sizeof(float), 1)
                    pyslide_prefetch(layer.vW + r, units * sizeof(float), 1)
            g = self.row_scratch + <int64_t>tid * units
            memset(g, 0, units * sizeof(float))
            for e in range(self.feat_start[s], self.feat_start[s + 1]):
                axpy(g, layer.deltas + <int64_t>self.entry_sample[e] * layer.width,
                     self.entry_value[e], units)
            f = self.feat_ids[s]
            decay = catch_up_decay(layer.decay_mark, f, log_decay)
            if adam:
                adam_update(layer.W + f * units, layer.mW + f * units, layer.vW + f * units,
                            g, units, row_step(layer.row_updates, f, step_size, lr, beta1,
                                               beta2, True),
                            beta1, beta2, eps, decay)
            else:
                sgd_update(layer.W + f * units, g, units, step_size, decay)
            self.row_slot[f] = -1
        # the bias gradient is the sum of the batch's deltas
        memset(gb, 0, units * sizeof(float))
        for b in range(self._last_batch):
            axpy(gb, layer.deltas + <int64_t>b * layer.width, 1.0, units)
        if adam:
            adam_update(layer.b, layer.mb, layer.vb, gb, units, step_size, beta1, beta2, eps, 1)
        else:
            sgd_update(layer.b, gb, units, step_size, 1)
        self.n_feats = 0

    def apply_pending_decay(self, double log_decay):
        """Decay every row by the weight decay it owes up to ``log_decay``
        (rows the lazy optimizer has not touched lately), so that the weights
        equal dense AdamW's decay before they are evaluated or saved."""
        cdef int32_t l, n_rows, n_cols
        cdef int64_t r
        cdef LayerC* layer
        for l in range(self.n_layers):
            layer = &self.layers[l]
            if layer.decay_mark == NULL:
                continue
            layer_shape(layer, &n_rows, &n_cols)
            with nogil:
                for r in prange(n_rows, num_threads=self.n_threads, schedule="static"):
                    catch_up_row(layer.W, layer.decay_mark, r, n_cols, log_decay)

    def discard_gradients(self, int32_t step):
        """Zero the gradients of ``step`` without applying them (error / Ctrl-C)."""
        cdef int32_t l, n_rows, n_cols
        cdef int64_t r
        cdef LayerC* layer
        if self.layers[0].fused_grad:
            for l in range(self.n_feats):
                self.row_slot[self.feat_ids[l]] = -1
            self.n_feats = 0
        for l in range(self.n_layers):
            layer = &self.layers[l]
            if layer.fused_grad:
                continue
            if self.shared_output and l == self.n_layers - 1:
                clear_shared(self.shared_pos, self.shared_ids, self.n_shared)
                continue
            layer_shape(layer, &n_rows, &n_cols)
            with nogil:
                for r in range(n_rows):
                    if layer.touched[r] == step:
                        memset(layer.gW + r * n_cols, 0, n_cols * sizeof(float))
                        if layer.sampled:
                            layer.gb[r] = 0
                if not layer.sampled:
                    memset(layer.gb, 0, n_cols * sizeof(float))


cdef inline void clear_shared(int32_t* pos, const int32_t* ids, int32_t n) noexcept nogil:
    cdef int32_t j
    for j in range(n):
        pos[ids[j]] = -1


# ---------------------------------------------------------------- inference

