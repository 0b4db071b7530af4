"""Row-wise top-k of scores, exact and over LSH candidates (inference); a kernel module (imports no Python module of ours)."""

from cython.parallel cimport prange, parallel
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free

from pyslide._vec cimport dot


cdef inline void heap_sift_down(float* vals, int32_t* ids, int32_t k, int32_t i) noexcept nogil:
    """Restore a min-heap (smallest score at the root) below position i."""
    cdef int32_t child
    cdef float v = vals[i]
    cdef int32_t id_ = ids[i]
    while True:
        child = 2 * i + 1
        if child >= k:
            break
        if child + 1 < k and vals[child + 1] < vals[child]:
            child += 1
        if vals[child] >= v:
            break
        vals[i] = vals[child]
        ids[i] = ids[child]
        i = child
    vals[i] = v
    ids[i] = id_


cdef void row_topk(const float* scores, int32_t n, int32_t k, int32_t* out_ids,
                   float* out_vals) noexcept nogil:
    """The k largest of scores[0:n], best first (ties: lower id first).

    A min-heap of the best k so far: after the first few thousand scores
    almost every new score loses to the root in one comparison, so a row
    costs about one compare per score.
    """
    cdef int32_t j, i, tmp_id
    cdef float tmp
    for j in range(k):
        out_vals[j] = scores[j]
        out_ids[j] = j
    for j in range(k // 2 - 1, -1, -1):
        heap_sift_down(out_vals, out_ids, k, j)
    for j in range(k, n):
        if scores[j] > out_vals[0]:
            out_vals[0] = scores[j]
            out_ids[0] = j
            heap_sift_down(out_vals, out_ids, k, 0)
    # heap sort, descending by score (for equal scores the lower id first)
    for i in range(k - 1, 0, -1):
        tmp = out_vals[0]
        tmp_id = out_ids[0]
        out_vals[0] = out_vals[i]
        out_ids[0] = out_ids[i]
        out_vals[i] = tmp
        out_ids[i] = tmp_id
        heap_sift_down(out_vals, out_ids, i, 0)
    for i in range(1, k):
        j = i
        while j > 0 and out_vals[j] == out_vals[j - 1] and out_ids[j] < out_ids[j - 1]:
            tmp_id = out_ids[j]
            out_ids[j] = out_ids[j - 1]
            out_ids[j - 1] = tmp_id
            j -= 1


def topk_rows(const float[:, ::1] scores, int k, int n_threads, int32_t[:, ::1] out_ids,
              float[:, ::1] out_vals):
    """Row-wise top-k of a score matrix into out_ids / out_vals (k <= n_cols)."""
    cdef int64_t r, n_rows = scores.shape[0]
    cdef int32_t n_cols = scores.shape[1]
    if k > n_cols or k < 1 or out_ids.shape[1] < k or out_vals.shape[1] < k \
            or out_ids.shape[0] < n_rows or out_vals.shape[0] < n_rows:
        raise ValueError("pyslide internal error: bad top-k shapes")
    with nogil:
        for r in prange(n_rows, num_threads=n_threads, schedule="static"):
            row_topk(&scores[r, 0], n_cols, k, &out_ids[r, 0], &out_vals[r, 0])


def topk_candidates(const float[:, ::1] hidden, const int64_t[::1] indptr,
                    const int32_t[::1] candidates, const float[:, ::1] W, const float[::1] b,
                    int k, int n_threads, int32_t[:, ::1] out_ids, float[:, ::1] out_vals):
    """Top-k among each row's candidate neurons (LSH inference).

    Row r scores neurons ``candidates[indptr[r]:indptr[r + 1]]`` against
    ``hidden[r]`` (dot product with W's row plus bias) and keeps the best k,
    best first; rows with fewer candidates leave -1 / -inf in the tail.
    """
    cdef int64_t r, n_rows = hidden.shape[0], lo, hi, t, max_len = 0
    cdef int32_t d = hidden.shape[1], n, kk, j
    cdef float* scores
    cdef int32_t* picked
    if W.shape[1] != d or out_ids.shape[0] < n_rows or out_ids.shape[1] < k \
            or out_vals.shape[0] < n_rows or out_vals.shape[1] < k or indptr.shape[0] != n_rows + 1:
        raise ValueError("pyslide internal error: bad candidate top-k shapes")
    for r in range(n_rows):
        max_len = max(max_len, indptr[r + 1] - indptr[r])
    with nogil, parallel(num_threads=n_threads):
        scores = <float*>malloc((max_len + 1) * sizeof(float))
        picked = <int32_t*>malloc((k + 1) * sizeof(int32_t))
        if scores != NULL and picked != NULL:
            for r in prange(n_rows, schedule="dynamic"):
                lo = indptr[r]
                hi = indptr[r + 1]
                n = <int32_t>(hi - lo)
                for t in range(n):
                    j = candidates[lo + t]
                    scores[t] = b[j] + dot(&W[j, 0], &hidden[r, 0], d)
                kk = k if k < n else n
                if kk > 0:
                    row_topk(scores, n, kk, picked, &out_vals[r, 0])
                    for t in range(kk):
                        out_ids[r, t] = candidates[lo + picked[t]]
        free(scores)
        free(picked)
