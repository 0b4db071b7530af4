"""Losses of one sample over its active outputs; a kernel module (imports no Python module of ours)."""
# The loss kinds are integer codes (LossKind in _loss.pxd); LOSSES maps the
# names Network takes to them, so Python resolves and validates a name once
# and the kernels never guess.

from libc.stdint cimport int32_t
from libc.math cimport expf, logf, log1pf
from libc.string cimport memcpy, memset

import numpy as np

LOSSES = {"softmax": LOSS_SOFTMAX, "bce": LOSS_BCE}

# e^x for x <= 0 as e^r * 2^n, n = round(x / ln 2), |r| <= ln2 / 2. Branch-free
# and without calls, so gcc vectorises the loop over a sample's outputs
# (libm's expf is a call per value: a fifth of a Delicious-shaped step went to
# it). The degree-6 Taylor polynomial errs by r^7 / 7! < 1.2e-7 relative on
# that range: about 2 ulp.
# Constants are literals in the function: module-level C globals could alias
# the array written, which would stop the vectoriser.

cdef union FloatBits:
    float f
    int32_t i


cdef inline float exp_nonpositive(float x) noexcept nogil:
    """e^x for x <= 0 (NaN stays NaN: the floor is taken with ``<``)."""
    cdef FloatBits scale
    cdef float r, p
    cdef int32_t n
    # below -87.3, e^x is under float's smallest normal; the value there
    # (1e-38) is as good as 0 beside the largest term, e^0 = 1
    x = <float>-87.3 if x < <float>-87.3 else x
    # truncation rounds to nearest here: x / ln 2 - 0.5 is negative
    n = <int32_t>(x * <float>1.44269504088896341 - <float>0.5)
    # ln 2 in two parts; n * 0.693145751953125 is exact for |n| < 2^9
    r = (x - n * <float>0.693145751953125) - n * <float>1.42860682030941723212e-6
    p = <float>(1.0 / 720)
    p = p * r + <float>(1.0 / 120)
    p = p * r + <float>(1.0 / 24)
    p = p * r + <float>(1.0 / 6)
    p = p * r + <float>0.5
    p = p * r + 1
    p = p * r + 1
    scale.i = (n + 127) << 23
    return p * scale.f


cdef void exp_shifted(float* x, int32_t n, float shift) noexcept nogil:
    """x[t] = e^(x[t] - shift) in place, for shift >= max(x). One array, so
    gcc need not guard the vector loop against overlap."""
    cdef int32_t t
    for t in range(n):
        x[t] = exp_nonpositive(x[t] - shift)


def exp_shifted_values(x, float shift):
    """``e^(x - shift)`` by the kernels' exp (for tests against ``np.exp``)."""
    cdef float[::1] out = np.array(x, dtype=np.float32).reshape(-1)
    with nogil:
        exp_shifted(&out[0], <int32_t>out.shape[0], shift)
    return np.asarray(out)


cdef float loss_and_delta(const float* z, float* delta, int32_t n,
                          const int32_t* label_pos, int32_t n_labels,
                          int32_t loss_kind, float scale) noexcept nogil:
    """Loss of one sample over its n output values, and d loss / d z * scale.

    label_pos holds the positions (in z) of the sample's true labels.
    Softmax: cross-entropy against the labels normalised to sum 1; a sample
    with no label contributes nothing. BCE: sum of per-output logistic losses.
    ``delta`` may be ``z`` itself (the batch-shared path works in place), so
    every read of z at the labels happens before delta is written.
    """
    cdef int32_t t
    cdef float zmax, total, loss = 0, inv_labels, zt, label_sum = 0, factor
    for t in range(n_labels):
        label_sum += z[label_pos[t]]
    if loss_kind == LOSS_SOFTMAX:
        if n_labels == 0 or n == 0:
            memset(delta, 0, n * sizeof(float))
            return 0
        zmax = z[0]
        for t in range(1, n):
            if z[t] > zmax:
                zmax = z[t]
        if delta != z:
            memcpy(delta, z, n * sizeof(float))
        exp_shifted(delta, n, zmax)
        total = sum_of(delta, n)
        inv_labels = 1.0 / n_labels
        factor = scale / total
        for t in range(n):
            delta[t] = delta[t] * factor
        for t in range(n_labels):
            delta[label_pos[t]] -= inv_labels * scale
        return -(inv_labels * label_sum - zmax - logf(total))
    for t in range(n):
        zt = z[t]
        # softplus(z) without overflow; the sigmoid from the same exp
        if zt > 0:
            loss += zt + log1pf(expf(-zt))
            delta[t] = scale / (1.0 + expf(-zt))
        else:
            loss += log1pf(expf(zt))
            delta[t] = scale * expf(zt) / (1.0 + expf(zt))
    for t in range(n_labels):
        delta[label_pos[t]] -= scale
    return loss - label_sum
