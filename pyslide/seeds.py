"""Every random stream's seed, written once for every model (Network, ShardedNetwork and a shard's actor); imports NumPy only.

A run is reproducible, and one shard repeats the single node bit for bit,
because both draw from these streams in the same order: the initial
weights in row blocks, the epoch's shuffle, the validation split, the hash
families (the same in every shard), the tables and the uniform sampling
(shard 0 takes the single node's).
"""
import numpy as np

__all__ = ["weights_rng", "epoch_order", "split_order", "family_seed", "table_seed",
           "sampling_seed", "normal_blocks"]


def weights_rng(seed):
    """The generator of the initial weights (every layer, in layer order)."""
    return np.random.default_rng([seed, 1])


def epoch_order(seed, epoch, n, shuffle=True):
    """The order (int64) in which epoch ``epoch`` (0-based) visits ``n`` rows."""
    if shuffle:
        order = np.random.default_rng([seed, 2, epoch]).permutation(n)
    else:
        order = np.arange(n)
    return order.astype(np.int64)


def split_order(seed, n):
    """The permutation of ``n`` rows whose head ``validation_split`` holds out."""
    return np.random.default_rng([seed, 3, n]).permutation(n)


def family_seed(seed, layer):
    """The hash family of layer ``layer`` (the same in every shard)."""
    return seed + 7919 * (layer + 1)


def table_seed(seed, layer, shard=0):
    """The tables of layer ``layer`` (in shard ``shard``: shard 0 the single node's)."""
    return seed + layer + 7907 * shard


def sampling_seed(seed, shard=0):
    """The kernels' uniform draws (shard ``shard``'s: shard 0 the single node's)."""
    return seed + 104729 * shard


def normal_blocks(rng, shape, std):
    """``(first row, rows)`` blocks of a normal (0, std) float32 matrix of
    ``shape``, drawn from ``rng`` in row order (a block bounds the float64
    temporaries); the rows split anywhere give the same matrix."""
    block = max(1, (1 << 22) // max(1, shape[1]))
    for start in range(0, shape[0], block):
        yield start, rng.standard_normal((min(block, shape[0] - start), shape[1]),
                                         dtype=np.float32) * std
