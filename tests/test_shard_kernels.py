"""The label-shard kernels (_shard.ShardEngine) and the headless trunk entry points
(Engine.forward_hidden / backward_hidden) against plain NumPy twins; no Ray needed."""
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import pyslide as ps
from pyslide import _kernels, _loss, _optim, _shard
from pyslide.state import LayerState, plan

from test_kernels import random_problem


def trunk_engine(net, batch):
    """A headless engine over net's trunk (every layer but the output)."""
    specs = [state.engine_spec(layer, *net._dims[i], 0.0)
             for i, (layer, state) in enumerate(zip(net.layers[:-1], net._states[:-1]))]
    return _kernels.Engine(specs, batch, net.n_threads, _loss.LOSSES["softmax"], 3, net.seed,
                           False, 64, headless=True)


def numpy_trunk(net, X):
    """float64 activations of every trunk layer (inputs of the next)."""
    acts = [X.toarray().astype(np.float64)]
    for state in net._states[:-1]:
        acts.append(np.maximum(acts[-1] @ state["W"].astype(np.float64) + state["b"], 0))
    return acts


@pytest.mark.parametrize("threads", [1, 2])
def test_headless_trunk_forward_backward_match_numpy(threads):
    X, Y = random_problem(n=16, d=30, n_labels=40)
    net = ps.Network(30, [ps.Dense(12, dropout=0.0), ps.Dense(8, dropout=0.0),
                          ps.Sampled(40, active=1.0)],
                     optimizer=ps.SGD(lr=0.5), threads=threads, seed=1)
    net._init_weights(1.0)
    rng = np.random.default_rng(2)
    for state in net._states[:-1]:
        state["b"][:] = rng.normal(0, 0.1, state["b"].shape)
    before = [(s["W"].astype(np.float64), s["b"].astype(np.float64)) for s in net._states[:-1]]
    acts = numpy_trunk(net, X)
    engine = trunk_engine(net, 16)
    rows = np.arange(16, dtype=np.int64)
    hidden = np.zeros((16, 8), np.float32)
    x_indptr = X.indptr.astype(np.int64)
    with threadpool_limits(limits=1, user_api="blas"):
        engine.forward_hidden(x_indptr, X.indices, X.data, rows, 1, hidden)
    np.testing.assert_allclose(hidden, acts[-1], rtol=1e-5, atol=1e-6)

    d_hidden = rng.normal(0, 1, (16, 8)).astype(np.float32)
    with threadpool_limits(limits=1, user_api="blas"):
        engine.backward_hidden(x_indptr, X.indices, X.data, rows, 1, d_hidden)
        engine.set_optimizer(_optim.OPTIMIZERS["sgd"], 0, 0, 0, True)
        engine.optimizer_step(1, 0.5, 0.0, 0.5)
    # NumPy back-propagation of d_hidden through ReLU layers, then one SGD step
    delta = d_hidden.astype(np.float64) * (acts[2] > 0)
    grads = [None, None]
    grads[1] = (acts[1].T @ delta, delta.sum(axis=0))
    delta = (delta @ before[1][0].T) * (acts[1] > 0)
    grads[0] = (acts[0].T @ delta, delta.sum(axis=0))
    # the first layer's gradient is fused (formed per feature: no race); the
    # second accumulates HogWild, where two threads may, rarely, lose an
    # addition (the documented contract), so it is compared with one thread
    checked = 2 if threads == 1 else 1
    for state, (W, b), (gW, gb) in list(zip(net._states[:-1], before, grads))[:checked]:
        np.testing.assert_allclose(state["W"], W - 0.5 * gW, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state["b"], b - 0.5 * gb, rtol=1e-5, atol=1e-6)


def test_headless_engine_refuses_train_step_and_a_wrong_hidden_shape():
    X, Y = random_problem(n=8, d=30, n_labels=40)
    net = ps.Network(30, [ps.Dense(8), ps.Sampled(40, active=1.0)], threads=1)
    net._init_weights(1.0)
    engine = trunk_engine(net, 8)
    rows = np.arange(8, dtype=np.int64)
    with pytest.raises(ValueError, match="forward_hidden / backward_hidden"):
        engine.train_step(X.indptr.astype(np.int64), X.indices, X.data,
                          Y.indptr.astype(np.int64), Y.indices, rows, 1,
                          np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="hidden must be"):
        engine.forward_hidden(X.indptr.astype(np.int64), X.indices, X.data, rows, 1,
                              np.zeros((8, 5), np.float32))


def shard_spec(state, **settings):
    """Every key ``_layer.fill_layer`` reads (the kernels hold no defaults):
    the state's rows as one sampled layer, then ``settings``."""
    rows, d = state["W"].shape
    spec = {"sampled": 1, "relu": 0, "in_dim": d, "units": rows, "dropout": 0.0,
            "negatives": 0, "query": _kernels.QUERIES["union"], "threshold": 2,
            **state.engine_arrays(), "family": None, "tables": None}
    spec.update(settings)
    return spec


def shard_engine(rows, d, batch, loss="softmax", seed=0, threads=1, all_active=True,
                 max_active=None, family=None, tables=None):
    rng = np.random.default_rng(seed)
    state = LayerState(plan(True, d, rows, False, True, adam=False, row_bias_correction=False,
                            weight_decay=False))
    state["W"][:] = rng.normal(0, 0.5, (rows, d))
    state["b"][:] = rng.normal(0, 0.1, rows)
    spec = shard_spec(state, all_active=int(all_active), max_active=max_active or rows,
                      min_active=max_active or rows, family=family, tables=tables)
    engine = _shard.ShardEngine(spec, batch, threads, _loss.LOSSES[loss], 4, seed)
    return engine, state


def batch_labels(n, rows, seed):
    rng = np.random.default_rng(seed)
    lists = [rng.choice(rows, size=rng.integers(0, 4), replace=False) for _ in range(n)]
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    return indptr, np.concatenate(lists).astype(np.int32), lists


@pytest.mark.parametrize("threads", [1, 2])
def test_two_shards_give_the_full_softmax_step(threads):
    """Two shards' partition parts, deltas, hidden gradients and SGD updates
    equal one NumPy softmax step over all rows (labels split across shards)."""
    n, d, rows = 6, 5, 20
    rng = np.random.default_rng(4)
    hidden = rng.normal(0, 1, (n, d)).astype(np.float32)
    indptr, indices, lists = batch_labels(n, rows, 5)
    bounds = [0, 9, 20]
    engines = [shard_engine(bounds[r + 1] - bounds[r], d, n, seed=10 + r, threads=threads)
               for r in range(2)]
    W = np.concatenate([s["W"] for _, s in engines]).astype(np.float64)
    b = np.concatenate([s["b"] for _, s in engines]).astype(np.float64)
    parts = []
    with threadpool_limits(limits=1, user_api="blas"):
        for r, (engine, _) in enumerate(engines):
            mine = (indices >= bounds[r]) & (indices < bounds[r + 1])
            row_of = np.repeat(np.arange(n), np.diff(indptr))
            local_indptr = np.concatenate([[0], np.cumsum(np.bincount(row_of[mine],
                                                                      minlength=n))])
            n_labels, n_cand = engine.begin(hidden, local_indptr.astype(np.int64),
                                            (indices[mine] - bounds[r]).astype(np.int32), 1)
            assert n_labels == len(np.unique(indices[mine])) and n_cand == 0
            parts.append(engine.forward(0, 0))
    z = hidden.astype(np.float64) @ W.T + b
    zmax = np.stack([p[0] for p in parts]).astype(np.float64)
    top = zmax.max(axis=0)
    total = (np.stack([p[1] for p in parts]) * np.exp(zmax - top)).sum(axis=0)
    np.testing.assert_allclose(top + np.log(total),
                               np.log(np.exp(z).sum(axis=1)), rtol=1e-5)
    label_sum = sum(p[2] for p in parts)
    np.testing.assert_allclose(label_sum, [z[i, l].sum() for i, l in enumerate(lists)],
                               rtol=1e-5, atol=1e-5)
    # the reference gradient of the mean softmax cross-entropy
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    target = np.zeros_like(p)
    for i, l in enumerate(lists):
        if len(l):
            target[i, l] = 1.0 / len(l)
    delta = np.where([[len(l) > 0] for l in lists], p - target, 0) / n
    n_labels = np.array([len(l) for l in lists], np.int32)
    d_hidden = np.zeros((n, d))
    with threadpool_limits(limits=1, user_api="blas"):
        for engine, _ in engines:
            part, losses = engine.backward(top.astype(np.float32), total.astype(np.float32),
                                           n_labels)
            assert losses is None
            d_hidden += part
            engine.set_optimizer(_optim.OPTIMIZERS["sgd"], 0, 0, 0, True)
            engine.update(0.1)
    np.testing.assert_allclose(d_hidden, delta @ W, rtol=1e-4, atol=1e-6)
    W_new = np.concatenate([s["W"] for _, s in engines])
    b_new = np.concatenate([s["b"] for _, s in engines])
    np.testing.assert_allclose(W_new, W - 0.1 * delta.T @ hidden, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b_new, b - 0.1 * delta.sum(axis=0), rtol=1e-4, atol=1e-6)


def test_shard_bce_step_matches_numpy():
    n, d, rows = 5, 4, 7
    rng = np.random.default_rng(8)
    hidden = rng.normal(0, 1, (n, d)).astype(np.float32)
    indptr, indices, lists = batch_labels(n, rows, 9)
    engine, state = shard_engine(rows, d, n, loss="bce")
    W, b = state["W"].astype(np.float64), state["b"].astype(np.float64)
    with threadpool_limits(limits=1, user_api="blas"):
        engine.begin(hidden, indptr, indices, 1)
        assert engine.forward(0, 0) is None
        d_hidden, losses = engine.backward()
    z = hidden @ W.T + b
    y = np.zeros_like(z)
    for i, l in enumerate(lists):
        y[i, l] = 1
    np.testing.assert_allclose(losses, (np.logaddexp(0, z) - y * z).sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(d_hidden, ((1 / (1 + np.exp(-z)) - y) / n) @ W, rtol=1e-4,
                               atol=1e-6)


def test_shard_selection_takes_its_budget_from_lsh_candidates():
    """With tables, begin reports the candidates; forward takes exactly the
    budget it is given (labels first), then tops up uniformly."""
    d, rows, n = 16, 300, 8
    rng = np.random.default_rng(3)
    tables = ps.LSHTables(ps.SimHash(K=3, L=4, seed=1).compile(d), bucket_size=64, seed=0)
    state = LayerState(plan(True, d, rows, False, True, False, False, False))
    state["W"][:] = rng.normal(0, 1, (rows, d))
    tables.build(state["W"])
    spec = shard_spec(state, all_active=0, max_active=60, min_active=80,
                      family=tables.family, tables=tables.compiled)
    engine = _shard.ShardEngine(spec, n, 1, _loss.LOSSES["softmax"], 2, 7)
    hidden = rng.normal(0, 1, (n, d)).astype(np.float32)
    indptr = np.arange(n + 1, dtype=np.int64)
    labels = np.arange(n, dtype=np.int32) * 3
    n_labels, n_cand = engine.begin(hidden, indptr, labels, 1)
    assert n_labels == n and n_cand > 40
    engine.forward(n_labels + 40, n_labels + 50)
    ids = engine.shared_ids()
    assert len(ids) == n_labels + 50 and len(np.unique(ids)) == len(ids)
    np.testing.assert_array_equal(ids[:n_labels], labels)
    engine.discard()
    assert engine.n_shared == 0


def test_without_ray_the_sharded_network_says_how_to_install_it(monkeypatch):
    from pyslide.distributed import ShardedNetwork
    monkeypatch.setitem(sys.modules, "ray", None)    # import ray fails
    with pytest.raises(ImportError) as error:
        ShardedNetwork(10, [ps.Dense(4), ps.Sampled(20)], shards=2)
    assert str(error.value) == ('pyslide.distributed needs Ray: pip install ".[distributed]" in '
                                "pyslide's source folder (or pip install \"ray>=2.9\")")
