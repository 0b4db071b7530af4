import os
from pathlib import Path

import pytest

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
