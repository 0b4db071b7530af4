"""Issue 9: a saved model is never lost or half-written, no input crashes the
process, every failure is one clear line. One test (at least) per row of the
issue's table; the fault tests (SIGKILL, concurrent writers, ENOSPC) and the
fuzzing live in ``test_faults.py`` and ``test_fuzz.py``.
"""
import copy
import errno
import gzip
import io
import json
import os
import pickle
import re
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import pyslide as ps
from pyslide import cli, persist
from pyslide.atomic import atomic_write
from pyslide import datafiles
from pyslide.data import XCFormatError, load_libsvm, load_xc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def call(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err, *fragments):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pyslide: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def problem():
    return ps.data.make_xc("small", n_samples=300, n_features=600, n_labels=150, seed=0)


@pytest.fixture(scope="module")
def trained(problem):
    X, Y = problem
    net = ps.Network(X.shape[1], [ps.Dense(16), ps.Sampled(Y.shape[1], active=30)],
                     threads=1, seed=0)
    net.fit(X, Y, epochs=1, batch_size=64, verbose=0)
    return net


@pytest.fixture(scope="module")
def model_file(trained, tmp_path_factory):
    return trained.save(tmp_path_factory.mktemp("model") / "model.npz")


def same_model(a, b):
    assert a.get_config() == b.get_config()
    assert (a.step_, a.epoch_, a.history_) == (b.step_, b.epoch_, b.history_)
    for pa, pb in zip(a._params, b._params):
        for name in persist.PERSISTENT_ARRAYS:
            if name in pa:
                assert pa[name].tobytes() == pb[name].tobytes(), name
    for ta, tb in zip(a._tables, b._tables):
        assert (ta is None) == (tb is None)
        if ta is not None:
            assert np.array_equal(ta.ids, tb.ids) and np.array_equal(ta.counts, tb.counts)


def rewrite(path, out, **changes):
    """Copy a model with members replaced, checksums recomputed (a foreign writer)."""
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays.update(changes)
    state = json.loads(str(arrays["state"]))
    state["checksums"] = {k: zlib.crc32(np.ascontiguousarray(v).tobytes())
                          for k, v in arrays.items() if k not in ("state", "state_crc32")}
    arrays["state"] = np.array(json.dumps(state))
    arrays["state_crc32"] = np.array(zlib.crc32(arrays["state"].tobytes()), dtype=np.uint32)
    np.savez(out, **arrays)
    return out


def member_data_offset(path, key):
    """Byte offset of member ``key``'s array data inside the model file."""
    raw = Path(path).read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(key + ".npy")
    start = info.header_offset
    name_len, extra_len = np.frombuffer(raw[start + 26:start + 30], dtype="<u2")
    data = start + 30 + int(name_len) + int(extra_len)
    header_len = np.frombuffer(raw[data + 8:data + 10], dtype="<u2")[0]
    return data + 10 + int(header_len)


# --------------------------------------------------------------------------- models

def test_round_trip_is_bit_identical_and_atomic(trained, model_file, problem):
    X, _ = problem
    loaded = ps.load(model_file)
    same_model(trained, loaded)
    assert np.array_equal(trained.predict(X[:30]), loaded.predict(X[:30]))
    assert os.listdir(os.path.dirname(model_file)) == ["model.npz"]


@pytest.mark.parametrize("cut", [0, 1, 3, 100, 0.5, -30])
def test_empty_or_truncated_model(model_file, tmp_path, cut):
    raw = Path(model_file).read_bytes()
    n = int(len(raw) * cut) if isinstance(cut, float) else (cut if cut >= 0 else len(raw) + cut)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(raw[:n])
    with pytest.raises(ValueError, match=re.escape(f"{str(bad)!r} is not a complete pyslide "
                                                   f"model (")):
        ps.load(bad)


def test_flipped_bit_names_the_array(model_file, tmp_path):
    raw = bytearray(Path(model_file).read_bytes())
    raw[member_data_offset(model_file, "layer1_W") + 100] ^= 0x10
    bad = tmp_path / "flipped.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"is not a complete pyslide model \(checksum "
                                         r"mismatch in layer1_W\)"):
        ps.load(bad)


def test_checksum_of_our_own_catches_what_the_zip_does_not(model_file, tmp_path):
    # a rewritten member with a valid zip CRC but the old state: only our CRC sees it
    with np.load(model_file) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["layer0_b"] = arrays["layer0_b"] + np.float32(1e-3)
    np.savez(tmp_path / "edited.npz", **arrays)
    with pytest.raises(ValueError, match=r"checksum mismatch in layer0_b"):
        ps.load(tmp_path / "edited.npz")


def test_text_or_npy_is_not_a_model_and_no_pickle_advice(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("2 6 3\n0 1:1\n")
    npy = tmp_path / "weights.npy"
    np.save(npy, np.ones(3))
    for path, what in ((text, "it holds text"), (npy, "a .npy file")):
        with pytest.raises(ValueError) as info:
            ps.load(path)
        message = str(info.value)
        assert f"{str(path)!r} is not a pyslide model file" in message and what in message
        assert "pickle" not in message
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(ValueError, match="is not a pyslide model file"):
        ps.load(other)
    with pytest.raises(ValueError, match="is a folder, not a pyslide model file"):
        ps.load(tmp_path)


def test_bad_json_config_names_the_file(model_file, tmp_path):
    bad = rewrite(model_file, tmp_path / "badjson.npz", config=np.array('{"input_dim": 6'))
    with pytest.raises(ValueError, match=re.escape(f"{str(bad)!r}: the model's config is not "
                                                   f"valid JSON")):
        ps.load(bad)
    bad = rewrite(model_file, tmp_path / "badconfig.npz", config=np.array('{"layers": 3}'))
    with pytest.raises(ValueError, match=re.escape(f"{str(bad)!r}: the model's config is "
                                                   f"invalid")):
        ps.load(bad)


def test_non_finite_weights_are_refused_at_load(problem, tmp_path):
    X, Y = problem
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], active=30)], seed=0)
    weights = net.get_weights()
    weights[1]["W"][3, 2] = np.nan
    net.set_weights(weights)
    net.save(tmp_path / "nan.npz")
    with pytest.raises(ValueError, match=r"layer1_W \(layer 1, array W\) holds NaN or infinite"):
        ps.load(tmp_path / "nan.npz")
    weights[1]["W"][3, 2] = 0
    weights[0]["b"][1] = np.inf
    net.set_weights(weights)
    net.save(tmp_path / "inf.npz")
    with pytest.raises(ValueError, match=r"layer0_b \(layer 0, array b\) holds NaN or infinite"):
        ps.load(tmp_path / "inf.npz")


def test_pickle_and_deepcopy_after_fit(trained, problem):
    X, Y = problem
    for clone in (pickle.loads(pickle.dumps(trained)), copy.deepcopy(trained)):
        same_model(trained, clone)
        assert np.array_equal(clone.predict(X[:20]), trained.predict(X[:20]))
    clone = copy.deepcopy(trained)
    clone.fit(X, Y, epochs=1, batch_size=64, verbose=0)   # trains on, the original is untouched
    assert clone.step_ > trained.step_
    fresh = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(Y.shape[1], active=30)])
    assert pickle.loads(pickle.dumps(fresh)).get_config() == fresh.get_config()


def test_persistent_arrays_list_is_the_one_place_to_extend(problem, tmp_path, monkeypatch):
    X, Y = problem
    allocate = ps.Network._allocate

    def with_row_mark(self):
        allocate(self)
        for params in self._params:
            params["row_mark"] = np.zeros(params["W"].shape[0], dtype=np.float64)

    monkeypatch.setattr(ps.Network, "_allocate", with_row_mark)
    net = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(Y.shape[1], active=30)], seed=0)
    net._params[1]["row_mark"][:] = np.arange(Y.shape[1]) * 0.5
    net.save(tmp_path / "old.npz")            # written before row_mark was persistent
    monkeypatch.setattr(persist, "PERSISTENT_ARRAYS", persist.PERSISTENT_ARRAYS + ("row_mark",))
    net.save(tmp_path / "new.npz")
    assert np.array_equal(ps.load(tmp_path / "new.npz")._params[1]["row_mark"],
                          net._params[1]["row_mark"])
    assert not ps.load(tmp_path / "old.npz")._params[1]["row_mark"].any()
    with np.load(tmp_path / "new.npz") as archive:
        arrays = {k: archive[k] for k in archive.files if k != "layer1_row_mark"}
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ValueError, match=r"not a complete pyslide model \(layer1_row_mark is "
                                         r"missing\)"):
        ps.load(tmp_path / "cut.npz")


def test_interrupted_save_keeps_the_old_file(trained, tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    trained.save(path)
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04 half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(persist.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trained.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


# --------------------------------------------------------------------------- threads

@pytest.mark.parametrize("threads", [10**5, 10**6])
def test_threads_are_capped_with_the_reason(threads):
    with pytest.raises(ValueError, match=rf"threads={threads} is more than this machine can "
                                         rf"use: at most \d+ \(4 per core .* scratch memory"):
        ps.Network(10, [ps.Dense(3)], threads=threads)
    limit = max(64, 4 * (os.cpu_count() or 1))
    assert ps.resolve_threads(limit) in (limit, 1)   # 1 without OpenMP
    with pytest.raises(ValueError, match="more than this machine can use"):
        ps.resolve_threads(limit + 1)


def test_cli_threads_cap(capsys):
    code, _, err = call(capsys, "demo", "--quick", "--threads", "1000000", "--no-torch")
    assert code == 2
    one_line_error(err, "--threads=1000000 is more than this machine can use")


def test_load_with_too_many_threads(model_file):
    with pytest.raises(ValueError, match="threads=1000000 is more than"):
        ps.load(model_file, threads=10**6)


# --------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def files(problem, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    X, Y = problem
    ps.data.save_xc(folder / "train.txt", X, Y)
    return folder


def test_cli_unwritable_save_is_refused_before_training(files, capsys):
    train = files / "train.txt"
    for target, fragment in (("/proc/x/model.npz", "the folder '/proc/x' does not exist"),
                             ("/proc/model.npz", "--save /proc/model.npz: cannot create a "
                                                 "file in '/proc'"),
                             ("/dev/full", "--save /dev/full: is not a regular file")):
        code, out, err = call(capsys, "train", train, "--save", target, "--threads", "1")
        assert code == 1
        one_line_error(err, fragment)
        assert "epoch" not in out   # refused before training


def test_cli_save_needs_free_space(files, capsys, monkeypatch):
    class Tiny:
        f_bavail, f_frsize = 10, 4096
    monkeypatch.setattr(os, "statvfs", lambda folder: Tiny())
    code, out, err = call(capsys, "train", files / "train.txt", "--save", files / "m.npz",
                          "--threads", "1")
    assert code == 1 and "epoch" not in out
    one_line_error(err, f"--save {files / 'm.npz'}: the file will need about",
                   "MiB is free in")


def test_cli_output_to_a_full_device_names_the_file(files, model_file, capsys):
    code, _, err = call(capsys, "predict", model_file, files / "train.txt", "-o", "/dev/full")
    assert code == 1
    one_line_error(err, "/dev/full: No space left on device")


def test_cli_refuses_to_overwrite_its_inputs(files, model_file, capsys):
    train = files / "train.txt"
    before = train.read_bytes()
    code, _, err = call(capsys, "train", train, "--save", train, "--threads", "1")
    assert code == 2 and train.read_bytes() == before
    one_line_error(err, f"--save {train} is the training file")
    before = Path(model_file).read_bytes()
    code, _, err = call(capsys, "predict", model_file, train, "-o", model_file)
    assert code == 2 and Path(model_file).read_bytes() == before
    one_line_error(err, f"-o {model_file} is the model file")
    code, _, err = call(capsys, "predict", model_file, train, "-o", train)
    assert code == 2
    one_line_error(err, f"-o {train} is the input file")


def test_cli_predictions_are_written_atomically(files, model_file, capsys, tmp_path):
    out = tmp_path / "pred.txt"
    code, _, err = call(capsys, "predict", model_file, files / "train.txt", "-o", out, "-q")
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 300 and os.listdir(tmp_path) == ["pred.txt"]


def test_cli_bench_without_torch_names_the_extra(capsys, tmp_path, monkeypatch):
    import importlib.util
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "bench_train.py").write_text("import torch\n")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else find_spec(name, *a))
    code, out, err = call(capsys, "bench", "--quick", "--benchmarks-dir", suite)
    assert code == 1 and "running:" not in out
    one_line_error(err, "PyTorch, which is not installed", 'pip install ".[bench]"')


def test_cli_sampled_on_a_model_without_tables(files, capsys, tmp_path, problem):
    X, Y = problem
    dense = ps.Network(X.shape[1], [ps.Dense(8), ps.Dense(Y.shape[1])], seed=0)
    everything = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(
        Y.shape[1], min_active=Y.shape[1], max_active=Y.shape[1])], seed=0)
    uniform = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], active=20,
                                                                hash=None)], seed=0)
    # the library's reasons (pyslide.inference), with the flag to drop
    for net, fragment in ((dense, "output layer is dense, so it has no LSH tables"),
                          (everything, f"computes all {Y.shape[1]} labels at every step"),
                          (uniform, "samples its outputs uniformly (hash=None)")):
        net.save(tmp_path / "m.npz")
        code, _, err = call(capsys, "predict", tmp_path / "m.npz", files / "train.txt",
                            "--sampled")
        assert code == 2
        one_line_error(err, "--sampled: ", fragment, "drop --sampled")


def test_cli_memory_refusal_suggests_flags(files, capsys, monkeypatch):
    import pyslide.hashing
    monkeypatch.setattr(pyslide.hashing, "_available_memory_bytes", lambda: 1000)
    code, _, err = call(capsys, "train", files / "train.txt", "--threads", "1")
    assert code == 1
    line = one_line_error(err, "not enough memory: this network needs about",
                          "--optimizer sgd", "-K / -L / --bucket-size")
    assert "pyslide.SGD" not in line


def test_empty_labels_warn(problem, capsys, tmp_path):
    X, Y = problem
    net = ps.Network(X.shape[1], [ps.Dense(4), ps.Sampled(Y.shape[1], active=30)], seed=0)
    empty = [[] for _ in range(X.shape[0])]
    with pytest.warns(UserWarning, match="every row's label list is empty, so there is "
                                         "nothing to learn"):
        net.fit(X, ps.data.labels_to_csr(empty, n_labels=Y.shape[1]), epochs=1, verbose=0)
    ps.data.save_xc(tmp_path / "nolabels.txt", X[:50],
                    ps.data.labels_to_csr(empty[:50], n_labels=Y.shape[1]))
    code, _, err = call(capsys, "train", tmp_path / "nolabels.txt", "--threads", "1", "-q",
                        "--hidden", "4")
    assert code == 0
    assert err.strip().splitlines() == [
        "pyslide: warning: Y: every row's label list is empty, so there is nothing to learn "
        "(the loss is 0) and P@k is 0; check the labels column of the data"]


# --------------------------------------------------------------------------- data files

def test_bom_is_skipped(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf2 6 3\n0,1 2:1\n2 5:0.5\n")
    X, Y = load_xc(path)
    assert X.shape == (2, 6) and Y[0].indices.tolist() == [0, 1]
    path.write_bytes(b"\xef\xbb\xbf0,1 2:1\n")
    assert load_libsvm(path, zero_based=True)[1][0].indices.tolist() == [0, 1]


def test_gzip_files_are_read_transparently(tmp_path, problem):
    X, Y = problem
    ps.data.save_xc(tmp_path / "plain.txt", X, Y)
    (tmp_path / "data.txt.gz").write_bytes(gzip.compress((tmp_path / "plain.txt").read_bytes()))
    X2, Y2 = load_xc(tmp_path / "data.txt.gz")
    assert (X2 != X).nnz == 0 and (Y2 != Y).nnz == 0
    ps.data.save_libsvm(tmp_path / "plain.svm", X, Y)
    (tmp_path / "data.svm.gz").write_bytes(gzip.compress((tmp_path / "plain.svm").read_bytes()))
    X3, Y3 = load_libsvm(tmp_path / "data.svm.gz")
    assert (X3 != X).nnz == 0 and (Y3 != Y).nnz == 0
    (tmp_path / "cut.gz").write_bytes((tmp_path / "data.txt.gz").read_bytes()[:200])
    with pytest.raises(XCFormatError, match=re.escape(f"{tmp_path / 'cut.gz'}: damaged gzip "
                                                      f"file")):
        load_xc(tmp_path / "cut.gz")


@pytest.mark.parametrize("garbage", [bytes(range(256)) * 4, b"0 1:1\n1 2:1\x00\x01\n",
                                     b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xb7"])
def test_binary_garbage_is_named_without_echo(tmp_path, garbage):
    path = tmp_path / "garbage.bin"
    path.write_bytes(garbage)
    with pytest.raises(XCFormatError) as info:
        load_xc(path)
    message = str(info.value)
    assert re.fullmatch(re.escape(str(path)) + r", line \d+: not an XC text file \(binary "
                        r"data: .*\)", message), message
    assert message.isprintable()


@pytest.mark.parametrize("header", ["2 6 x", "2 6", "2 6 3 1"])
def test_malformed_header(tmp_path, header):
    path = tmp_path / "h.txt"
    path.write_text(f"{header}\n0 1:1\n1 2:1\n")
    with pytest.raises(XCFormatError, match=re.escape(f"{path}, line 1: the header must be "
                                                      f"'N D L'")):
        load_xc(path)


def test_header_with_no_features(tmp_path, capsys):
    path = tmp_path / "d0.txt"
    path.write_text("2 0 5\n0\n1\n")
    assert load_xc(path)[0].shape == (2, 0)    # a valid file, but nothing to learn from
    code, _, err = call(capsys, "train", path, "--threads", "1")
    assert code == 1
    one_line_error(err, f"training file {path}: line 1: the header '2 0 5' says D=0 features",
                   "a network needs at least one input feature")
    path.write_text("0\n1\n")
    code, _, err = call(capsys, "train", path, "--threads", "1")
    one_line_error(err, f"training file {path}: no line has a feature ('id:value')")


def test_save_xc_is_atomic_and_accepts_file_objects(tmp_path, problem, monkeypatch):
    X, Y = problem
    buffer = io.BytesIO()
    ps.data.save_xc(buffer, X, Y)
    buffer.seek(0)
    assert (load_xc(buffer)[0] != X).nnz == 0
    path = tmp_path / "d.txt"
    ps.data.save_xc(path, X, Y)
    before = path.read_bytes()

    def full(f, *args):
        f.write(b"1 2 3\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(datafiles, "_write_rows", full)
    with pytest.raises(OSError) as info:
        ps.data.save_xc(path, X[:5], Y[:5])
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["d.txt"]


# --------------------------------------------------------------------------- atomic_write

def test_atomic_write_keeps_permissions_and_writes_devices(tmp_path):
    path = tmp_path / "f.txt"
    with atomic_write(path, "w") as f:
        f.write("one")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    os.chmod(path, 0o640)
    with atomic_write(path, "w") as f:
        f.write("two")
    assert path.read_text() == "two" and path.stat().st_mode & 0o777 == 0o640
    with atomic_write(os.devnull, "wb") as f:   # a device is written in place, never replaced
        f.write(b"x")
    assert os.path.exists(os.devnull) and not Path(os.devnull).is_file()
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"):
        with atomic_write(path, "a"):
            pass


# --------------------------------------------------------------------------- temp folder

def test_save_load_serve_example_leaves_nothing_in_the_temp_folder(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, PYSLIDE_EXAMPLE_QUICK="1", OMP_NUM_THREADS="1", TMPDIR=str(temp))
    result = subprocess.run([sys.executable, str(EXAMPLES / "save_load_serve.py")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "saved the model to" in result.stdout
    assert os.listdir(temp) == []


def test_header_wider_than_int32_ids(tmp_path):
    # found by the long fuzzing run: such a header loaded, then save_xc failed
    path = tmp_path / "wide.txt"
    path.write_text("2 99999999999940 15\n0 1:1\n1 2:1\n")
    with pytest.raises(XCFormatError, match=re.escape(f"{path}, line 1: the header's D "
                                                      f"(features) is 99999999999940, more "
                                                      f"than the 2147483647 ids")):
        load_xc(path)
