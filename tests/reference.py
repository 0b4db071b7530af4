"""Plain NumPy twins of the training kernels, in float64.

They take a network's weights and the active sets the kernel chose, and
recompute loss and gradients the slow, obvious way.
"""
import numpy as np

from pyslide.layers import Sampled


def _layer_weights(net, i):
    p = net.get_weights()[i]
    return p["W"].astype(np.float64), p["b"].astype(np.float64)


def forward_backward(net, X, Y, rows, active, loss="softmax", logit_offset=None,
                     masks=None, step=1):
    """Loss and gradients of one batch.

    ``active[i]`` is None for a Dense layer; for a Sampled layer either a
    list (one id array per sample) or, for a batch-shared output, a single
    id array used by every sample. ``logit_offset(bi, out_ids)``, if given,
    returns constants added to sample bi's output logits (the sampling
    correction); ``masks[i](bi)`` the dropout mask (0 or the keep scale per
    unit) of hidden layer i for sample bi; by default the kernel's masks of
    training step ``step`` for every hidden layer with dropout.
    Returns (per-sample losses, grads) with grads[i] = {"W", "b"} shaped like
    the layer's weights.
    """
    n_layers = len(net.layers)
    if masks is None:
        masks = {i: (lambda bi, i=i, rate=net._dropout_rate(i): dropout_mask(
                     net.seed, i, step, bi, net.layers[i].units, rate))
                 for i in range(n_layers) if net._dropout_rate(i) > 0}
    grads = []
    for i in range(n_layers):
        W, b = _layer_weights(net, i)
        grads.append({"W": np.zeros_like(W), "b": np.zeros_like(b)})
    losses = []
    scale = 1.0 / len(rows)
    for bi, r in enumerate(rows):
        x = X[r].toarray().ravel().astype(np.float64)
        labels = Y[r].indices
        inputs, outs, ids_per_layer = [], [], []
        h = x
        for i, layer in enumerate(net.layers):
            W, b = _layer_weights(net, i)
            inputs.append(h)
            if isinstance(layer, Sampled):
                ids = active[i] if isinstance(active[i], np.ndarray) else active[i][bi]
                z = W[ids] @ h + b[ids]
            else:
                ids = None
                z = h @ W + b
            ids_per_layer.append(ids)
            is_output = i == n_layers - 1
            if is_output and logit_offset is not None:
                z = z + logit_offset(bi, ids)
            a = z if is_output or layer.activation != "relu" else np.maximum(z, 0)
            if not is_output and masks is not None and i in masks:
                a = a * masks[i](bi)
            outs.append(a)
            if ids is None:
                h = a
            else:
                h = np.zeros(layer.units)
                h[ids] = a
        z = outs[-1]
        out_ids = ids_per_layer[-1]
        target = np.zeros_like(z)
        if out_ids is None:
            pos = labels
        else:
            lookup = {int(j): t for t, j in enumerate(out_ids)}
            pos = np.array([lookup[int(j)] for j in labels if int(j) in lookup], dtype=np.int64)
        if loss == "softmax":
            if len(pos) == 0:
                losses.append(0.0)
                delta = np.zeros_like(z)
            else:
                target[pos] = 1.0 / len(pos)
                zmax = z.max()
                logp = z - zmax - np.log(np.exp(z - zmax).sum())
                losses.append(float(-(target * logp).sum()))
                delta = (np.exp(logp) - target) * scale
        else:
            target[pos] = 1.0
            losses.append(float((np.logaddexp(0, z) - target * z).sum()))
            delta = (1 / (1 + np.exp(-z)) - target) * scale
        for i in range(n_layers - 1, -1, -1):
            layer = net.layers[i]
            W, _ = _layer_weights(net, i)
            h_in = inputs[i]
            ids = ids_per_layer[i]
            if ids is None:
                grads[i]["W"] += np.outer(h_in, delta)
                grads[i]["b"] += delta
                d_in = W @ delta
            else:
                grads[i]["W"][ids] += np.outer(delta, h_in)
                grads[i]["b"][ids] += delta
                d_in = W[ids].T @ delta
            if i == 0:
                break
            below = net.layers[i - 1]
            below_ids = ids_per_layer[i - 1]
            below_out = outs[i - 1]
            if below_ids is not None:
                d_in = d_in[below_ids]
            if below.activation == "relu":
                d_in = d_in * (below_out > 0)
            if masks is not None and i - 1 in masks:
                d_in = d_in * masks[i - 1](bi)
            delta = d_in
    return np.array(losses), grads


def dropout_mask(seed, layer_index, step, sample, units, rate):
    """The kernel's dropout mask of one sample: 0 for a dropped unit, else
    1 / (1 - rate); drawn from the same counter-based stream (a Python twin
    of _common.pxd's SplitMix64)."""
    from hash_reference import GOLDEN, M64, _mix, mix_seed
    state = mix_seed(mix_seed(seed, 0xD50F, layer_index), step, sample)
    rate32 = np.float32(rate)
    keep = np.float32(1) / (np.float32(1) - rate32)
    mask = np.empty(units, np.float64)
    for t in range(units):
        state = (state + GOLDEN) & M64
        u = np.float32((_mix(state) >> 40) * (1.0 / 16777216.0))
        mask[t] = 0.0 if u < rate32 else keep
    return mask


def batch_loss(net, X, Y, rows, active, loss="softmax"):
    return float(forward_backward(net, X, Y, rows, active, loss)[0].mean())
