"""The batch-shared output: one active set per batch, logits and gradients as matrix products; a kernel module (imports no Python module of ours)."""
# A batch-shared output layer (share="batch") is computed differently from
# SLIDE's: one active set for the whole batch, logits as one sgemm, and a
# compact gradient (n_shared, in_dim) that the optimizer applies directly,
# so that layer needs no full-size gradient buffer.

from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy

from pyslide._common cimport mix_seed, rand_below
from pyslide._hash cimport hash_dense_row
from pyslide._tables cimport BucketTables
from pyslide._layer cimport (LayerC, NetC, TIME_STRIDE, T_HASH, T_BACKWARD, dropout_mask,
                             dropout_stream, layer_output, gemm_rm, float_data, int_data)
from pyslide._loss cimport inclusion_log_correction, loss_and_delta
from pyslide._optim cimport catch_up_row
from pyslide._sample cimport forward_sample, backward_sample
from pyslide._vec cimport axpy, now, pyslide_prefetch, PREFETCH_AHEAD

import numpy as np


cdef int alloc_shared(SharedC* sh, const LayerC* layer, int32_t batch_size,
                      int32_t max_labels, int32_t negatives, list keepalive) except -1:
    # the set's rows: every row, or the bounds on the chosen rows, the
    # batch's label slots and the negatives beyond them
    cdef int32_t width = layer.units
    cdef int32_t units = max(1, layer.units), d = layer.in_dim
    if not layer.all_active:
        width = min(layer.units, max(layer.max_active, layer.min_active)
                    + batch_size * max_labels + negatives)
    width = max(width, 1)
    sh.max_shared = width
    sh.min_negatives = 0 if layer.all_active else min(layer.units, negatives)
    sh.shared_ids = int_data(np.zeros(width, np.int32), keepalive)
    sh.shared_pos = int_data(np.full(units, -1, np.int32), keepalive)
    sh.cand_count = int_data(np.zeros(units, np.int32), keepalive)
    sh.cand_ids = int_data(np.zeros(units, np.int32), keepalive)
    sh.count_hist = int_data(np.zeros(batch_size * max(1, layer.n_tables) + 2, np.int32),
                             keepalive)
    sh.hidden = float_data(np.zeros(batch_size * d, np.float32), keepalive)
    sh.d_hidden = float_data(np.zeros(batch_size * d, np.float32), keepalive)
    sh.w_shared = float_data(np.zeros(width * d, np.float32), keepalive)
    sh.b_shared = float_data(np.zeros(width, np.float32), keepalive)
    sh.logits = float_data(np.zeros(batch_size * width, np.float32), keepalive)
    sh.grad_shared = float_data(np.zeros(width * d, np.float32), keepalive)
    sh.gb_shared = float_data(np.zeros(width, np.float32), keepalive)
    return 0


cdef int set_correction(NetC* net, SharedC* sh, const LayerC* out, object label_log1m,
                        float q_floor, list keepalive) except -1:
    net.correction = 0
    if label_log1m is None or not out.sampled or out.all_active:
        return 0
    if len(label_log1m) != out.units:
        raise ValueError("pyslide internal error: one label frequency per output row")
    net.label_log1m = float_data(np.ascontiguousarray(label_log1m, np.float32), keepalive)
    net.correction = 1
    net.q_floor = max(q_floor, 1e-12)
    if sh != NULL:
        sh.corr_shared = float_data(np.zeros(sh.max_shared, np.float32), keepalive)
    return 0


cdef void shared_add_labels(LayerC* layer, SharedC* sh, const int64_t[::1] y_indptr,
                            const int32_t[::1] y_indices, const int64_t[::1] rows) noexcept nogil:
    """Start the shared set with the batch's true labels (first-seen order)."""
    cdef int32_t n = 0, b, j
    cdef int64_t k, r
    for b in range(rows.shape[0]):
        r = rows[b]
        for k in range(y_indptr[r], y_indptr[r + 1]):
            j = y_indices[k]
            if sh.shared_pos[j] < 0 and n < sh.max_shared:
                sh.shared_pos[j] = n
                sh.shared_ids[n] = j
                n += 1
    sh.n_shared = sh.n_shared_labels = sh.n_shared_det = n
    sh.n_cand = 0


cdef inline void shared_append(SharedC* sh, int32_t j) noexcept nogil:
    sh.shared_pos[j] = sh.n_shared
    sh.shared_ids[sh.n_shared] = j
    sh.n_shared += 1


cdef void shared_add_all(LayerC* layer, SharedC* sh) noexcept nogil:
    """Every neuron not in the set yet, in id order (an output that computes all)."""
    cdef int32_t j
    for j in range(layer.units):
        if sh.shared_pos[j] < 0:
            shared_append(sh, j)
    sh.n_shared_det = sh.n_shared


cdef void shared_collect(LayerC* layer, SharedC* sh, int32_t n_batch) noexcept nogil:
    """Count the (sample, table) hits of every neuron outside the set, from the
    batch's bucket ids (``layer.bucket_ids``): the candidates in first-hit
    order go to ``cand_ids``, their number to ``sh.n_cand``."""
    cdef int32_t b, l, s, j, n_cand = 0, max_count = 0
    cdef int64_t bucket, n_valid
    cdef const int32_t* bucket_ids
    cdef const int32_t* slot
    cdef const BucketTables* tables = layer.tables
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
                if sh.shared_pos[j] >= 0:
                    continue
                if sh.cand_count[j] == 0:
                    sh.cand_ids[n_cand] = j
                    n_cand += 1
                sh.cand_count[j] += 1
                if sh.cand_count[j] > max_count:
                    max_count = sh.cand_count[j]
    sh.n_cand = n_cand
    sh.max_count = max_count


cdef void shared_take(SharedC* sh, int32_t max_active) noexcept nogil:
    """Add the collected candidates, most hit first, until the set holds
    ``max_active`` ids; clears the hit counts. Ranking uses a histogram of
    hit counts (counts are at most batch * L): no sort."""
    cdef int32_t c, j, threshold, taken, need = max_active - sh.n_shared
    cdef int32_t n_cand = sh.n_cand, max_count = sh.max_count
    if n_cand <= need:
        threshold = 1
    else:
        memset(sh.count_hist, 0, (max_count + 2) * sizeof(int32_t))
        for c in range(n_cand):
            sh.count_hist[sh.cand_count[sh.cand_ids[c]]] += 1
        # smallest hit count whose candidates, with all better ones, fill `need`
        taken = 0
        threshold = max_count
        while threshold > 1 and taken + sh.count_hist[threshold] < need:
            taken += sh.count_hist[threshold]
            threshold -= 1
    # strictly better candidates first, then ties in first-hit order
    if need > 0:
        for c in range(n_cand):
            j = sh.cand_ids[c]
            if sh.cand_count[j] > threshold:
                shared_append(sh, j)
        for c in range(n_cand):
            j = sh.cand_ids[c]
            if sh.cand_count[j] == threshold and sh.n_shared < max_active:
                shared_append(sh, j)
    for c in range(n_cand):
        sh.cand_count[sh.cand_ids[c]] = 0
    sh.n_cand = 0
    sh.n_shared_det = sh.n_shared


cdef void shared_top_up(LayerC* layer, SharedC* sh, int32_t min_active, uint64_t seed,
                        int32_t step) noexcept nogil:
    """Uniformly random neurons until the set holds ``min_active`` ids."""
    cdef int32_t j
    cdef uint64_t rng = mix_seed(seed, <uint64_t>step, <uint64_t>0xFFFFFFFF)
    while sh.n_shared < min_active and sh.n_shared < sh.max_shared:
        j = <int32_t>rand_below(&rng, <uint32_t>layer.units)
        if sh.shared_pos[j] < 0:
            shared_append(sh, j)


cdef void select_shared(NetC* net, SharedC* sh, const int64_t[::1] y_indptr,
                        const int32_t[::1] y_indices, const int64_t[::1] rows,
                        int32_t step) noexcept nogil:
    """The batch's shared active set of the output layer.

    The batch's true labels first; then LSH candidates ranked by how many
    (sample, table) pairs hit them, best first, up to max_active; then
    uniform random neurons up to min_active, and at least min_negatives
    beyond the labels.
    """
    cdef LayerC* layer = &net.layers[net.n_layers - 1]
    shared_add_labels(layer, sh, y_indptr, y_indices, rows)
    if layer.all_active:
        shared_add_all(layer, sh)
        return
    if layer.family != NULL and sh.n_shared < layer.max_active:
        shared_collect(layer, sh, <int32_t>rows.shape[0])
        shared_take(sh, layer.max_active)
    shared_top_up(layer, sh, max(layer.min_active, sh.n_shared_labels + sh.min_negatives),
                  net.seed, step)


cdef void forward_hidden_rows(NetC* net, const int64_t[::1] x_indptr,
                              const int32_t[::1] x_indices, const float[::1] x_data,
                              const int64_t[::1] rows, int32_t step, int32_t mark_base,
                              int32_t n_hidden, float* hidden, int32_t d,
                              LayerC* hash_layer) noexcept nogil:
    """The batch through layers [0, n_hidden), one sample per thread; the last
    one's outputs go densely into ``hidden`` (batch, d), and, when
    ``hash_layer`` has a family, are hashed into its bucket ids."""
    cdef LayerC* last = &net.layers[n_hidden - 1]
    cdef int32_t b, tid, x_n, n_in, t
    cdef int64_t r
    cdef const int32_t* x_ids
    cdef const float* x_vals
    cdef const int32_t* in_ids
    cdef const float* in_vals
    cdef float* h
    cdef double t0
    for b in prange(<int32_t>rows.shape[0], num_threads=net.n_threads, schedule="dynamic"):
        tid = threadid()
        r = rows[b]
        x_ids = &x_indices[0] + x_indptr[r]
        x_vals = &x_data[0] + x_indptr[r]
        x_n = <int32_t>(x_indptr[r + 1] - x_indptr[r])
        forward_sample(net, b, tid, x_ids, x_vals, x_n, NULL, 0, n_hidden, step,
                       mark_base + b + 1)
        t0 = now()
        # assigned here so that prange makes them thread-private (it
        # cannot see the writes layer_output makes through pointers)
        in_ids = NULL
        in_vals = NULL
        n_in = 0
        layer_output(last, b, &in_ids, &in_vals, &n_in)
        h = hidden + <int64_t>b * d
        if in_ids == NULL:
            memcpy(h, in_vals, d * sizeof(float))
        else:
            memset(h, 0, d * sizeof(float))
            for t in range(n_in):
                h[in_ids[t]] = in_vals[t]
        if hash_layer != NULL and hash_layer.family != NULL:
            hash_dense_row(hash_layer.family, h,
                           hash_layer.bucket_ids + <int64_t>b * hash_layer.n_tables)
        net.thread_time[tid * TIME_STRIDE + T_HASH] += now() - t0


cdef void backward_hidden_rows(NetC* net, const int64_t[::1] x_indptr,
                               const int32_t[::1] x_indices, const float[::1] x_data,
                               const int64_t[::1] rows, int32_t step, int32_t n_hidden,
                               const float* d_hidden, int32_t d) noexcept nogil:
    """Back-propagate ``d_hidden`` (batch, d), the gradient of the loss with
    respect to the last hidden layer's outputs, down through layers
    [0, n_hidden): gradients into the layers' buffers (HogWild), the first
    layer's deltas kept for its fused update."""
    cdef LayerC* last = &net.layers[n_hidden - 1]
    cdef int32_t b, tid, x_n, n_in, t
    cdef int64_t r
    cdef const int32_t* x_ids
    cdef const float* x_vals
    cdef const int32_t* in_ids
    cdef const float* in_vals
    cdef const float* dh
    cdef float* last_delta
    cdef double t0
    for b in prange(<int32_t>rows.shape[0], num_threads=net.n_threads, schedule="dynamic"):
        tid = threadid()
        t0 = now()
        r = rows[b]
        dh = d_hidden + <int64_t>b * d
        last_delta = last.deltas + <int64_t>b * last.width
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
        backward_sample(net, b, n_hidden - 1, x_ids, x_vals, x_n, step)
        net.thread_time[tid * TIME_STRIDE + T_BACKWARD] += now() - t0


cdef void train_shared(NetC* net, SharedC* sh, const int64_t[::1] x_indptr,
                       const int32_t[::1] x_indices, const float[::1] x_data,
                       const int64_t[::1] y_indptr, const int32_t[::1] y_indices,
                       const int64_t[::1] rows, int32_t step, float[::1] losses,
                       int32_t mark_base, double log_decay_read) noexcept:
    """The batch-shared step: hidden layers per sample, one active output
    set for the batch, its logits and gradients as matrix products (each
    thread multiplies its own block: BLAS runs single-threaded), then the
    hidden layers' backward per sample. ``log_decay_read``: the weight-decay
    sum the shared rows catch up to before they are read."""
    cdef int32_t n_batch = rows.shape[0]
    cdef LayerC* out_layer = &net.layers[net.n_layers - 1]
    cdef int32_t d = out_layer.in_dim
    cdef int32_t b, n_labels, t, j, n_shared
    cdef int64_t r, k
    cdef const int32_t* labels
    cdef float* h
    cdef int32_t* label_pos
    cdef double t0
    cdef float scale = 1.0 / n_batch
    cdef float one = 1.0, zero = 0.0
    cdef float q_uniform = 0
    cdef int32_t n_blocks, block, c, s0, s1
    with nogil:
        # forward through the hidden layers; hidden vectors into `hidden`
        forward_hidden_rows(net, x_indptr, x_indices, x_data, rows, step, mark_base,
                            net.n_layers - 1, sh.hidden, d, out_layer)

        t0 = now()
        select_shared(net, sh, y_indptr, y_indices, rows, step)
        n_shared = sh.n_shared
        sh.t_hash += now() - t0

        # BLAS runs single-threaded while fit runs (OpenBLAS threads that
        # spin after a call steal the cores from the OpenMP threads of
        # the next region), so each thread multiplies its own block of
        # shared rows: gather the rows, then logits[:, block] =
        # hidden @ w_shared[block]^T
        t0 = now()
        if net.correction:
            # uniform draws avoid the ids already in the set
            q_uniform = (n_shared - sh.n_shared_det) / <float>max(
                1, out_layer.units - sh.n_shared_det)
        n_blocks = net.n_threads
        block = (n_shared + n_blocks - 1) // n_blocks
        for c in prange(n_blocks, num_threads=net.n_threads, schedule="static"):
            s0 = c * block
            s1 = min(n_shared, s0 + block)
            if s1 <= s0:
                continue
            for j in range(s0, s1):
                if out_layer.decay_mark != NULL:
                    catch_up_row(out_layer.W, out_layer.decay_mark, sh.shared_ids[j], d,
                                 log_decay_read)
                if j + PREFETCH_AHEAD < s1:
                    pyslide_prefetch(out_layer.W + <int64_t>sh.shared_ids[j + PREFETCH_AHEAD] * d,
                                     d * sizeof(float), 0)
                memcpy(sh.w_shared + <int64_t>j * d,
                       out_layer.W + <int64_t>sh.shared_ids[j] * d, d * sizeof(float))
                sh.b_shared[j] = out_layer.b[sh.shared_ids[j]]
                if not net.correction:
                    continue
                # LSH candidates are chosen, not drawn: they stand for
                # themselves and take no correction
                if sh.n_shared_labels <= j < sh.n_shared_det:
                    sh.corr_shared[j] = 0
                else:
                    sh.corr_shared[j] = inclusion_log_correction(
                        net.label_log1m[sh.shared_ids[j]], n_batch - 1, q_uniform,
                        net.q_floor)
            gemm_rm(False, True, n_batch, s1 - s0, d, one, sh.hidden, d,
                    sh.w_shared + <int64_t>s0 * d, d, zero, sh.logits + s0, n_shared)
        sh.t_shared_forward += now() - t0

        t0 = now()
        for b in prange(n_batch, num_threads=net.n_threads, schedule="static"):
            r = rows[b]
            labels = &y_indices[0] + y_indptr[r]
            n_labels = <int32_t>(y_indptr[r + 1] - y_indptr[r])
            label_pos = net.label_pos + <int64_t>b * net.max_labels
            k = 0
            for t in range(n_labels):
                j = sh.shared_pos[labels[t]]
                if j >= 0:
                    label_pos[k] = j
                    k = k + 1
            h = sh.logits + <int64_t>b * n_shared
            if net.correction:
                for j in range(n_shared):
                    h[j] = h[j] + sh.b_shared[j] + sh.corr_shared[j]
                # a sample's own labels are in the set for sure
                for t in range(<int32_t>k):
                    h[label_pos[t]] = h[label_pos[t]] - sh.corr_shared[label_pos[t]]
            else:
                for j in range(n_shared):
                    h[j] = h[j] + sh.b_shared[j]
            # loss_and_delta works in place: delta overwrites the logits
            losses[b] = loss_and_delta(h, h, n_shared, label_pos, <int32_t>k,
                                       net.loss_kind, scale)
        shared_products_backward(sh, n_batch, n_shared, d, sh.d_hidden, net.n_threads)
        sh.t_shared_backward += now() - t0

        backward_hidden_rows(net, x_indptr, x_indices, x_data, rows, step, net.n_layers - 1,
                             sh.d_hidden, d)


cdef void shared_products_backward(SharedC* sh, int32_t n_batch, int32_t n_shared, int32_t d,
                                   float* d_hidden, int32_t n_threads) noexcept nogil:
    """From the deltas in ``sh.logits`` (batch, n_shared): the compact weight
    gradient ``grad_shared = delta^T @ hidden``, the bias gradient, and
    ``d_hidden = delta @ w_shared``. Each thread takes one block of shared
    rows and one block of batch rows: no two write the same memory."""
    cdef int32_t c, b, s0, s1, b0, b1
    cdef int32_t block = (n_shared + n_threads - 1) // n_threads
    cdef int32_t batch_block = (n_batch + n_threads - 1) // n_threads
    cdef float one = 1.0, zero = 0.0
    for c in prange(n_threads, num_threads=n_threads, schedule="static"):
        s0 = c * block
        s1 = min(n_shared, s0 + block)
        if s1 > s0:
            gemm_rm(True, False, s1 - s0, d, n_batch, one, sh.logits + s0, n_shared,
                    sh.hidden, d, zero, sh.grad_shared + <int64_t>s0 * d, d)
            memset(sh.gb_shared + s0, 0, (s1 - s0) * sizeof(float))
            for b in range(n_batch):
                axpy(sh.gb_shared + s0, sh.logits + <int64_t>b * n_shared + s0,
                     1.0, s1 - s0)
        b0 = c * batch_block
        b1 = min(n_batch, b0 + batch_block)
        if b1 > b0 and n_shared > 0:
            gemm_rm(False, False, b1 - b0, d, n_shared, one,
                    sh.logits + <int64_t>b0 * n_shared, n_shared, sh.w_shared, d,
                    zero, d_hidden + <int64_t>b0 * d, d)
