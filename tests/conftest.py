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
