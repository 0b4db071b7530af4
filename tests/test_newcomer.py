"""Issue 18: what a new user tripped on (busy machines, silent acceptance of
wrong inputs, late or raw errors, fork after training, help()). One test
(at least) per point; the Ray points live in ``test_distributed.py``.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyslide as ps
from pyslide import _openmp_env, cli
from test_reliability import one_line_error  # the CLI's one-line error format

ROOT = Path(__file__).resolve().parents[1]


def call(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_python(code, env_update=(), drop=(), timeout=60):
    """Run ``code`` in a fresh interpreter that imports this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(env_update)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=timeout)


# ------------------------------------------------------------- 1. busy machines

_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_DISPLAY_ENV")
_SHOW = "import os, pyslide; print('policy', os.environ.get('OMP_WAIT_POLICY'))"


@pytest.mark.skipif(not ps.openmp_enabled(), reason="built without OpenMP")
def test_import_starts_openmp_with_a_passive_wait_policy():
    # OMP_DISPLAY_ENV makes libgomp print what it started with, so this checks
    # the runtime itself, not only os.environ
    done = run_python(_SHOW, {"OMP_DISPLAY_ENV": "verbose"}, drop=_POLICY_VARIABLES)
    assert done.returncode == 0, done.stderr
    assert "policy passive" in done.stdout
    assert re.search(r"GOMP_SPINCOUNT = '0'", done.stderr), done.stderr


@pytest.mark.skipif(not ps.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("variable, value, spin", [("OMP_WAIT_POLICY", "active", "30000000000"),
                                                   ("GOMP_SPINCOUNT", "300000", "300000")])
def test_a_wait_policy_the_user_set_is_kept(variable, value, spin):
    done = run_python(_SHOW, {"OMP_DISPLAY_ENV": "verbose", variable: value},
                      drop=_POLICY_VARIABLES)
    assert done.returncode == 0, done.stderr
    expected = "active" if variable == "OMP_WAIT_POLICY" else "None"
    assert f"policy {expected}" in done.stdout
    assert f"GOMP_SPINCOUNT = '{spin}'" in done.stderr, done.stderr


@pytest.mark.skipif(not ps.openmp_enabled() or not sys.platform.startswith("linux"),
                    reason="needs GNU OpenMP on Linux")
def test_a_runtime_started_before_pyslide_is_reported():
    # as PyTorch does when imported first: its libgomp.so.1 is the one the
    # kernels then share, started with spinning waits
    code = ("import ctypes; ctypes.CDLL('libgomp.so.1'); import pyslide; "
            "print('applied', pyslide._openmp_env.applied)")
    done = run_python(code, drop=_POLICY_VARIABLES)
    assert done.returncode == 0, done.stderr
    assert "applied False" in done.stdout
    assert ("RuntimeWarning: pyslide: an OpenMP runtime was started before pyslide (by another "
            "library, e.g. PyTorch) with spinning waits") in done.stderr
    assert "Import pyslide first, or set OMP_WAIT_POLICY=passive" in done.stderr
    # the user's own policy: nothing to report
    done = run_python(code, {"OMP_WAIT_POLICY": "active"}, drop=_POLICY_VARIABLES)
    assert done.returncode == 0 and "RuntimeWarning" not in done.stderr, done.stderr
    done = run_python("import pyslide; print('applied', pyslide._openmp_env.applied)",
                      drop=_POLICY_VARIABLES)
    assert "applied True" in done.stdout and "RuntimeWarning" not in done.stderr


def test_choose_wait_policy_rules():
    env = {}
    assert _openmp_env.choose_wait_policy(env) == "passive"
    assert env == {"OMP_WAIT_POLICY": "passive"}
    env = {"OMP_WAIT_POLICY": " "}              # blank is unset for libgomp too
    assert _openmp_env.choose_wait_policy(env) == "passive"
    env = {"GOMP_SPINCOUNT": "1000"}
    assert _openmp_env.choose_wait_policy(env) is None
    assert env == {"GOMP_SPINCOUNT": "1000"}


def test_default_threads_give_each_thread_enough_rows():
    net = ps.Network(20, [ps.Dense(4), ps.Sampled(10)], seed=0)
    net.n_threads = 4                 # as on a 4-core machine
    per = ps.network.MIN_ROWS_PER_THREAD
    assert [net._threads_for_rows(r) for r in (1, per, 2 * per - 1, 2 * per, 1000)] == \
        [1, 1, 1, 2, 4]
    explicit = ps.Network(20, [ps.Dense(4), ps.Sampled(10)], threads=2, seed=0)
    assert explicit._threads_for_rows(1) == explicit.n_threads    # asked for: kept


def test_a_tiny_batch_trains_on_one_thread(monkeypatch):
    X, Y = ps.data.make_xc("small", n_samples=40, n_features=50, n_labels=20, seed=0)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1])], seed=0)
    net.n_threads = 4
    seen = []
    real_engine = ps.training._kernels.Engine

    def engine(specs, batch_size, n_threads, *args, **kwargs):
        seen.append((batch_size, n_threads))
        return real_engine(specs, batch_size, min(n_threads, 2), *args, **kwargs)

    monkeypatch.setattr(ps.training._kernels, "Engine", engine)
    net.fit(X, Y, epochs=1, batch_size=4, verbose=0)
    net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    assert seen == [(4, 1), (32, 4)]


# ------------------------------------------------------------- shared files

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small XC train/test files, a model trained on them, and a file whose
    header counts more rows than it has (a partial dump)."""
    folder = tmp_path_factory.mktemp("newcomer")
    X, Y, Xt, Yt = ps.data.make_xc("small", n_samples=120, n_test=30, n_features=40,
                                   n_labels=12, seed=0)
    ps.data.save_xc(folder / "train.txt", X, Y)
    ps.data.save_xc(folder / "test.txt", Xt, Yt)
    lines = (folder / "test.txt").read_text().splitlines()
    n, d, l = lines[0].split()
    (folder / "partial.txt").write_text("\n".join([f"{int(n) + 70} {d} {l}"] + lines[1:]) + "\n")
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1])], threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
    net.save(folder / "model.npz")
    return {name: folder / name for name in ("train.txt", "test.txt", "partial.txt",
                                             "model.npz")} | {"dir": folder}


# ------------------------------------------------------------- 4. --no-strict-rows

def test_cli_names_its_flag_for_a_wrong_header_row_count(capsys, files):
    partial = files["partial.txt"]
    expected = (f"{partial}: the header (line 1) says 100 rows but the file has 30 data lines "
                f"(blank lines count as rows); add --no-strict-rows to load the rows present")
    for args in (("train", partial, "--hidden", "4", "--epochs", "1"),
                 ("evaluate", files["model.npz"], partial),
                 ("predict", files["model.npz"], partial)):
        code, _, err = call(capsys, *args, "--threads", "1")
        assert code != 0
        one_line_error(err, expected)
        assert "strict_rows=False" not in err
    # the library's own message names its argument
    with pytest.raises(ps.data.XCFormatError, match="pass strict_rows=False to load"):
        ps.data.load_xc(partial)


def test_cli_no_strict_rows_loads_the_rows_present(capsys, files):
    partial = files["partial.txt"]
    code, out, err = call(capsys, "train", files["train.txt"], "--test", partial, "--hidden",
                          "4", "--epochs", "1", "--threads", "1", "--no-strict-rows")
    assert code == 0, err
    assert f"{partial}: 30 rows" in out
    code, out, err = call(capsys, "evaluate", files["model.npz"], partial, "--threads", "1",
                          "--no-strict-rows", "--json")
    assert code == 0, err
    assert set(json.loads(out)) >= {"p@1", "ndcg@5"}
    code, out, err = call(capsys, "predict", files["model.npz"], partial, "--threads", "1",
                          "--no-strict-rows", "-k", "2")
    assert code == 0, err
    assert len(out.splitlines()) == 30


# ------------------------------------------------------------- 10. skips, not failures

def test_dataset_tests_skip_when_the_folder_lacks_their_file(tmp_path):
    (tmp_path / "bibtex").mkdir()          # a data folder without the files the tests read
    env = dict(os.environ, PYSLIDE_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         str(ROOT / "tests" / "test_io_errors.py") + "::test_amazon_fixture_header_mismatch_is_reported",
         str(ROOT / "tests" / "test_data.py") + "::test_amazon_partial_fixture_loads_with_strict_rows_off",
         str(ROOT / "tests" / "test_data.py") + "::test_bibtex_matches_the_naive_reader"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "3 skipped" in done.stdout and "failed" not in done.stdout, done.stdout
    assert "amazon670k_partial_test/amazon_partial_test.txt" in done.stdout


# ------------------------------------------------------------- 5. wrong inputs

@pytest.fixture(scope="module")
def small():
    X, Y = ps.data.make_xc("small", n_samples=200, n_features=50, n_labels=20, seed=0)
    net = ps.Network(50, [ps.Dense(8), ps.Sampled(20)], threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=64, verbose=0)
    return X, Y, net


@pytest.mark.parametrize("width", [1, 49, 51])
def test_sparse_X_of_another_width_is_refused(small, width):
    import scipy.sparse as sp
    X, Y, net = small
    other = sp.random(10, width, density=0.2, format="csr", random_state=0)
    message = re.escape(f"X has {width} features (columns) but the model expects n_features=50")
    for call_with in (lambda: net.predict(other), lambda: net.predict_proba(other),
                      lambda: net.evaluate(other, Y[:10]),
                      lambda: net.fit(other, Y[:10], verbose=0)):
        with pytest.raises(ValueError, match=message):
            call_with()
    with pytest.raises(ValueError, match=r"validation_data\[0\] has .* features"):
        net.fit(X, Y, validation_data=(other, Y[:10]), verbose=0)


def test_a_label_matrix_of_another_width_is_refused(small):
    X, Y, net = small
    narrow = Y[:, :12]
    message = re.escape("Y has 12 label columns but the model has 20 outputs")
    with pytest.raises(ValueError, match=message):
        net.evaluate(X, narrow)
    with pytest.raises(ValueError, match=message):
        net.fit(X, narrow, verbose=0)
    with pytest.raises(ValueError, match="Y has 21 label columns"):
        net.evaluate(X, np.zeros((X.shape[0], 21)))
    assert set(net.evaluate(X, [[1, 2]] * X.shape[0], k=1)) == {"p@1", "ndcg@1"}  # lists: no width


def test_cli_warns_when_a_file_was_made_for_another_model(capsys, files, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("2 6 4\n1,3 0:1 5:2\n2 1:1\n")
    code, out, err = call(capsys, "evaluate", files["model.npz"], other, "--threads", "1")
    assert code == 0
    assert (f"pyslide: warning: {other}: its header (line 1) declares 6 features and 4 labels, "
            f"the model has 40 features and 12 labels; is this the model's data?") in err
    code, out, err = call(capsys, "predict", files["model.npz"], other, "--threads", "1")
    assert code == 0
    assert f"{other}: its header (line 1) declares 6 features, the model has 40 features" in err
    code, out, err = call(capsys, "evaluate", files["model.npz"], files["test.txt"],
                          "--threads", "1")
    assert code == 0 and "warning" not in err          # the model's own data: no warning


@pytest.mark.parametrize("shuffle", ["no", 0, 1, None])
def test_fit_shuffle_must_be_a_bool(small, shuffle):
    X, Y, net = small
    with pytest.raises(TypeError, match=re.escape(f"shuffle must be True or False, got "
                                                  f"{shuffle!r}")):
        net.fit(X, Y, shuffle=shuffle, verbose=0)


def test_a_diverging_run_warns_once():
    X, Y = ps.data.make_xc("small", n_samples=200, n_features=50, n_labels=20, seed=0)
    net = ps.Network(50, [ps.Dense(8), ps.Sampled(20)], optimizer=ps.SGD(lr=1e3), threads=1,
                     seed=0)
    with pytest.warns(ps.DivergenceWarning) as record:
        net.fit(X, Y, epochs=3, batch_size=32, verbose=0)
    diverged = [w for w in record if issubclass(w.category, ps.DivergenceWarning)]
    assert len(diverged) == 1
    assert re.match(r"training is diverging: the batch loss grew from \d\.\d+ \(step 1\) to "
                    r"[\d.e+]+ at step \d+ \(epoch 1\); lower the optimizer's lr",
                    str(diverged[0].message)), str(diverged[0].message)
    assert diverged[0].filename == __file__          # points at the fit call


def test_a_healthy_run_does_not_warn(small):
    import warnings
    X, Y, _ = small
    net = ps.Network(50, [ps.Dense(8), ps.Sampled(20)], threads=1, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ps.DivergenceWarning)
        net.fit(X, Y, epochs=3, batch_size=32, verbose=0)


def test_lr_scale_accepts_arrays_like_lists():
    assert ps.Sampled(20, lr_scale=np.array([1, .5])).lr_scale == (1.0, 0.5)
    assert ps.Sampled(20, lr_scale=np.float32(2)).lr_scale == 2.0
    assert ps.Sampled(20, lr_scale=[1, .5]).lr_scale == ps.Sampled(20, lr_scale=(1, .5)).lr_scale
    with pytest.raises(ValueError, match="lr_scale must be 'auto', a positive number"):
        ps.Sampled(20, lr_scale=np.array([1, -.5]))
    with pytest.raises(ValueError, match="lr_scale must be 'auto'"):
        ps.Sampled(20, lr_scale=np.ones((2, 2)))


# ------------------------------------------------------------- 6. late or raw errors

@pytest.mark.parametrize("target", ["folder", "device"])
def test_checkpoint_path_is_checked_before_the_first_epoch(small, tmp_path, target):
    X, Y, _ = small
    path = tmp_path if target == "folder" else Path("/dev/null")
    expected = (f"ModelCheckpoint: path {path}: is a folder, not a file" if target == "folder"
                else f"ModelCheckpoint: path {path}: is not a regular file")
    net = ps.Network(50, [ps.Dense(8), ps.Sampled(20)], threads=1, seed=0)
    checkpoint = ps.ModelCheckpoint(path, save_best_only=False)
    with pytest.raises(OSError, match=re.escape(expected)):
        net.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpoint])
    assert net.epoch_ == 0 and net.step_ == 0        # refused before any training


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_checkpoint_in_a_read_only_folder_is_refused_before_training(small, tmp_path):
    X, Y, _ = small
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    net = ps.Network(50, [ps.Dense(8), ps.Sampled(20)], threads=1, seed=0)
    try:
        with pytest.raises(OSError, match=re.escape(f"ModelCheckpoint: path {folder / 'm.npz'}: "
                                                    f"cannot create a file in")):
            net.fit(X, Y, verbose=0, callbacks=[ps.ModelCheckpoint(folder / "m.npz",
                                                                   save_best_only=False)])
    finally:
        folder.chmod(0o700)
    assert net.step_ == 0


def _garble_zip_version(data):
    """The model bytes with the first central-directory entry's 'version
    needed to extract' set to 25.5 (zipfile raises NotImplementedError)."""
    data = bytearray(data)
    entry = data.index(b"PK\x01\x02")
    data[entry + 6:entry + 8] = b"\xff\x00"
    return bytes(data)


def test_both_loaders_name_a_damaged_file(small, tmp_path):
    import io
    _, _, net = small
    good = tmp_path / "good.npz"
    net.save(good)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(_garble_zip_version(good.read_bytes()))
    expected = re.escape(f"'{damaged}' is not a complete pyslide model (truncated or damaged: "
                         f"zip file version 25.5)")
    for loader in (ps.load, ps.Network.load):
        with pytest.raises(ValueError, match=expected):
            loader(damaged)
        with pytest.raises(ValueError, match="'<model bytes>' is not a complete pyslide model"):
            loader(io.BytesIO(damaged.read_bytes()))


@pytest.mark.parametrize("line, expected", [
    (b"1 3:0.5\xe9 4:1", "byte 0xE9 in '3:0.5\\xe9'"),
    (b"1,2 caf\xe9:1", "byte 0xE9 in 'caf\\xe9:1'"),
])
def test_a_latin1_byte_is_reported_as_not_utf8(tmp_path, line, expected):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"2 10 3\n0 1:1 2:1\n" + line + b"\n")
    message = (f"{path}, line 3: not UTF-8 text: {expected} (a Latin-1 or other 8-bit "
               f"encoding?); the file may hold only ASCII ids and numbers")
    with pytest.raises(ps.data.XCFormatError, match=re.escape(message)):
        ps.data.load_xc(path)
    with pytest.raises(ps.data.XCFormatError, match="binary data"):
        path.write_bytes(b"2 10 3\n0 1:1 2:1\n1 3:\x01\n")    # control bytes: still binary
        ps.data.load_xc(path)


def test_valid_utf8_cut_by_the_token_limit_is_not_an_encoding_error(tmp_path):
    path = tmp_path / "long.txt"
    token = "1:" + "€" * 20                      # 62 bytes: the 40th byte is inside a €
    path.write_bytes(f"1 10 3\n0 {token}\n".encode())
    with pytest.raises(ps.data.XCFormatError, match="malformed feature value"):
        ps.data.load_xc(path)


# ------------------------------------------------------------- 7. fork after training

_FORK_SCRIPT = r"""
import multiprocessing, os, sys, warnings
import pyslide as ps
warnings.simplefilter("always")
X, Y = ps.data.make_xc("small", n_samples=64, n_features=50, n_labels=20, seed=0)
net = ps.Network(50, [ps.Dense(8), ps.Sampled(20)], threads=int(sys.argv[1]), seed=0)
net.fit(X, Y, epochs=1, batch_size=32, verbose=0)
pid = os.fork()
if pid == 0:
    os._exit(0)          # the child touches no OpenMP: it only shows the warning
os.waitpid(pid, 0)
child = multiprocessing.get_context("fork").Process(target=print, args=("child ran",))
child.start()
child.join(30)
print("exit code", child.exitcode)
"""


@pytest.mark.skipif(not hasattr(os, "fork") or not ps.openmp_enabled(),
                    reason="needs fork and an OpenMP build")
def test_a_child_forked_after_threaded_training_is_warned():
    done = subprocess.run([sys.executable, "-c", _FORK_SCRIPT, "2"], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert "child ran" in done.stdout and "exit code 0" in done.stdout
    warnings_seen = re.findall(r"RuntimeWarning: pyslide: this process was forked after "
                               r"pyslide ran OpenMP threads \(2\) in its parent; .*", done.stderr)
    assert len(warnings_seen) == 2, done.stderr           # os.fork and multiprocessing's
    assert "multiprocessing.get_context('spawn')" in warnings_seen[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_no_fork_warning_after_single_threaded_training():
    done = subprocess.run([sys.executable, "-c", _FORK_SCRIPT, "1"], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stderr
    assert "exit code 0" in done.stdout
    assert "forked" not in done.stderr


# ------------------------------------------------------------- 8. early-stopping summary

@pytest.mark.parametrize("monitor, key", [(None, "val_loss"), ("p@1", "val_p@1")])
def test_early_stopping_summary_names_what_it_monitored(capsys, files, monitor, key):
    extra = ("--monitor", monitor) if monitor else ()
    code, out, err = call(capsys, "train", files["train.txt"], "--hidden", "8", "--epochs", "3",
                          "--threads", "1", "--validation-split", "0.2", "--early-stopping",
                          "1", *extra)
    assert code == 0, err
    summary = re.search(r"kept the model of epoch (\d+) \((\S+) (\d\.\d{4})\)", out)
    assert summary, out
    epoch, name, value = summary.groups()
    assert name == key
    # the number is the monitored one of the kept epoch, as its epoch line shows it
    line = next(l for l in out.splitlines() if l.startswith(f"epoch {epoch}/3 "))
    assert f"{key} {value}" in line


@pytest.mark.parametrize("monitor, key", [("val_loss", "val_loss"), ("p@1", "val_p@1"),
                                          ("val_ndcg@3", "val_ndcg@3"), ("loss", "loss")])
def test_early_stopping_names_the_logs_key_it_watches(monitor, key):
    assert ps.EarlyStopping(monitor=monitor).monitored_key == key


# ------------------------------------------------------------- 9. install hints

def test_demo_without_torch_gives_the_command_the_project_tests_with(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)          # import torch fails
    code, out, err = call(capsys, "demo", "--quick", "--threads", "1", "--samples", "100",
                          "--test", "20", "--epochs", "1")
    assert code == 0, err
    assert ('PyTorch not installed: skipping the baseline (to see pyslide beside a PyTorch '
            'sampled softmax: run pip install ".[bench]" --extra-index-url '
            'https://download.pytorch.org/whl/cpu in the pyslide source folder)') in out
    assert "pip install torch" not in out


def test_bench_without_torch_names_the_same_command(capsys, monkeypatch, tmp_path):
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real_find_spec(name, *a))
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "bench_train.py").write_text("import torch\n")
    code, _, err = call(capsys, "bench", "--benchmarks-dir", suite)
    assert code == 1
    one_line_error(err, 'the benchmark suite compares against PyTorch, which is not installed: '
                        'run pip install ".[bench]" --extra-index-url '
                        'https://download.pytorch.org/whl/cpu in the pyslide source folder')


def test_install_hints_never_name_the_index_project():
    # "pyslide" on the public index is another project: every hint installs
    # from the source folder.
    sources = [p for folder in ("pyslide", "examples", "benchmarks")
               for p in sorted((ROOT / folder).glob("*.py"))]
    for path in sources + [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        text = path.read_text()
        assert "install 'pyslide[" not in text and 'install "pyslide[' not in text, path.name
        assert not re.search(r"pip install torch\b", text), path.name


# ------------------------------------------------------------- 11. help()

_HELPED = [ps.Network, ps.Dense, ps.Sampled, ps.Adam, ps.AdamW, ps.SGD, ps.Constant,
           ps.StepDecay, ps.ExponentialDecay, ps.CosineDecay, ps.Callback, ps.EarlyStopping,
           ps.ModelCheckpoint, ps.SimHash, ps.WTA, ps.DWTA, ps.DOPH, ps.LSHTables]


@pytest.mark.parametrize("cls", _HELPED, ids=[c.__name__ for c in _HELPED])
def test_help_describes_the_constructor(cls):
    import pydoc
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert "Initialize self" not in text
    if "__init__" in text:          # Callback has no constructor of its own
        after = text.split("__init__(self", 1)[1].splitlines()[1:3]
        assert len(" ".join(after).split()) >= 5, after     # a sentence, not a placeholder


def test_help_of_network_documents_the_fitted_attributes():
    import pydoc
    text = pydoc.render_doc(ps.Network, renderer=pydoc.plaintext)
    for attribute in ("history_ : dict of lists", "best_epoch_ : int", "epoch_, step_ : int",
                      "timings_ : dict", "validation_rows_ : ndarray or None"):
        assert attribute in text, attribute


def test_sampled_docstring_describes_parameters_without_benchmark_figures():
    doc = ps.Sampled.__doc__
    assert len(doc.splitlines()) <= 110
    parameters = doc.split("Parameters", 1)[1].split("Notes", 1)[0]
    assert not re.search(r"P@1|0\.\d{3} */", parameters), "figures belong in docs/guide.md"
    guide = (ROOT / "docs" / "guide.md").read_text()
    for section in re.findall(r'``docs/guide.md``, "([^"]+)"', " ".join(doc.split())):
        assert f"# {section}" in guide, section                  # the links lead somewhere
