# Shared C-level helpers (counter-based random numbers); declarations, cimport nothing of ours.
#
# Every random draw inside a kernel comes from a SplitMix64 stream keyed by
# (seed, step, sample index), so a sample's draws do not depend on which
# thread runs it or in what order: one thread is bit-for-bit reproducible,
# many threads differ only through HogWild races on the weights.

from libc.stdint cimport uint64_t, uint32_t, int32_t, int64_t


cdef inline uint64_t splitmix64_next(uint64_t* state) noexcept nogil:
    cdef uint64_t z
    state[0] += <uint64_t>0x9E3779B97F4A7C15
    z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) noexcept nogil:
    """Seed of the stream for (seed, a, b), e.g. a = step, b = sample."""
    cdef uint64_t s = seed ^ (a * <uint64_t>0xD1B54A32D192ED03)
    splitmix64_next(&s)
    s ^= b * <uint64_t>0xABC98388FB8FAC03
    return splitmix64_next(&s)


cdef inline uint32_t rand_below(uint64_t* state, uint32_t n) noexcept nogil:
    """Uniform integer in [0, n) (Lemire's multiply-shift; bias < n / 2^32)."""
    return <uint32_t>(((splitmix64_next(state) >> 32) * <uint64_t>n) >> 32)


cdef inline float rand_uniform(uint64_t* state) noexcept nogil:
    """Uniform float in [0, 1)."""
    return <float>(splitmix64_next(state) >> 40) * (1.0 / 16777216.0)
