"""The training kernels against the NumPy twin in reference.py."""
import numpy as np
import pytest
import scipy.sparse as sp

import pyslide as ps
from pyslide import _kernels
from pyslide._optim import OPTIMIZERS
from pyslide.layers import Sampled

from reference import batch_loss, forward_backward


def random_problem(n=24, d=30, n_labels=40, density=0.2, seed=0, max_labels=3):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=np.float32)
    X.data = rng.uniform(0.1, 1.0, X.nnz).astype(np.float32)
    rows = []
    for _ in range(n):
        k = rng.integers(1, max_labels + 1)
        rows.append(rng.choice(n_labels, size=k, replace=False))
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    Y = sp.csr_matrix((np.ones(indptr[-1], np.float32), np.concatenate(rows), indptr),
                      shape=(n, n_labels))
    return X, Y


def prepared(net, X, Y, batch):
    """An engine around net's (initialised) arrays, as fit builds it."""
    X = net._check_X(X)
    Y = net._check_Y(Y, X.shape[0])
    net._init_weights(1.0)
    rng = np.random.default_rng(5)
    for p in net._params:      # unit-scale weights and non-zero biases exercise every path
        p["W"][:] = rng.normal(0, 0.3, p["W"].shape)
        p["b"][:] = rng.normal(0, 0.1, p["b"].shape)
    run = net._prepare_training(X, Y, batch, correct_sampling=False)
    net._maybe_rebuild(force=True)
    return run.X, run.Y, run.engine


def run_step(net, X, Y, rows, step=1, label_log1m=None, log_decay=0.0, engine=None):
    """One training step as fit runs it; returns (X, Y, engine, losses).

    ``label_log1m`` turns the sampling correction on; ``engine`` reuses an
    engine (and the data it was prepared with) for a further step."""
    from threadpoolctl import threadpool_limits
    if engine is None:
        X, Y, engine = prepared(net, X, Y, len(rows))
        if label_log1m is not None:
            engine = net._make_engine(len(rows), int(np.diff(Y.indptr).max()),
                                      int(np.diff(X.indptr).max()), label_log1m)
    losses = np.zeros(len(rows), np.float32)
    # as in Network.fit: the kernels call BLAS from their own threads
    with threadpool_limits(limits=1, user_api="blas"):
        engine.train_step(X.indptr.astype(np.int64), X.indices, X.data,
                          Y.indptr.astype(np.int64), Y.indices, np.asarray(rows, np.int64),
                          step, losses, log_decay)
    return X, Y, engine, losses


def active_of(net, engine, n_batch):
    active = []
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, Sampled):
            active.append(None)
        elif i == len(net.layers) - 1 and layer.share == "batch":
            active.append(engine.active_sets(i, n_batch)[0])
        else:
            active.append(engine.active_sets(i, n_batch))
    return active


def kernel_grads(net, engine):
    out = []
    for i, p in enumerate(net._params):
        if "gW" in p:
            out.append({"W": p["gW"].copy(), "b": p["gb"].copy()})
        elif i == 0:                            # first Dense layer: fused gradient
            ids, gW, gb = engine.input_gradient()
            W = np.zeros_like(p["W"])
            W[ids] = gW
            out.append({"W": W, "b": gb})
        else:                                   # batch-shared output: compact gradient
            ids, gW, gb = engine.shared_gradient()
            W = np.zeros_like(p["W"])
            b = np.zeros_like(p["b"])
            W[ids] = gW
            b[ids] = gb
            out.append({"W": W, "b": b})
    return out


def assert_grads_match(net, engine, ref_grads):
    """The kernel's gradients of the last step against the reference's."""
    got = kernel_grads(net, engine)
    for i in range(len(net.layers)):
        np.testing.assert_allclose(got[i]["W"], ref_grads[i]["W"], rtol=2e-3, atol=2e-6,
                                   err_msg=f"layer {i} weights")
        np.testing.assert_allclose(got[i]["b"], ref_grads[i]["b"], rtol=2e-3, atol=2e-6,
                                   err_msg=f"layer {i} bias")


CASES = {
    # the four cases: sparse in / dense out, dense in / dense out,
    # dense in / sparse out, sparse in / sparse out (incl. sampled -> sampled)
    "dense-dense": lambda L: [ps.Dense(16), ps.Dense(L)],
    "dense-sampled-sample": lambda L: [ps.Dense(16), ps.Sampled(L, hash=None, active=9, share="sample")],
    "dense-sampled-batch": lambda L: [ps.Dense(16), ps.Sampled(L, hash=None, active=20, share="batch")],
    "sampled-sampled": lambda L: [ps.Sampled(24, hash=None, active=7, share="sample"),
                                  ps.Sampled(L, hash=None, active=9, share="sample")],
    "sampled-first": lambda L: [ps.Sampled(L, hash=None, active=11, share="sample")],
    "three-layers": lambda L: [ps.Dense(12), ps.Sampled(20, hash=None, active=6, share="sample"),
                               ps.Sampled(L, hash=None, active=15, share="batch")],
    "lsh-sample": lambda L: [ps.Dense(16), ps.Sampled(L, hash=ps.SimHash(K=3, L=4, seed=1),
                                                      active=10, share="sample")],
    "lsh-batch": lambda L: [ps.Dense(16), ps.Sampled(L, hash=ps.SimHash(K=3, L=4, seed=1),
                                                     active=20, share="batch")],
    "lsh-threshold": lambda L: [ps.Dense(16), ps.Sampled(L, hash=ps.SimHash(K=3, L=4, seed=1),
                                                         active=10, share="sample",
                                                         query="threshold", threshold=2)],
    "lsh-probe-sample": lambda L: [ps.Dense(16), ps.Sampled(L, hash=ps.SimHash(K=3, L=4, seed=1),
                                                            active=10, share="sample",
                                                            query="sample")],
    "dwta-sparse-first": lambda L: [ps.Sampled(L, hash=ps.DWTA(K=2, L=6, seed=1), active=12,
                                               share="sample")],
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("loss", ["softmax", "bce"])
def test_gradients_match_reference(case, loss):
    X, Y = random_problem()
    net = ps.Network(X.shape[1], CASES[case](Y.shape[1]), loss=loss, threads=1, seed=3)
    rows = np.arange(0, 24, 2)
    X, Y, engine, losses = run_step(net, X, Y, rows)
    active = active_of(net, engine, len(rows))
    ref_losses, ref_grads = forward_backward(net, X, Y, rows, active, loss=loss)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    assert_grads_match(net, engine, ref_grads)


@pytest.mark.parametrize("query", ["union", "threshold", "sample"])
def test_active_sets_hold_labels_and_are_distinct(query):
    X, Y = random_problem(n_labels=60)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(60, hash=ps.SimHash(K=3, L=6, seed=2),
                                                          active=12, share="sample",
                                                          query=query)],
                     threads=1, seed=0)
    rows = np.arange(16)
    X, Y, engine, _ = run_step(net, X, Y, rows)
    for b, ids in enumerate(engine.active_sets(1, len(rows))):
        labels = Y[rows[b]].indices
        assert len(ids) == max(12, len(labels))
        assert len(np.unique(ids)) == len(ids)
        np.testing.assert_array_equal(ids[:len(labels)], labels)   # labels first


def test_shared_active_set_ranks_lsh_candidates():
    X, Y = random_problem(n_labels=200)
    family = ps.SimHash(K=4, L=8, seed=2)
    # no dropout: the ranking below hashes the undropped hidden vectors
    # negatives=0: the set is the labels and the best-ranked candidates, up to active
    net = ps.Network(X.shape[1], [ps.Dense(8, dropout=0), ps.Sampled(200, hash=family, active=40,
                                                          share="batch", bucket_size=4,
                                                          negatives=0)],
                     threads=1, seed=0)
    rows = np.arange(8)
    X, Y, engine, _ = run_step(net, X, Y, rows)
    ids = engine.active_sets(1, len(rows))[0]
    labels = np.unique(Y[rows].indices)
    assert len(np.unique(ids)) == len(ids) == 40
    assert set(labels) <= set(ids)
    # rebuild the ranking in NumPy: hits per neuron over (sample, table)
    fam = net._families[1]
    tables = net._tables[1]
    h = np.maximum(X[rows] @ net._params[0]["W"] + net._params[0]["b"], 0).astype(np.float32)
    codes = fam.hash_dense(np.ascontiguousarray(h))
    table_ids, counts = tables.ids, tables.counts
    hits = np.zeros(200, np.int64)
    for b in range(len(rows)):
        for l in range(codes.shape[1]):
            n_valid = min(counts[l, codes[b, l]], table_ids.shape[2])
            np.add.at(hits, table_ids[l, codes[b, l], :n_valid], 1)
    hits[labels] = 0
    chosen = np.setdiff1d(ids, labels)
    n_lsh = min(40 - len(labels), int((hits > 0).sum()))
    lsh_chosen = chosen[hits[chosen] > 0]
    assert len(lsh_chosen) == n_lsh
    # nothing left out was hit more often than something taken
    left = np.setdiff1d(np.flatnonzero(hits), lsh_chosen)
    if len(left) and len(lsh_chosen):
        assert hits[left].max() <= hits[lsh_chosen].min()


@pytest.mark.parametrize("case", ["dense-sampled-sample", "sampled-sampled", "lsh-batch"])
def test_gradient_is_finite_difference_of_loss(case):
    X, Y = random_problem(n=10)
    net = ps.Network(X.shape[1], CASES[case](Y.shape[1]), threads=1, seed=4)
    rows = np.arange(10)
    X, Y, engine, _ = run_step(net, X, Y, rows)
    active = active_of(net, engine, len(rows))
    grads = kernel_grads(net, engine)
    rng = np.random.default_rng(0)
    eps = 1e-3
    for i in range(len(net.layers)):
        W = net._params[i]["W"]
        nz = np.argwhere(np.abs(grads[i]["W"]) > 1e-4)
        for idx in nz[rng.choice(len(nz), size=min(4, len(nz)), replace=False)]:
            idx = tuple(idx)
            orig = W[idx]
            W[idx] = orig + eps
            up = batch_loss(net, X, Y, rows, active)
            W[idx] = orig - eps
            down = batch_loss(net, X, Y, rows, active)
            W[idx] = orig
            fd = (up - down) / (2 * eps)
            assert abs(fd - grads[i]["W"][idx]) <= 2e-2 * abs(fd) + 2e-4, (i, idx)


def adam_reference(w, m, v, g, t, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    step = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return w - step * m / (np.sqrt(v) + eps), m, v


@pytest.mark.parametrize("lazy", [True, False])
@pytest.mark.parametrize("share", ["sample", "batch"])
def test_adam_step_matches_reference(lazy, share):
    X, Y = random_problem()
    opt = ps.Adam(lr=1e-2, lazy=lazy, bias_correction="global")
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], hash=None, active=10,
                                                          share=share)],
                     optimizer=opt, threads=1, seed=0)
    rows = np.arange(12)
    X, Y, engine, _ = run_step(net, X, Y, rows)
    grads = kernel_grads(net, engine)
    touched = [np.abs(g["W"]).sum(axis=1) > 0 for g in grads]
    touched[0] = np.zeros(X.shape[1], bool)
    touched[0][np.unique(X[rows].indices)] = True
    out_ids = engine.active_sets(1, len(rows))
    touched[1] = np.zeros(Y.shape[1], bool)
    touched[1][np.unique(np.concatenate(out_ids))] = True
    # moments from an earlier step, so that lazy and dense differ
    for p in net._params:
        p["mW"][:] = 0.01
        p["vW"][:] = 0.001
        p["mb"][:] = 0.01
        p["vb"][:] = 0.001
    before = [{k: p[k].astype(np.float64).copy() for k in ("W", "b", "mW", "vW", "mb", "vb")}
              for p in net._params]
    t = 3
    engine.set_optimizer(OPTIMIZERS["adam"], opt.beta1, opt.beta2, opt.eps, lazy)
    engine.optimizer_step(1, opt.step_size(t))
    for i, p in enumerate(net._params):
        w, m, v = adam_reference(before[i]["W"], before[i]["mW"], before[i]["vW"],
                                 grads[i]["W"], t)
        rows_on = touched[i] if lazy else np.ones(len(w), bool)
        w = np.where(rows_on[:, None], w, before[i]["W"])
        m = np.where(rows_on[:, None], m, before[i]["mW"])
        np.testing.assert_allclose(p["W"], w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(p["mW"], m, rtol=1e-5, atol=1e-7)
        wb, mb, _ = adam_reference(before[i]["b"], before[i]["mb"], before[i]["vb"],
                                   grads[i]["b"], t)
        if i == 1 and lazy:
            wb = np.where(touched[1], wb, before[i]["b"])
        np.testing.assert_allclose(p["b"], wb, rtol=1e-5, atol=1e-6)
        if "gW" in p:       # the optimizer zeroes the gradients it consumed
            assert not p["gW"].any() and not p["gb"].any()


def coast_reference(w, m, v, idle, step_size, b1=0.9, b2=0.999, eps=1e-8):
    """``idle`` zero-gradient dense Adam steps of rows (w, m, v: (rows, cols),
    idle: (rows,)), one at a time: what a coasting row catches up on."""
    w, m, v = w.copy(), m.copy(), v.copy()
    for k in range(int(idle.max(initial=0))):
        on = (idle > k)[:, None]
        m = np.where(on, b1 * m, m)
        v = np.where(on, b2 * v, v)
        w = np.where(on, w - step_size * m / (np.sqrt(v) + eps), w)
    return w, m, v


# t = 3000: most rows sit idle longer than the kernels' table of coasting
# factors (COAST_TABLE = 1024 steps) and take them from powf instead.
# "mixed": the output's rows coast, the hidden layer's hold (no marks)
@pytest.mark.parametrize("share,t,idle_rows", [("sample", 40, "coast"), ("batch", 40, "coast"),
                                               ("batch", 3000, "coast"), ("batch", 40, "mixed"),
                                               ("sample", 40, "mixed")])
def test_coasting_rows_take_their_missed_steps_then_this_one(share, t, idle_rows):
    """Adam(idle_rows="coast"): a touched row that sat idle for k steps
    first takes k zero-gradient Adam steps, then this step's update; an
    untouched row is left as it is (it catches up when next touched)."""
    X, Y = random_problem()
    opt = ps.Adam(lr=1e-2, idle_rows=idle_rows)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], hash=None, active=10,
                                                          share=share)],
                     optimizer=opt, threads=1, seed=0)
    coasting = [idle_rows == "coast", True]
    rows = np.arange(12)
    X, Y, engine, _ = run_step(net, X, Y, rows, step=t)
    grads = kernel_grads(net, engine)
    touched = [np.zeros(X.shape[1], bool), np.zeros(Y.shape[1], bool)]
    touched[0][np.unique(X[rows].indices)] = True
    touched[1][np.unique(np.concatenate(engine.active_sets(1, len(rows))))] = True
    rng = np.random.default_rng(3)
    marks = []
    for i, p in enumerate(net._params):
        for name in ("mW", "vW", "mb", "vb"):
            p[name][:] = rng.uniform(0.01, 0.02, p[name].shape) * (1 if name[0] == "v" else
                                                                   rng.choice([-1, 1], p[name].shape))
        assert ("coast_mark" in p) == coasting[i]
        if coasting[i]:
            p["coast_mark"][:] = rng.integers(0, t, len(p["coast_mark"]))
            marks.append(p["coast_mark"].copy())
        else:       # a holding row takes this step's update alone, whatever its idle span
            marks.append(np.full(len(p["W"]), t - 1))
    before = [{k: p[k].astype(np.float64).copy() for k in ("W", "b", "mW", "vW", "mb", "vb")}
              for p in net._params]
    engine.set_optimizer(OPTIMIZERS["adam"], opt.beta1, opt.beta2, opt.eps, True)
    size = opt.step_size(t)
    engine.optimizer_step(t, size)
    for i, p in enumerate(net._params):
        idle = np.where(touched[i], t - 1 - marks[i], 0)
        w, m, v = coast_reference(before[i]["W"], before[i]["mW"], before[i]["vW"], idle, size)
        w, m, v = adam_reference(w, m, v, grads[i]["W"], t)
        w = np.where(touched[i][:, None], w, before[i]["W"])
        m = np.where(touched[i][:, None], m, before[i]["mW"])
        np.testing.assert_allclose(p["W"], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p["mW"], m, rtol=1e-4, atol=1e-7)
        if coasting[i]:
            np.testing.assert_array_equal(p["coast_mark"], np.where(touched[i], t, marks[i]))
        if i == 1:      # a sampled layer's bias is per row, and coasts with it
            b, _, _ = coast_reference(before[i]["b"][:, None], before[i]["mb"][:, None],
                                      before[i]["vb"][:, None], idle, size)
            b, _, _ = adam_reference(b[:, 0], before[i]["mb"] * 0.9 ** idle,
                                     before[i]["vb"] * 0.999 ** idle, grads[i]["b"], t)
            np.testing.assert_allclose(p["b"], np.where(touched[1], b, before[i]["b"]),
                                       rtol=1e-4, atol=1e-6)
    # before evaluation every coasting row catches up through step t; holding rows wait
    after = [{k: p[k].astype(np.float64).copy() for k in ("W", "mW", "vW")} for p in net._params]
    engine.apply_pending(0.0, t, size, opt.lr)
    for i, p in enumerate(net._params):
        if not coasting[i]:
            for name in ("W", "mW", "vW"):
                np.testing.assert_array_equal(p[name], after[i][name].astype(np.float32))
            continue
        idle = np.where(touched[i], 0, t - marks[i])
        w, m, _ = coast_reference(after[i]["W"], after[i]["mW"], after[i]["vW"], idle, size)
        np.testing.assert_allclose(p["W"], w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(p["mW"], m, rtol=1e-4, atol=1e-7)
        assert (p["coast_mark"] == t).all()


def test_coasting_lazy_adam_follows_dense_adam():
    """Over a fit, lazy Adam whose idle rows coast stays near dense Adam
    (every row every step), while rows that hold drift far from it. Not
    equal: a coasting row takes its catch-up step's size for every step it
    missed, and float rounding differs. beta2 = 0.9: the step size settles
    within a few dozen steps."""
    X, Y = random_problem(n=64, d=60, n_labels=300, density=0.1, seed=1)
    weights = {}
    for name, kw in [("dense", dict(lazy=False)), ("coast", dict(idle_rows="coast")),
                     ("hold", dict(idle_rows="hold"))]:
        net = ps.Network(X.shape[1], [ps.Dense(16, dropout=0),
                                      ps.Sampled(Y.shape[1], hash=None, active=40, lr_scale=1)],
                         optimizer=ps.Adam(lr=1e-3, beta2=0.9, **kw), threads=1, seed=0)
        net.fit(X, Y, epochs=4, batch_size=2, verbose=0, shuffle=False)
        weights[name] = [net._params[0]["W"], net._params[1]["W"], net._params[1]["b"]]

    def gap(name):
        return np.array([np.linalg.norm(a - b) / np.linalg.norm(b)
                         for a, b in zip(weights[name], weights["dense"])])
    coast, hold = gap("coast"), gap("hold")
    assert (coast < 0.05).all(), coast
    assert (coast < hold / 4).all(), (coast, hold)


def test_sgd_step_matches_reference():
    X, Y = random_problem()
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], hash=None, active=10,
                                                          share="sample")],
                     optimizer=ps.SGD(lr=0.5), threads=1, seed=0)
    rows = np.arange(12)
    X, Y, engine, _ = run_step(net, X, Y, rows)
    grads = kernel_grads(net, engine)
    before = [p["W"].copy() for p in net._params]
    engine.set_optimizer(OPTIMIZERS["sgd"], 0.0, 0.0, 0.0, True)
    engine.optimizer_step(1, 0.5)
    for i, p in enumerate(net._params):
        np.testing.assert_allclose(p["W"], before[i] - 0.5 * grads[i]["W"], rtol=1e-6, atol=1e-7)


def test_full_active_sampled_layer_equals_dense():
    X, Y = random_problem()
    kw = dict(threads=1, seed=0, optimizer=ps.Adam(lr=1e-2))
    # a small output start and no dropout keep every hidden unit alive: lazy
    # Adam skips a dense output's row (one per hidden unit) while that unit
    # is silent, but not a sampled output's rows (one per label)
    std = 0.01 / np.sqrt(10)
    dense = ps.Network(X.shape[1], [ps.Dense(10, dropout=0), ps.Dense(Y.shape[1], init_std=std)],
                       **kw)
    sampled = ps.Network(X.shape[1], [ps.Dense(10, dropout=0), ps.Sampled(Y.shape[1], active=1.0,
                                                               share="sample", init_std=std)],
                         **kw)
    dense._init_weights(1.0)
    sampled._init_weights(1.0)
    weights, start = sampled.get_weights(), dense.get_weights()
    weights[0]["W"] = start[0]["W"]
    weights[1]["W"] = start[1]["W"].T        # Dense (in, out), Sampled (out, in)
    sampled.set_weights(weights)
    for net in (dense, sampled):
        net.fit(X, Y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    np.testing.assert_allclose(sampled.get_weights()[1]["W"], dense.get_weights()[1]["W"].T,
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sampled.predict_proba(X), dense.predict_proba(X),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("k", [1, 3, 10])
def test_topk_rows_matches_numpy(threads, k):
    from pyslide import _topk
    rng = np.random.default_rng(k)
    scores = rng.normal(size=(50, 300)).astype(np.float32)
    scores[:, 17] = scores[:, 4]          # ties: the lower id must come first
    scores[3] = 1.0                       # a row of equal scores
    ids = np.zeros((50, k), np.int32)
    vals = np.zeros((50, k), np.float32)
    _topk.topk_rows(scores, k, threads, ids, vals)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(ids, order)
    np.testing.assert_array_equal(vals, np.take_along_axis(scores, order, axis=1))


@pytest.mark.parametrize("case", ["dense-sampled-batch", "lsh-batch", "dense-dense"])
def test_two_threads_match_reference_where_nothing_races(case):
    """The first Dense layer (fused gradient) and a batch-shared output have
    no HogWild race: with two threads they still match the reference."""
    X, Y = random_problem(n=48)
    net = ps.Network(X.shape[1], CASES[case](Y.shape[1]), threads=2, seed=3)
    rows = np.arange(48)
    X, Y, engine, losses = run_step(net, X, Y, rows)
    ref_losses, ref_grads = forward_backward(net, X, Y, rows, active_of(net, engine, len(rows)))
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    got = kernel_grads(net, engine)
    layers = [0] if case == "dense-dense" else range(len(net.layers))
    for i in layers:
        np.testing.assert_allclose(got[i]["W"], ref_grads[i]["W"], rtol=2e-3, atol=2e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_topk_candidates_matches_numpy(threads):
    from pyslide import _topk
    rng = np.random.default_rng(0)
    W = rng.normal(size=(200, 8)).astype(np.float32)
    b = rng.normal(size=200).astype(np.float32)
    h = rng.normal(size=(30, 8)).astype(np.float32)
    lengths = rng.integers(0, 12, size=30)
    lengths[0] = 0                                     # a row with no candidate
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    cand = np.concatenate([rng.choice(200, n, replace=False) for n in lengths]).astype(np.int32)
    k = 4
    ids = np.full((30, k), -1, np.int32)
    vals = np.full((30, k), -np.inf, np.float32)
    _topk.topk_candidates(h, indptr, cand, W, b, k, threads, ids, vals)
    for r in range(30):
        c = cand[indptr[r]:indptr[r + 1]]
        z = (W[c] @ h[r] + b[c]).astype(np.float32)
        order = np.argsort(-z, kind="stable")[:k]
        n = len(order)
        np.testing.assert_array_equal(ids[r, :n], c[order])
        np.testing.assert_allclose(vals[r, :n], z[order], rtol=1e-5)
        assert (ids[r, n:] == -1).all() and np.isneginf(vals[r, n:]).all()


def test_engine_refuses_unknown_codes():
    """Names are resolved in Python (_loss.LOSSES, _optim.OPTIMIZERS, _kernels.QUERIES);
    the engine never falls back to a default for a code it does not know."""
    X, Y = random_problem()
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], active=10,
                                                          share="sample")], seed=0)
    _, _, engine = prepared(net, X, Y, 4)
    with pytest.raises(ValueError, match="unknown optimizer code 7"):
        engine.set_optimizer(7, 0.9, 0.999, 1e-8, True)
    net.loss = "hinge"
    with pytest.raises(KeyError, match="hinge"):
        net._make_engine(4, 3, 10)
    specs = [{"sampled": 0, "in_dim": 3, "units": 2, "relu": 0,
              "W": np.zeros((3, 2), np.float32), "b": np.zeros(2, np.float32)}]
    with pytest.raises(ValueError, match="unknown loss code 5"):
        _kernels.Engine(specs, 4, 1, 5, 1, 0, False)
    assert _kernels.QUERIES == {"union": 0, "threshold": 1, "sample": 2}


def test_engine_takes_the_optimizer_once_and_every_layer_setting_given():
    """The optimizer struct is filled by set_optimizer (once per fit), and
    fill_layer holds no defaults: a spec missing a setting is refused."""
    X, Y = random_problem()
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], active=10)], seed=0)
    net._prepare_training(X, Y, 4)
    specs = [state.engine_spec(layer, *net._dims[i], 0.0)
             for i, (layer, state) in enumerate(zip(net.layers, net._states))]
    engine = _kernels.Engine(specs, 4, 1, 0, 3, 0, True, 64)
    with pytest.raises(ValueError, match="set_optimizer before optimizer_step"):
        engine.optimizer_step(1, 0.1)
    assert specs[1]["threshold"] == 2 and specs[0]["negatives"] == 0
    del specs[1]["threshold"]
    with pytest.raises(KeyError, match="threshold"):
        _kernels.Engine(specs, 4, 1, 0, 3, 0, True, 64)


def test_softmax_exp_matches_numpy():
    """The kernels' own e^x (vectorised, x <= 0) against np.exp in float64."""
    from pyslide._loss import exp_shifted_values

    x = np.linspace(-87.0, 0.0, 400_001, dtype=np.float32)
    got = exp_shifted_values(x, 0.0)
    want = np.exp(x.astype(np.float64))
    assert np.max(np.abs(got - want) / want) < 4e-7
    # the shift is subtracted first: e^(x - shift)
    np.testing.assert_allclose(exp_shifted_values(x[:1000] + 5.0, 5.0), want[:1000], rtol=4e-7)
    edge = exp_shifted_values(np.float32([0.0, -0.0, -90.0, -np.inf, np.nan]), 0.0)
    assert edge[0] == 1.0 and edge[1] == 1.0
    # far below float's normal range the value is the floor, e^-87.3 < 1.3e-38
    assert 0.0 < edge[2] < 1.3e-38 and 0.0 < edge[3] < 1.3e-38
    assert np.isnan(edge[4])
