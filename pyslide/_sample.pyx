"""The per-sample (SLIDE) step: active sets, forward, loss and backward of one sample at a time; a kernel module (imports no Python module of ours)."""
# Memory layout (see docs/architecture.md):
#   Dense layer   W (in_dim, units)  a sparse input row is a sum of rows of W
#   Sampled layer W (units, in_dim)  an active neuron reads one row of W
# Gradients accumulate HogWild (no locks, no atomics) into buffers of W's
# shape; ``touched[row] == step`` marks the rows the batch wrote so the
# optimizer visits only those and zeroes them in the same pass.

from cython.parallel cimport prange, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.math cimport logf
from libc.string cimport memset, memcpy

from pyslide._common cimport splitmix64_next, mix_seed, rand_below
from pyslide._hash cimport hash_dense_row, hash_sparse_row
from pyslide._tables cimport query_union_row, query_threshold_row, query_sample_row
from pyslide._layer cimport (LayerC, NetC, QUERY_UNION, QUERY_SAMPLE, TIME_STRIDE, T_HASH,
                             T_FORWARD, T_BACKWARD, dropout_mask, dropout_stream, layer_output)
from pyslide._loss cimport loss_and_delta
from pyslide._vec cimport axpy, dot, sparse_dot, now, pyslide_prefetch, PREFETCH_AHEAD


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


# ---------------------------------------------------------------- one sample, one batch

cdef void forward_sample(NetC* net, int32_t b, int32_t tid, const int32_t* x_ids,
                         const float* x_vals, int32_t x_n, const int32_t* labels,
                         int32_t n_labels, int32_t n_forward, int32_t step,
                         int32_t mark) noexcept nogil:
    """One sample through layers [0, n_forward): the active sets, then the
    activations. Each sample is carried end to end by one thread."""
    cdef int32_t l, n_in = x_n
    cdef const int32_t* in_ids = x_ids
    cdef const float* in_vals = x_vals
    cdef LayerC* layer
    cdef uint64_t rng
    cdef double t0, t1
    cdef bint is_output
    for l in range(n_forward):
        layer = &net.layers[l]
        is_output = l == net.n_layers - 1 and not net.headless
        t0 = now()
        if layer.sampled:
            rng = mix_seed(net.seed + <uint64_t>(l + 1) * <uint64_t>0x9E3779B97F4A7C15,
                           <uint64_t>step, <uint64_t>b)
            if is_output:
                layer.n_act[b] = choose_active(layer, tid, b, in_ids, in_vals, n_in,
                                               labels, n_labels, mark, &rng)
            else:
                layer.n_act[b] = choose_active(layer, tid, b, in_ids, in_vals, n_in,
                                               NULL, 0, mark, &rng)
        t1 = now()
        forward_layer(layer, b, in_ids, in_vals, n_in, is_output, step)
        net.thread_time[tid * TIME_STRIDE + T_HASH] += t1 - t0
        net.thread_time[tid * TIME_STRIDE + T_FORWARD] += now() - t1
        layer_output(layer, b, &in_ids, &in_vals, &n_in)


cdef void backward_sample(NetC* net, int32_t b, int32_t top, const int32_t* x_ids,
                          const float* x_vals, int32_t x_n, int32_t step) noexcept nogil:
    """Backward of one sample from layer ``top`` (its deltas already set)
    down to the first layer."""
    cdef int32_t l, n_in
    cdef const int32_t* in_ids
    cdef const float* in_vals
    for l in range(top, -1, -1):
        if l > 0:
            layer_output(&net.layers[l - 1], b, &in_ids, &in_vals, &n_in)
            backward_layer(&net.layers[l], &net.layers[l - 1], b, in_ids, in_vals, n_in, step)
        elif not net.layers[0].fused_grad:
            backward_layer(&net.layers[0], NULL, b, x_ids, x_vals, x_n, step)


cdef void train_per_sample(NetC* net, const int64_t[::1] x_indptr,
                           const int32_t[::1] x_indices, const float[::1] x_data,
                           const int64_t[::1] y_indptr, const int32_t[::1] y_indices,
                           const int64_t[::1] rows, int32_t step, float[::1] losses,
                           int32_t mark_base) noexcept:
    """SLIDE's step: every sample its own active sets, carried end to end
    (forward, loss, backward) by one thread; gradients HogWild into the
    layers' buffers."""
    cdef int32_t n_batch = rows.shape[0]
    cdef int32_t b, tid, x_n, n_labels, t, n_out
    cdef int64_t r
    cdef const int32_t* x_ids
    cdef const float* x_vals
    cdef const int32_t* labels
    cdef LayerC* out_layer = &net.layers[net.n_layers - 1]
    cdef double t0
    cdef float scale = 1.0 / n_batch
    cdef int32_t* label_pos
    with nogil:
        for b in prange(n_batch, num_threads=net.n_threads, schedule="dynamic"):
            tid = threadid()
            r = rows[b]
            labels = &y_indices[0] + y_indptr[r]
            n_labels = <int32_t>(y_indptr[r + 1] - y_indptr[r])
            x_ids = &x_indices[0] + x_indptr[r]
            x_vals = &x_data[0] + x_indptr[r]
            x_n = <int32_t>(x_indptr[r + 1] - x_indptr[r])
            forward_sample(net, b, tid, x_ids, x_vals, x_n, labels, n_labels,
                                 net.n_layers, step, mark_base + b + 1)
            t0 = now()
            # labels sit at positions 0..n_labels-1 of a sampled output
            # (choose_active put them first) and at their ids in a Dense one
            label_pos = net.label_pos + <int64_t>b * net.max_labels
            for t in range(n_labels):
                label_pos[t] = t if out_layer.sampled else labels[t]
            n_out = out_layer.n_act[b] if out_layer.sampled else out_layer.units
            if net.correction:
                correct_uniform_draws(out_layer, b, n_out, net.q_floor)
            losses[b] = loss_and_delta(out_layer.act_vals + <int64_t>b * out_layer.width,
                                       out_layer.deltas + <int64_t>b * out_layer.width,
                                       n_out, label_pos, n_labels, net.loss_kind, scale)
            backward_sample(net, b, net.n_layers - 1, x_ids, x_vals, x_n, step)
            net.thread_time[tid * TIME_STRIDE + T_BACKWARD] += now() - t0
