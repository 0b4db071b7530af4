"""The PyTorch baselines of the benchmarks: ``pyslide.torch_baseline`` (one copy, shared with ``pyslide demo``)."""
from pyslide.torch_baseline import HIDDEN, TorchDense, TorchSampled, make_baseline  # noqa: F401
