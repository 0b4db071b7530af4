"""The training engine: the layer table, its allocation, and dispatch to the kernel modules; a kernel module (imports no Python module of ours)."""
# One step of a batch goes to one of two kernels: _sample.train_per_sample
# (SLIDE: every sample its own active sets) or _shared.train_shared (a
# batch-shared output layer); the first Dense layer's gradient is fused
# into the optimizer (_fused), other layers update through _optim.
# _LayerTable holds the C descriptors of the layers (_layer.pxd), sized once
# per fit around the network's NumPy arrays, and the views tests read;
# Engine, built on it, the Python-facing entry points of a step.

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint64_t
from libc.string cimport memset
from libc.stdlib cimport free, calloc

from pyslide._common cimport mix_seed
from pyslide._fused cimport FusedC, forget_batch, transpose_batch, update_fused_input
from pyslide._layer cimport (LayerC, NetC, QUERY_UNION, QUERY_THRESHOLD, QUERY_SAMPLE,
                             TIME_STRIDE, T_HASH, T_FORWARD, T_BACKWARD, layer_shape,
                             fill_layer)
from pyslide._loss cimport LOSS_SOFTMAX, LOSS_BCE
from pyslide._optim cimport (OptimC, OPT_SGD, OPT_ADAM, fill_optimizer, catch_up_row, catch_up_rows,
                             update_rows, update_shared_rows, decay_unshared_rows,
                             coast_all_rows)
from pyslide._sample cimport train_per_sample
from pyslide._shared cimport (SharedC, alloc_shared, set_correction, clear_shared,
                              train_shared, forward_hidden_rows, backward_hidden_rows)
from pyslide._vec cimport axpy

import numpy as np
cimport numpy as cnp

cnp.import_array()

# the codes Python resolves a Sampled layer's ``query`` to
QUERIES = {"union": QUERY_UNION, "threshold": QUERY_THRESHOLD, "sample": QUERY_SAMPLE}


cdef class _LayerTable:
    """Per-fit state: layer descriptors, scratch and timing counters, and the
    views of the last step that tests and diagnostics read. ``Engine`` adds
    the step and the optimizer; this half only allocates and shows.

    Built around the network's own NumPy arrays (weights, moments, gradient
    buffers), which it keeps alive.
    """
    cdef NetC net                 # layers, threads, loss, seed, timers (_layer.pxd)
    cdef SharedC shared           # batch-shared output state (_shared.pxd)
    cdef FusedC fused             # the first Dense layer's fused gradient (_fused.pxd)
    cdef int32_t batch_size
    cdef int32_t shared_output
    cdef int32_t _last_batch
    cdef double log_decay_read    # weight-decay sum through the step before this one
    cdef int32_t mark_base
    cdef object keepalive

    def __cinit__(self):
        memset(&self.net, 0, sizeof(NetC))
        memset(&self.shared, 0, sizeof(SharedC))
        memset(&self.fused, 0, sizeof(FusedC))

    def __dealloc__(self):
        if self.net.layers != NULL:
            free(self.net.layers)
        if self.net.thread_time != NULL:
            free(self.net.thread_time)

    def __init__(self, list layer_specs, int batch_size, int n_threads, int loss,
                 int max_labels, uint64_t seed, bint shared_output, int64_t max_row_nnz=0,
                 label_log1m=None, float q_floor=1e-12, bint headless=False):
        """layer_specs: one dict per layer, as ``_layer.fill_layer`` reads it
        (``state.LayerState.engine_spec``: every array and setting given).

        ``label_log1m`` (float32, one per output neuron: log(1 - training
        frequency)) turns on the sampling correction of a sampled output.
        ``headless``: the layers are a trunk whose last layer is hidden (ReLU
        and dropout apply to it); the output layer lives elsewhere (label
        shards, ``pyslide.distributed``), and the step goes through
        ``forward_hidden`` / ``backward_hidden`` instead of ``train_step``.
        """
        cdef int32_t l
        cdef LayerC* layer
        self.net.n_layers = len(layer_specs)
        self.batch_size = batch_size
        self.net.n_threads = n_threads
        if loss != LOSS_SOFTMAX and loss != LOSS_BCE:
            raise ValueError(f"pyslide internal error: unknown loss code {loss} "
                             f"(resolve names with _loss.LOSSES)")
        self.net.loss_kind = loss
        if headless and shared_output:
            raise ValueError("pyslide internal error: a headless trunk has no output layer")
        self.net.headless = headless
        self.shared_output = shared_output
        self.net.max_labels = max(1, max_labels)
        self.net.seed = seed
        self.mark_base = 0
        self.keepalive = []
        self.net.layers = <LayerC*>calloc(self.net.n_layers, sizeof(LayerC))
        self.net.thread_time = <double*>calloc(n_threads * TIME_STRIDE, sizeof(double))
        if self.net.layers == NULL or self.net.thread_time == NULL:
            raise MemoryError("pyslide: cannot allocate the engine's layer table")
        self.reset_timers()
        for l, spec in enumerate(layer_specs):
            layer = &self.net.layers[l]
            fill_layer(layer, spec, batch_size, self.keepalive)
            is_output = l == self.net.n_layers - 1
            if not layer.sampled:
                layer.width = layer.units
            elif is_output:
                layer.width = max(layer.max_active, layer.min_active) + max_labels
            else:
                layer.width = max(layer.max_active, layer.min_active)
            layer.fused_grad = l == 0 and not layer.sampled and layer.gW == NULL
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
            layer.dropout_seed = mix_seed(seed, <uint64_t>0xD50F, <uint64_t>l)
            if is_output and layer.sampled:
                layer.n_det = self._iptr(np.zeros(batch_size, np.int32))
            # the plain step until set_lr_scale (fit sets each Sampled
            # layer's factor before every update)
            layer.lr_scale = 1
        self.shared.max_shared = 0
        self.shared.n_shared = 0
        out = &self.net.layers[self.net.n_layers - 1]
        if shared_output:
            alloc_shared(&self.shared, out, batch_size, max_labels,
                         layer_specs[self.net.n_layers - 1]["negatives"], self.keepalive)
        self.net.label_pos = self._iptr(np.zeros(batch_size * self.net.max_labels, np.int32))
        set_correction(&self.net, &self.shared if shared_output else NULL, out, label_log1m,
                       q_floor, self.keepalive)
        self.fused.n_feats = 0
        self.fused.max_entries = 0
        if self.net.layers[0].fused_grad:
            self.fused.max_entries = max(1, <int64_t>batch_size * max_row_nnz)
            self.fused.row_slot = self._iptr(np.full(self.net.layers[0].in_dim, -1, np.int32))
            self.fused.feat_ids = self._iptr(np.zeros(self.fused.max_entries, np.int32))
            self.fused.entry_sample = self._iptr(np.zeros(self.fused.max_entries, np.int32))
            self.fused.entry_value = self._ptr(np.zeros(self.fused.max_entries, np.float32))
            starts = np.zeros(self.fused.max_entries + 1, np.int64)
            self.keepalive.append(starts)
            self.fused.feat_start = <int64_t*>cnp.PyArray_DATA(starts)
            self.fused.row_scratch = self._ptr(np.zeros(n_threads * self.net.layers[0].units,
                                                        np.float32))

    cdef float* _ptr(self, object arr) except NULL:
        cdef float[::1] view = arr.reshape(-1)
        if not arr.flags.c_contiguous or arr.dtype != np.float32:
            raise ValueError("pyslide internal error: engine arrays must be C-contiguous float32")
        self.keepalive.append(arr)
        if view.shape[0] == 0:
            return <float*>self.net.thread_time  # never dereferenced; a non-NULL placeholder
        return &view[0]

    cdef int32_t* _iptr(self, object arr) except NULL:
        cdef int32_t[::1] view = arr.reshape(-1)
        if not arr.flags.c_contiguous or arr.dtype != np.int32:
            raise ValueError("pyslide internal error: engine index arrays must be C-contiguous int32")
        self.keepalive.append(arr)
        return &view[0]

    def reset_timers(self):
        self.shared.t_hash = self.shared.t_shared_forward = self.shared.t_shared_backward = 0
        memset(self.net.thread_time, 0, self.net.n_threads * TIME_STRIDE * sizeof(double))

    def timings(self):
        """Seconds per phase since reset_timers (per-thread time / threads)."""
        cdef int32_t t
        cdef double s = 0, f = 0, bw = 0
        for t in range(self.net.n_threads):
            s += self.net.thread_time[t * TIME_STRIDE + T_HASH]
            f += self.net.thread_time[t * TIME_STRIDE + T_FORWARD]
            bw += self.net.thread_time[t * TIME_STRIDE + T_BACKWARD]
        n = float(self.net.n_threads)
        return {"hash": s / n + self.shared.t_hash, "forward": f / n + self.shared.t_shared_forward,
                "backward": bw / n + self.shared.t_shared_backward}

    def reset_stamps(self):
        """Clear de-duplication marks (needed before the int32 mark wraps)."""
        cdef int32_t l
        for l in range(self.net.n_layers):
            if self.net.layers[l].sampled:
                memset(self.net.layers[l].stamp, 0,
                       <int64_t>self.net.n_threads * self.net.layers[l].units * sizeof(int32_t))
        self.mark_base = 0

    @property
    def n_shared_active(self):
        return self.shared.n_shared

    def active_sets(self, int layer_index, int n_samples):
        """Copy of the last step's active ids per sample (tests, diagnostics)."""
        cdef LayerC* layer = &self.net.layers[layer_index]
        out = []
        if self.shared_output and layer_index == self.net.n_layers - 1:
            if self.shared.n_shared == 0:
                return [np.zeros(0, np.int32)]
            return [np.array(<int32_t[:self.shared.n_shared]>self.shared.shared_ids, copy=True)]
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
        cdef LayerC* out = &self.net.layers[self.net.n_layers - 1]
        if self.shared_output:
            return self.shared.n_shared_labels, self.shared.n_shared_det, self.shared.n_shared
        if out.n_det == NULL:
            raise ValueError("the output layer is not sampled")
        return np.array(<int32_t[:n_samples]>out.n_det, copy=True)

    def last_shared_ids(self):
        """The last step's shared active ids of the output layer (a view)."""
        if not self.shared_output or self.shared.n_shared == 0:
            return np.zeros(0, np.int32)
        return np.asarray(<int32_t[:self.shared.n_shared]>self.shared.shared_ids)

    def shared_gradient(self):
        """(ids, grad_W, grad_b) of the last batch-shared step (tests, diagnostics)."""
        cdef LayerC* out_layer = &self.net.layers[self.net.n_layers - 1]
        cdef int32_t n = self.shared.n_shared, d = out_layer.in_dim
        if not self.shared_output or n == 0:
            return (np.zeros(0, np.int32), np.zeros((0, d), np.float32), np.zeros(0, np.float32))
        ids = np.array(<int32_t[:n]>self.shared.shared_ids, copy=True)
        grad = np.array(<float[:n * d]>self.shared.grad_shared, copy=True).reshape(n, d)
        grad_b = np.array(<float[:n]>self.shared.gb_shared, copy=True)
        return ids, grad, grad_b

    def input_gradient(self):
        """(feature ids, gradient rows, bias gradient) of the first layer for
        the last batch, when that layer's gradient is fused (tests)."""
        cdef LayerC* layer = &self.net.layers[0]
        cdef int32_t s, units = layer.units
        cdef int64_t e
        if not layer.fused_grad:
            raise ValueError("the first layer's gradient is not fused")
        ids = np.array(<int32_t[:max(1, self.fused.n_feats)]>self.fused.feat_ids,
                       copy=True)[:self.fused.n_feats]
        grad = np.zeros((self.fused.n_feats, units), np.float32)
        cdef float[:, ::1] g = grad
        for s in range(self.fused.n_feats):
            for e in range(self.fused.feat_start[s], self.fused.feat_start[s + 1]):
                axpy(&g[s, 0], layer.deltas + <int64_t>self.fused.entry_sample[e] * layer.width,
                     self.fused.entry_value[e], units)
        grad_b = np.zeros(units, np.float32)
        cdef float[::1] gb = grad_b
        for s in range(self._last_batch):
            axpy(&gb[0], layer.deltas + <int64_t>s * layer.width, 1.0, units)
        return ids, grad, grad_b


cdef class Engine(_LayerTable):
    """A network's training step over its layer table: forward and backward
    of a batch (per sample, or with a batch-shared output), the headless
    trunk's two halves, and the optimizer over the rows a step touched.

    Built by ``Network`` at the start of ``fit`` (``_LayerTable.__init__``
    takes the layer specs) and given the optimizer once (``set_optimizer``).
    """
    cdef OptimC opt               # the optimizer, set once per fit (_optim.pxd)
    cdef bint has_optimizer

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
        cdef int32_t mark_base
        if self.net.headless:
            raise ValueError("pyslide internal error: a headless engine steps through "
                             "forward_hidden / backward_hidden")
        mark_base = self._begin_batch(x_indptr, x_indices, x_data, rows, losses.shape[0],
                                      log_decay)
        if self.shared_output:
            train_shared(&self.net, &self.shared, x_indptr, x_indices, x_data, y_indptr,
                         y_indices, rows, step, losses, mark_base, log_decay)
        else:
            train_per_sample(&self.net, x_indptr, x_indices, x_data, y_indptr, y_indices,
                             rows, step, losses, mark_base)


    cdef int32_t _begin_batch(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                              const float[::1] x_data, const int64_t[::1] rows,
                              int64_t room, double log_decay) except -1:
        """What every step does before its forward pass: check the batch fits
        the scratch, reserve its de-duplication marks, group the first
        layer's input by feature (fused gradient) and decay the rows it will
        read. Returns the batch's first mark."""
        cdef int32_t n_batch = rows.shape[0], b
        cdef int32_t mark_base
        cdef int64_t entries
        self._last_batch = n_batch
        self.fused.n_batch = n_batch
        if n_batch > self.batch_size or n_batch > room:
            raise ValueError("pyslide internal error: batch larger than the engine's scratch")
        if self.mark_base > 2000000000 - n_batch:
            self.reset_stamps()
        mark_base = self.mark_base
        self.mark_base += n_batch
        if self.net.layers[0].fused_grad:
            entries = 0
            for b in range(n_batch):
                entries += x_indptr[rows[b] + 1] - x_indptr[rows[b]]
            if entries > self.fused.max_entries:
                raise ValueError("pyslide internal error: the batch has more non-zeros than "
                                 "the engine was sized for")
            with nogil:
                transpose_batch(&self.fused, x_indptr, x_indices, x_data, rows)
                if self.net.layers[0].decay_mark != NULL:
                    catch_up_rows(self.net.layers[0].W, self.net.layers[0].decay_mark,
                                  self.fused.feat_ids, self.fused.n_feats,
                                  self.net.layers[0].units, log_decay, self.net.n_threads)
        self.log_decay_read = log_decay
        return mark_base

    def forward_hidden(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                       const float[::1] x_data, const int64_t[::1] rows, int32_t step,
                       float[:, ::1] hidden, double log_decay=0):
        """Forward of one batch through a headless trunk: the last layer's
        outputs (after ReLU and dropout) go to ``hidden`` (batch, units).

        The first half of a step whose output layer lives elsewhere; after
        the output's gradient with respect to ``hidden`` is known,
        ``backward_hidden`` then ``optimizer_step`` finish it. Arguments as
        for ``train_step``.
        """
        cdef int32_t mark_base, n_hidden = self.net.n_layers
        cdef LayerC* last = &self.net.layers[n_hidden - 1]
        if not self.net.headless:
            raise ValueError("pyslide internal error: forward_hidden needs a headless engine")
        if hidden.shape[0] < rows.shape[0] or hidden.shape[1] != last.units \
                or last.sampled:
            raise ValueError("pyslide internal error: hidden must be (batch, units of the "
                             "last Dense layer)")
        mark_base = self._begin_batch(x_indptr, x_indices, x_data, rows, rows.shape[0],
                                      log_decay)
        with nogil:
            forward_hidden_rows(&self.net, x_indptr, x_indices, x_data, rows, step, mark_base,
                                n_hidden, &hidden[0, 0], last.units, NULL)

    def backward_hidden(self, const int64_t[::1] x_indptr, const int32_t[::1] x_indices,
                        const float[::1] x_data, const int64_t[::1] rows, int32_t step,
                        const float[:, ::1] d_hidden):
        """Back-propagate ``d_hidden`` (batch, units), the loss gradient with
        respect to the last ``forward_hidden``'s outputs (already scaled by
        1 / batch), through the trunk; gradients into its buffers, applied
        by ``optimizer_step``. Same batch and step as ``forward_hidden``."""
        cdef int32_t n_hidden = self.net.n_layers
        cdef LayerC* last = &self.net.layers[n_hidden - 1]
        if not self.net.headless:
            raise ValueError("pyslide internal error: backward_hidden needs a headless engine")
        if rows.shape[0] != self._last_batch or d_hidden.shape[0] < rows.shape[0] \
                or d_hidden.shape[1] != last.units:
            raise ValueError("pyslide internal error: d_hidden must be (batch, units) of the "
                             "batch forward_hidden saw")
        with nogil:
            backward_hidden_rows(&self.net, x_indptr, x_indices, x_data, rows, step, n_hidden,
                                 &d_hidden[0, 0], last.units)

    # ------------------------------------------------------------ optimizer

    def set_lr_scale(self, int32_t l, float scale):
        """Layer l's multiplier of the optimizer's step from the next update on."""
        if not 0 <= l < self.net.n_layers:
            raise ValueError(f"pyslide internal error: no layer {l}")
        self.net.layers[l].lr_scale = scale

    def set_optimizer(self, int kind, float beta1, float beta2, float eps, bint lazy):
        """The optimizer's settings, once per fit (``optim``'s
        ``engine_settings``): its code (``_optim.OPTIMIZERS``), Adam's betas
        and eps (0 for SGD) and whether it is lazy."""
        cdef int32_t l
        if kind == OPT_ADAM:
            for l in range(self.net.n_layers):
                if self.net.layers[l].mW == NULL:
                    raise ValueError("pyslide internal error: Adam needs moment arrays")
        fill_optimizer(&self.opt, kind, beta1, beta2, eps, lazy)
        self.has_optimizer = True

    def optimizer_step(self, int32_t step, float step_size, double log_decay=0, float lr=0):
        """Update the rows touched in ``step`` and zero their gradients, with
        the optimizer of ``set_optimizer`` and this step's ``step_size``.

        A batch-shared output layer is updated from its compact gradient.
        ``log_decay``: the sum of log(1 - lr_t * weight_decay) over steps 1 to
        ``step``; layers given a ``decay_mark`` array decay each updated row
        by what it owes (decoupled weight decay, biases excepted). Layers
        given a ``row_updates`` array bias-correct Adam per row from ``lr``
        (this step's learning rate) instead of using ``step_size``.
        """
        cdef int32_t l
        cdef OptimC opt = self.opt
        if not self.has_optimizer:
            raise ValueError("pyslide internal error: set_optimizer before optimizer_step")
        opt.log_decay = log_decay
        opt.step = step
        for l in range(self.net.n_layers):
            # a layer's lr_scale sizes its steps; weight decay (log_decay)
            # follows the optimizer's own rate
            opt.step_size = step_size * self.net.layers[l].lr_scale
            opt.lr = lr * self.net.layers[l].lr_scale
            self._update_layer(l, step, &opt)

    cdef void _update_layer(self, int32_t l, int32_t step, const OptimC* opt) noexcept:
        cdef int32_t n_rows, n_cols
        cdef LayerC* layer = &self.net.layers[l]
        cdef bint adam = opt.kind == OPT_ADAM
        layer_shape(layer, &n_rows, &n_cols)
        with nogil:
            if layer.fused_grad:
                update_fused_input(&self.fused, layer, self.net.n_threads, opt)
            elif self.shared_output and l == self.net.n_layers - 1:
                update_shared_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb, layer.vb,
                                   self.shared.grad_shared, self.shared.gb_shared,
                                   self.shared.shared_ids, self.shared.n_shared, n_cols, opt,
                                   layer.decay_mark, layer.coast_mark, layer.row_updates,
                                   self.net.n_threads)
                if adam and not opt.lazy:
                    decay_unshared_rows(layer.W, layer.b, layer.mW, layer.vW, layer.mb,
                                        layer.vb, self.shared.shared_pos, n_rows, n_cols, opt,
                                        layer.decay_mark, layer.row_updates,
                                        self.net.n_threads)
                clear_shared(self.shared.shared_pos, self.shared.shared_ids,
                             self.shared.n_shared)
            elif layer.sampled:
                # a sampled layer's bias is per row: updated with its row
                update_rows(layer.W, layer.mW, layer.vW, layer.gW, layer.b, layer.mb, layer.vb,
                            layer.gb, layer.touched, n_rows, n_cols, opt, layer.decay_mark,
                            layer.coast_mark, layer.row_updates, True, self.net.n_threads)
            else:
                update_rows(layer.W, layer.mW, layer.vW, layer.gW, NULL, NULL, NULL, NULL,
                            layer.touched, n_rows, n_cols, opt, layer.decay_mark,
                            layer.coast_mark, layer.row_updates, True, self.net.n_threads)
                update_rows(layer.b, layer.mb, layer.vb, layer.gb, NULL, NULL, NULL, NULL,
                            NULL, 1, n_cols, opt, NULL, NULL, NULL, False, 1)

    def apply_pending(self, double log_decay, int32_t step=0, float step_size=0, float lr=0):
        """Bring every row up to date before the weights are evaluated or
        saved: the weight decay it owes up to ``log_decay`` and, where lazy
        rows coast (``Adam(idle_rows="coast")``), the Adam steps it missed
        through ``step`` (``step_size`` and ``lr`` as ``optimizer_step``
        takes them for that step). The weights then equal dense AdamW's."""
        cdef int32_t l, n_rows, n_cols
        cdef int64_t r
        cdef LayerC* layer
        cdef OptimC opt = self.opt
        opt.step = step
        for l in range(self.net.n_layers):
            layer = &self.net.layers[l]
            layer_shape(layer, &n_rows, &n_cols)
            if layer.coast_mark != NULL and step > 0:
                opt.step_size = step_size * layer.lr_scale
                opt.lr = lr * layer.lr_scale
                with nogil:
                    coast_all_rows(layer.W, layer.b if layer.sampled else NULL, layer.mW,
                                   layer.vW, layer.mb, layer.vb, n_rows, n_cols, &opt,
                                   layer.coast_mark, layer.row_updates, self.net.n_threads)
            if layer.decay_mark == NULL:
                continue
            with nogil:
                for r in prange(n_rows, num_threads=self.net.n_threads, schedule="static"):
                    catch_up_row(layer.W, layer.decay_mark, r, n_cols, log_decay)

    def discard_gradients(self, int32_t step):
        """Zero the gradients of ``step`` without applying them (error / Ctrl-C)."""
        cdef int32_t l, n_rows, n_cols
        cdef int64_t r
        cdef LayerC* layer
        if self.net.layers[0].fused_grad:
            forget_batch(&self.fused)
        for l in range(self.net.n_layers):
            layer = &self.net.layers[l]
            if layer.fused_grad:
                continue
            if self.shared_output and l == self.net.n_layers - 1:
                clear_shared(self.shared.shared_pos, self.shared.shared_ids, self.shared.n_shared)
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
