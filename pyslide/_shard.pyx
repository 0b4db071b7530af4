"""One label shard's part of a training step (selection, logits, softmax parts, deltas, gradients, row updates); a kernel module (imports no Python module of ours)."""
# A label shard (pyslide.distributed) holds a contiguous range of the output
# layer's rows. The driver sends the batch's last hidden vectors; the shard
# selects its active rows with the batch-shared selection of _shared.pyx,
# computes their logits as matrix products, and for the softmax reports each
# sample's max and sum of exponentials so that the driver can form the
# log-partition over every shard. Given it, the shard forms its deltas,
# its compact weight gradient and its part of the gradient with respect to
# the hidden vectors, and updates its rows with _optim's kernels. The
# arithmetic is train_shared's, split where the partition sum crosses
# shards: with one shard and every row active it is the same computation.

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memset, memcpy
from libc.math cimport expf
from libc.stdlib cimport free, calloc

from pyslide._hash cimport hash_dense_row
from pyslide._layer cimport LayerC, NetC, gemm_rm, fill_layer, float_data, int_data
from pyslide._loss cimport (LOSS_SOFTMAX, LOSS_BCE, exp_shifted, inclusion_log_correction,
                             loss_and_delta, sum_of)
from pyslide._optim cimport (OptimC, OPT_SGD, OPT_ADAM, fill_optimizer, catch_up_row,
                             update_shared_rows, decay_unshared_rows, coast_all_rows)
from pyslide._shared cimport (SharedC, alloc_shared, set_correction, clear_shared,
                              shared_add_labels, shared_add_all,
                              shared_collect, shared_take, shared_top_up,
                              shared_products_backward)

import numpy as np
cimport numpy as cnp

cnp.import_array()


cdef inline void partition_parts(float* z, int32_t n, float* zmax,
                                 float* sumexp) noexcept nogil:
    """A sample's max logit and sum of exp(z - max) over this shard's set
    (loss_and_delta's first half, with its exp and its summation order); z
    becomes exp(z - max) in place, so the deltas need no second pass of
    exponentials."""
    cdef int32_t t
    cdef float m
    if n == 0:
        zmax[0] = -1e30
        sumexp[0] = 0
        return
    m = z[0]
    for t in range(1, n):
        if z[t] > m:
            m = z[t]
    exp_shifted(z, n, m)
    zmax[0] = m
    sumexp[0] = sum_of(z, n)


cdef inline void softmax_deltas(float* e, int32_t n, float denom, const int32_t* label_pos,
                                int32_t n_local, int32_t n_labels, float scale) noexcept nogil:
    """In place, d loss / d z * scale of the softmax over every shard
    (loss_and_delta's second half) from ``e`` = exp(z - this shard's max):
    ``denom`` is the partition sum over every shard in units of exp(that
    max); a sample's ``n_labels`` labels (``n_local`` of them here) share
    the target mass."""
    cdef int32_t t
    cdef float inv_labels, factor
    if n_labels == 0:
        memset(e, 0, n * sizeof(float))
        return
    factor = scale / denom
    for t in range(n):
        e[t] = e[t] * factor
    inv_labels = 1.0 / n_labels
    for t in range(n_local):
        e[label_pos[t]] -= inv_labels * scale


cdef class ShardEngine:
    """Scratch and descriptors of one label shard: its rows as a one-layer
    table (``LayerC``), the batch-shared selection state (``SharedC``) and
    the batch's hidden vectors, labels and per-sample partition parts.

    Built around the shard's NumPy arrays (weights, moments), which it
    keeps alive. Calls come in order per step: ``begin``, ``forward``,
    ``backward`` (then ``update``, or ``discard``).
    """
    cdef NetC net
    cdef SharedC shared
    cdef int32_t batch_size
    cdef int32_t n_batch
    cdef int32_t step
    cdef int32_t* label_count      # (batch,) labels of the sample on this shard
    cdef float* row_max            # (batch,) this shard's max logit per sample
    cdef OptimC opt                # the optimizer, set once per fit (_optim.pxd)
    cdef bint has_optimizer
    cdef object keepalive
    cdef object labels             # the batch's local labels (indptr, indices)

    def __cinit__(self):
        memset(&self.net, 0, sizeof(NetC))
        memset(&self.shared, 0, sizeof(SharedC))

    def __dealloc__(self):
        if self.net.layers != NULL:
            free(self.net.layers)

    def __init__(self, dict spec, int batch_size, int n_threads, int loss, int max_labels,
                 uint64_t seed, label_log1m=None, float q_floor=1e-12):
        """spec: the shard's rows as one sampled layer, as ``_layer.fill_layer``
        reads it (``state.LayerState.engine_spec``, every value given; units
        are the shard's rows, ``all_active``, ``max_active``, ``min_active``
        and ``negatives`` the whole output layer's: bounds for the scratch
        sizes). ``label_log1m`` (one per row) turns on the sampling correction."""
        cdef LayerC* layer
        if loss != LOSS_SOFTMAX and loss != LOSS_BCE:
            raise ValueError(f"pyslide internal error: unknown loss code {loss}")
        self.keepalive = []
        self.batch_size = batch_size
        self.net.n_layers = 1
        self.net.n_threads = n_threads
        self.net.loss_kind = loss
        self.net.max_labels = max(1, max_labels)
        self.net.seed = seed
        self.net.layers = <LayerC*>calloc(1, sizeof(LayerC))
        if self.net.layers == NULL:
            raise MemoryError("pyslide: cannot allocate the shard's layer table")
        layer = &self.net.layers[0]
        fill_layer(layer, spec, batch_size, self.keepalive)
        if not layer.sampled or spec["W"].shape[0] != layer.units:
            raise ValueError("pyslide internal error: a shard is a sampled layer of its W's rows")
        alloc_shared(&self.shared, layer, batch_size, max_labels, spec["negatives"],
                     self.keepalive)
        self.net.label_pos = self._iptr(np.zeros(batch_size * self.net.max_labels, np.int32))
        self.label_count = self._iptr(np.zeros(batch_size, np.int32))
        self.row_max = self._ptr(np.zeros(batch_size, np.float32))
        set_correction(&self.net, &self.shared, layer, label_log1m, q_floor, self.keepalive)

    cdef float* _ptr(self, object arr) except NULL:
        return float_data(arr, self.keepalive)

    cdef int32_t* _iptr(self, object arr) except NULL:
        return int_data(arr, self.keepalive)

    @property
    def n_shared(self):
        return self.shared.n_shared

    def shared_ids(self):
        """The current set's row ids (local to the shard; a copy)."""
        return np.array(<int32_t[:max(1, self.shared.n_shared)]>self.shared.shared_ids,
                        copy=True)[:self.shared.n_shared]

    def begin(self, const float[:, ::1] hidden, const int64_t[::1] y_indptr,
              const int32_t[::1] y_indices, int32_t step):
        """Start a step: keep the batch's hidden vectors, put the batch's
        labels held here (row ids local to the shard, CSR over the batch)
        first in the set, and, for a sampled output with tables, hash the
        hidden vectors and collect the candidates of the hit buckets.

        Returns ``(n_labels, n_candidates)``: distinct labels in the set and
        candidates waiting for ``forward`` to take some of them.
        """
        cdef LayerC* layer = &self.net.layers[0]
        cdef SharedC* sh = &self.shared
        cdef int32_t n_batch = hidden.shape[0], d = layer.in_dim, b
        cdef const float* h
        if n_batch > self.batch_size or hidden.shape[1] != d or y_indptr.shape[0] != n_batch + 1:
            raise ValueError("pyslide internal error: a batch the shard was not sized for")
        # a step cut short (an error, Ctrl-C) may have left a set or counts
        self.discard()
        self.n_batch = n_batch
        self.step = step
        self.labels = (y_indptr, y_indices)
        rows = np.arange(n_batch, dtype=np.int64)
        cdef const int64_t[::1] batch_rows = rows
        with nogil:
            memcpy(sh.hidden, &hidden[0, 0], <int64_t>n_batch * d * sizeof(float))
            shared_add_labels(layer, sh, y_indptr, y_indices, batch_rows)
            if layer.all_active:
                shared_add_all(layer, sh)
            elif layer.family != NULL:
                for b in prange(n_batch, num_threads=self.net.n_threads, schedule="static"):
                    h = sh.hidden + <int64_t>b * d
                    hash_dense_row(layer.family, h, layer.bucket_ids + <int64_t>b * layer.n_tables)
                shared_collect(layer, sh, n_batch)
        return sh.n_shared_labels, sh.n_cand

    def forward(self, int32_t max_active, int32_t min_active, double log_decay_read=0):
        """Take candidates until the set holds ``max_active`` rows, top it up
        uniformly to ``min_active``, gather the rows and compute the logits
        (bias and sampling correction included).

        Returns, per sample, softmax: ``(max, sum of exp(z - max), sum of
        the label logits)`` over this shard's set (float32 arrays; the
        logits are kept as exp(z - max) for ``backward``); BCE: None
        (``backward`` needs nothing from the other shards).
        """
        cdef LayerC* layer = &self.net.layers[0]
        cdef SharedC* sh = &self.shared
        cdef int32_t n_batch = self.n_batch, d = layer.in_dim
        cdef int32_t n_shared, n_blocks, block, c, s0, s1, j, b, t, k
        cdef float one = 1, zero = 0, q_uniform = 0
        cdef float* z
        cdef int32_t* label_pos
        cdef const int64_t[::1] y_indptr = self.labels[0]
        cdef const int32_t[::1] y_indices = self.labels[1]
        cdef int64_t e
        if not layer.all_active:
            if layer.family != NULL:
                shared_take(sh, max(max_active, sh.n_shared))
            shared_top_up(layer, sh, min(min_active, layer.units), self.net.seed, self.step)
        n_shared = sh.n_shared
        zmax_arr = np.zeros(n_batch, np.float32)
        sum_arr = np.zeros(n_batch, np.float32)
        label_arr = np.zeros(n_batch, np.float32)
        cdef float[::1] zmax = zmax_arr, sumexp = sum_arr, label_sum = label_arr
        with nogil:
            if self.net.correction:
                # uniform draws avoid the ids already in the set
                q_uniform = (n_shared - sh.n_shared_det) / <float>max(
                    1, layer.units - sh.n_shared_det)
            n_blocks = self.net.n_threads
            block = (n_shared + n_blocks - 1) // n_blocks
            # each thread gathers and multiplies its own block of rows (BLAS
            # runs single-threaded in a shard, as in a single-node fit)
            for c in prange(n_blocks, num_threads=self.net.n_threads, schedule="static"):
                s0 = c * block
                s1 = min(n_shared, s0 + block)
                if s1 <= s0:
                    continue
                for j in range(s0, s1):
                    if layer.decay_mark != NULL:
                        catch_up_row(layer.W, layer.decay_mark, sh.shared_ids[j], d,
                                     log_decay_read)
                    memcpy(sh.w_shared + <int64_t>j * d,
                           layer.W + <int64_t>sh.shared_ids[j] * d, d * sizeof(float))
                    sh.b_shared[j] = layer.b[sh.shared_ids[j]]
                    if not self.net.correction:
                        continue
                    # LSH candidates are chosen, not drawn: no correction
                    if sh.n_shared_labels <= j < sh.n_shared_det:
                        sh.corr_shared[j] = 0
                    else:
                        sh.corr_shared[j] = inclusion_log_correction(
                            self.net.label_log1m[sh.shared_ids[j]], n_batch - 1, q_uniform,
                            self.net.q_floor)
                gemm_rm(False, True, n_batch, s1 - s0, d, one, sh.hidden, d,
                        sh.w_shared + <int64_t>s0 * d, d, zero, sh.logits + s0, n_shared)
            for b in prange(n_batch, num_threads=self.net.n_threads, schedule="static"):
                label_pos = self.net.label_pos + <int64_t>b * self.net.max_labels
                k = 0
                for e in range(y_indptr[b], y_indptr[b + 1]):
                    j = sh.shared_pos[y_indices[e]]
                    if j >= 0:
                        label_pos[k] = j
                        k = k + 1
                self.label_count[b] = k
                z = sh.logits + <int64_t>b * n_shared
                if self.net.correction:
                    for j in range(n_shared):
                        z[j] = z[j] + sh.b_shared[j] + sh.corr_shared[j]
                    # a sample's own labels are in the set for sure
                    for t in range(k):
                        z[label_pos[t]] = z[label_pos[t]] - sh.corr_shared[label_pos[t]]
                else:
                    for j in range(n_shared):
                        z[j] = z[j] + sh.b_shared[j]
                if self.net.loss_kind == LOSS_SOFTMAX:
                    label_sum[b] = 0
                    for t in range(k):
                        label_sum[b] += z[label_pos[t]]
                    partition_parts(z, n_shared, &zmax[b], &sumexp[b])
                    self.row_max[b] = zmax[b]
        if self.net.loss_kind == LOSS_SOFTMAX:
            return zmax_arr, sum_arr, label_arr
        return None

    def backward(self, log_z_max=None, log_z_sum=None, n_labels=None):
        """Deltas of this shard's set, its compact gradient, and its part of
        the gradient with respect to the hidden vectors.

        Softmax: ``log_z_max`` and ``log_z_sum`` (float32 per sample) are the
        max logit and the sum of exp(z - max) over every shard, ``n_labels``
        (int32 per sample) the sample's labels over every shard. BCE: no
        arguments.

        Returns ``(d_hidden, losses)``: (batch, d) float32 and, for BCE,
        this shard's part of each sample's loss (None for softmax, whose
        loss the driver has from the partition parts).
        """
        cdef LayerC* layer = &self.net.layers[0]
        cdef SharedC* sh = &self.shared
        cdef int32_t n_batch = self.n_batch, d = layer.in_dim, n_shared = sh.n_shared
        cdef int32_t b
        cdef float scale = 1.0 / n_batch, denom
        cdef float* z
        cdef bint softmax = self.net.loss_kind == LOSS_SOFTMAX
        cdef const float[::1] m_all
        cdef const float[::1] s_all
        cdef const int32_t[::1] labels_all
        cdef float[::1] losses
        d_hidden = np.zeros((n_batch, d), np.float32)
        cdef float[:, ::1] dh = d_hidden
        losses_arr = None
        if softmax:
            m_all = log_z_max
            s_all = log_z_sum
            labels_all = n_labels
            if m_all.shape[0] != n_batch or s_all.shape[0] != n_batch \
                    or labels_all.shape[0] != n_batch:
                raise ValueError("pyslide internal error: one partition per sample")
        else:
            losses_arr = np.zeros(n_batch, np.float32)
            losses = losses_arr
        with nogil:
            for b in prange(n_batch, num_threads=self.net.n_threads, schedule="static"):
                z = sh.logits + <int64_t>b * n_shared
                if softmax:
                    # the partition sum over every shard, in units of exp(this
                    # shard's max): one shard gives loss_and_delta's numbers
                    denom = s_all[b] * expf(m_all[b] - self.row_max[b])
                    softmax_deltas(z, n_shared, denom,
                                   self.net.label_pos + <int64_t>b * self.net.max_labels,
                                   self.label_count[b], labels_all[b], scale)
                else:
                    losses[b] = loss_and_delta(
                        z, z, n_shared, self.net.label_pos + <int64_t>b * self.net.max_labels,
                        self.label_count[b], LOSS_BCE, scale)
            shared_products_backward(sh, n_batch, n_shared, d, &dh[0, 0], self.net.n_threads)
        return d_hidden, losses_arr

    def set_optimizer(self, int kind, float beta1, float beta2, float eps, bint lazy):
        """The optimizer's settings, once per fit (``Engine.set_optimizer``)."""
        if kind == OPT_ADAM and self.net.layers[0].mW == NULL:
            raise ValueError("pyslide internal error: Adam needs moment arrays")
        fill_optimizer(&self.opt, kind, beta1, beta2, eps, lazy)
        self.has_optimizer = True

    def update(self, float step_size, double log_decay=0, float lr=0, int32_t step=0):
        """Apply the compact gradient of ``backward`` to the set's rows (the
        optimizer of ``set_optimizer``, as ``Engine.optimizer_step`` does for
        a batch-shared output, at ``step``; ``step_size`` and ``lr`` already
        times the layer's lr_scale) and empty the set. Returns the updated
        row ids (local)."""
        cdef LayerC* layer = &self.net.layers[0]
        cdef SharedC* sh = &self.shared
        cdef OptimC opt = self.opt
        if not self.has_optimizer:
            raise ValueError("pyslide internal error: set_optimizer before update")
        opt.step_size = step_size
        opt.lr = lr
        opt.log_decay = log_decay
        opt.step = step
        ids = self.shared_ids()
        with nogil:
            update_shared_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb, layer.vb,
                               sh.grad_shared, sh.gb_shared, sh.shared_ids, sh.n_shared,
                               layer.in_dim, &opt, layer.decay_mark, layer.coast_mark,
                               layer.row_updates, self.net.n_threads)
            if opt.kind == OPT_ADAM and not opt.lazy:
                decay_unshared_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb, layer.vb,
                                    sh.shared_pos, layer.units, layer.in_dim, &opt,
                                    layer.decay_mark, layer.row_updates, self.net.n_threads)
            clear_shared(sh.shared_pos, sh.shared_ids, sh.n_shared)
            sh.n_shared = 0
        return ids

    def discard(self):
        """Drop the step's set and gradient without updating (an error elsewhere)."""
        cdef SharedC* sh = &self.shared
        cdef int32_t c
        for c in range(sh.n_cand):
            sh.cand_count[sh.cand_ids[c]] = 0
        sh.n_cand = 0
        clear_shared(sh.shared_pos, sh.shared_ids, sh.n_shared)
        sh.n_shared = 0

    def apply_pending(self, double log_decay, int32_t step=0, float step_size=0, float lr=0):
        """Bring every row up to date: the weight decay it owes and the Adam
        steps it missed (``Engine.apply_pending`` for the shard's rows;
        ``step_size`` and ``lr`` already times the layer's lr_scale)."""
        cdef LayerC* layer = &self.net.layers[0]
        cdef OptimC opt = self.opt
        cdef int64_t r
        opt.step = step
        opt.step_size = step_size
        opt.lr = lr
        with nogil:
            if layer.coast_mark != NULL and step > 0:
                coast_all_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb, layer.vb,
                               layer.units, layer.in_dim, &opt, layer.coast_mark,
                               layer.row_updates, self.net.n_threads)
            if layer.decay_mark != NULL:
                for r in prange(layer.units, num_threads=self.net.n_threads,
                                schedule="static"):
                    catch_up_row(layer.W, layer.decay_mark, r, layer.in_dim, log_decay)
