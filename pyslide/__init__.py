"""pyslide: train networks with enormous output layers on CPUs.

Each sample computes only the neurons that locality-sensitive hashing picks;
many threads update shared weights without locks (HogWild). See the README.
"""
from ._openmp import openmp_enabled, resolve_threads
from . import data

__version__ = "0.1.0"

__all__ = ["openmp_enabled", "resolve_threads", "data", "__version__"]
