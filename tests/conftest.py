import os
import platform
from pathlib import Path

# OpenBLAS picks its kernels for the CPU when it loads, and the kernels round
# differently (the batch-shared output's products go through BLAS): pin the
# kernels every x86-64 machine with AVX2 runs, before NumPy loads OpenBLAS,
# so that the regression fixtures (tests/make_regression_weights.py, which
# pins the same) are bit-identical on every such machine, not only on the one
# that wrote them. A value the caller set is kept.
def _has_avx2():
    try:
        with open("/proc/cpuinfo") as f:
            return " avx2" in f.read()
    except OSError:
        return False


if platform.machine() in ("x86_64", "AMD64") and _has_avx2():
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import pytest  # noqa: E402

# ../shared/data beside the checkout holds real XC datasets; tests that need
# them skip (with the reason) when it is absent.
DATA_DIR = Path(os.environ.get(
    "PYSLIDE_DATA_DIR",
    Path(__file__).resolve().parents[1].parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir():
    if not DATA_DIR.is_dir():
        pytest.skip(f"real datasets not found at {DATA_DIR} (set PYSLIDE_DATA_DIR)")
    return DATA_DIR


def _data_file(*parts):
    """The path of a dataset file under DATA_DIR; the test skips when that
    file is absent (the folder may hold other datasets but not this one)."""
    path = DATA_DIR.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"dataset file {path} not found (set PYSLIDE_DATA_DIR to a folder "
                    f"holding {'/'.join(parts)})")
    return path


@pytest.fixture(scope="session")
def data_file():
    """``data_file("bibtex", "train.txt")``: the path, or a skip naming it."""
    return _data_file
