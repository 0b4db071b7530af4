"""Every script in ``examples/`` runs (in its seconds-long PYSLIDE_EXAMPLE_QUICK mode)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyslide as ps

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, *args, cwd=None):
    env = dict(os.environ, PYSLIDE_EXAMPLE_QUICK="1",
               # one thread: the examples' output must not depend on a busy test machine
               OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                            capture_output=True, text=True, timeout=300, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_every_example_is_tested():
    tested = {"quickstart.py", "train_xc_file.py", "sampled_hidden.py", "save_load_serve.py",
              "sklearn_pipeline.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", cwd=tmp_path)
    assert re.search(r"test: p@1 \d\.\d{4}  ndcg@1 \d\.\d{4}", out)
    assert len(re.findall(r"predicted (\d+ \(-?\d+\.\d\d\), ){4}\d+", out)) == 3
    assert "time by phase:" in out


def test_train_xc_file_on_given_files(tmp_path):
    X, Y, Xt, Yt = ps.data.make_xc("small", n_samples=300, n_test=50, seed=0)
    ps.data.save_xc(tmp_path / "train.txt", X, Y)
    ps.data.save_xc(tmp_path / "test.txt", Xt, Yt)
    out = run_example("train_xc_file.py", tmp_path / "train.txt", tmp_path / "test.txt",
                      "--epochs", "2", cwd=tmp_path)
    assert "train.txt: 300 rows, 5000 features, 1000 labels" in out
    assert re.search(r"epoch +2 +loss", out)
    for k in (1, 3, 5):
        assert re.search(rf"k={k}:  P@k \d\.\d{{4}}  nDCG@k \d\.\d{{4}}  PSP@k \d+\.\d{{4}}", out)


def test_train_xc_file_default_bibtex(data_dir, tmp_path):
    if not (data_dir / "bibtex" / "train.txt").exists():
        pytest.skip("bibtex files not found")
    out = run_example("train_xc_file.py", cwd=tmp_path)
    assert "train.txt: 500 rows, 1836 features, 159 labels" in out
    assert "PSP@k" in out


def test_sampled_hidden(tmp_path):
    out = run_example("sampled_hidden.py", cwd=tmp_path)
    assert "Sampled(1024) -> Sampled: Network(input_dim=5000, layers=[Sampled(1024" in out
    assert "Dense(128) -> Sampled:" in out
    assert len(re.findall(r"epoch 1  loss \d+\.\d{4} .* P@1 \d\.\d{4}", out)) == 2


def test_save_load_serve(tmp_path):
    out = run_example("save_load_serve.py", cwd=tmp_path)
    assert "saved the model to" in out and "loaded Network(" in out
    assert re.search(r"exact top-5 for 64 requests", out)
    assert re.search(r"LSH-sampled top-5 for 64 requests", out)
    assert re.search(r"-> (\d+:-?\d+\.\d{3}, ){4}\d+:", out)
    assert re.search(r"continued training: steps (\d+) -> (\d+)", out)


def test_sklearn_pipeline_on_bibtex(data_dir, tmp_path):
    pytest.importorskip("sklearn", reason="the example needs scikit-learn (the [sklearn] extra)")
    if not (data_dir / "bibtex" / "train.txt").exists():
        pytest.skip("bibtex files not found")
    out = run_example("sklearn_pipeline.py", cwd=tmp_path)
    assert "bibtex: 500 training rows, 200 test rows, 1836 features, 159 labels" in out
    assert "grid search: 2 settings x 2 folds + refit" in out
    assert len(re.findall(r"lr 0\.00[13]: cross-validated P@3 0\.\d{4} \(\+/- 0\.\d{4}\)",
                          out)) == 2
    assert re.search(r"best: lr 0\.00[13], refitted on every training row, kept epoch \d", out)
    assert re.search(r"test: P@1 0\.\d{4}  P@3 0\.\d{4}  P@5 0\.\d{4}", out)


def test_sklearn_pipeline_without_bibtex_says_so(tmp_path, monkeypatch):
    pytest.importorskip("sklearn", reason="the example needs scikit-learn (the [sklearn] extra)")
    monkeypatch.setenv("PYSLIDE_DATA_DIR", str(tmp_path))
    out = run_example("sklearn_pipeline.py", cwd=tmp_path)
    assert f"Bibtex not found in {tmp_path / 'bibtex'}" in out
