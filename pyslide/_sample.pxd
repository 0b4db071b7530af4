# The per-sample (SLIDE) step, for the engine and the batch-shared output; cimports _layer.

from libc.stdint cimport int32_t, int64_t

from pyslide._layer cimport NetC


cdef void forward_sample(NetC* net, int32_t b, int32_t tid, const int32_t* x_ids,
                         const float* x_vals, int32_t x_n, const int32_t* labels,
                         int32_t n_labels, int32_t n_forward, int32_t step,
                         int32_t mark) noexcept nogil

cdef void backward_sample(NetC* net, int32_t b, int32_t top, const int32_t* x_ids,
                          const float* x_vals, int32_t x_n, int32_t step) noexcept nogil

cdef void train_per_sample(NetC* net, const int64_t[::1] x_indptr,
                           const int32_t[::1] x_indices, const float[::1] x_data,
                           const int64_t[::1] y_indptr, const int32_t[::1] y_indices,
                           const int64_t[::1] rows, int32_t step, float[::1] losses,
                           int32_t mark_base) noexcept
