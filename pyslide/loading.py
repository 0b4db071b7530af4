"""``pyslide.load``: read a saved model into the model class it asks for; imports network and persist, and distributed at call time (the one module above both models, so neither imports the other's loader).
"""
from . import persist
from .network import Network

__all__ = ["load"]


def load(path, threads=None, shards=None):
    """Read a model: a file written by ``Network.save`` or a folder written by
    ``pyslide.distributed.ShardedNetwork.save``.

    ``shards=None`` gives back what was saved (a ``Network`` from a file, a
    ``ShardedNetwork`` with the saved number of shards from a folder); an
    int gives a ``ShardedNetwork`` with that many shards from either (Ray
    needed). ``pyslide.Network.load`` reads either into one ``Network``.
    """
    if shards is not None or persist.is_sharded_folder(path):
        # at call time: pyslide.distributed is imported only when a sharded
        # model is asked for
        from .distributed import ShardedNetwork
        return ShardedNetwork.load(path, shards=shards, threads=threads)
    return Network.load(path, threads=threads)
