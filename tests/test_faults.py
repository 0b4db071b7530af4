"""Fault injection on model saving: SIGKILL mid-write, concurrent writers, a full disk.

The children are separate interpreters (subprocess): a fresh process, as a
user's second job would be, and no fork() after OpenMP ran.
"""
import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest

import pyslide as ps
from pyslide import persist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A model of about 200 MB: a wide output layer (800,000 x 64 float32), SGD so
# there are no moments to triple it.
BIG = textwrap.dedent("""
    import hashlib, sys, zlib
    import numpy as np
    import pyslide as ps
    path, mode = sys.argv[1], sys.argv[2]
    net = ps.Network(32, [ps.Dense(64), ps.Sampled(800_000, active=64, hash=None)],
                     optimizer="sgd", threads=1, seed=0)
    net._ensure_initialized()
    net.save(path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    print("saved", digest, flush=True)
    net._params[1]["W"] += 1.0
    print("saving again", flush=True)
    net.save(path)
    print("done", flush=True)
""")

WRITER = textwrap.dedent("""
    import sys, zlib
    import pyslide as ps
    path, seed = sys.argv[1], int(sys.argv[2])
    net = ps.Network(32, [ps.Dense(64), ps.Sampled(100_000, active=64, hash=None)],
                     optimizer="sgd", threads=1, seed=seed)
    net._ensure_initialized()
    print(zlib.crc32(net._params[1]["W"].tobytes()), flush=True)
    sys.stdin.readline()            # start together
    for _ in range(3):
        net.save(path)
""")


def child(script, *args, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, text=True, **kwargs)


def temp_files(folder):
    return [name for name in os.listdir(folder) if name.endswith(".tmp")]


def test_sigkill_in_the_middle_of_saving_keeps_the_previous_model(tmp_path):
    path = tmp_path / "big.npz"
    proc = child(BIG, path, "kill")
    try:
        first = proc.stdout.readline().split()
        assert first[0] == "saved", first
        assert proc.stdout.readline().strip() == "saving again"
        # wait until the second save is writing (a temporary file of some size)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = [os.path.getsize(tmp_path / name) for name in temp_files(tmp_path)
                     if os.path.exists(tmp_path / name)]
            if sizes and max(sizes) > 20 << 20:
                break
            time.sleep(0.005)
        else:
            pytest.fail("the child never started writing its second model")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert os.path.getsize(path) > 150 << 20
    # the file at the path is the first model, byte for byte, and loads
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first[1]
    net = ps.load(path)
    assert net.get_weights()[1]["W"].shape == (800_000, 64)
    # a killed writer cannot clean up: it leaves one hidden temporary file
    assert [name.startswith(".big.npz.") for name in temp_files(tmp_path)] == [True]


def test_two_concurrent_writers_leave_one_complete_model(tmp_path):
    path = tmp_path / "shared.npz"
    writers = [child(WRITER, path, seed, stdin=subprocess.PIPE) for seed in (1, 2)]
    try:
        crcs = [int(w.stdout.readline()) for w in writers]
        for w in writers:
            w.stdin.write("go\n")
            w.stdin.flush()
        for w in writers:
            assert w.wait(timeout=120) == 0
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
                w.wait()
    net = ps.load(path)
    assert zlib.crc32(net.get_weights()[1]["W"].tobytes()) in crcs
    assert os.listdir(tmp_path) == ["shared.npz"]


def test_a_full_disk_leaves_the_old_model_and_no_temporary_file(tmp_path, monkeypatch):
    X, Y = ps.data.make_xc("small", n_samples=100, n_features=300, n_labels=50, seed=0)
    net = ps.Network(X.shape[1], [ps.Dense(8), ps.Sampled(Y.shape[1], active=10)], seed=0)
    net.fit(X, Y, epochs=1, verbose=0)
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()
    savez = np.savez

    def disk_full(file, **arrays):
        savez(file, **{k: v for k, v in list(arrays.items())[:2]})   # part of the model
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(persist.np, "savez", disk_full)
    with pytest.raises(OSError) as info:
        net.save(path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_cli_save_on_a_full_disk_names_the_file(tmp_path, monkeypatch, capsys):
    from pyslide import cli
    X, Y = ps.data.make_xc("small", n_samples=100, n_features=300, n_labels=50, seed=0)
    ps.data.save_xc(tmp_path / "train.txt", X, Y)
    (tmp_path / "m.npz").write_bytes(b"old")

    def disk_full(file, **arrays):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(persist.np, "savez", disk_full)
    code = cli.main(["train", str(tmp_path / "train.txt"), "--save", str(tmp_path / "m.npz"),
                     "--threads", "1", "-q", "--hidden", "8"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == (f"pyslide: error: --save {tmp_path / 'm.npz'}: the model could not "
                           f"be written (No space left on device); a previous file there is "
                           f"unchanged")
    assert (tmp_path / "m.npz").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "train.txt"]
