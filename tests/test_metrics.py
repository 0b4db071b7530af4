"""P@k, nDCG@k, PSP@k and propensities against hand computations and plain loops."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from pyslide.metrics import (evaluate_topk, ndcg_at_k, precision_at_k, propensities,
                             psp_at_k)

# Four samples: labels {0, 2}, {1}, {} and {3, 4, 5}.
Y_SMALL = [[0, 2], [1], [], [3, 4, 5]]
TOP_SMALL = np.array([[2, 1, 0], [0, 1, -1], [1, 2, 3], [5, 3, 0]])
L2 = 1 / math.log2(3)      # discount of rank 2
L3 = 1 / math.log2(4)      # discount of rank 3


def test_precision_by_hand():
    # hits: [1,0,1], [0,1,0], [0,0,0], [1,1,0]
    assert precision_at_k(TOP_SMALL, Y_SMALL, 1) == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert precision_at_k(TOP_SMALL, Y_SMALL, 2) == pytest.approx((1 + 1 + 0 + 2) / 2 / 4)
    assert precision_at_k(TOP_SMALL, Y_SMALL, 3) == pytest.approx((2 + 1 + 0 + 2) / 3 / 4)


def test_ndcg_by_hand():
    assert ndcg_at_k(TOP_SMALL, Y_SMALL, 1) == pytest.approx(0.5)
    expected = ((1 / (1 + L2)) + (L2 / 1) + 0 + 1) / 4
    assert ndcg_at_k(TOP_SMALL, Y_SMALL, 2) == pytest.approx(expected)
    expected = ((1 + L3) / (1 + L2) + L2 + 0 + (1 + L2) / (1 + L2 + L3)) / 4
    assert ndcg_at_k(TOP_SMALL, Y_SMALL, 3) == pytest.approx(expected)


def test_psp_by_hand():
    p = np.array([0.5, 0.25, 1.0, 0.5, 0.1, 0.2])
    # weights 1/p: [2, 4, 1, 2, 10, 5]
    assert psp_at_k(TOP_SMALL, Y_SMALL, 1, p) == pytest.approx((1 + 0 + 0 + 5) / 4)
    assert psp_at_k(TOP_SMALL, Y_SMALL, 2, p) == pytest.approx((1 + 4 + 0 + 7) / 2 / 4)
    # best: sample 0 -> 2 (label 0), sample 1 -> 4, sample 3 -> 10
    assert psp_at_k(TOP_SMALL, Y_SMALL, 1, p, normalize=True) == pytest.approx(6 / 16)
    # k = 2 best: 2+1, 4, 0, 10+5
    assert psp_at_k(TOP_SMALL, Y_SMALL, 2, p, normalize=True) == pytest.approx(12 / 22)


def test_minus_one_never_counts_and_unlabelled_rows_score_zero():
    top = np.array([[-1, -1], [0, -1]])
    Y = [[0], []]
    assert precision_at_k(top, Y, 2) == 0.0
    assert ndcg_at_k(top, Y, 2) == 0.0
    assert precision_at_k(np.array([[0, -1]]), [[0]], 1) == 1.0


def test_propensities_formula():
    Y = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]]))
    N, counts = 4, np.array([3.0, 1.0, 0.0])
    for A, B in ((0.55, 1.5), (0.5, 0.4), (0.6, 2.6)):
        C = (math.log(N) - 1) * (B + 1) ** A
        expected = 1 / (1 + C * (counts + B) ** -A)
        np.testing.assert_allclose(propensities(Y, A=A, B=B), expected, rtol=1e-12)
    p = propensities(Y)
    assert p[0] > p[1] > p[2]       # frequent labels are more likely to be observed


# ---------------------------------------------------------------------------
# Against plain Python loops on random data
# ---------------------------------------------------------------------------

def loop_metrics(top, label_sets, k, inverse_p):
    precision = ndcg = psp = best = 0.0
    for row, labels in zip(top, label_sets):
        hits = [1 if (j >= 0 and j in labels) else 0 for j in row[:k]]
        precision += sum(hits) / k
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(labels))))
        ndcg += dcg / idcg if idcg > 0 else 0.0
        psp += sum(inverse_p[j] for j, h in zip(row[:k], hits) if h) / k
        best += sum(sorted((inverse_p[j] for j in labels), reverse=True)[:k]) / k
    n = len(label_sets)
    return precision / n, ndcg / n, psp / n, (psp / best if best > 0 else 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_metrics_match_loops(seed):
    rng = np.random.default_rng(seed)
    n, n_labels, k_max = 300, 40, 6
    label_sets = [set(rng.choice(n_labels, size=rng.integers(0, 6), replace=False).tolist())
                  for _ in range(n)]
    top = np.stack([rng.permutation(n_labels)[:k_max] for _ in range(n)])
    top[rng.random(top.shape) < 0.1] = -1
    for i in range(0, n, 7):   # make some predictions right so hits are common
        truth = sorted(label_sets[i])[:k_max]
        top[i, :len(truth)] = truth
        top[i, len(truth):] = -1
    Y = [sorted(s) for s in label_sets]
    p = propensities(Y)
    result = evaluate_topk(top, Y, ks=(1, 3, 5, 6), propensities=p)
    for k in (1, 3, 5, 6):
        precision, ndcg, psp, psp_norm = loop_metrics(top, label_sets, k, 1 / p)
        assert result[f"p@{k}"] == pytest.approx(precision)
        assert result[f"ndcg@{k}"] == pytest.approx(ndcg)
        assert result[f"psp@{k}"] == pytest.approx(psp)
        assert result[f"psp_norm@{k}"] == pytest.approx(psp_norm)
        assert precision_at_k(top, Y, k) == pytest.approx(precision)
        assert ndcg_at_k(top, Y, k) == pytest.approx(ndcg)
        assert psp_at_k(top, Y, k, p) == pytest.approx(psp)
        assert psp_at_k(top, Y, k, p, normalize=True) == pytest.approx(psp_norm)


def test_evaluate_topk_keys_and_label_forms():
    result = evaluate_topk(TOP_SMALL, Y_SMALL, ks=(1, 3))
    assert set(result) == {"p@1", "ndcg@1", "p@3", "ndcg@3"}
    Y_dense = np.zeros((4, 6))
    for i, labels in enumerate(Y_SMALL):
        Y_dense[i, labels] = 1
    assert evaluate_topk(TOP_SMALL, sp.csr_matrix(Y_dense), ks=(1, 3)) == result
    assert evaluate_topk(TOP_SMALL, Y_dense, ks=3)["p@3"] == result["p@3"]
    assert evaluate_topk(TOP_SMALL.astype(np.int32), Y_SMALL, ks=[1, 3]) == result


def test_perfect_predictions_score_one():
    Y = [[0, 1], [2], [3, 4, 5]]
    top = np.array([[1, 0, -1], [2, -1, -1], [5, 3, 4]])
    result = evaluate_topk(top, Y, ks=(1, 3), propensities=propensities(Y))
    assert result["p@1"] == 1.0 and result["ndcg@1"] == 1.0 and result["ndcg@3"] == 1.0
    assert result["psp_norm@1"] == pytest.approx(1.0)
    assert result["psp_norm@3"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, message", [
    (lambda: precision_at_k(TOP_SMALL, Y_SMALL, 4), ValueError,
     r"k=4 but topk_ids has only 3 column\(s\)"),
    (lambda: precision_at_k(TOP_SMALL, Y_SMALL, 0), ValueError, "k must be a positive int"),
    (lambda: ndcg_at_k(TOP_SMALL, Y_SMALL, 1.0), ValueError, "k must be a positive int"),
    (lambda: precision_at_k(TOP_SMALL[:3], Y_SMALL, 1), ValueError,
     "topk_ids has 3 rows but Y has 4"),
    (lambda: precision_at_k(TOP_SMALL[0], Y_SMALL, 1), ValueError,
     r"topk_ids must be 2-D \(n_samples, k\)"),
    (lambda: precision_at_k(TOP_SMALL.astype(float), Y_SMALL, 1), TypeError,
     "topk_ids must be an integer array"),
    (lambda: precision_at_k(TOP_SMALL - 2, Y_SMALL, 1), ValueError,
     r"topk_ids holds -3; label ids must be >= 0 \(or -1"),
    (lambda: precision_at_k(np.array([[1, 1]]), [[1]], 1), ValueError,
     "topk_ids row 0 lists label 1 more than once"),
    (lambda: precision_at_k(np.array([[7]]), sp.csr_matrix(np.ones((1, 3))), 1), ValueError,
     "topk_ids holds label id 7 but Y has only 3 labels"),
    (lambda: precision_at_k(np.zeros((0, 2), dtype=int), sp.csr_matrix((0, 3)), 1), ValueError,
     "no rows"),
    (lambda: evaluate_topk(TOP_SMALL, Y_SMALL, ks=(1, 5)), ValueError,
     r"ks=5 but topk_ids has only 3 column\(s\)"),
    (lambda: evaluate_topk(TOP_SMALL, Y_SMALL, ks=()), ValueError, "ks must list at least one"),
    (lambda: psp_at_k(TOP_SMALL, Y_SMALL, 1, np.ones(3)), ValueError,
     r"propensities must be a 1-D array with one value per label \(6\)"),
    (lambda: psp_at_k(TOP_SMALL, Y_SMALL, 1, np.zeros(6)), ValueError,
     "propensities must be finite and > 0"),
    (lambda: propensities(Y_SMALL, A=0), ValueError, "A must be a finite number > 0"),
    (lambda: propensities(Y_SMALL, B=-1), ValueError, "B must be a finite number >= 0"),
    (lambda: propensities(sp.csr_matrix((0, 3))), ValueError, "Y_train has no rows"),
    (lambda: propensities([[-1]]), ValueError, r"Y_train\[0\] holds a negative label id"),
])
def test_bad_input_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_metrics_table_has_a_row_per_metric_and_a_column_per_k():
    from pyslide.metrics import metrics_table
    table = metrics_table({"p@1": 1.0, "ndcg@1": 1.0, "p@3": 0.5, "ndcg@3": 0.25,
                           "psp@1": 2.0}, (1, 3))
    assert table.split("\n") == ["            k=1      k=3",
                                 "P@k      1.0000   0.5000",
                                 "nDCG@k   1.0000   0.2500",
                                 "PSP@k    2.0000        -"]
