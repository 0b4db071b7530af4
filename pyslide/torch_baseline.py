"""PyTorch CPU baselines pyslide is compared against; imports torch (the optional [bench] extra) and no module of ours.

``pyslide demo`` and ``benchmarks/`` use this one module; nothing else in
pyslide imports it, so pyslide runs without PyTorch.

Both share the architecture: sparse input -> 128 ReLU -> one output per label,
softmax cross-entropy against the labels normalised to sum 1, batch 128.

``TorchDense``
    The dense network in its best CPU form: the input layer is an
    ``EmbeddingBag(mode="sum", sparse=True)`` fed CSR rows (so only the
    features present in a batch are read and updated, with ``SparseAdam``),
    the output layer a full ``Linear(128, n_labels)`` trained with Adam.
``TorchSampled``
    Sampled softmax: the same input layer; the output layer computes only
    the rows of the batch's true labels plus uniform random negatives, up to
    ``n_sample`` rows shared by the whole batch (one matrix product), with
    ``SparseAdam`` over those rows. No sampling correction. Evaluation is the
    exact full softmax over all labels.

The loss gathers the log-probabilities of the true labels instead of building a
dense ``batch x n_labels`` target matrix; it is the same quantity
``-(y/|y| * log_softmax(z)).sum(1).mean()``.
"""
import time

import numpy as np
import torch
from torch import nn

HIDDEN = 128


def _csr_batch(X, rows):
    """EmbeddingBag arguments (indices, offsets, per_sample_weights) for CSR rows."""
    sub = X[rows]
    indices = torch.from_numpy(sub.indices.astype(np.int64))
    offsets = torch.from_numpy(sub.indptr[:-1].astype(np.int64))
    weights = torch.from_numpy(np.ascontiguousarray(sub.data, dtype=np.float32))
    return indices, offsets, weights


def _soft_targets(Y, rows):
    """(batch row, label id, 1/|y|) for every positive of the batch."""
    sub = Y[rows]
    counts = np.diff(sub.indptr)
    batch_row = np.repeat(np.arange(len(rows)), counts)
    weight = np.repeat(1.0 / np.maximum(counts, 1), counts).astype(np.float32)
    return batch_row, sub.indices.astype(np.int64), weight


class _SparseInput(nn.Module):
    """Sparse input -> 128 ReLU, as a summing embedding bag plus a bias.

    ``input_init="normal"``: weights N(0, init_std), zero bias (pyslide's
    start). ``"linear"``: what ``nn.Linear(n_features, 128)`` would start
    with (kaiming_uniform with a=sqrt(5)): weights and bias
    U(-1/sqrt(n_features), +1/sqrt(n_features)), i.e. std
    1/sqrt(3 n_features); ``init_std`` is then ignored. ``"linear0"``: the
    same weights, zero bias.
    """

    def __init__(self, n_features, init_std, input_init="normal"):
        super().__init__()
        self.bag = nn.EmbeddingBag(n_features, HIDDEN, mode="sum", sparse=True)
        self.bias = nn.Parameter(torch.zeros(HIDDEN))
        with torch.no_grad():
            if input_init == "normal":
                nn.init.normal_(self.bag.weight, 0.0, init_std)
            elif input_init in ("linear", "linear0"):
                bound = 1.0 / np.sqrt(n_features)
                nn.init.uniform_(self.bag.weight, -bound, bound)
                if input_init == "linear":
                    nn.init.uniform_(self.bias, -bound, bound)
            else:
                raise ValueError(f"input_init must be 'normal', 'linear' or 'linear0', "
                                 f"got {input_init!r}")

    def forward(self, indices, offsets, weights):
        return torch.relu(self.bag(indices, offsets, per_sample_weights=weights) + self.bias)


def _init_output(weight, bias, output_init):
    """``"small"``: N(0, 0.01/sqrt(128)) weights and zero biases (pyslide's
    start); ``"linear"``: ``nn.Linear``'s default uniform(+-1/sqrt(128)) for
    both; ``"linear0"``: those weights with zero biases."""
    if output_init == "small":
        nn.init.normal_(weight, 0.0, 0.01 / np.sqrt(HIDDEN))
        nn.init.zeros_(bias)
    elif output_init in ("linear", "linear0"):
        bound = 1.0 / np.sqrt(HIDDEN)
        nn.init.uniform_(weight, -bound, bound)
        if output_init == "linear":
            nn.init.uniform_(bias, -bound, bound)
        else:
            nn.init.zeros_(bias)
    else:
        raise ValueError(f"output_init must be 'small', 'linear' or 'linear0', "
                         f"got {output_init!r}")


class _Baseline:
    """Common loop: shuffled epochs, per-step timing, exact top-k evaluation."""

    def __init__(self, n_features, n_labels, lr, seed, init_std, input_init="normal"):
        torch.manual_seed(seed)
        self.n_features = n_features
        self.n_labels = n_labels
        self.lr = lr
        self.rng = np.random.default_rng(seed)
        self.inp = _SparseInput(n_features, init_std, input_init)
        # mean training loss of the last epoch (per row), set by train_epoch
        self.epoch_loss = None

    def _descend(self, loss):
        """One optimizer step on ``loss`` for both optimizers (sparse rows, dense rest)."""
        self.sparse_opt.zero_grad(set_to_none=True)
        self.dense_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.sparse_opt.step()
        self.dense_opt.step()
        return loss

    def train_epoch(self, X, Y, batch_size, max_steps=None):
        """One shuffled epoch; returns the wall-clock and the process CPU seconds of every step.

        The epoch's mean training loss per row is left in ``epoch_loss``
        (read after each step's timing, so it does not count as training).
        """
        perm = self.rng.permutation(X.shape[0])
        starts = range(0, X.shape[0], batch_size)
        if max_steps is not None:
            starts = list(starts)[:max_steps]
        times, cpu_times = [], []
        loss_sum, n_rows = 0.0, 0
        for s in starts:
            rows = perm[s:s + batch_size]
            t0, c0 = time.perf_counter(), time.process_time()
            loss = self.step(X, Y, rows)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            loss_sum += float(loss.detach()) * len(rows)
            n_rows += len(rows)
        self.epoch_loss = loss_sum / max(n_rows, 1)
        return times, cpu_times

    def fit(self, X, Y, epochs, batch_size, max_steps=None, on_epoch_end=None):
        """``epochs`` calls of ``train_epoch``; after each, ``on_epoch_end(self,
        epoch, logs)`` with logs ``loss`` (mean per row), ``seconds`` and
        ``cpu_seconds`` (that epoch's training only) and ``steps``. Evaluation
        inside the hook is not timed as training."""
        for epoch in range(1, epochs + 1):
            times, cpu_times = self.train_epoch(X, Y, batch_size, max_steps=max_steps)
            if on_epoch_end is not None:
                on_epoch_end(self, epoch, dict(loss=self.epoch_loss, seconds=sum(times),
                                               cpu_seconds=sum(cpu_times), steps=len(times),
                                               step_times=times))

    def output_weights(self):
        """(W, b) of the full output layer, for evaluation."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_topk(self, X, k=5, chunk=256):
        """Exact top-k over all labels: h @ W.T + b in chunks of test rows."""
        W, b = self.output_weights()
        out = np.empty((X.shape[0], k), dtype=np.int64)
        for s in range(0, X.shape[0], chunk):
            rows = np.arange(s, min(s + chunk, X.shape[0]))
            h = self.inp(*_csr_batch(X, rows))
            scores = torch.addmm(b, h, W.t())
            out[rows] = torch.topk(scores, k, dim=1).indices.numpy()
        return out


class TorchDense(_Baseline):
    """Embedding-bag input layer + full Linear output layer, full softmax."""

    name = "torch-dense"

    def __init__(self, n_features, n_labels, lr=1e-3, seed=0, init_std=1.0,
                 output_init="small", fused_adam=True, input_init="normal"):
        super().__init__(n_features, n_labels, lr, seed, init_std, input_init)
        self.out = nn.Linear(HIDDEN, n_labels)
        with torch.no_grad():
            _init_output(self.out.weight, self.out.bias, output_init)
        self.sparse_opt = torch.optim.SparseAdam([self.inp.bag.weight], lr=lr)
        dense_params = [self.inp.bias, *self.out.parameters()]
        try:
            self.dense_opt = torch.optim.Adam(dense_params, lr=lr, fused=fused_adam)
        except (RuntimeError, TypeError):
            self.dense_opt = torch.optim.Adam(dense_params, lr=lr)

    def step(self, X, Y, rows):
        h = self.inp(*_csr_batch(X, rows))
        logp = torch.log_softmax(self.out(h), dim=1)
        r, c, w = (torch.from_numpy(a) for a in _soft_targets(Y, rows))
        loss = -(logp[r, c] * w).sum() / len(rows)
        return self._descend(loss)

    def output_weights(self):
        return self.out.weight, self.out.bias


class TorchSampled(_Baseline):
    """Embedding-bag input layer + sampled softmax over rows shared by the batch."""

    name = "torch-sampled"

    def __init__(self, n_features, n_labels, lr=1e-3, seed=0, init_std=1.0,
                 output_init="small", n_sample=8192, input_init="normal"):
        super().__init__(n_features, n_labels, lr, seed, init_std, input_init)
        self.n_sample = int(n_sample)
        self.out_w = nn.Embedding(n_labels, HIDDEN, sparse=True)
        self.out_b = nn.Embedding(n_labels, 1, sparse=True)
        with torch.no_grad():
            _init_output(self.out_w.weight, self.out_b.weight, output_init)
        self.sparse_opt = torch.optim.SparseAdam(
            [self.inp.bag.weight, self.out_w.weight, self.out_b.weight], lr=lr)
        self.dense_opt = torch.optim.Adam([self.inp.bias], lr=lr)

    def sample_rows(self, positives):
        """The batch's true labels, then distinct uniform negatives up to n_sample."""
        need = min(self.n_sample, self.n_labels) - positives.size
        if need <= 0:
            return positives
        negatives = np.empty(0, dtype=np.int64)
        while negatives.size < need:
            draw = self.rng.integers(0, self.n_labels, size=need + need // 8 + 64)
            # np.unique sorts; shuffle again so that truncation keeps a uniform draw.
            fresh = np.setdiff1d(draw, positives, assume_unique=False)
            fresh = np.setdiff1d(fresh, negatives, assume_unique=True)
            self.rng.shuffle(fresh)
            negatives = np.concatenate([negatives, fresh[:need - negatives.size]])
        return np.concatenate([positives, negatives])

    def step(self, X, Y, rows):
        h = self.inp(*_csr_batch(X, rows))
        r, labels, w = _soft_targets(Y, rows)
        positives = np.unique(labels)
        out_rows = torch.from_numpy(self.sample_rows(positives))
        # The positives come first, sorted: a label's column is its rank among them.
        cols = np.searchsorted(positives, labels)
        logits = torch.addmm(self.out_b(out_rows).squeeze(1), h, self.out_w(out_rows).t())
        logp = torch.log_softmax(logits, dim=1)
        r, c, w = (torch.from_numpy(a) for a in (r, cols, w))
        loss = -(logp[r, c] * w).sum() / len(rows)
        return self._descend(loss)

    def output_weights(self):
        return self.out_w.weight, self.out_b.weight.squeeze(1)


def make_baseline(method, n_features, n_labels, lr=1e-3, seed=0, init_std=1.0,
                  output_init="small", input_init="normal"):
    """``torch-dense`` or ``torch-sampled[:n_sample]`` -> a baseline object.

    ``init_std`` is the std of the input layer's normal start; for inputs
    with unit-norm rows 1.0 gives unit-variance pre-activations.
    ``input_init="linear"`` starts the input layer as ``nn.Linear`` would
    instead (see ``_SparseInput``).
    """
    name, _, arg = method.partition(":")
    kw = dict(lr=lr, seed=seed, init_std=init_std, output_init=output_init,
              input_init=input_init)
    if name == "torch-dense":
        if arg:
            raise ValueError(f"torch-dense takes no argument, got {method!r}")
        return TorchDense(n_features, n_labels, **kw)
    if name == "torch-sampled":
        n_sample = int(arg) if arg else 8192
        return TorchSampled(n_features, n_labels, n_sample=n_sample, **kw)
    raise ValueError(f"unknown torch method {method!r}")


def demo_run(X, Y, Xt, epochs, threads, seed, init_std, k, score, on_epoch=None,
             n_sample=8192, batch_size=128):
    """The PyTorch side of ``pyslide demo``: ``TorchSampled`` trained for
    ``epochs`` on (X, Y) with ``threads`` threads; after every epoch (outside
    the training time) the top ``k`` labels of each row of ``Xt`` are scored
    by ``score(top_ids) -> {"p@1": ..., ...}``. ``on_epoch(epoch, loss, seconds, scores)`` reports each
    epoch (``seconds``: training time so far).

    Returns a dict: ``seconds`` (training time), ``steps``, ``scores`` (one
    dict per epoch) and ``ends`` (the training time at the end of each epoch).
    """
    torch.set_num_threads(threads)
    model = TorchSampled(X.shape[1], Y.shape[1], lr=1e-3, seed=seed, init_std=init_std,
                         n_sample=n_sample)
    totals = {"seconds": 0.0, "steps": 0, "scores": [], "ends": []}

    def report(_, epoch, logs):
        totals["seconds"] += logs["seconds"]
        totals["ends"].append(totals["seconds"])
        totals["steps"] += logs["steps"]
        scores = score(model.predict_topk(Xt, k))
        totals["scores"].append(scores)
        if on_epoch is not None:
            on_epoch(epoch, logs["loss"], totals["seconds"], scores)

    model.fit(X, Y, epochs, batch_size, on_epoch_end=report)
    return totals
