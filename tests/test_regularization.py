"""Sampling correction, lazy AdamW, dropout and learning-rate schedules
against their NumPy references."""
import math

import numpy as np
import pytest

import pyslide as ps

from pyslide._optim import OPTIMIZERS
from reference import dropout_mask, forward_backward
from test_kernels import active_of, assert_grads_match, kernel_grads, prepared, random_problem
from test_kernels import run_step as step_with  # noqa: E402 (one step as fit runs it)


# ---------------------------------------------------------------- correction

def label_frequencies(Y):
    return np.bincount(Y.indices, minlength=Y.shape[1]) / Y.shape[0]


def test_label_log1m_is_log_one_minus_training_frequency():
    X, Y = random_problem(n=40, n_labels=30)
    net = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(30, hash=None, active=10)], seed=0)
    np.testing.assert_allclose(net._label_log1m(Y), np.log1p(-label_frequencies(Y)), rtol=1e-6)
    off = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(30, hash=None, active=10,
                                                          correction=False)])
    dense = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(30, active=30)])
    assert off._label_log1m(Y) is None and dense._label_log1m(Y) is None


def test_shared_correction_matches_reference():
    X, Y = random_problem(n=24, n_labels=200, seed=2)
    out = ps.Sampled(200, hash=ps.SimHash(K=3, L=2, seed=1), active=100, share="batch",
                     bucket_size=2)
    net = ps.Network(X.shape[1], [ps.Dense(16), out], threads=1, seed=3)
    rows = np.arange(0, 24, 2)
    log1m = net._label_log1m(Y)
    X, Y, engine, losses = step_with(net, X, Y, rows, label_log1m=log1m)
    n_labels, n_det, n_shared = engine.sampling_parts(len(rows))
    # the case exercises all three parts: labels, LSH candidates, uniform draws
    assert 0 < n_labels < n_det < n_shared
    ids = engine.active_sets(1, len(rows))[0]
    p = label_frequencies(Y)[ids]
    q_batch = 1 - (1 - p) ** (len(rows) - 1)
    q_uniform = (n_shared - n_det) / (200 - n_det)
    correction = -np.log(q_batch + q_uniform - q_batch * q_uniform)
    correction[n_labels:n_det] = 0          # LSH candidates are chosen, not drawn

    def offset(bi, out_ids):
        own = np.isin(out_ids, Y[rows[bi]].indices)
        return np.where(own, 0.0, correction)

    ref_losses, ref_grads = forward_backward(net, X, Y, rows, active_of(net, engine, len(rows)),
                                             logit_offset=offset)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    assert_grads_match(net, engine, ref_grads)


def test_per_sample_correction_matches_reference():
    X, Y = random_problem(n=24, n_labels=120, seed=4)
    out = ps.Sampled(120, hash=ps.SimHash(K=3, L=2, seed=1), active=20, share="sample",
                     bucket_size=2)
    net = ps.Network(X.shape[1], [ps.Dense(16), out], threads=1, seed=3)
    rows = np.arange(12)
    X, Y, engine, losses = step_with(net, X, Y, rows, label_log1m=net._label_log1m(Y))
    n_det = engine.sampling_parts(len(rows))
    active = active_of(net, engine, len(rows))
    n_act = np.array([len(a) for a in active[1]])
    assert (n_det < n_act).all() and (n_det > 0).all()

    def offset(bi, out_ids):
        c = np.zeros(len(out_ids))
        c[n_det[bi]:] = np.log((120 - n_det[bi]) / (len(out_ids) - n_det[bi]))
        return c

    ref_losses, ref_grads = forward_backward(net, X, Y, rows, active, logit_offset=offset)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    assert_grads_match(net, engine, ref_grads)


def test_correction_off_leaves_logits_alone():
    X, Y = random_problem(n=24, n_labels=200, seed=2)
    out = ps.Sampled(200, hash=None, active=60, share="batch", correction=False)
    net = ps.Network(X.shape[1], [ps.Dense(16), out], threads=1, seed=3)
    rows = np.arange(12)
    X, Y, engine, losses = step_with(net, X, Y, rows, label_log1m=net._label_log1m(Y))
    ref_losses, _ = forward_backward(net, X, Y, rows, active_of(net, engine, len(rows)))
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)


# ---------------------------------------------------------------- dropout

DROPOUT_CASES = {
    "shared-output": lambda L: [ps.Dense(16, dropout=0.3),
                                ps.Sampled(L, hash=None, active=20, share="batch")],
    "two-hidden-per-sample": lambda L: [ps.Dense(16, dropout=0.3), ps.Dense(12, dropout=0.5),
                                        ps.Sampled(L, hash=None, active=9, share="sample")],
    "dense-output": lambda L: [ps.Dense(16, activation="linear", dropout=0.25), ps.Dense(L)],
}


@pytest.mark.parametrize("case", sorted(DROPOUT_CASES))
def test_dropout_gradients_match_reference(case):
    X, Y = random_problem()
    net = ps.Network(X.shape[1], DROPOUT_CASES[case](Y.shape[1]), threads=1, seed=3)
    rows = np.arange(0, 24, 2)
    step = 5
    X, Y, engine, losses = step_with(net, X, Y, rows, step=step)
    masks = {i: (lambda bi, i=i, layer=layer: dropout_mask(net.seed, i, step, bi, layer.units,
                                                           layer.dropout))
             for i, layer in enumerate(net.layers[:-1]) if layer.dropout > 0}
    ref_losses, ref_grads = forward_backward(net, X, Y, rows, active_of(net, engine, len(rows)),
                                             masks=masks)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    assert_grads_match(net, engine, ref_grads)


def test_dropout_mask_drops_the_asked_fraction():
    rate, units, samples = 0.3, 64, 200
    dropped = sum((dropout_mask(11, 0, 1, b, units, rate) == 0).sum() for b in range(samples))
    n = units * samples
    se = math.sqrt(rate * (1 - rate) / n)
    assert abs(dropped / n - rate) < 4 * se
    kept = dropout_mask(11, 0, 1, 0, units, rate)
    assert np.allclose(kept[kept > 0], 1 / 0.7, rtol=1e-6)


def test_dropout_one_thread_runs_are_bit_identical_and_inference_is_deterministic():
    X, Y = random_problem(n=60, n_labels=40)
    nets = [ps.Network(X.shape[1], [ps.Dense(16, dropout=0.4),
                                    ps.Sampled(40, hash=None, active=10)], threads=1, seed=4)
            for _ in range(2)]
    for net in nets:
        net.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(nets[0]._params, nets[1]._params):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    # inference uses the layer as it is (inverted dropout): no randomness
    np.testing.assert_array_equal(nets[0].predict_proba(X[:5]), nets[0].predict_proba(X[:5]))


# ---------------------------------------------------------------- AdamW

def adam_rows(w, m, v, g, t, opt, lr_t, decay):
    m = opt.beta1 * m + (1 - opt.beta1) * g
    v = opt.beta2 * v + (1 - opt.beta2) * g * g
    a = lr_t * math.sqrt(1 - opt.beta2 ** t) / (1 - opt.beta1 ** t)
    return w * decay - a * m / (np.sqrt(v) + opt.eps), m, v


@pytest.mark.parametrize("schedule", [None, ps.CosineDecay(epochs=1.0, warmup=0.25)])
def test_lazy_adamw_equals_dense_decay_over_steps(schedule):
    """Every step decays every weight (dense AdamW); the kernel decays a row
    only when the batch reads or updates it, and must agree on those rows,
    and on all rows once the pending decay is applied."""
    X, Y = random_problem(n=48, n_labels=60, seed=6)
    # idle rows hold: the decay alone is caught up (coasting: tests/test_kernels.py)
    opt = ps.AdamW(lr=0.05, weight_decay=0.5, schedule=schedule, bias_correction="global",
                   idle_rows="hold")
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(60, hash=None, active=12)],
                     optimizer=opt, threads=1, seed=0)
    batch, steps_per_epoch = 8, 6
    X, Y, engine = prepared(net, X, Y, batch)
    ref = [{k: p[k].astype(np.float64) for k in ("W", "b", "mW", "vW", "mb", "vb")}
           for p in net._params]
    log_decay = 0.0
    for t in range(1, steps_per_epoch + 1):
        rows = np.arange((t - 1) * batch, t * batch)
        step_with(net, X, Y, rows, step=t, log_decay=log_decay, engine=engine)
        features = np.unique(X[rows].indices)
        shared = engine.active_sets(1, batch)[0]
        # the rows the batch read were decayed to the previous step first
        np.testing.assert_allclose(net._params[0]["W"][features], ref[0]["W"][features],
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(net._params[1]["W"][shared], ref[1]["W"][shared],
                                   rtol=1e-4, atol=1e-5)
        grads = kernel_grads(net, engine)
        lr_t = opt.lr_at(t, steps_per_epoch)
        log_decay += opt.log_decay_at(t, steps_per_epoch)
        engine.set_optimizer(OPTIMIZERS["adam"], opt.beta1, opt.beta2, opt.eps, True)
        engine.optimizer_step(t, opt.step_size(t, steps_per_epoch), log_decay)
        for i, touched in enumerate((features, shared)):
            r, g = ref[i], grads[i]
            r["W"] *= 1 - lr_t * opt.weight_decay
            w, m, v = adam_rows(r["W"][touched], r["mW"][touched], r["vW"][touched],
                                g["W"][touched], t, opt, lr_t, 1.0)
            r["W"][touched], r["mW"][touched], r["vW"][touched] = w, m, v
            bias_rows = touched if i == 1 else slice(None)
            b, mb, vb = adam_rows(r["b"][bias_rows], r["mb"][bias_rows], r["vb"][bias_rows],
                                  g["b"][bias_rows], t, opt, lr_t, 1.0)
            r["b"][bias_rows], r["mb"][bias_rows], r["vb"][bias_rows] = b, mb, vb
            np.testing.assert_allclose(net._params[i]["W"][touched], r["W"][touched],
                                       rtol=1e-4, atol=1e-5, err_msg=f"layer {i} step {t}")
            np.testing.assert_allclose(net._params[i]["b"], r["b"], rtol=1e-4, atol=1e-5)
    engine.apply_pending(log_decay)
    for i in range(2):
        np.testing.assert_allclose(net._params[i]["W"], ref[i]["W"], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(net._params[i]["mW"], ref[i]["mW"], rtol=1e-5, atol=1e-8)
        assert (net._params[i]["decay_mark"] == log_decay).all()


@pytest.mark.parametrize("share", ["sample", "batch"])
def test_weight_decay_owed_by_an_idle_row_is_paid_at_its_update(share):
    X, Y = random_problem(seed=8)
    opt = ps.AdamW(lr=0.01, weight_decay=2.0, bias_correction="global")
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], hash=None, active=10,
                                                          share=share)],
                     optimizer=opt, threads=1, seed=0)
    rows = np.arange(12)
    X, Y, engine = prepared(net, X, Y, len(rows))
    per_step = math.log1p(-opt.lr * opt.weight_decay)
    idle = 7                   # the output rows last paid their decay 7 steps ago
    net._params[1]["decay_mark"][:] = per_step * 0
    log_decay = per_step * idle
    step_with(net, X, Y, rows, step=idle + 1, log_decay=log_decay, engine=engine)
    grads = kernel_grads(net, engine)
    touched = np.flatnonzero(np.abs(grads[1]["W"]).sum(axis=1) > 0)
    if share == "batch":
        touched = engine.active_sets(1, len(rows))[0]
        read_before = net._params[1]["W"][touched].astype(np.float64)   # decayed already
        before = read_before / math.exp(log_decay)
    else:
        before = net._params[1]["W"][touched].astype(np.float64)
    log_decay += per_step
    engine.set_optimizer(OPTIMIZERS["adam"], opt.beta1, opt.beta2, opt.eps, True)
    engine.optimizer_step(idle + 1, opt.step_size(idle + 1), log_decay)
    w, _, _ = adam_rows(before, 0.0, 0.0, grads[1]["W"][touched], idle + 1, opt, opt.lr,
                        (1 - opt.lr * opt.weight_decay) ** (idle + 1))
    np.testing.assert_allclose(net._params[1]["W"][touched], w, rtol=2e-5, atol=1e-7)


def test_weight_decay_shrinks_weights_and_survives_save_load(tmp_path):
    X, Y = random_problem(n=64, n_labels=30)
    nets = {}
    for wd in (0.0, 0.5):
        net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(30, hash=None, active=10)],
                         optimizer=ps.Adam(lr=0.01, weight_decay=wd), threads=1, seed=0)
        net.fit(X, Y, epochs=3, batch_size=16, verbose=0)
        nets[wd] = net
    assert (np.abs(nets[0.5].get_weights()[0]["W"]).sum()
            < np.abs(nets[0.0].get_weights()[0]["W"]).sum())
    path = tmp_path / "m.npz"
    nets[0.5].save(path)
    back = ps.load(path)
    assert back.optimizer.weight_decay == 0.5 and back._log_decay == nets[0.5]._log_decay
    np.testing.assert_array_equal(back._params[0]["decay_mark"], nets[0.5]._params[0]["decay_mark"])


# ---------------------------------------------------------------- schedules

def test_schedule_factors_match_their_formulas():
    S = 10
    step = ps.StepDecay(every=2, factor=0.5, warmup=1)
    assert step.factor(1, S) == pytest.approx(1 / 10)          # warm-up ramp
    assert step.factor(5, S) == pytest.approx(5 / 10)
    assert step.factor(11, S) == pytest.approx(1.0)            # epoch 1.0 - 1: decay 0
    assert step.factor(31, S) == pytest.approx(0.5)            # 2 epochs after warm-up
    assert step.factor(51, S) == pytest.approx(0.25)
    expo = ps.ExponentialDecay(rate=0.8)
    assert expo.factor(26, S) == pytest.approx(0.8 ** 2.5)
    cos = ps.CosineDecay(epochs=4, final=0.1)
    for t in (1, 11, 21, 41, 100):
        e = min(1.0, ((t - 1) / S) / 4)
        assert cos.factor(t, S) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e)))
    opt = ps.Adam(lr=0.1, schedule=cos)
    t = 21
    assert opt.step_size(t, S) == pytest.approx(
        0.1 * cos.factor(t, S) * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t))
    assert ps.SGD(lr=0.2, schedule=expo).step_size(26, S) == pytest.approx(0.2 * 0.8 ** 2.5)


def test_fit_follows_the_schedule():
    """A step decay to 1e-9 after the first epoch freezes the weights."""
    X, Y = random_problem(n=64, n_labels=30)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(30, hash=None, active=10)],
                     optimizer=ps.SGD(lr=0.5, schedule=ps.StepDecay(every=1, factor=1e-9)),
                     threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    after_one = [p["W"] for p in net.get_weights()]
    net.fit(X, Y, epochs=2, batch_size=16, verbose=0)
    for before, p in zip(after_one, net.get_weights()):
        np.testing.assert_allclose(p["W"], before, atol=1e-6)
    assert not np.array_equal(after_one[0], np.zeros_like(after_one[0]))


def test_schedules_round_trip_through_config(tmp_path):
    X, Y = random_problem(n=32, n_labels=20)
    for schedule in (ps.StepDecay(3, 0.5, warmup=0.5), ps.ExponentialDecay(0.9),
                     ps.CosineDecay(10, final=0.05, warmup=1)):
        net = ps.Network(X.shape[1], [ps.Dense(8, dropout=0.2), ps.Sampled(20, active=5)],
                         optimizer=ps.AdamW(lr=1e-3, schedule=schedule), seed=0)
        net.fit(X, Y, epochs=1, batch_size=16, verbose=0)
        net.save(tmp_path / "m.npz")
        back = ps.load(tmp_path / "m.npz")
        assert back.get_config() == net.get_config()
        assert back.optimizer.schedule.factor(17, 2) == schedule.factor(17, 2)
        assert back.layers[0].dropout == 0.2


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, error, message", [
    (lambda: ps.Dense(8, dropout=1.0), ValueError, "dropout must be a number in [0, 1) or None"),
    (lambda: ps.Dense(8, dropout=True), ValueError, "dropout must be a number in [0, 1) or None"),
    (lambda: ps.Network(5, [ps.Dense(4), ps.Dense(3, dropout=0.5)]), ValueError,
     "dropout applies to hidden layers"),
    (lambda: ps.Sampled(10, correction="yes"), TypeError, "correction must be True or False"),
    (lambda: ps.Adam(weight_decay=-1), ValueError, "weight_decay must be >= 0"),
    (lambda: ps.AdamW(lr=0.5, weight_decay=2), ValueError, "lr * weight_decay must be below 1"),
    (lambda: ps.SGD(weight_decay="x"), TypeError, "weight_decay must be a finite number"),
    (lambda: ps.Adam(schedule="cosine"), TypeError, "schedule must be None, pyslide.Constant"),
    (lambda: ps.StepDecay(every=0), ValueError, "StepDecay: every must be > 0"),
    (lambda: ps.StepDecay(every=1, factor=2), ValueError, "StepDecay: factor must be in (0,"),
    (lambda: ps.ExponentialDecay(rate=0), ValueError, "ExponentialDecay: rate must be in (0,"),
    (lambda: ps.CosineDecay(epochs=5, final=2), ValueError, "final must be in [0, 1]"),
    (lambda: ps.CosineDecay(epochs=5, warmup=-1), ValueError, "warmup must be >= 0"),
])
def test_bad_regularization_arguments_are_named(make, error, message):
    with pytest.raises(error) as info:
        make()
    assert message in str(info.value)


# ---------------------------------------------------------------- per-row Adam

def _one_kernel_step(net, X, Y, rows, step):
    """Forward and backward of ``rows`` at ``step``, no update yet: (X, Y,
    engine, the kernel's gradients, the features the batch holds, the
    output rows it computed)."""
    X, Y, engine = prepared(net, X, Y, len(rows))
    step_with(net, X, Y, rows, step=step, engine=engine)
    grads = kernel_grads(net, engine)
    sets = engine.active_sets(1, len(rows))
    out_rows = sets[0] if net.layers[-1].share == "batch" else np.unique(np.concatenate(sets))
    return X, Y, engine, grads, np.unique(X[rows].indices), out_rows


@pytest.mark.parametrize("mode", ["row", "mixed"])
@pytest.mark.parametrize("share", ["sample", "batch"])
def test_row_bias_correction_counts_each_rows_own_updates(share, mode):
    # "mixed": the Dense layer counts per row, the Sampled output takes the
    # network's step count (and holds no counts at all)
    X, Y = random_problem(seed=9)
    opt = ps.Adam(lr=0.01, bias_correction=mode, idle_rows="hold")
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], hash=None, active=10,
                                                          share=share)],
                     optimizer=opt, threads=1, seed=0)
    step = 50
    X, Y, engine, grads, features, out_rows = _one_kernel_step(net, X, Y, np.arange(12), step)
    rng = np.random.default_rng(0)
    if mode == "mixed":
        assert "row_updates" not in net._params[1]
        net._params[1]["row_updates"] = np.zeros(Y.shape[1], np.int32)  # stands in: never read
    counts = [rng.integers(0, 40, p["row_updates"].shape).astype(np.int32) for p in net._params]
    for p, c in zip(net._params, counts):
        p["row_updates"][:] = c
    if mode == "mixed":
        counts[1][:] = step - 1     # global: every row sized as the network's step
    before = [{k: p[k].astype(np.float64) for k in ("W", "b", "mW", "vW", "mb", "vb")}
              for p in net._params]
    engine.set_optimizer(OPTIMIZERS["adam"], opt.beta1, opt.beta2, opt.eps, True)
    engine.optimizer_step(step, opt.step_size(step), 0.0, opt.lr)
    for i, touched in enumerate((features, out_rows)):
        k = counts[i][touched] + 1
        size = opt.lr * np.sqrt(1 - opt.beta2 ** k) / (1 - opt.beta1 ** k)
        g = grads[i]["W"][touched]
        m = opt.beta1 * before[i]["mW"][touched] + (1 - opt.beta1) * g
        v = opt.beta2 * before[i]["vW"][touched] + (1 - opt.beta2) * g * g
        w = before[i]["W"][touched] - size[:, None] * m / (np.sqrt(v) + opt.eps)
        np.testing.assert_allclose(net._params[i]["W"][touched], w, rtol=1e-5, atol=1e-6)
        if mode == "mixed" and i == 1:
            continue
        np.testing.assert_array_equal(net._params[i]["row_updates"][touched], k)
        untouched = np.setdiff1d(np.arange(len(counts[i])), touched)
        np.testing.assert_array_equal(net._params[i]["row_updates"][untouched],
                                      counts[i][untouched])
    # the output's bias rows follow their weight rows' counts
    k = counts[1][out_rows] + 1
    size = opt.lr * np.sqrt(1 - opt.beta2 ** k) / (1 - opt.beta1 ** k)
    gb = grads[1]["b"][out_rows]
    mb = (1 - opt.beta1) * gb + opt.beta1 * before[1]["mb"][out_rows]
    vb = (1 - opt.beta2) * gb * gb + opt.beta2 * before[1]["vb"][out_rows]
    np.testing.assert_allclose(net._params[1]["b"][out_rows],
                               before[1]["b"][out_rows] - size * mb / (np.sqrt(vb) + opt.eps),
                               rtol=1e-5, atol=1e-6)


def test_bad_bias_correction_is_named():
    with pytest.raises(ValueError, match="bias_correction must be 'row', 'global' or 'mixed'"):
        ps.Adam(bias_correction="rows")


@pytest.mark.parametrize("negatives", [0, 30])
def test_shared_set_keeps_negatives_beyond_the_labels(negatives):
    """Labels alone overflow ``active``: ``negatives`` uniform rows join them,
    and the corrected step still matches the NumPy twin."""
    X, Y = random_problem(n=24, n_labels=300, seed=5)
    out = ps.Sampled(300, hash=ps.SimHash(K=3, L=2, seed=1), active=8, share="batch",
                     bucket_size=2, negatives=negatives)
    net = ps.Network(X.shape[1], [ps.Dense(16), out], threads=1, seed=3)
    rows = np.arange(0, 24, 2)
    log1m = net._label_log1m(Y)
    X, Y, engine, losses = step_with(net, X, Y, rows, label_log1m=log1m)
    n_labels, n_det, n_shared = engine.sampling_parts(len(rows))
    ids = engine.active_sets(1, len(rows))[0]
    assert n_labels == len(np.unique(Y[rows].indices)) > 8
    # the labels fill active: no LSH candidate fits, the rest is uniform
    assert n_det == n_labels
    assert n_shared == n_labels + negatives == out.filled_rows(n_labels)
    assert len(np.unique(ids)) == len(ids) == n_shared
    p = label_frequencies(Y)[ids]
    q_batch = 1 - (1 - p) ** (len(rows) - 1)
    q_uniform = (n_shared - n_det) / (300 - n_det)
    correction = -np.log(q_batch + q_uniform - q_batch * q_uniform)

    def offset(bi, out_ids):
        own = np.isin(out_ids, Y[rows[bi]].indices)
        return np.where(own, 0.0, correction)

    ref_losses, ref_grads = forward_backward(net, X, Y, rows, active_of(net, engine, len(rows)),
                                             logit_offset=offset)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-4, atol=1e-5)
    assert_grads_match(net, engine, ref_grads)


def test_filled_rows_is_min_active_or_negatives_beyond_the_labels():
    out = ps.Sampled(1000, active=50, min_active=40, negatives=10)
    assert out.filled_rows(5) == 40          # min_active rules
    assert out.filled_rows(35) == 45         # 10 negatives beyond the labels


def test_negatives_default_and_bad_values():
    assert ps.Sampled(100_000).negatives == 8192
    assert ps.Sampled(100_000, active=1000).negatives == 1000
    assert ps.Sampled(100_000, share="sample").negatives == 0
    assert ps.Sampled(100, negatives=10_000).negatives == 100
    with pytest.raises(ValueError, match="negatives applies to share='batch'"):
        ps.Sampled(1000, share="sample", negatives=5)
    with pytest.raises(ValueError, match="Sampled: negatives must be"):
        ps.Sampled(1000, negatives=-1)
    with pytest.raises(TypeError, match="Sampled: negatives must be"):
        ps.Sampled(1000, negatives=2.5)
    config = ps.Sampled(1000, negatives=7).get_config()
    assert config["negatives"] == 7
    assert ps.layers.layer_from_config(config).negatives == 7


def _prior_reference(Y, loss):
    """``bias_init="prior"`` in NumPy: half-row-smoothed log frequency (softmax)
    or log-odds (BCE) of each label in Y."""
    counts = np.bincount(Y.indices, minlength=Y.shape[1]).astype(np.float64)
    n = Y.shape[0]
    if loss == "bce":
        return np.log((counts + 0.5) / (n - counts + 0.5))
    return np.log((counts + 0.5) / (n + 0.5))


def _started(net, X, Y):
    """net with the start fit gives it (weights drawn, biases set), untrained."""
    net._prepare_training(net._check_X(X), net._check_Y(Y, X.shape[0]), 8)
    return net


@pytest.mark.parametrize("loss", ["softmax", "bce"])
@pytest.mark.parametrize("share", ["batch", "sample"])
def test_sampled_output_biases_start_at_the_label_prior(loss, share):
    X, Y = random_problem(n=40, n_labels=300, seed=7)
    assert (np.bincount(Y.indices, minlength=300) == 0).any()   # absent labels too
    net = ps.Network(X.shape[1], [ps.Dense(16), ps.Sampled(300, active=24, share=share)],
                     loss=loss, threads=1, seed=0)
    _started(net, X, Y)
    weights = net.get_weights()
    np.testing.assert_allclose(weights[-1]["b"], _prior_reference(Y, loss), rtol=1e-6)
    assert not np.any(weights[0]["b"])        # hidden biases stay zero
    # the start is ranked by popularity: a label held by more rows starts higher
    counts = np.bincount(Y.indices, minlength=300)
    b = weights[-1]["b"]
    assert np.all(np.diff(b[np.argsort(counts, kind="stable")]) >= 0)


def test_bias_init_zero_auto_and_explicit_prior():
    X, Y = random_problem(n=40, n_labels=60, seed=8)
    for out, expect_prior in [(ps.Sampled(60, active=12, bias_init="zero"), False),
                              (ps.Sampled(60, active=60), False),     # auto, every label computed
                              (ps.Sampled(60, active=60, bias_init="prior"), True)]:
        net = ps.Network(X.shape[1], [ps.Dense(8), out], threads=1, seed=0)
        _started(net, X, Y)
        b = net.get_weights()[-1]["b"]
        if expect_prior:
            np.testing.assert_allclose(b, _prior_reference(Y, "softmax"), rtol=1e-6)
        else:
            assert not np.any(b), out.get_config()


def test_prior_is_set_once_a_trained_network_keeps_its_biases():
    X, Y = random_problem(n=40, n_labels=60, seed=9)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(60, active=12)], threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=8, verbose=0)
    trained = net.get_weights()[-1]["b"]
    assert not np.allclose(trained, _prior_reference(Y, "softmax"))   # training moved them
    # a second fit on other labels continues from the trained biases
    _started(net, X, Y[::-1])
    np.testing.assert_array_equal(net.get_weights()[-1]["b"], trained)


def test_bias_init_bad_values_are_named():
    with pytest.raises(ValueError, match="Sampled: bias_init must be 'auto', 'prior' or 'zero', got 'log'"):
        ps.Sampled(100, bias_init="log")
    with pytest.raises(ValueError, match=r"layers\[0\]: bias_init='prior' .* hidden layer"):
        ps.Network(50, [ps.Sampled(20, active=5, share="sample", bias_init="prior"),
                        ps.Sampled(30, active=5, share="sample")])
    config = ps.Sampled(100, bias_init="zero").get_config()
    assert config["bias_init"] == "zero"
    assert ps.layers.layer_from_config(config).bias_init == "zero"
    assert ps.Sampled(100).bias_init == "auto"


# ---------------------------------------------------------------- output step scale

@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("share", ["sample", "batch"])
def test_lr_scale_multiplies_the_output_step_only(share, kind):
    X, Y = random_problem(seed=10)
    scale = 1.7
    opt = ps.Adam(lr=0.01, bias_correction="mixed") if kind == "adam" else ps.SGD(lr=0.05)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], hash=None, active=10,
                                                          share=share, lr_scale=scale)],
                     optimizer=opt, threads=1, seed=0)
    step = 30
    X, Y, engine, grads, features, out_rows = _one_kernel_step(net, X, Y, np.arange(12), step)
    # fit sets each sampled layer's multiplier before every update
    engine.set_lr_scale(1, net._lr_scale(1, step))
    hidden_updates = 5      # "mixed": the hidden rows count their own updates
    if kind == "adam":
        net._params[0]["row_updates"][:] = hidden_updates
    before = [{k: p[k].astype(np.float64) for k in p if k in ("W", "b", "mW", "vW", "mb", "vb")}
              for p in net._params]
    if kind == "adam":
        engine.set_optimizer(OPTIMIZERS["adam"], opt.beta1, opt.beta2, opt.eps, True)
        engine.optimizer_step(step, opt.step_size(step), 0.0, opt.lr)
    else:
        engine.set_optimizer(OPTIMIZERS["sgd"], 0, 0, 0, True)
        engine.optimizer_step(step, opt.lr, 0.0, opt.lr)
    # (layer, rows, weights or bias, the Adam step count, the multiplier)
    for i, touched, name, t, factor in [(0, features, "W", hidden_updates + 1, 1.0),
                                        (1, out_rows, "W", step, scale),
                                        (1, out_rows, "b", step, scale)]:
        g = grads[i][name][touched]
        w0 = before[i][name][touched]
        if kind == "sgd":
            expect = w0 - factor * opt.lr * g
        else:
            moments = "m" + name, "v" + name
            expect = adam_rows(w0, before[i][moments[0]][touched], before[i][moments[1]][touched],
                               g, t, opt, factor * opt.lr, 1.0)[0]
        np.testing.assert_allclose(net._params[i][name][touched], expect, rtol=1e-5, atol=1e-6,
                                   err_msg=f"layer {i} {name}")


def test_lr_scale_auto_scales_only_a_sampled_output_by_visits():
    """"auto": 1.5 until the output's rows were in the set 128 times on
    average (32 when its idle rows coast, the default) or fit passed over
    its rows twice, then inversely to the further of the two, down to 0.5
    (no per-epoch list)."""
    from pyslide.network import (AUTO_LR_FLOOR, AUTO_LR_PASSES, AUTO_LR_START,
                                 AUTO_LR_VISITS, AUTO_LR_VISITS_COASTING, auto_lr_scale)
    assert auto_lr_scale(0) == AUTO_LR_START == 1.5
    assert auto_lr_scale(AUTO_LR_VISITS) == 1.5
    assert auto_lr_scale(2 * AUTO_LR_VISITS) == pytest.approx(0.75)
    assert auto_lr_scale(100 * AUTO_LR_VISITS) == AUTO_LR_FLOOR == 0.5
    # passes over the rows: the further clock counts
    assert AUTO_LR_PASSES == 2
    assert auto_lr_scale(0, 2.0) == 1.5 and auto_lr_scale(0, 3.0) == pytest.approx(1.0)
    assert auto_lr_scale(3 * AUTO_LR_VISITS, 3.0) == pytest.approx(0.5)
    assert auto_lr_scale(AUTO_LR_VISITS / 2, 4.0) == pytest.approx(0.75)
    # rows that coast: the visit clock runs to 32
    assert AUTO_LR_VISITS_COASTING == 32
    assert auto_lr_scale(AUTO_LR_VISITS_COASTING, coasting=True) == 1.5
    assert auto_lr_scale(2 * AUTO_LR_VISITS_COASTING, coasting=True) == pytest.approx(0.75)
    assert auto_lr_scale(2 * AUTO_LR_VISITS_COASTING, 6.0, coasting=True) == pytest.approx(0.5)
    long_epochs = [1, 200, 400, 600]        # visits 0, 39.8, 79.8, 119.8; passes near 0
    for idle_rows, coasting in [("mixed", True), ("coast", True), ("hold", False)]:
        net = ps.Network(20, [ps.Dense(8), ps.Sampled(60, active=12)],
                         optimizer=ps.Adam(idle_rows=idle_rows), threads=1)
        got = [net._lr_scale(1, s, steps_per_epoch=100_000) for s in long_epochs]
        assert got == pytest.approx([auto_lr_scale((s - 1) * 12 / 60, (s - 1) / 100_000,
                                                   coasting=coasting) for s in long_epochs])
        assert (got[-1] < 1.5) == coasting, (idle_rows, got)

    def scales(net, layer, steps):
        return [net._lr_scale(layer, step, steps_per_epoch=10) for step in steps]

    net = ps.Network(20, [ps.Dense(8), ps.Sampled(60, active=12)], threads=1)
    steps = [1, 50, 400, 3000]
    assert scales(net, 0, steps) == [1.0] * 4
    # before fit: a step's set is taken as `active` rows of 60
    assert net._visit_rate() == pytest.approx(12 / 60)
    assert scales(net, 1, steps) == [auto_lr_scale((s - 1) * 12 / 60, (s - 1) / 10, coasting=True)
                                     for s in steps]
    for layers, expect in [
            ([ps.Dense(8), ps.Sampled(60, active=60)], [1.0] * 4),         # every label computed
            ([ps.Dense(8), ps.Sampled(60, active=12, lr_scale=1.0)], [1.0] * 4),
            ([ps.Dense(8), ps.Sampled(60, active=60, lr_scale=3)], [3.0] * 4),
            ([ps.Dense(8), ps.Sampled(60, active=12, lr_scale=[2, 0.5])], [2.0, 0.5, 0.5, 0.5])]:
        net = ps.Network(20, layers, threads=1)
        assert scales(net, 1, steps) == expect, layers
    # a sampled hidden layer keeps 1 under "auto"; the sampled output below it scales
    net = ps.Network(20, [ps.Sampled(30, active=5, share="sample"),
                          ps.Sampled(60, active=12, share="sample")], threads=1)
    assert scales(net, 0, steps) == [1.0] * 4
    assert scales(net, 1, steps) == [auto_lr_scale((s - 1) * 12 / 60, (s - 1) / 10, coasting=True)
                                     for s in steps]


@pytest.mark.parametrize("share", ["batch", "sample"])
def test_visit_rate_matches_the_sets_steps_hold(share):
    """The clock of lr_scale="auto": the estimated share of output rows in a
    step's set is close to the share the engine's sets hold."""
    X, Y = random_problem(n=400, n_labels=300, seed=5)
    out = ps.Sampled(300, hash=None, active=20, share=share)
    net = ps.Network(X.shape[1], [ps.Dense(8), out], threads=1, seed=0)
    run = net._prepare_training(net._check_X(X), net._check_Y(Y, X.shape[0]), 32)
    rate = net._visit_rate()
    held = []
    for step in range(1, 11):
        rows = np.arange((step - 1) * 32, step * 32, dtype=np.int64)
        run.engine.train_step(run.x_indptr, run.X.indices, run.X.data, run.y_indptr,
                              run.Y.indices, rows, step, run.losses, 0.0)
        sets = run.engine.active_sets(1, 32)
        held.append(np.unique(np.concatenate(sets)).size / 300)
        run.engine.discard_gradients(step)
    assert 0 < rate <= 1
    assert rate == pytest.approx(np.mean(held), rel=0.25), (rate, np.mean(held))


@pytest.mark.parametrize("share", ["sample", "batch"])
def test_fit_applies_lr_scale_per_epoch(share):
    """With the output's second-epoch multiplier near zero, epoch 2 moves the
    hidden layer but leaves the output where epoch 1 left it."""
    X, Y = random_problem(n=48, n_labels=40, seed=11)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(40, hash=None, active=10, share=share,
                                                          lr_scale=[1.0, 1e-7])],
                     optimizer=ps.SGD(lr=0.5), threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    after_one = net.get_weights()
    net.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    after_two = net.get_weights()
    assert np.abs(after_two[0]["W"] - after_one[0]["W"]).max() > 1e-3
    np.testing.assert_allclose(after_two[1]["W"], after_one[1]["W"], atol=1e-6)
    np.testing.assert_allclose(after_two[1]["b"], after_one[1]["b"], atol=1e-6)
    # and the first epoch did move it
    fresh = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(40, hash=None, active=10,
                                                            share=share)],
                       optimizer=ps.SGD(lr=0.5), threads=1, seed=0)
    fresh._prepare_training(fresh._check_X(X), fresh._check_Y(Y, X.shape[0]), 16)
    assert np.abs(fresh.get_weights()[1]["W"] - after_one[1]["W"]).max() > 1e-3


def test_lr_scale_bad_values_are_named_and_round_trip():
    for bad in ["fast", 0, -1.0, float("nan"), float("inf"), True, None, [], [1.0, 0], ["a"]]:
        with pytest.raises(ValueError, match="Sampled: lr_scale must be 'auto', a positive "
                                             "number or a non-empty list of them"):
            ps.Sampled(100, lr_scale=bad)
    assert ps.Sampled(100).lr_scale == "auto"
    assert ps.Sampled(100, lr_scale=[2, 1]).lr_scale == (2.0, 1.0)
    for value, stored in [(2, 2.0), ([1.5, 1], [1.5, 1.0]), ("auto", "auto")]:
        config = ps.Sampled(100, lr_scale=value).get_config()
        assert config["lr_scale"] == stored
        assert ps.layers.layer_from_config(config).get_config() == config
