# Losses of one sample over its active outputs, cimport nothing of ours (softmax cross-entropy,
# sigmoid BCE) and the sampling correction: C declarations for the engine.

from libc.stdint cimport int32_t
from libc.math cimport expm1f, logf


cdef enum LossKind:
    # codes the engine takes; Python resolves names through _loss.LOSSES
    LOSS_SOFTMAX = 0
    LOSS_BCE = 1


cdef inline float inclusion_log_correction(float log1m_p, int32_t others,
                                           float q_uniform, float q_floor) noexcept nogil:
    """-log q: q is the probability that a label enters a batch's shared set
    as a label of one of ``others`` samples (each holds it with probability
    p, ``log1m_p = log(1 - p)``) or as a uniform draw (``q_uniform``).

    Added to a negative's logit, it weights the sampled term e^z / q in the
    partition sum: its expectation over the draw is the full softmax's e^z,
    so rare labels are pushed down as often as the full softmax pushes them.
    """
    # expm1 keeps the small probabilities of rare labels exact in float32
    cdef float q_batch = -expm1f(others * log1m_p)
    cdef float q = q_batch + q_uniform - q_batch * q_uniform
    if q < q_floor:
        q = q_floor
    return -logf(q)


cdef void exp_shifted(float* x, int32_t n, float shift) noexcept nogil


cdef inline float sum_of(const float* x, int32_t n) noexcept nogil:
    """The sum of x[0:n] in four partial sums (the compiler vectorises
    them without -ffast-math); the softmax's partition sum, here so that a
    label shard (_shard.pyx) adds its exponentials in the same order."""
    cdef int32_t t
    cdef float s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for t in range(0, n - 3, 4):
        s0 += x[t]
        s1 += x[t + 1]
        s2 += x[t + 2]
        s3 += x[t + 3]
    for t in range(n - n % 4, n):
        s0 += x[t]
    return (s0 + s1) + (s2 + s3)


cdef float loss_and_delta(const float* z, float* delta, int32_t n,
                          const int32_t* label_pos, int32_t n_labels,
                          int32_t loss_kind, float scale) noexcept nogil
