# Inline vector helpers every kernel module shares; cimport nothing of ours.
# (dot, axpy, sparse dot, prefetch, a monotonic clock)

from libc.stdint cimport int32_t, int64_t
from posix.time cimport timespec, clock_gettime, CLOCK_MONOTONIC

cdef extern from *:
    """
    /* Rows of the wide layers are read in random order, so the loops are
       bound by memory latency, not bandwidth: asking for a row a few
       iterations ahead overlaps the misses. */
    #if defined(__GNUC__) || defined(__clang__)
    static inline void pyslide_prefetch(const void* p, long n_bytes, int for_write) {
        const char* c = (const char*)p;
        long o;
        if (for_write) { for (o = 0; o < n_bytes; o += 64) __builtin_prefetch(c + o, 1, 3); }
        else { for (o = 0; o < n_bytes; o += 64) __builtin_prefetch(c + o, 0, 3); }
    }
    #else
    static inline void pyslide_prefetch(const void* p, long n_bytes, int for_write) {}
    #endif
    """
    void pyslide_prefetch(const void* p, long n_bytes, int for_write) noexcept nogil


cdef enum:
    # rows asked for ahead of their use
    PREFETCH_AHEAD = 6


cdef inline double now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + 1e-9 * ts.tv_nsec


cdef inline void axpy(float* y, const float* x, float a, int32_t n) noexcept nogil:
    cdef int32_t i
    for i in range(n):
        y[i] += a * x[i]


cdef inline float dot(const float* x, const float* y, int32_t n) noexcept nogil:
    cdef int32_t i
    cdef float s0 = 0, s1 = 0, s2 = 0, s3 = 0
    # four partial sums let the compiler vectorise without -ffast-math
    for i in range(0, n - 3, 4):
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
    for i in range(n - n % 4, n):
        s0 += x[i] * y[i]
    return (s0 + s1) + (s2 + s3)


cdef inline float sparse_dot(const float* w, const int32_t* ids, const float* vals,
                             int32_t n) noexcept nogil:
    cdef int32_t t
    cdef float s = 0
    for t in range(n):
        s += w[ids[t]] * vals[t]
    return s
