"""ShardedNetwork on a local Ray cluster: the same training as Network, inference,
callbacks, saving and loading, faults, bytes per step. Skipped without Ray."""
import gc
import os
import re
import time

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: the distributed tests need "
                                        "pip install -e '.[test,distributed]'")

import pyslide as ps  # noqa: E402
from pyslide.distributed import PlacementError, ShardError, ShardedNetwork  # noqa: E402,E501

STEPS_EPOCHS = 16          # 19 steps an epoch: 304 steps


@pytest.fixture(scope="session")
def cluster():
    """One local two-CPU Ray cluster for every test of the session."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def small():
    X, Y = ps.data.make_xc("small", n_samples=600, seed=0)
    return X, Y


def dense_layers(n_out):
    return [ps.Dense(32), ps.Sampled(n_out, active=1.0)]


@pytest.fixture(scope="module")
def single(small):
    """The single-node network the sharded ones must equal."""
    X, Y = small
    net = ps.Network(X.shape[1], dense_layers(Y.shape[1]), threads=1, seed=3)
    net.fit(X, Y, epochs=STEPS_EPOCHS, batch_size=32, verbose=0)
    return net


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_shards_train_the_single_node_network(cluster, small, single, shards):
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=shards, threads=1,
                         seed=3)
    try:
        net.fit(X, Y, epochs=STEPS_EPOCHS, batch_size=32, verbose=0)
        assert net.step_ == single.step_ >= 300
        np.testing.assert_allclose(net.get_weights()[0]["W"], single.get_weights()[0]["W"],
                                   atol=1e-5)
        np.testing.assert_allclose(net.get_weights()[0]["b"], single.get_weights()[0]["b"],
                                   atol=1e-5)
        out = net.output_arrays()
        for name in ("W", "b", "mW", "vW"):
            np.testing.assert_allclose(out[name], single._states[-1][name], atol=1e-5,
                                       err_msg=name)
        np.testing.assert_allclose(net.history_["loss"], single.history_["loss"], rtol=1e-5)
        ids, scores = net.predict_topk(X[:100], k=5)
        ref_ids, ref_scores = single.predict_topk(X[:100], k=5)
        np.testing.assert_allclose(scores, ref_scores, atol=1e-4)
        # ids agree wherever the scores are not tied within float noise
        gaps = np.diff(ref_scores, axis=1)
        clear = np.all(np.abs(gaps) > 1e-4, axis=1)
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(ids[clear], ref_ids[clear])
        if shards == 1:
            # one shard is the same arithmetic in the same order
            np.testing.assert_array_equal(out["W"], single.get_weights()[-1]["W"])
    finally:
        net.close()


def test_bce_two_shards_match_single_node(cluster, small):
    X, Y = small
    kw = dict(loss="bce", threads=1, seed=5)
    single = ps.Network(X.shape[1], dense_layers(Y.shape[1]), **kw)
    single.fit(X, Y, epochs=3, batch_size=32, verbose=0)
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, **kw)
    try:
        net.fit(X, Y, epochs=3, batch_size=32, verbose=0)
        np.testing.assert_allclose(net.output_arrays()["W"], single.get_weights()[-1]["W"],
                                   atol=1e-5)
        np.testing.assert_allclose(net.history_["loss"], single.history_["loss"], rtol=1e-5)
        with pytest.raises(ValueError, match=r"sampled=True\) needs a Sampled output layer "
                                             r"with a hash family"):
            net.predict_topk(X[:3], sampled=True)
        twin = ShardedNetwork.from_config(net.get_config())
        assert twin.get_config() == net.get_config() and twin.shards == 2
        assert net.get_config()["shards"] == 2
        twin.close()
        with pytest.raises(ValueError, match=r"config: unknown key\(s\) 'shard'; known keys: "
                                             r"input_dim, .*shards"):
            ShardedNetwork.from_config(dict(net.get_config(), shard=3))
        with pytest.raises(TypeError, match=r"like ShardedNetwork.get_config\(\) returns"):
            ShardedNetwork.from_config([("shards", 2)])
        with pytest.raises(ValueError, match="config needs 'input_dim' and 'layers'"):
            ShardedNetwork.from_config({"shards": 2, "input_dim": 5})
    finally:
        net.close()


def _sampled_layers(Y, hash_):
    return [ps.Dense(32), ps.Sampled(Y.shape[1], active=120, hash=hash_, rebuild_every=5)]


def _trained_single_and_one_shard(X, Y, hash_, optimizer="adam"):
    """A Network and a one-shard ShardedNetwork of the same sampled model,
    each trained two epochs from the same seed (the caller closes the
    sharded one)."""
    single = ps.Network(X.shape[1], _sampled_layers(Y, hash_), optimizer=optimizer, threads=1,
                        seed=6)
    single.fit(X, Y, epochs=2, batch_size=32, verbose=0)
    net = ShardedNetwork(X.shape[1], _sampled_layers(Y, hash_), shards=1, optimizer=optimizer,
                         threads=1, seed=6)
    try:
        net.fit(X, Y, epochs=2, batch_size=32, verbose=0)
    except BaseException:
        net.close()
        raise
    return single, net


@pytest.mark.parametrize("output", ["lsh", "uniform", "uniform-hold", "uniform-coast"])
def test_one_shard_samples_exactly_as_the_single_node(cluster, small, output):
    """With one shard the sampled path (LSH candidates and their budget, the
    uniform top-up, the sampling correction, the rebuilds) is Network's;
    so are lazy Adam's idle rows, whether they hold or coast."""
    X, Y = small
    idle_rows = output.split("-")[1] if "-" in output else None
    optimizer = ps.Adam(idle_rows=idle_rows) if idle_rows else "adam"
    single, net = _trained_single_and_one_shard(X, Y, "auto" if output == "lsh" else None,
                                                optimizer)
    try:
        np.testing.assert_array_equal(net.output_arrays()["W"], single.get_weights()[-1]["W"])
        # the biases too, which both started at the label prior (bias_init="auto")
        np.testing.assert_array_equal(net.output_arrays()["b"], single.get_weights()[-1]["b"])
        np.testing.assert_array_equal(net.get_weights()[0]["W"], single.get_weights()[0]["W"])
        if output == "lsh":
            # the same tables too: sampled inference returns the same top k
            ids, scores = net.predict_topk(X[:60], k=3, sampled=True)
            ref_ids, ref_scores = single.predict_topk(X[:60], k=3, sampled=True)
            np.testing.assert_array_equal(ids, ref_ids)
            np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    finally:
        net.close()


def test_weights_of_one_shard_equal_the_single_nodes(cluster, small):
    """get_weights gathers the output rows; set_weights scatters them, and
    the shards rehash: one shard then predicts (sampled too) as Network."""
    X, Y = small
    single, net = _trained_single_and_one_shard(X, Y, "auto")
    try:
        for a, b in zip(net.get_weights(), single.get_weights()):
            np.testing.assert_array_equal(a["W"], b["W"])
            np.testing.assert_array_equal(a["b"], b["b"])
        other = ps.Network(X.shape[1], _sampled_layers(Y, "auto"), threads=1, seed=6)
        other.fit(X, Y, epochs=5, batch_size=32, verbose=0)
        net.set_weights(other.get_weights())
        single.set_weights(other.get_weights())
        ids, scores = net.predict_topk(X[:60], k=3, sampled=True)
        ref_ids, ref_scores = single.predict_topk(X[:60], k=3, sampled=True)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
        np.testing.assert_allclose(net.predict_proba(X[:30]), other.predict_proba(X[:30]),
                                   rtol=1e-5, atol=1e-7)
    finally:
        net.close()


def test_weights_scatter_over_shards_and_are_checked(cluster, small):
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=3, threads=1, seed=2)
    try:
        net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        weights = net.get_weights()
        assert weights[0]["W"].shape == (X.shape[1], 32)
        assert weights[1]["W"].shape == (Y.shape[1], 32)
        weights[1]["W"] *= -1
        weights[1]["b"] += 1
        net.set_weights(weights)
        out = net.output_arrays()
        np.testing.assert_array_equal(out["W"], weights[1]["W"])
        np.testing.assert_array_equal(out["b"], weights[1]["b"])
        weights[1]["W"] = weights[1]["W"][:-1]
        with pytest.raises(ValueError, match=r"weights\[1\]\['W'\] must have shape "
                                             r"\(\d+, 32\), got"):
            net.set_weights(weights)
    finally:
        net.close()


@pytest.mark.parametrize("optimizer", [ps.AdamW(weight_decay=0.05), ps.SGD(lr=0.2)],
                         ids=["adamw", "sgd"])
def test_two_shards_follow_the_single_node_optimizer(cluster, small, optimizer):
    X, Y = small
    single = ps.Network(X.shape[1], dense_layers(Y.shape[1]), optimizer=optimizer,
                        threads=1, seed=8)
    single.fit(X, Y, epochs=2, batch_size=32, verbose=0)
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, optimizer=optimizer,
                         threads=1, seed=8)
    try:
        net.fit(X, Y, epochs=2, batch_size=32, verbose=0)
        np.testing.assert_allclose(net.output_arrays()["W"], single.get_weights()[-1]["W"],
                                   atol=1e-5)
        np.testing.assert_allclose(net.get_weights()[0]["W"], single.get_weights()[0]["W"],
                                   atol=1e-5)
    finally:
        net.close()


def test_lsh_sampled_p_at_1_within_noise_of_single_node(cluster):
    X, Y = ps.data.make_xc("small", n_samples=3000, seed=1)
    Xt, Yt, Xv, Yv = X[:2400], Y[:2400], X[2400:], Y[2400:]
    layers = lambda: [ps.Dense(32), ps.Sampled(Y.shape[1], active=200)]  # noqa: E731
    kw = dict(optimizer=ps.Adam(lr=0.01), threads=1, seed=0)
    single = ps.Network(X.shape[1], layers(), **kw)
    single.fit(Xt, Yt, epochs=3, batch_size=64, verbose=0)
    p_single = single.evaluate(Xv, Yv, k=1)["p@1"]
    # two threads in each shard: their kernels run in parallel inside an actor
    net = ShardedNetwork(X.shape[1], layers(), shards=2, **dict(kw, threads=2))
    try:
        net.fit(Xt, Yt, epochs=3, batch_size=64, verbose=0)
        p_sharded = net.evaluate(Xv, Yv, k=1)["p@1"]
        # three standard errors of a P@1 on 600 rows
        noise = 3 * np.sqrt(max(p_single * (1 - p_single), 0.01) / Xv.shape[0])
        assert p_single > 0.2
        assert abs(p_sharded - p_single) < noise, (p_sharded, p_single, noise)
        # the shards' tables answer sampled queries with ids of their own rows
        ids, scores = net.predict_topk(Xv[:50], k=3, sampled=True)
        assert ids.max() < Y.shape[1] and (ids[:, 0] >= 0).all()
        assert np.all(np.diff(scores, axis=1) <= 0)
        memory = net.shard_memory()
        # W, mW, vW rows; b, mb, vb; a touched stamp and a coast mark (the
        # output's idle rows coast by default)
        per_row = 4 * (32 * 3 + 3 + 2)
        for r, m in enumerate(memory):
            rows = net.bounds[r + 1] - net.bounds[r]
            assert m["arrays"] == pytest.approx(rows * per_row, rel=0.005)
            assert m["arrays"] == pytest.approx(Y.shape[1] * per_row / 2, rel=0.02)
    finally:
        net.close()


def test_save_load_across_shard_counts_and_single_node(cluster, small, tmp_path):
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, threads=1, seed=7)
    loaded = []
    try:
        net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        folder = tmp_path / "model"
        net.save(folder)
        assert sorted(os.listdir(folder)) == ["manifest.json", "shard-0.npz", "shard-1.npz",
                                              "trunk.npz"]
        ids, scores = net.predict_topk(X[:40], k=4)
        for shards in (None, 3):
            other = ps.load(folder, shards=shards)
            loaded.append(other)
            assert isinstance(other, ShardedNetwork)
            assert other.shards == (2 if shards is None else shards)
            assert other.step_ == net.step_ and other.epoch_ == 1
            if shards is None:
                np.testing.assert_array_equal(other.predict_topk(X[:40], k=4)[1], scores)
            else:
                # the same weights; BLAS rounds a 334-row block's products
                # differently from a 500-row block's (one ulp seen)
                np.testing.assert_allclose(other.predict_topk(X[:40], k=4)[1], scores,
                                           rtol=1e-6)
        single = ps.Network.load(folder)
        assert type(single) is ps.Network
        # the same weights (checked bit for bit below); BLAS rounds the
        # 1000-row output's products differently from a 500-row shard's (one
        # ulp seen in one of 160 scores once Adam's default became "global")
        np.testing.assert_allclose(single.predict_topk(X[:40], k=4)[1], scores, rtol=1e-6)
        np.testing.assert_array_equal(single.predict(X[:40], k=4), ids)
        np.testing.assert_allclose(net.predict_proba(X[:5]), single.predict_proba(X[:5]),
                                   rtol=1e-5, atol=1e-9)
        gathered = net.to_network()
        for name in ("W", "mW", "vW", "b"):
            np.testing.assert_array_equal(gathered._states[-1][name], single._states[-1][name])
        assert gathered.step_ == net.step_
        # a single-node model loads sharded, weights and optimizer state alike
        path = tmp_path / "single.npz"
        single.save(path)
        sharded = ps.load(path, shards=2)
        loaded.append(sharded)
        for name in ("W", "mW", "vW", "b"):
            np.testing.assert_array_equal(sharded.output_arrays()[name], single._states[-1][name])
        # saving over an existing model replaces it whole
        net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        net.save(folder)
        assert ps.load(folder, shards=1).step_ == net.step_
        assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]
        # damage is found by the checksums, naming the file and the array
        with np.load(folder / "shard-1.npz") as data:
            arrays = {k: data[k] for k in data.files}
        arrays["W"] = arrays["W"] + 1
        np.savez(folder / "shard-1.npz", **arrays)
        with pytest.raises(ValueError, match=r"shard-1.npz'?: checksum mismatch in W"):
            ps.Network.load(folder)
        with pytest.raises(ShardError, match=r"shard 1 of 2 .* failed: .*checksum mismatch in W"):
            ps.load(folder)
        # a folder that is not a sharded model is never replaced
        (tmp_path / "other").mkdir()
        with pytest.raises(ValueError, match="exists and is not a sharded model folder"):
            net.save(tmp_path / "other")
    finally:
        for other in [net] + loaded:
            other.close()


def test_training_resumes_from_a_loaded_folder_as_if_uninterrupted(cluster, small, tmp_path):
    X, Y = small
    kw = dict(shards=2, threads=1, seed=11)
    straight = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), **kw)
    resumed = None
    try:
        straight.fit(X, Y, epochs=2, batch_size=32, verbose=0)
        first = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), **kw)
        first.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        first.save(tmp_path / "m")
        first.close()
        resumed = ShardedNetwork.load(tmp_path / "m")
        resumed.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        np.testing.assert_array_equal(resumed.output_arrays()["W"],
                                      straight.output_arrays()["W"])
        np.testing.assert_array_equal(resumed.get_weights()[0]["W"], straight.get_weights()[0]["W"])
    finally:
        straight.close()
        if resumed is not None:
            resumed.close()


def test_callbacks_and_validation_as_with_network(cluster, small, tmp_path):
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, threads=1, seed=2)
    single = ps.Network(X.shape[1], dense_layers(Y.shape[1]), threads=1, seed=2)
    try:
        kw = dict(epochs=4, batch_size=32, verbose=0, validation_split=0.2)
        checkpoint = ps.ModelCheckpoint(str(tmp_path / "best-{epoch}"), monitor="val_p@1")
        # the same early stopping on both: it stops and restores alike
        history = net.fit(X, Y, callbacks=[checkpoint, ps.EarlyStopping(
            monitor="val_p@1", patience=1, restore_best=True)], **kw)
        ref = single.fit(X, Y, callbacks=[ps.EarlyStopping(monitor="val_p@1", patience=1,
                                                           restore_best=True)], **kw)
        np.testing.assert_allclose(history["val_loss"], ref["val_loss"], rtol=1e-4)
        np.testing.assert_allclose(history["val_p@1"], ref["val_p@1"], atol=1e-9)
        assert net.best_epoch_ == single.best_epoch_ and net.step_ == single.step_
        np.testing.assert_allclose(net.output_arrays()["W"], single.get_weights()[-1]["W"],
                                   atol=1e-5)
        assert checkpoint.saved and all(os.path.isdir(p) for p in checkpoint.saved)
        best = ps.load(checkpoint.saved[-1], shards=1)
        assert best.epoch_ == checkpoint.best_epoch
        best.close()
        assert net.evaluate(X[:100], Y[:100]) == pytest.approx(single.evaluate(X[:100], Y[:100]))
        # early stopping puts back the best epoch's weights, in every shard
        snapshot = net._snapshot()
        W = net.output_arrays()["W"]
        net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        assert not np.array_equal(net.output_arrays()["W"], W)
        net._restore(snapshot)
        np.testing.assert_array_equal(net.output_arrays()["W"], W)
    finally:
        net.close()


def test_a_dead_shard_stops_fit_naming_it_and_the_checkpoint_resumes(cluster, small, tmp_path):
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, threads=1, seed=4)
    resumed = None
    path = str(tmp_path / "ckpt")

    def kill_shard_1(network, epoch, logs):
        if epoch == 2:
            ray.kill(network._actors[1])

    try:
        checkpoint = ps.ModelCheckpoint(path, monitor="loss", save_best_only=False)
        with pytest.raises(ShardError, match=r"shard 1 of 2 \(output rows 500 to 999\) died"):
            net.fit(X, Y, epochs=4, batch_size=32, verbose=0,
                    callbacks=[checkpoint, kill_shard_1])
        # the network closed itself: its other shard is gone too, and using it says why
        assert net._actors == []
        with pytest.raises(RuntimeError, match=r"this ShardedNetwork has no shards: shard 1 of "
                                               r"2 \(output rows 500 to 999\) died; load a "
                                               r"saved model or checkpoint"):
            net.predict(X[:2])
        resumed = ShardedNetwork.load(path)
        assert resumed.epoch_ == 2
        resumed.fit(X, Y, epochs=2, batch_size=32, verbose=0)
        assert resumed.epoch_ == 4 and len(resumed.history_["loss"]) == 4
        assert resumed.history_["loss"][-1] < resumed.history_["loss"][0]
    finally:
        net.close()
        if resumed is not None:
            resumed.close()


def test_bytes_per_step_do_not_grow_with_the_labels(cluster):
    measured = []
    for n_labels in (500, 4000):
        X, Y = ps.data.make_xc("small", n_samples=256, n_labels=n_labels, seed=0)
        net = ShardedNetwork(X.shape[1], [ps.Dense(32), ps.Sampled(n_labels, active=100)],
                             shards=2, threads=1, seed=0)
        try:
            net.fit(X, Y, epochs=1, batch_size=64, verbose=0)
            measured.append(net.bytes_per_step_)
        finally:
            net.close()
    hidden_bytes = 64 * 32 * 4
    for m in measured:
        # the hidden vectors out, two hidden-gradient parts back, plus labels and scalars
        assert hidden_bytes <= m["sent"] < 1.5 * hidden_bytes
        assert 2 * hidden_bytes <= m["received"] < 2.5 * hidden_bytes
    assert measured[1]["received"] == pytest.approx(measured[0]["received"], rel=0.05)
    assert measured[1]["sent"] == pytest.approx(measured[0]["sent"], rel=0.2)


def test_arguments_are_checked_naming_them(cluster):
    with pytest.raises(ValueError, match="shards must be >= 1"):
        ShardedNetwork(10, [ps.Dense(4), ps.Sampled(20)], shards=0)
    with pytest.raises(TypeError, match="shards must be an int"):
        ShardedNetwork(10, [ps.Dense(4), ps.Sampled(20)], shards=1.5)
    with pytest.raises(ValueError, match="shards must be <= the output layer's units"):
        ShardedNetwork(10, [ps.Dense(4), ps.Sampled(3)], shards=4)
    with pytest.raises(ValueError, match="layers: a ShardedNetwork's output layer"):
        ShardedNetwork(10, [ps.Dense(4), ps.Dense(20)], shards=2)
    with pytest.raises(ValueError, match="layers: a ShardedNetwork's output layer"):
        ShardedNetwork(10, [ps.Dense(4), ps.Sampled(20, share="sample")], shards=2)
    with pytest.raises(TypeError, match="actor_options must be"):
        ShardedNetwork(10, [ps.Dense(4), ps.Sampled(20)], shards=2, actor_options=[1])


def test_a_loss_that_is_not_finite_stops_fit_and_drops_the_step(cluster, small):
    X, Y = small
    layers = [ps.Dense(32, init_std=1e20, dropout=0.0), ps.Sampled(Y.shape[1], active=1.0,
                                                                   init_std=1e20)]
    net = ShardedNetwork(X.shape[1], layers, shards=2, threads=1, seed=0)
    try:
        with pytest.raises(FloatingPointError, match="the loss became nan at step 1"):
            net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
        assert net.step_ == 0
        out = net.output_arrays()
        assert np.isfinite(out["W"]).all() and not out["mW"].any()
        assert np.isfinite(net._states[0]["W"]).all() and not net._states[0]["mW"].any()
    finally:
        net.close()


LAYERS = [ps.Dense(4), ps.Sampled(30)]


@pytest.mark.parametrize("options, expected", [
    ({"num_cpus": 1},
     r"the 3 shards could not be placed within placement_timeout=1.5 s, spread over the "
     r"machines \(a SPREAD placement group: 1 alive machine\(s\) can hold a shard, fewer than "
     r"the 3 shards\): shard 2 of 3 \(output rows 20 to 29\) asks for 1 CPU, and no alive "
     r"machine has that left once shards 0 to 1 are placed; the cluster has 2 CPU, [\d.]+ GiB "
     r"memory in all on 1 alive machine\(s\), 2 CPU, [\d.]+ GiB memory of it free\. Ask for "
     r"less in actor_options, use fewer shards, add machines, or raise placement_timeout"),
    ({"num_cpus": 64},
     r"the 3 shards could not be placed within placement_timeout=1.5 s, .*: shard 0 of 3 "
     r"\(output rows 0 to 9\) asks for 64 CPU, more than any alive machine has; the cluster "
     r"has 2 CPU"),
    ({"num_cpus": 64, "scheduling_strategy": "SPREAD"},
     r"shard 0 of 3 \(output rows 0 to 9\), shard 1 of 3 \(output rows 10 to 19\), shard 2 "
     r"of 3 \(output rows 20 to 29\) did not start within placement_timeout=1.5 s \(each "
     r"shard asks for 64 CPU, with the scheduling_strategy given in actor_options\); the "
     r"cluster has 2 CPU, [\d.]+ GiB memory in all on 1 alive machine\(s\), 2 CPU"),
], ids=["more-cpus-than-the-machine", "more-than-any-machine", "own-strategy"])
def test_shards_that_cannot_be_placed_raise_after_placement_timeout(cluster, options,
                                                                      expected):
    """On the two-CPU cluster: a bounded wait, then a message naming the
    shard, what it asks for and what the cluster has; nothing stays reserved."""
    t0 = time.monotonic()
    with pytest.raises(PlacementError, match=expected):
        ShardedNetwork(10, LAYERS, shards=3, threads=1, actor_options=options,
                       placement_timeout=1.5)
    assert 1.5 <= time.monotonic() - t0 < 30
    assert free_cpus_become(2)
    assert {g["state"] for g in ray.util.placement_group_table().values()} <= {"REMOVED"}


def free_cpus_become(n, seconds=20):
    """Ray frees a removed placement group's resources soon, not at once."""
    deadline = time.monotonic() + seconds
    while ray.available_resources().get("CPU", 0) != n:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_placement_reserves_what_each_shard_asks_and_frees_it(cluster):
    net = ShardedNetwork(10, LAYERS, shards=2, threads=1, actor_options={"num_cpus": 1})
    try:
        assert ray.available_resources().get("CPU", 0) == 0
        assert net.shard_nodes() == [ray.get_runtime_context().get_node_id()] * 2
        # every CPU reserved: even the default's token share of one waits, then says why
        with pytest.raises(PlacementError, match=r"placement_timeout=1.5 s, spread over the "
                                                 r"machines .*: the cluster's machines could "
                                                 r"hold all 3 shards when idle, but other "
                                                 r"actors, tasks or placement groups hold part "
                                                 r"of them now; the cluster has 2 CPU, .* in all "
                                                 r"on 1 alive machine\(s\), 0 CPU, [\d.]+ GiB "
                                                 r"memory of it free"):
            ShardedNetwork(10, LAYERS, shards=3, threads=1, placement_timeout=1.5)
    finally:
        net.close()
    assert free_cpus_become(2)
    with pytest.raises(RuntimeError, match="this ShardedNetwork has no shards: it was closed"):
        net.shard_nodes()
    # a network dropped without close() frees what it reserved too
    dropped = ShardedNetwork(10, LAYERS, shards=2, threads=1, actor_options={"num_cpus": 1})
    assert dropped.placement_timeout == 60 and free_cpus_become(0)
    del dropped
    gc.collect()
    assert free_cpus_become(2)


def test_placement_timeout_is_checked_naming_it(cluster):
    with pytest.raises(ValueError, match=r"placement_timeout must be > 0 \(seconds to wait for "
                                         r"the shards to be placed; None waits as long as it "
                                         r"takes\), got 0"):
        ShardedNetwork(10, LAYERS, shards=2, placement_timeout=0)
    with pytest.raises(TypeError, match="placement_timeout must be a finite number"):
        ShardedNetwork(10, LAYERS, shards=2, placement_timeout="60")


def test_a_sparse_X_of_another_width_is_refused_naming_it(cluster):
    import scipy.sparse as sp
    net = ShardedNetwork(10, LAYERS, shards=2, threads=1)
    Y = sp.csr_matrix(np.eye(6, 30, dtype=np.float32))
    try:
        for width in (1, 9, 11):      # narrower ones were read as the wrong features
            X = sp.random(6, width, density=0.5, format="csr", random_state=0)
            message = rf"X has {width} features \(columns\) but the model expects n_features=10"
            for call in (lambda: net.fit(X, Y, verbose=0), lambda: net.predict(X),
                         lambda: net.evaluate(X, Y), lambda: net.predict_proba(X)):
                with pytest.raises(ValueError, match=message):
                    call()
            with pytest.raises(ValueError, match=rf"validation_data\[0\] has {width} features"):
                net.fit(sp.random(6, 10, density=0.5, format="csr", random_state=0), Y,
                        verbose=0, validation_data=(X, Y))
        assert net.step_ == 0
    finally:
        net.close()


def test_a_sharded_folder_without_its_manifest_says_so(cluster, small, tmp_path):
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, threads=1, seed=0)
    try:
        net.save(tmp_path / "model")
    finally:
        net.close()
    (tmp_path / "model" / "manifest.json").unlink()
    manifest = os.path.join(tmp_path, "model", "manifest.json")
    expected = (f"'{tmp_path / 'model'}' is a sharded model folder without its manifest: "
                f"'{manifest}' is missing")
    for load in (ps.load, ps.Network.load, ShardedNetwork.load):
        with pytest.raises(ValueError, match=re.escape(expected)):
            load(tmp_path / "model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=re.escape(
            f"is a folder, not a pyslide model file (nor a sharded model folder: it has no "
            f"'{tmp_path / 'empty' / 'manifest.json'}')")):
        ps.load(tmp_path / "empty")


CLOSED = (r"this ShardedNetwork has no shards: it was closed; load a saved model or checkpoint "
          r"\(ShardedNetwork\.load\) to go on")


@pytest.fixture(scope="module")
def closed():
    """A small two-shard network, trained one epoch, then closed; its data."""
    import scipy.sparse as sp
    X = sp.random(6, 10, density=0.5, format="csr", random_state=0, dtype=np.float32)
    Y = sp.csr_matrix(np.eye(6, 30, dtype=np.float32))
    net = ShardedNetwork(10, LAYERS, shards=2, threads=1, seed=0)
    try:
        net.fit(X, Y, batch_size=3, verbose=0)
    finally:
        net.close()
    return net, X, Y


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_topk", "evaluate",
                                    "fit", "save", "output_arrays", "to_network",
                                    "get_weights", "set_weights"])
def test_a_closed_network_says_so_and_how_to_go_on(cluster, closed, method, tmp_path):
    net, X, Y = closed
    step, history, W = net.step_, dict(net.history_), net._states[0]["W"].copy()
    calls = {"predict": lambda: net.predict(X), "predict_proba": lambda: net.predict_proba(X),
             # no rows used to return empty arrays from a closed network
             "predict_topk": lambda: net.predict_topk(X[:0]),
             "evaluate": lambda: net.evaluate(X, Y), "fit": lambda: net.fit(X, Y, verbose=0),
             "save": lambda: net.save(tmp_path / "model"),
             "output_arrays": net.output_arrays, "to_network": net.to_network,
             "get_weights": net.get_weights, "set_weights": lambda: net.set_weights([])}
    with pytest.raises(RuntimeError, match=CLOSED):
        calls[method]()
    # said before any work: nothing trained, nothing written
    assert net.step_ == step == 2 and net.history_ == history
    np.testing.assert_array_equal(net._states[0]["W"], W)
    assert list(tmp_path.iterdir()) == []


def test_a_label_matrix_of_another_width_is_refused_naming_it(cluster):
    import scipy.sparse as sp
    net = ShardedNetwork(10, LAYERS, shards=2, threads=1)
    X = sp.random(6, 10, density=0.5, format="csr", random_state=0, dtype=np.float32)
    try:
        for width in (12, 31):          # a narrower Y was scored against the wrong labels
            Y = sp.csr_matrix(np.eye(6, width, dtype=np.float32))
            message = re.escape(f"Y has {width} label columns but the model has 30 outputs")
            with pytest.raises(ValueError, match=message):
                net.evaluate(X, Y)
            with pytest.raises(ValueError, match=message):
                net.fit(X, Y, verbose=0)
            with pytest.raises(ValueError, match=message):
                net.evaluate(X, Y.toarray())
            with pytest.raises(ValueError, match=re.escape(
                    f"validation_data[1] has {width} label columns but the model has 30")):
                net.fit(X, sp.csr_matrix(np.eye(6, 30, dtype=np.float32)), verbose=0,
                        validation_data=(X, Y))
        assert net.step_ == 0
        # lists of label ids carry no width
        assert set(net.evaluate(X, [[1, 2]] * 6, k=1)) == {"p@1", "ndcg@1"}
    finally:
        net.close()


def test_sharded_fit_verbose_2_prints_the_epoch_report(cluster, small, capsys):
    """ShardedNetwork's fit prints EpochReport's line too, and its summary reads the
    sharded step times and timings."""
    X, Y = small
    net = ShardedNetwork(X.shape[1], dense_layers(Y.shape[1]), shards=2, threads=1, seed=3)
    try:
        net.fit(X[:200], Y[:200], epochs=2, batch_size=50, verbose=2, validation_split=0.25)
        lines = capsys.readouterr().out.splitlines()
        assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
        assert all("steps/s  val_loss" in line for line in lines)
        report = ps.EpochReport()
        net.fit(X[:200], Y[:200], epochs=1, batch_size=50, verbose=0, callbacks=[report])
        report.summary(net)
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("epoch 3/3  loss ")
        assert out[1].startswith("trained 4 steps in ")
    finally:
        net.close()
