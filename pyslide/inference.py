"""Inference: exact and LSH top-k, probabilities, evaluation; imports the kernels (_topk), _openmp_env, layers, metrics and _validate (never training or the CLI).

``Predictor`` is a mixin of :class:`pyslide.Network`; ``Ranking`` (``predict``,
``evaluate``) is shared with ``pyslide.distributed.ShardedNetwork``.
"""

import numpy as np

from . import _topk
from ._openmp_env import note_threads
from ._validate import integer, integers
from .layers import Sampled

__all__ = ["Predictor", "Ranking", "hidden_activations", "topk_probabilities"]


class Ranking:
    """``predict`` and ``evaluate``, built on the model's ``predict_topk``
    (mixed into ``Network`` through ``Predictor``, and into
    ``ShardedNetwork``, whose ``predict_topk`` merges its shards' top k)."""

    def predict(self, X, k=5):
        """Top-k label ids per row (n, k), best first (exact)."""
        return self.predict_topk(X, k=k)[0]

    def evaluate(self, X, Y, k=(1, 3, 5)):
        """Precision@k and nDCG@k of exact top-k predictions against Y.

        Returns a dict such as ``{"p@1": ..., "p@3": ..., "ndcg@3": ...}``.
        """
        from .metrics import evaluate_topk
        ks = integers(k, "k")
        X = self._check_X(X)
        Y = self._check_Y(Y, X.shape[0])
        ids, _ = self.predict_topk(X, k=max(ks))
        return evaluate_topk(ids, Y, ks=ks)

    def _validation_scores(self, X, Y, ks):
        """``evaluate``'s metrics and the exact mean loss, from one scoring pass
        over chunks of rows (each model's ``_row_chunks``, ``_hidden`` and
        ``_score_rows``: one matrix product here, partition sums over the
        shards in ``ShardedNetwork``).

        The loss is over every output (as if the output layer were dense), so
        it is comparable between epochs and runs but not with the training
        loss, which covers only the sampled outputs.
        """
        from .metrics import evaluate_topk
        n, k = X.shape[0], max(ks)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        loss_sum = 0.0
        with self._scoring_threads():
            starts, chunk = self._row_chunks(n)
            for start in starts:
                h = self._hidden(X[start:start + chunk])
                end = start + h.shape[0]      # h is X itself (sparse) without hidden layers
                loss_sum += self._score_rows(h, Y[start:end], k, ids[start:end],
                                             scores[start:end])
        return {"loss": loss_sum / max(n, 1), **evaluate_topk(ids, Y, ks=ks)}


def hidden_activations(X, layers, states):
    """Exact activations after ``layers`` (the hidden ones), float32: each
    state's ``W`` as the engine stores it (input-major for ``Dense``,
    output-major for ``Sampled``) and ``b``."""
    h = X
    for layer, state in zip(layers, states):
        h = _pre_activations(h, layer, state)
        if layer.activation == "relu":
            np.maximum(h, 0, out=h)
    return h


def _pre_activations(h, layer, state):
    """``h @ W + b`` of one layer (float32), W read in the engine's layout."""
    W = state["W"]
    z = np.asarray(h @ (W.T if isinstance(layer, Sampled) else W), dtype=np.float32)
    z += state["b"]
    return z


class Predictor(Ranking):
    """``predict_topk``, ``predict``, ``predict_proba``, ``evaluate`` (mixed into ``Network``)."""

    # sampled inference scores these many largest-bias outputs besides the
    # LSH candidates (``_with_head``)
    _bias_head = 64

    def _hidden(self, X):
        """Exact activations of the last hidden layer (dense ndarray)."""
        return hidden_activations(X, self.layers[:-1], self._params[:-1])

    def _output_scores(self, h):
        return _pre_activations(h, self.layers[-1], self._params[-1])

    def _row_chunks(self, n):
        chunk = max(1, min(n, (1 << 24) // max(1, self.n_outputs)))
        return range(0, n, chunk), chunk

    def predict_topk(self, X, k=5, sampled=False):
        """Top-k outputs per row, best first.

        Parameters
        ----------
        X : input rows
        k : int
        sampled : bool
            False (default): exact, every output scored with BLAS. True: score
            only the neurons the output layer's LSH tables return for each
            row (sub-linear; may miss labels the tables do not hold).

        Returns
        -------
        ids : (n, k) int32 ndarray, -1 where fewer than k candidates exist
        scores : (n, k) float32 ndarray of logits (-inf where ids is -1)
        """
        k = integer(k, "k", 1)
        X = self._check_X(X)
        n = X.shape[0]
        k_eff = min(k, self.n_outputs)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if n == 0:
            return ids, scores
        self._ensure_initialized()
        from threadpoolctl import threadpool_limits
        threads = note_threads(self._threads_for_rows(n))
        with threadpool_limits(limits=threads, user_api="blas"):
            if sampled:
                return self._predict_sampled(X, k, ids, scores)
            starts, chunk = self._row_chunks(n)
            for start in starts:
                h = self._hidden(X[start:start + chunk])
                z = self._output_scores(h)
                _topk.topk_rows(z, k_eff, threads, ids[start:start + len(z)],
                                   scores[start:start + len(z)])
        return ids, scores

    def _predict_sampled(self, X, k, ids, scores):
        out = len(self.layers) - 1
        layer = self.layers[-1]
        if not isinstance(layer, Sampled) or self._tables[out] is None:
            raise ValueError("predict_topk(sampled=True) needs a Sampled output layer with a "
                             "hash family that has been trained (fit) or loaded"
                             + _why_no_tables(layer))
        W, b = self._params[out]["W"], self._params[out]["b"]
        head = _largest_biases(b, self._bias_head)
        note_threads(self.n_threads)
        chunk = 4096
        for start in range(0, X.shape[0], chunk):
            h = np.ascontiguousarray(self._hidden(X[start:start + chunk]), dtype=np.float32)
            indptr, cand = self._tables[out].query(h, mode="union", threads=self.n_threads)
            indptr, cand = _with_head(indptr, cand, head)
            _topk.topk_candidates(h, np.ascontiguousarray(indptr, dtype=np.int64),
                                     np.ascontiguousarray(cand, dtype=np.int32), W, b, k,
                                     self.n_threads, ids[start:start + len(h)],
                                     scores[start:start + len(h)])
        return ids, scores

    def predict_proba(self, X):
        """Output probabilities (n, n_outputs): softmax or sigmoid per the loss.

        Dense: for wide outputs use ``predict_topk`` on large inputs.
        """
        X = self._check_X(X)
        self._ensure_initialized()
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            z = self._output_scores(self._hidden(X))
        return probabilities(z, self.loss)

    def _scoring_threads(self):
        from threadpoolctl import threadpool_limits
        note_threads(self.n_threads)
        return threadpool_limits(limits=self.n_threads, user_api="blas")

    def _score_rows(self, h, Y, k, ids, scores):
        """The top k of these hidden rows into ``ids``/``scores``; their loss sum."""
        z = self._output_scores(h)
        loss_sum = _loss_sum(z, Y, self.loss)
        _topk.topk_rows(z, min(k, self.n_outputs), self.n_threads, ids, scores)
        return loss_sum


def _loss_sum(z, Y, loss):
    """Sum over rows of the training loss on full output scores z (float64)."""
    counts = np.diff(Y.indptr)
    rows = np.repeat(np.arange(z.shape[0]), counts)
    label_sum = np.bincount(rows, weights=z[rows, Y.indices], minlength=z.shape[0])
    if loss == "softmax":
        # cross-entropy against the labels normalised to sum 1; a row
        # without labels contributes 0, as in the training kernel
        zmax = z.max(axis=1)
        lse = zmax + np.log(np.exp(z - zmax[:, None]).sum(axis=1, dtype=np.float64))
        per_row = np.where(counts > 0, lse - label_sum / np.maximum(counts, 1), 0.0)
        return float(per_row.sum())
    return float(np.logaddexp(0.0, z).sum(dtype=np.float64) - label_sum.sum())


def probabilities(z, loss):
    """Scores (n, outputs) to probabilities, in place where it can: a softmax
    over each row, or a sigmoid per output for BCE."""
    if loss == "softmax":
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z
    return 1.0 / (1.0 + np.exp(-z))


def _largest_biases(b, count):
    """The ``count`` outputs with the largest biases (int32, unordered)."""
    count = min(count, len(b))
    if count <= 0:
        return np.empty(0, dtype=np.int32)
    return np.argpartition(-np.asarray(b), count - 1)[:count].astype(np.int32)


def _with_head(indptr, cand, head):
    """Each row's candidates plus ``head`` (the same ids for every row), each id
    once per row. LSH hashes the rows of W, not their biases: outputs that a
    large bias puts on top (popular labels, which ``bias_init="prior"``
    starts high) must be scored even when the tables do not return them."""
    indptr = np.asarray(indptr, dtype=np.int64)
    cand = np.asarray(cand, dtype=np.int32)
    n = len(indptr) - 1
    if len(head) == 0 or n == 0:
        return indptr, cand
    rows = np.concatenate([np.repeat(np.arange(n), np.diff(indptr)), np.repeat(np.arange(n), len(head))])
    ids = np.concatenate([cand, np.tile(head, n)])
    order = np.lexsort((ids, rows))
    rows, ids = rows[order], ids[order]
    keep = np.ones(len(ids), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (ids[1:] != ids[:-1])
    rows, ids = rows[keep], ids[keep]
    new_indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=new_indptr[1:])
    return new_indptr, np.ascontiguousarray(ids, dtype=np.int32)


def _why_no_tables(layer):
    """Which choice of the output layer left it without LSH tables, and what to do."""
    if not isinstance(layer, Sampled):
        return (": this model's output layer is dense, so it has no LSH tables to sample "
                "from; score exactly (sampled=False)")
    if layer.dense_equivalent:
        return (f": this model's output layer computes all {layer.units} labels at every step "
                f"(its active count is at least its width), so it has no LSH tables; exact "
                f"scoring (sampled=False) costs the same here")
    if layer.hash is None:
        return (": this model samples its outputs uniformly (hash=None), so it has no LSH "
                "tables; score exactly (sampled=False)")
    return ""


def topk_probabilities(network, X, ids, logits):
    """The probabilities of the labels ``network.predict_topk(X)`` returned
    (``ids``, ``logits``; id -1 is an empty slot, probability 0): a sigmoid of
    each logit for BCE; for the softmax, whose denominator needs every label's
    logit, ``network.predict_proba`` in row chunks of at most 2**24 scores."""
    probs = np.zeros_like(logits)
    valid = ids >= 0
    if network.loss == "bce":
        probs[valid] = 1.0 / (1.0 + np.exp(-logits[valid]))
        return probs
    chunk = max(1, (1 << 24) // max(1, network.n_outputs))
    for start in range(0, X.shape[0], chunk):
        rows = slice(start, start + chunk)
        p = network.predict_proba(X[rows])
        safe = np.where(valid[rows], ids[rows], 0)
        probs[rows] = np.where(valid[rows], np.take_along_axis(p, safe, axis=1), 0.0)
    return probs
