"""Losses of one sample over its active outputs; a kernel module (imports no Python module of ours)."""
# The loss kinds are integer codes (LossKind in _loss.pxd); LOSSES maps the
# names Network takes to them, so Python resolves and validates a name once
# and the kernels never guess.

from libc.stdint cimport int32_t
from libc.math cimport expf, logf, log1pf
from libc.string cimport memset

LOSSES = {"softmax": LOSS_SOFTMAX, "bce": LOSS_BCE}


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
    cdef float zmax, total, loss = 0, inv_labels, zt, label_sum = 0
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
        total = 0
        for t in range(n):
            delta[t] = expf(z[t] - zmax)
            total += delta[t]
        inv_labels = 1.0 / n_labels
        for t in range(n):
            delta[t] = delta[t] / total * scale
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
