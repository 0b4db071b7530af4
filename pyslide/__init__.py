"""pyslide: train networks with enormous output layers on CPUs; the public names: imports the library modules (never the CLI).

Each sample computes only the neurons that locality-sensitive hashing picks;
many threads update shared weights without locks (HogWild). See the README.
"""
# first: the OpenMP runtime reads its wait policy once, when a kernel module loads it
from . import _openmp_env
from ._openmp import openmp_enabled, resolve_threads
from . import data, metrics
from .hashing import DOPH, DWTA, WTA, LSHTables, SimHash
from .layers import Dense, Sampled
from .optim import SGD, Adam, AdamW, Constant, CosineDecay, ExponentialDecay, StepDecay
from .network import Network
from .loading import load
from .training import DivergenceWarning
from .callbacks import Callback, EarlyStopping, EpochReport, ModelCheckpoint

__version__ = "0.1.0"

__all__ = ["openmp_enabled", "resolve_threads", "data", "metrics", "SimHash", "WTA", "DWTA",
           "DOPH", "LSHTables", "Dense", "Sampled", "Adam", "AdamW", "SGD",
           "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "Network", "load",
           "Callback", "EarlyStopping", "EpochReport", "ModelCheckpoint", "DivergenceWarning",
           "__version__"]
