"""The ``pyslide`` command line.

The main flows run as real subprocesses (``python -m pyslide ...``) on tiny
files; the long list of error messages runs ``pyslide.cli.main`` in-process
(the same code path, minus a second of interpreter start-up per case) and
checks the exit status and the one-line message of each.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import pyslide as ps
from pyslide import cli, demo

N_FEATURES, N_LABELS = 800, 200

try:
    import tomllib  # noqa: F401
    HAS_TOML = True
except ImportError:
    try:
        import tomli  # noqa: F401
        HAS_TOML = True
    except ImportError:
        HAS_TOML = False
needs_toml = pytest.mark.skipif(not HAS_TOML, reason="TOML configs need Python >= 3.11")


def run_cli(*args, cwd=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "pyslide", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def call(capsys, *args):
    """``cli.main`` in-process: (exit status, stdout, stderr)."""
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pyslide: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def problem():
    return ps.data.make_xc("small", n_samples=300, n_test=60, n_features=N_FEATURES,
                           n_labels=N_LABELS, seed=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory, problem):
    """Train/test files in XC and libsvm format, a malformed file, a trained model."""
    folder = tmp_path_factory.mktemp("cli")
    X, Y, Xt, Yt = problem
    ps.data.save_xc(folder / "train.txt", X, Y)
    ps.data.save_xc(folder / "test.txt", Xt, Yt)
    ps.data.save_libsvm(folder / "train.svm", X, Y)
    ps.data.save_libsvm(folder / "test.svm", Xt, Yt)
    lines = (folder / "test.txt").read_text().splitlines()
    lines[3] = "1,2 5:0.5 7:abc"          # line 4 of the file: a malformed value
    (folder / "bad.txt").write_text("\n".join(lines) + "\n")
    wide = ps.data.make_xc("small", n_samples=5, n_features=N_FEATURES + 50,
                           n_labels=N_LABELS, seed=1)
    ps.data.save_xc(folder / "wide.txt", *wide)
    result = run_cli("train", "train.txt", "--test", "test.txt", "--hidden", "32",
                     "--active", "48", "--hash", "simhash", "-K", "4", "-L", "8",
                     "--epochs", "2", "--threads", "1", "--lr", "0.01",
                     "--save", "model.npz", cwd=folder)
    assert result.returncode == 0, result.stderr
    return {"dir": folder, "train_output": result.stdout,
            **{name: folder / name for name in ("train.txt", "test.txt", "train.svm",
                                                 "test.svm", "bad.txt", "wide.txt",
                                                 "model.npz")}}


# --------------------------------------------------------------------------- subprocess flows

def test_train_prints_progress_evaluates_and_saves(files):
    out = files["train_output"]
    assert re.search(r"train\.txt: 300 rows, 800 features", out)
    for epoch in (1, 2):
        assert re.search(rf"epoch {epoch}/2  loss \d+\.\d+ .* p@1 \d\.\d{{4}}", out), out
    assert "steps/s" in out and "time by phase:" in out
    assert files["model.npz"].exists()
    net = ps.load(files["model.npz"])
    assert net.epoch_ == 2
    assert [layer.units for layer in net.layers] == [32, N_LABELS]
    assert net.layers[-1].hash == ps.SimHash(K=4, L=8, seed=0)


def test_evaluate_json_matches_the_api(files, problem):
    X, Y, Xt, Yt = problem
    result = run_cli("evaluate", files["model.npz"], files["test.txt"], "--json",
                     "--train", files["train.txt"], "-k", "1,3", "--threads", "1")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    net = ps.load(files["model.npz"], threads=1)
    ids = net.predict(Xt, k=3)
    expected = ps.metrics.evaluate_topk(ids, Yt, ks=(1, 3),
                                        propensities=ps.metrics.propensities(Y))
    assert scores.keys() == expected.keys()
    for key in expected:
        assert scores[key] == pytest.approx(expected[key], rel=1e-12)


def test_predict_writes_one_line_per_row(files, problem):
    X, Y, Xt, Yt = problem
    out_file = files["dir"] / "pred.txt"
    result = run_cli("predict", files["model.npz"], files["test.txt"], "-k", "4",
                     "-o", out_file, "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "wrote top-4 labels of 60 rows" in result.stdout
    lines = out_file.read_text().splitlines()
    assert len(lines) == Xt.shape[0]
    net = ps.load(files["model.npz"], threads=1)
    ids, scores = net.predict_topk(Xt, k=4)
    for line, row_ids, row_scores in zip(lines, ids, scores):
        pairs = [p.split(":") for p in line.split()]
        assert [int(i) for i, _ in pairs] == row_ids.tolist()
        np.testing.assert_allclose([float(s) for _, s in pairs], row_scores, rtol=1e-5)


@needs_toml
def test_train_config_takes_lr_scale_per_epoch(files, tmp_path):
    config = tmp_path / "cfg.toml"
    config.write_text("lr-scale = [2, 0.5]\n")
    code = run_cli("train", str(files["train.txt"]), "--config", config, "--epochs", "1",
                   "--threads", "1", "--quiet", "--save", tmp_path / "m.npz",
                   cwd=tmp_path).returncode
    assert code == 0
    assert ps.load(tmp_path / "m.npz").layers[-1].lr_scale == (2.0, 0.5)


@needs_toml
def test_train_from_config_with_flag_override(files, tmp_path):
    config = tmp_path / "cfg.toml"
    config.write_text(f'train = "{files["train.txt"]}"\n'
                      "[network]\nhidden = [24, 16]\n"
                      "[optimizer]\nlr = 0.5\noptimizer = \"sgd\"\n"
                      "[training]\nepochs = 1\nthreads = 1\nbatch-size = 64\n")
    result = run_cli("train", "--config", config, "--lr", "0.05", "--quiet", "--save",
                     tmp_path / "m.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    net = ps.load(tmp_path / "m.npz")
    assert [layer.units for layer in net.layers] == [24, 16, N_LABELS]
    assert isinstance(net.optimizer, ps.SGD) and net.optimizer.lr == 0.05
    assert net.step_ == -(-300 // 64)


def test_demo_quick_runs(tmp_path):
    result = run_cli("demo", "--quick", "--threads", "1", "--no-torch", "--samples", "200",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"epoch 2 .* P@1 \d\.\d{4}  P@3 \d\.\d{4}  P@5 \d\.\d{4}", result.stdout)
    assert "PyTorch baseline skipped (--no-torch)" in result.stdout
    assert re.search(r"pyslide \(LSH-sampled softmax\) +\d+\.\d +\d+\.\d", result.stdout)


def test_demo_pytorch_baseline_or_honest_note(tmp_path):
    result = run_cli("demo", "--quick", "--threads", "1", "--samples", "128", "--test", "20",
                     "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    try:
        import torch  # noqa: F401
    except ImportError:
        assert "PyTorch not installed: skipping the baseline" in result.stdout
    else:
        assert re.search(r"PyTorch \(uniform sampled softmax\) +\d+\.\d", result.stdout)
        assert "pyslide steps/s / PyTorch steps/s" in result.stdout
        # each PyTorch epoch beside pyslide's P@1 after no more training time
        assert "at equal training time" in result.stdout
        assert re.search(r"\d+\.\d s: PyTorch \d\.\d{4} \(epoch 1\), pyslide "
                         r"(\d\.\d{4} \(epoch 1\)|had not finished an epoch)", result.stdout)


def test_usage_error_exit_status_from_a_subprocess(tmp_path):
    result = run_cli("train", "x.txt", "--epochs", "zero", cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "argument --epochs", "'zero'",
                          "see 'pyslide train --help'")
    result = run_cli("evaluate", "missing.npz", "t.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "model file 'missing.npz' does not exist")


def test_console_script_is_installed():
    script = shutil.which("pyslide")
    if script is None:
        pytest.skip("the pyslide console script is not on PATH (package not installed)")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"pyslide {ps.__version__}"


# --------------------------------------------------------------------------- in-process flows

@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "demo", "bench"])
def test_help_of_every_command(capsys, command):
    code, out, err = call(capsys, command, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"usage: pyslide {command}")
    assert "example" in out


def test_top_level_help_and_no_command(capsys):
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for command in ("train", "evaluate", "predict", "demo", "bench"):
        assert command in out
    code, out, err = call(capsys)
    assert code == 2 and "usage: pyslide" in err


def test_evaluate_table(capsys, files):
    code, out, err = call(capsys, "evaluate", files["model.npz"], files["test.txt"],
                          "--train", files["train.txt"], "--threads", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split() == ["k=1", "k=3", "k=5"]
    assert [line.split("  ")[0] for line in lines[2:]] == [
        "P@k", "nDCG@k", "PSP@k", "PSP@k / best PSP@k"]
    for line in lines[2:]:
        values = [float(v) for v in line.split()[-3:]]
        assert all(v >= 0 for v in values)


def test_evaluate_without_train_has_no_psp(capsys, files):
    code, out, _ = call(capsys, "evaluate", files["model.npz"], files["test.txt"], "-k", "2",
                        "--json", "--threads", "1")
    assert code == 0
    assert set(json.loads(out)) == {"p@2", "ndcg@2"}


def test_predict_probabilities_and_sampled(capsys, files, tmp_path):
    out_file = tmp_path / "p.txt"
    code, _, err = call(capsys, "predict", files["model.npz"], files["test.txt"], "-k", "3",
                        "--scores", "prob", "-o", out_file, "--threads", "1", "-q")
    assert code == 0, err
    for line in out_file.read_text().splitlines():
        probs = [float(pair.split(":")[1]) for pair in line.split()]
        assert len(probs) == 3
        assert all(0 < p <= 1 for p in probs) and probs == sorted(probs, reverse=True)
    code, out, err = call(capsys, "predict", files["model.npz"], files["test.txt"], "-k", "3",
                          "--sampled", "--threads", "1")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 60
    assert all(re.fullmatch(r"(\d+:-?[\d.e+-]+ ?){0,3}", line) for line in lines)


def test_predict_reads_the_model_width_from_a_narrower_file(capsys, files, tmp_path):
    narrow = tmp_path / "narrow.txt"
    narrow.write_text("2 10 5\n1 3:0.5 7:1\n 2:1\n")    # the header declares fewer columns
    code, out, err = call(capsys, "predict", files["model.npz"], narrow, "-k", "2",
                          "--threads", "1")
    assert code == 0, err
    assert len(out.splitlines()) == 2


def test_train_progress_bar_goes_to_stderr(capsys, files):
    code, out, err = call(capsys, "train", files["train.txt"], "--hidden", "8", "--epochs", "1",
                          "--threads", "1", "--progress")
    assert code == 0, err
    assert "epoch 1" in err and "step" in err        # the bar
    assert "epoch 1/1  loss" in out                  # the epoch line


def test_train_libsvm(capsys, files, tmp_path):
    code, out, err = call(capsys, "train", files["train.svm"], "--test", files["test.svm"],
                          "--format", "libsvm", "--hidden", "16", "--epochs", "1",
                          "--threads", "1", "--eval-k", "1", "--save", tmp_path / "s.npz")
    assert code == 0, err
    assert re.search(r"epoch 1/1 .* p@1 \d\.\d{4}  ndcg@1", out)
    code, out, err = call(capsys, "predict", tmp_path / "s.npz", files["test.svm"],
                          "--format", "libsvm", "-k", "1", "--threads", "1")
    assert code == 0, err
    assert len(out.splitlines()) == 60


def test_train_json_config_and_layers_table(capsys, files, tmp_path):
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({
        "train": str(files["train.txt"]), "epochs": 1, "threads": 1, "eval_every": 0,
        "layers": [{"kind": "dense", "units": 16},
                   {"kind": "sampled", "units": 64, "active": 16, "share": "sample",
                    "hash": {"family": "dwta", "K": 2, "L": 4}},
                   {"kind": "sampled", "units": "labels", "active": 40}]}))
    code, out, err = call(capsys, "train", "--config", config, "--save", tmp_path / "m.npz")
    assert code == 0, err
    net = ps.load(tmp_path / "m.npz")
    assert [type(layer).__name__ for layer in net.layers] == ["Dense", "Sampled", "Sampled"]
    assert net.layers[1].hash == ps.DWTA(K=2, L=4)


def test_train_hash_options_build_the_family(capsys, files, tmp_path):
    code, _, err = call(capsys, "train", files["train.txt"], "--hidden", "16", "--epochs", "1",
                        "--threads", "1", "--hash", "dwta", "-K", "2", "-L", "6",
                        "--bin-size", "4", "--share", "sample", "--active", "0.1",
                        "--rebuild-every", "3", "--policy", "reservoir", "--query", "threshold",
                        "--threshold", "3", "-q", "--save", tmp_path / "m.npz")
    assert code == 0, err
    out = ps.load(tmp_path / "m.npz").layers[-1]
    assert out.hash == ps.DWTA(K=2, L=6, bin_size=4, seed=0)
    assert (out.share, out.active, out.rebuild_every, out.policy, out.query, out.threshold) == (
        "sample", 20, 3, "reservoir", "threshold", 3)


def test_bench_builtin_quick(capsys, tmp_path, monkeypatch):
    # pyslide imported from an installed package: no benchmarks/ beside it
    monkeypatch.setattr(demo, "__file__", str(tmp_path / "site-packages" / "pyslide" / "demo.py"))
    monkeypatch.chdir(tmp_path)
    code, out, err = call(capsys, "bench", "--quick", "--threads", "1", "--out", "t.md")
    assert code == 0, err
    assert "bench_train.py not found" in out
    table = (tmp_path / "t.md").read_text()
    assert table.count("| lsh") == 2 and "| uniform batch |" in table


def test_bench_finds_the_checkout_suite_not_the_current_folders(tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench_train.py").write_text("raise SystemExit(9)\n")
    monkeypatch.chdir(tmp_path)
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(demo.__file__)))
    expected = os.path.join(checkout, "benchmarks", "bench_train.py")
    assert demo.find_bench_suite() == (expected if os.path.isfile(expected) else None)


def test_bench_runs_the_suite_script_with_forwarded_arguments(capsys, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "bench_train.py").write_text(
        "import json, sys\n"
        "json.dump(sys.argv[1:], open(sys.argv[sys.argv.index('--out') + 1], 'w'))\n"
        "sys.exit(3 if '--fail' in sys.argv else 0)\n")
    out_file = tmp_path / "r.json"
    code, out, err = call(capsys, "bench", "--benchmarks-dir", suite, "--threads", "1",
                          "--out", out_file, "--", "--preset", "amazon")
    assert code == 0, err
    assert json.loads(out_file.read_text()) == ["--out", str(out_file), "--threads", "1",
                                                "--preset", "amazon"]
    assert "tables written to" in out
    code, _, err = call(capsys, "bench", "--benchmarks-dir", suite, "--out", out_file,
                        "--", "--fail")
    assert code == 1
    assert_one_line_error(err, "bench_train.py failed with exit status 3")


# --------------------------------------------------------------------------- error messages

USAGE_ERRORS = [
    (["train", "t.txt", "--lr", "abc"], ["argument --lr: expected a number, got 'abc'"]),
    # a value the class it configures refuses: its message, before any file is read
    (["train", "t.txt", "--lr", "-1"], ["argument --lr: Adam: lr must be"]),
    (["train", "t.txt", "--threshold", "0"], ["argument --threshold: Sampled: threshold"]),
    (["train", "t.txt", "--dropout", "1.5"], ["argument --dropout: Dense: dropout must be"]),
    (["train", "t.txt", "--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    (["train", "t.txt", "--hidden", "12x"], ["argument --hidden", "'12x'"]),
    (["train", "t.txt", "--active", "1.5"], ["argument --active", "fraction in (0, 1]"]),
    (["train", "t.txt", "--active", "0"], ["argument --active", "count >= 1"]),
    (["train", "t.txt", "--threads", "0"], ["argument --threads", "-1 for every core"]),
    (["train", "t.txt", "--share", "row"], ["argument --share: invalid choice: 'row'"]),
    (["train", "t.txt", "--hash", "md5"], ["argument --hash: invalid choice: 'md5'"]),
    (["train", "t.txt", "--epochs", "0"], ["argument --epochs", "integer >= 1"]),
    (["train", "t.txt", "--lr-scale", "0"], ["argument --lr-scale", "'auto', a positive number"]),
    (["train", "t.txt", "--lr-scale", "1.5,-1"], ["argument --lr-scale", "'-1'"]),
    (["train", "t.txt", "--lr-scale", "fast"], ["argument --lr-scale", "'fast'"]),
    (["train", "t.txt", "--eval-k", "0,1"], ["argument --eval-k", "k values >= 1"]),
    (["train"], ["the training file is missing"]),
    (["evaluate", "m.npz", "t.txt", "-k", "0"], ["argument -k", "k values >= 1", "'0'"]),
    (["evaluate", "m.npz", "t.txt", "-k", "a,b"], ["argument -k", "'a,b'"]),
    (["evaluate", "m.npz"], ["the following arguments are required: TEST"]),
    (["evaluate", "m.npz", "t.txt", "--propensity-a", "0"], ["argument --propensity-a"]),
    (["predict", "m.npz", "t.txt", "-k", "-3"], ["argument -k", "integer >= 1"]),
    (["predict", "m.npz", "t.txt", "--scores", "raw"], ["argument --scores: invalid choice"]),
    (["demo", "--samples", "0"], ["argument --samples", "integer >= 1"]),
]


@pytest.mark.parametrize("argv, fragments", USAGE_ERRORS,
                         ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_usage_errors(capsys, argv, fragments):
    code, _, err = call(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, *fragments)


def test_usage_errors_found_after_reading_the_data(capsys, files):
    cases = [
        (["--hash", "simhash", "--bin-size", "4"],
         "bin_size does not apply to the SimHash family (on the command line: bin_size is "
         "--bin-size)"),
        (["--hash", "none", "-K", "3"], "-K does not apply to --hash none"),
        (["--output", "dense", "--active", "10"], "--active applies to a sampled output layer"),
        (["--output", "dense", "--bias-init", "prior"],
         "--bias-init applies to a sampled output layer"),
        (["--output", "dense", "--lr-scale", "2"], "--lr-scale applies to a sampled output layer"),
        (["--hash", "dwta", "--bin-size", "3"], "bin_size must be a power of two"),
        (["--hash", "simhash", "-K", "30"], "K = 30 gives 30-bit bucket ids"),
        # the library's rule, with the flag of the parameter it names
        (["--hidden", "none"], "share='batch' needs a hidden layer before it"),
        (["--hidden", "0"], "(on the command line: share is --share)"),
        (["--min-active", "50", "--max-active", "10"], "min_active (50) must not exceed "
                                                       "max_active (10)"),
    ]
    for extra, fragment in cases:
        code, _, err = call(capsys, "train", files["train.txt"], "--epochs", "1",
                            "--threads", "1", "-q", *extra)
        assert code == 2, (extra, err)
        assert_one_line_error(err, fragment)


@needs_toml
def test_config_errors(capsys, files, tmp_path):
    def run_with(name, text):
        path = tmp_path / name
        path.write_text(text)
        code, _, err = call(capsys, "train", files["train.txt"], "--config", path)
        assert code == 2, err
        return err

    assert_one_line_error(run_with("a.toml", "hiden = 3\n"), "unknown key 'hiden'",
                          "known keys:")
    assert_one_line_error(run_with("b.toml", "[network]\nhidden = \"x\"\n"),
                          "key 'hidden'", "'x'")
    assert_one_line_error(run_with("c.toml", "lr = [\n"), "b.toml" if False else "c.toml",
                          "not valid TOML")
    assert_one_line_error(run_with("d.json", "{\"lr\": }"), "not valid JSON")
    assert_one_line_error(run_with("e.toml", "share = \"row\"\n"),
                          "key 'share': 'row' is not one of batch, sample")
    assert_one_line_error(run_with("f.toml", "lr = 1\n[optimizer]\nlr = 2\n"),
                          "key 'lr' is given twice")
    assert_one_line_error(run_with("g.json", "[1, 2]"), "top level must be a table")
    assert_one_line_error(run_with("h.toml", "lr-scale = [1.5, 0]\n"), "key 'lr-scale'",
                          "'auto', a positive number", "got 0")
    assert_one_line_error(
        run_with("h.toml", "epochs = 1\n[[layers]]\nkind = \"dense\"\nunits = 8\n"
                 "[[layers]]\nkind = \"sampled\"\nunits = 3\n"),
        "layers[1] is the output layer: units must be the number of labels (200)")
    assert_one_line_error(
        run_with("i.toml", "[[layers]]\nkind = \"conv\"\n"), "layers[0]",
        "unknown layer kind 'conv'")
    assert_one_line_error(
        run_with("j.toml", "hidden = 64\n[[layers]]\nkind = \"dense\"\nunits = \"labels\"\n"),
        "--hidden cannot be combined with a 'layers' list")
    code, _, err = call(capsys, "train", "--config", tmp_path / "nope.toml")
    assert code == 2
    assert_one_line_error(err, "--config: no such file", "nope.toml")


def test_toml_config_without_tomllib_says_so(capsys, files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tomllib", None)    # import fails, as on Python < 3.11
    monkeypatch.setitem(sys.modules, "tomli", None)
    config = tmp_path / "cfg.toml"
    config.write_text("epochs = 1\n")
    code, _, err = call(capsys, "train", files["train.txt"], "--config", config)
    assert code == 2
    assert_one_line_error(err, "TOML config files need Python 3.11 or later",
                          "as a JSON file (cfg.json)")


def test_failures_name_the_file_and_line(capsys, files, tmp_path):
    cases = [
        (["train", tmp_path / "none.txt"], ["training file", "none.txt", "does not exist"]),
        (["train", files["train.txt"], "--test", files["bad.txt"], "-q"],
         ["bad.txt, line 4", "'7:abc'"]),
        (["evaluate", files["model.npz"], files["bad.txt"]], ["bad.txt, line 4"]),
        (["evaluate", files["model.npz"], files["wide.txt"]],
         ["wide.txt, line", "feature id", "out of range: n_features=800"]),
        (["evaluate", files["train.txt"], files["test.txt"]],
         ["train.txt", "is not a pyslide model file"]),
        (["evaluate", tmp_path / "m.npz", files["test.txt"]], ["model file", "does not exist"]),
        (["predict", files["model.npz"], tmp_path], ["input file", "is a directory"]),
        (["predict", files["model.npz"], files["test.txt"], "-o", tmp_path / "no" / "p.txt"],
         ["-o", "the folder", "does not exist"]),
        (["train", files["train.txt"], "--save", tmp_path / "no" / "m.npz"],
         ["--save", "does not exist"]),
        (["bench", "--benchmarks-dir", tmp_path], ["--benchmarks-dir", "no bench_train.py"]),
    ]
    for argv, fragments in cases:
        code, _, err = call(capsys, *argv)
        assert code == 1, (argv, err)
        assert_one_line_error(err, *fragments)


def test_debug_shows_the_traceback(capsys, tmp_path):
    code, _, err = call(capsys, "train", tmp_path / "none.txt", "--debug")
    assert code == 1
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("pyslide: error: training file")


def test_interrupt_exits_130(capsys, files, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(ps.Network, "fit", interrupted)
    code, _, err = call(capsys, "train", files["train.txt"], "--threads", "1", "-q")
    assert code == 130
    assert err.strip() == "pyslide: interrupted"


def test_memory_error_is_one_line(capsys, files, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError("this network needs about 9.0 GB")
    monkeypatch.setattr(ps.Network, "fit", no_memory)
    code, _, err = call(capsys, "train", files["train.txt"], "--threads", "1", "-q")
    assert code == 1
    assert_one_line_error(err, "not enough memory: this network needs about 9.0 GB")


def test_train_defaults_build_the_api_defaults(capsys, files, tmp_path):
    """`pyslide train` with no network flags builds what the API's defaults build."""
    path = tmp_path / "m.npz"
    code = call(capsys, "train", str(files["train.txt"]), "--epochs", "1", "--threads", "1",
                "--quiet", "--save", str(path))[0]
    assert code == 0
    net = ps.load(path)
    api = ps.Network(net.input_dim, [ps.Dense(128), ps.Sampled(N_LABELS)], threads=1)
    assert net.get_config()["layers"] == api.get_config()["layers"]
    assert net.get_config()["optimizer"] == api.get_config()["optimizer"]


def test_train_regularization_flags(capsys, files, tmp_path):
    path = tmp_path / "m.npz"
    code = call(capsys, "train", str(files["train.txt"]), "--epochs", "2", "--threads", "1",
                "--quiet", "--dropout", "0.2", "--weight-decay", "1e-4", "--warmup", "0.5",
                "--cosine", "--no-correction", "--lr-scale", "2.5,1", "--save", str(path))[0]
    assert code == 0
    net = ps.load(path)
    assert net.layers[0].dropout == 0.2 and net.layers[-1].correction is False
    assert net.layers[-1].lr_scale == (2.5, 1.0)
    assert net.optimizer.weight_decay == 1e-4
    assert net.optimizer.schedule.get_config() == {"kind": "cosine", "warmup": 0.5,
                                                  "epochs": 2.0, "final": 0.0}
    code = call(capsys, "train", str(files["train.txt"]), "--epochs", "1", "--warmup", "1",
                "--quiet", "--save", str(path))[0]
    assert code == 0 and ps.load(path).optimizer.schedule.get_config() == {
        "kind": "constant", "warmup": 1.0}


def test_train_bad_regularization_flags_are_named(capsys, files):
    code, _, err = call(capsys, "train", str(files["train.txt"]), "--dropout", "1.5")
    assert code == 2 and "dropout must be a number in [0, 1)" in err
    code, _, err = call(capsys, "train", str(files["train.txt"]), "--hidden", "none",
                        "--share", "sample", "--dropout", "0.1")
    assert code == 2 and "--dropout applies to hidden layers" in err


def test_bad_monitor_is_a_usage_error_before_reading_data(capsys, tmp_path):
    code, _, err = call(capsys, "train", str(tmp_path / "missing.txt"), "--validation-split",
                        "0.1", "--early-stopping", "2", "--monitor", "acc")
    assert code == 2
    assert_one_line_error(err, "--monitor: EarlyStopping: monitor must be", "got 'acc'")


# --------------------------------------------------------------------------- one source of settings

def test_train_without_layer_flags_builds_the_api_defaults(capsys, files, tmp_path):
    """Every setting the command leaves unset is the library's default."""
    model = tmp_path / "defaults.npz"
    code, out, err = call(capsys, "train", files["train.txt"], "--epochs", "1", "--quiet",
                          "--save", model)
    assert code == 0, err
    net = ps.load(model)
    api = ps.Network(N_FEATURES, [ps.Dense(128), ps.Sampled(N_LABELS)])
    assert net.get_config() == api.get_config()
    # the CLI's own epochs default, the library's batch size
    assert net.epoch_ == 1 and net.step_ == -(-300 // 128)


def test_network_config_round_trip():
    net = ps.Network(50, [ps.Dense(16, dropout=0.1),
                          ps.Sampled(40, hash=ps.SimHash(K=3, L=4, seed=2), active=8,
                                     share="sample", policy="fifo")],
                     loss="bce", optimizer=ps.AdamW(lr=2e-3, schedule=ps.CosineDecay(3)),
                     threads=1, seed=7)
    config = net.get_config()
    again = ps.Network.from_config(json.loads(json.dumps(config)))
    assert again.get_config() == config
    # keys left out take the library's defaults
    short = ps.Network.from_config({"input_dim": 50, "layers": [
        {"kind": "dense", "units": 16}, {"kind": "sampled", "units": 40}]})
    assert short.get_config() == ps.Network(50, [ps.Dense(16), ps.Sampled(40)]).get_config()


def test_network_from_config_errors():
    with pytest.raises(TypeError, match="config must be a dict"):
        ps.Network.from_config([1, 2])
    with pytest.raises(ValueError, match="unknown key.*'hidden'"):
        ps.Network.from_config({"input_dim": 5, "layers": [], "hidden": 3})
    with pytest.raises(ValueError, match="config needs 'input_dim' and 'layers'"):
        ps.Network.from_config({"input_dim": 5})
    with pytest.raises(ValueError, match="unknown layer kind 'conv'"):
        ps.Network.from_config({"input_dim": 5, "layers": [{"kind": "conv", "units": 3}]})
    with pytest.raises(TypeError, match="a layer config must be a dict"):
        ps.Network.from_config({"input_dim": 5, "layers": [3]})


def test_sgd_rejects_adam_flags(capsys, files):
    code, _, err = call(capsys, "train", files["train.txt"], "--optimizer", "sgd",
                        "--beta1", "0.8")
    assert code == 2
    assert_one_line_error(err, "--beta1 applies to --optimizer adam, not sgd")


def test_help_defaults_are_read_from_the_library(capsys, monkeypatch):
    """A library default changed shows in ``--help`` without an edit of the CLI."""
    class Changed(ps.Adam):
        def __init__(self, lr=0.25, beta1=0.5, beta2=0.999, eps=1e-8, weight_decay=0.0,
                     idle_rows="hold"):
            super().__init__(lr, beta1, beta2, eps, weight_decay=weight_decay,
                             idle_rows=idle_rows)

    monkeypatch.setitem(cli._HELP_NAMES, "Adam", Changed)
    code, out, _ = call(capsys, "train", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "learning rate (default 0.25 for adam, 0.1 for sgd)" in text
    assert "decay of the first and second moment estimates, in (0, 1) (default 0.5)" in text
    assert "slots per hash bucket (default 128)" in text


def test_a_flags_help_is_its_parameters_first_documented_sentence(capsys):
    """Without a help text of its own, a flag shows the first sentence of the
    library's docstring entry for its parameter, and the signature's default."""
    from pyslide._docstrings import parameter_help

    assert parameter_help(ps.Sampled, "threshold") == (
        'tables an id must be hit in, for query="threshold" (default 2)')
    assert parameter_help(ps.Adam, "beta2").endswith("in (0, 1) (default 0.999)")
    assert parameter_help(ps.Dense, "init_std") == (
        "standard deviation of the normal initial weights (by default scaled to the "
        "fan-in)")     # default None: the library decides, no "(default None)"
    with pytest.raises(LookupError, match="documents no parameter 'nothing'"):
        parameter_help(ps.Adam, "nothing")
    code, out, _ = call(capsys, "train", "--help")
    assert code == 0
    assert 'tables an id must be hit in, for query="threshold" (default 2)' in " ".join(out.split())


def test_every_train_flag_names_a_library_parameter():
    """The flag table's targets (pyslide.config.SETTINGS' for a network setting) exist:
    a renamed library parameter fails here."""
    import inspect

    owners = {"Dense": [ps.Dense], "Sampled": [ps.Sampled], "layer": [ps.Dense, ps.Sampled],
              "family": [ps.SimHash, ps.WTA, ps.DWTA, ps.DOPH], "Adam": [ps.Adam],
              "optimizer": [ps.Adam, ps.SGD], "schedule": [ps.CosineDecay],
              "Network": [ps.Network], "fit": [ps.Network.fit],
              "EarlyStopping": [ps.EarlyStopping], "ModelCheckpoint": [ps.ModelCheckpoint]}
    for option in cli._TRAIN_SPEC.values():
        owner, param = option.target.split(".")
        if owner in ("cli", "settings") or (owner, param) == ("schedule", "kind"):
            assert owner != "schedule" or option.dest == "cosine"
            continue
        found = [cls for cls in owners[owner] if param in inspect.signature(cls).parameters]
        assert found if owner == "family" else found == owners[owner], option


def test_progress_bar_with_validation_prints_each_epoch_line_once(capsys, files):
    """fit's own line (verbose=1 with validation data) is the CLI's EpochReport, not a
    second line beside it."""
    code, out, err = call(capsys, "train", files["train.txt"], "--hidden", "16", "--epochs",
                          "2", "--threads", "1", "--validation", files["test.txt"],
                          "--progress")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("val_loss" in line for line in lines) and "epoch 1" in err   # the bar
