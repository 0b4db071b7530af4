# The engine's data holders, shared by the kernel modules (cimports _common, _hash, _tables): a layer's
# descriptor (LayerC), the network-wide step context (NetC), the codes of
# query modes and timing phases, and inline helpers on them. Declarations
# and fill_layer (implemented in _layer.pyx); no Python module of ours.

from libc.stdint cimport int32_t, int64_t, uint64_t
from scipy.linalg.cython_blas cimport sgemm

from pyslide._common cimport mix_seed, rand_uniform
from pyslide._hash cimport HashFamily
from pyslide._tables cimport BucketTables


cdef enum QueryMode:
    QUERY_UNION = 0
    QUERY_THRESHOLD = 1
    QUERY_SAMPLE = 2


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
    int32_t* coast_mark     # per weight row: the step its Adam steps are applied through (NULL: idle rows hold)
    float lr_scale          # multiplies the optimizer's step on this layer's rows (not the decay)


cdef struct NetC:
    # what every sample's step reads besides its layers
    LayerC* layers
    int32_t n_layers
    int32_t n_threads
    int32_t loss_kind       # a LossKind code (_loss.pxd)
    int32_t max_labels
    int32_t* label_pos      # (batch, max_labels) positions of a sample's labels in its outputs
    uint64_t seed
    double* thread_time     # (n_threads, TIME_STRIDE) seconds per phase
    int32_t correction      # subtract log inclusion probabilities from sampled logits
    float q_floor           # inclusion probabilities below it count as it
    float* label_log1m      # (units,) log(1 - p) of each label's training frequency
    int32_t headless        # the table is a trunk: its last layer is hidden, the output
                            # lives elsewhere (label shards, pyslide.distributed)


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


cdef inline void layer_shape(const LayerC* layer, int32_t* n_rows, int32_t* n_cols) noexcept nogil:
    """Rows and columns of a layer's weights as stored: (out, in) for a
    sampled layer, (in, out) for a dense one."""
    if layer.sampled:
        n_rows[0], n_cols[0] = layer.units, layer.in_dim
    else:
        n_rows[0], n_cols[0] = layer.in_dim, layer.units


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


# Fill layer from spec (one dict per layer: the arrays named in LayerC, or
# None where the layer has none, and every setting; no key has a default)
# and size its bucket-id scratch for batch_size samples. The arrays, family
# and tables go into keepalive. Implemented in _layer.pyx for Engine and
# ShardEngine alike.
cdef int fill_layer(LayerC* layer, dict spec, int32_t batch_size, list keepalive) except -1

# The data of a C-contiguous float32 / int32 array (ValueError otherwise),
# appended to keepalive.
cdef float* float_data(object arr, list keepalive) except NULL
cdef int32_t* int_data(object arr, list keepalive) except NULL
