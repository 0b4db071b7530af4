"""Network.get_weights / set_weights: copies in each layer's orientation, a
round trip that changes nothing, predictions that follow the weights set,
errors that name the layer and the array."""
import numpy as np
import pytest

import pyslide as ps


@pytest.fixture(scope="module")
def data():
    return ps.data.make_xc("small", n_samples=400, seed=0)


def lsh_layers(n_out):
    return [ps.Dense(16), ps.Sampled(n_out, active=64, rebuild_every=5)]


def trained(data, seed=0, epochs=1):
    X, Y = data
    net = ps.Network(X.shape[1], lsh_layers(Y.shape[1]), threads=1, seed=seed)
    net.fit(X, Y, epochs=epochs, batch_size=32, verbose=0)
    return net


def test_weights_are_copies_in_each_layers_orientation(data):
    X, Y = data
    net = trained(data)
    weights = net.get_weights()
    assert [sorted(w) for w in weights] == [["W", "b"], ["W", "b"]]
    assert weights[0]["W"].shape == (X.shape[1], 16)          # Dense: (in, out)
    assert weights[1]["W"].shape == (Y.shape[1], 16)          # Sampled: (out, in)
    assert weights[1]["b"].shape == (Y.shape[1],)
    before = net.predict_topk(X[:30], k=3)
    weights[1]["W"][:] = 0                                    # a copy: the net keeps its own
    np.testing.assert_array_equal(net.predict_topk(X[:30], k=3)[0], before[0])
    assert net.get_weights()[1]["W"].any()


def test_a_round_trip_leaves_training_bit_identical(data):
    X, Y = data
    straight, round_trip = trained(data), trained(data)
    round_trip.set_weights(round_trip.get_weights())
    straight.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    round_trip.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    for a, b in zip(straight.get_weights(), round_trip.get_weights()):
        np.testing.assert_array_equal(a["W"], b["W"])
        np.testing.assert_array_equal(a["b"], b["b"])


def test_predictions_follow_the_weights_set(data):
    X, Y = data
    source, target = trained(data, seed=1, epochs=2), trained(data, seed=2)
    assert not np.array_equal(source.predict_proba(X[:20]), target.predict_proba(X[:20]))
    target.set_weights(source.get_weights())
    for sampled in (False, True):   # the tables were rebuilt from the new rows
        ids, scores = target.predict_topk(X[:50], k=3, sampled=sampled)
        ref_ids, ref_scores = source.predict_topk(X[:50], k=3, sampled=sampled)
        np.testing.assert_array_equal(ids, ref_ids)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    np.testing.assert_array_equal(target.predict_proba(X[:20]), source.predict_proba(X[:20]))


def test_set_weights_before_fit_is_kept_by_fit(data):
    X, Y = data
    source = trained(data, seed=1)
    fresh = ps.Network(X.shape[1], lsh_layers(Y.shape[1]), threads=1, seed=1)
    assert not fresh.get_weights()[0]["W"].any()    # nothing drawn before fit
    fresh.set_weights(source.get_weights())
    np.testing.assert_array_equal(fresh.predict_topk(X[:20], k=3)[0],
                                  source.predict_topk(X[:20], k=3)[0])
    fresh.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    # fit went on from the weights set: it drew none of its own
    assert np.abs(fresh.get_weights()[0]["W"] - source.get_weights()[0]["W"]).max() < 0.1


@pytest.mark.parametrize("change, message", [
    (lambda w: w[:1], r"weights must be a list of 2 dicts \(one per layer\), got list of "
                      r"length 1"),
    (lambda w: {"W": 1}, r"weights must be a list of 2 dicts"),
    (lambda w: [w[0], {"W": w[1]["W"]}], r"weights\[1\] must be a dict with keys 'W' and 'b', "
                                         r"got \['W'\]"),
    (lambda w: [w[0], {"W": w[1]["W"].T, "b": w[1]["b"]}],
     r"weights\[1\]\['W'\] must have shape \(\d+, 16\), got \(16, \d+\)"),
    (lambda w: [{"W": w[0]["W"], "b": w[0]["b"].astype(np.float64)}, w[1]],
     r"weights\[0\]\['b'\] must have dtype float32, got float64"),
])
def test_set_weights_names_the_layer_and_array_it_rejects(data, change, message):
    net = trained(data)
    before = net.get_weights()
    with pytest.raises(ValueError, match=message):
        net.set_weights(change(net.get_weights()))
    for a, b in zip(before, net.get_weights()):           # nothing was written
        np.testing.assert_array_equal(a["W"], b["W"])


def test_set_weights_rehashes_a_changed_sampled_layer(data):
    """Internals: the output layer's tables hold its new rows, as a full build
    of them does (stale tables would hold the old rows' buckets)."""
    target = trained(data, seed=1)
    weights = trained(data, seed=1, epochs=3).get_weights()
    target.set_weights(weights)
    tables = target._tables[-1]
    assert target._hashed_at[-1] == target.step_
    held = tables.ids.copy(), tables.counts.copy()
    tables.build(weights[1]["W"], threads=1)
    np.testing.assert_array_equal(tables.ids, held[0])
    np.testing.assert_array_equal(tables.counts, held[1])
