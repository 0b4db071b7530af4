"""Callbacks, early stopping, checkpoints and the validation split (API and CLI)."""
import math

import numpy as np
import pytest

import pyslide as ps
from pyslide import cli


@pytest.fixture(scope="module")
def small():
    return ps.data.make_xc("small", n_samples=400, n_test=80, n_features=600, n_labels=150,
                           seed=0)


def make_net(X, Y, seed=0, optimizer=None):
    return ps.Network(X.shape[1], [ps.Dense(16), ps.Sampled(Y.shape[1], active=40,
                                                            hash=ps.SimHash(K=4, L=6))],
                      optimizer=optimizer or ps.Adam(lr=0.01), threads=1, seed=seed)


def scripted(key, values):
    """A callback that overwrites ``logs[key]`` with a fixed sequence, one per epoch."""
    values = list(values)

    def write(network, epoch, logs):
        logs[key] = values[epoch - 1]
    return write


def state_of(net):
    return [{name: a.copy() for name, a in params.items() if name not in ("gW", "gb")}
            for params in net._params]


def assert_same_state(net, expected):
    for params, arrays in zip(net._params, expected):
        assert set(arrays) <= set(params)
        for name, array in arrays.items():
            assert np.array_equal(params[name], array), name


# --------------------------------------------------------------------------- EarlyStopping

class FakeNetwork:
    """What EarlyStopping uses of a network, recording snapshots and restores."""

    def __init__(self):
        self.stop_training = False
        self.epoch_ = 0
        self.snapshots = []
        self.restored = None

    def _snapshot(self, into=None):
        self.snapshots.append(self.epoch_)
        return ("state of epoch", self.epoch_)

    def _restore(self, snapshot):
        self.restored = snapshot


def drive(callback, key, values):
    """Run the callback over a scripted sequence as fit would; the epochs run."""
    net = FakeNetwork()
    callback.on_train_begin(net, {"metrics": ["loss", "time", key]})
    for value in values:
        net.epoch_ += 1
        callback.on_epoch_end(net, net.epoch_, {key: value})
        if net.stop_training:
            break
    callback.on_train_end(net, {})
    return net


# as in Keras, patience 0 and 1 both stop at the first epoch that does not improve
@pytest.mark.parametrize("patience, stopped", [(0, 3), (1, 3), (3, 5), (5, 7), (6, 0)])
def test_early_stopping_waits_patience_epochs(patience, stopped):
    values = [0.1, 0.3, 0.2, 0.25, 0.3, 0.29, 0.1]   # best at epoch 2, then none better
    es = ps.EarlyStopping(monitor="p@1", patience=patience)
    net = drive(es, "val_p@1", values)
    assert es.stopped_epoch == stopped
    assert net.epoch_ == (stopped or len(values))
    assert (es.best, es.best_epoch, net.best_epoch_) == (0.3, 2, 2)
    assert net.snapshots == [1, 2]
    assert net.restored == ("state of epoch", 2)


def test_early_stopping_and_checkpoint_watch_the_validation_loss_by_default():
    es = ps.EarlyStopping(patience=1)
    drive(es, "val_loss", [3.0, 2.0, 2.5, 2.1])
    assert (es.monitor, es.best, es.best_epoch, es.stopped_epoch) == ("val_loss", 2.0, 2, 3)
    assert ps.ModelCheckpoint("m.npz").monitor == "val_loss"


def test_early_stopping_min_delta_mode_and_monitor_names():
    values = [0.1, 0.14, 0.2, 0.24, 0.26, 0.3]   # +0.04 does not count, +0.06 does
    es = ps.EarlyStopping(monitor="val_p@1", patience=2, min_delta=0.05)
    drive(es, "val_p@1", values)
    assert (es.best, es.best_epoch, es.stopped_epoch) == (0.26, 5, 0)
    es = ps.EarlyStopping(monitor="val_p@1", patience=1, min_delta=0.05)
    drive(es, "val_p@1", values)
    assert (es.best_epoch, es.stopped_epoch) == (1, 2)
    es = ps.EarlyStopping(monitor="loss", patience=1)   # auto: smaller is better
    drive(es, "loss", [3.0, 2.0, 2.5, 2.1])
    assert (es.best, es.best_epoch, es.stopped_epoch) == (2.0, 2, 3)
    es = ps.EarlyStopping(monitor="ndcg@5", mode="min", patience=0)
    drive(es, "val_ndcg@5", [0.5, 0.4, 0.6])
    assert (es.best_epoch, es.stopped_epoch) == (2, 3)
    es = ps.EarlyStopping(monitor="p@1", patience=0, restore_best=False)
    net = drive(es, "val_p@1", [0.2, float("nan")])   # NaN never improves
    assert (es.best_epoch, es.stopped_epoch, net.restored) == (1, 2, None)


def test_early_stopping_on_a_real_run_keeps_every_epoch_in_history(small):
    X, Y, _, _ = small
    net = make_net(X, Y)
    es = ps.EarlyStopping(monitor="p@1", patience=2)
    fake = scripted("val_p@1", [0.1, 0.2, 0.4, 0.3, 0.35, 0.9])
    history = net.fit(X, Y, epochs=6, batch_size=100, validation_split=0.25, verbose=0,
                      callbacks=[fake, es])
    assert es.stopped_epoch == 5 and net.epoch_ == 5 and net.best_epoch_ == 3
    assert len(history["loss"]) == 5 and len(history["val_p@1"]) == 5
    assert net.step_ == 3 * 3   # put back to the end of epoch 3 (3 steps of 100 rows each)
    assert len(net.step_times_) == 15


def test_restore_best_is_bit_identical_and_training_goes_on(small):
    X, Y, Xt, Yt = small
    net = make_net(X, Y)
    saved = {}

    def keep_epoch_2(network, epoch, logs):
        if epoch == 2:
            saved["state"] = state_of(network)
            saved["step"] = network.step_
            saved["schedule"] = [list(network._next_rebuild), list(network._rebuild_interval)]

    es = ps.EarlyStopping(monitor="p@1", patience=10)
    net.fit(X, Y, epochs=4, batch_size=50, validation_data=(Xt, Yt), verbose=0,
            callbacks=[scripted("val_p@1", [0.1, 0.5, 0.4, 0.3]), keep_epoch_2, es])
    assert es.stopped_epoch == 0 and net.epoch_ == 4 and net.best_epoch_ == 2
    assert "mW" in saved["state"][1] and "vW" in saved["state"][1]   # Adam moments too
    assert_same_state(net, saved["state"])
    assert net.step_ == saved["step"]
    assert [net._next_rebuild, net._rebuild_interval] == saved["schedule"]

    # the restored network trains on exactly as one stopped at epoch 2 whose
    # tables were rebuilt: same weights, moments, step and schedule
    twin = make_net(X, Y)
    twin.fit(X, Y, epochs=2, batch_size=50, verbose=0)
    twin._restore(twin._snapshot())   # the same forced table rebuild
    assert_same_state(twin, saved["state"])
    for network in (net, twin):
        network.fit(X, Y, epochs=1, batch_size=50, shuffle=False, verbose=0)
    assert_same_state(net, state_of(twin))
    assert net.step_ == twin.step_ == saved["step"] + 8
    assert net.evaluate(Xt, Yt)["p@1"] > 0


def test_snapshot_reuses_its_buffers_and_copies_every_state_array(small):
    X, Y, _, _ = small
    net = make_net(X, Y)
    net.fit(X[:100], Y[:100], epochs=1, batch_size=50, verbose=0)
    # an array some optimizer adds later must be kept without naming it here
    net._params[1]["row_clock"] = np.arange(Y.shape[1], dtype=np.int32)
    first = net._snapshot()
    assert "gW" not in first.arrays[1] and "row_clock" in first.arrays[1]
    buffers = {name: id(a) for name, a in first.arrays[1].items()}
    before = state_of(net)
    net.fit(X[:100], Y[:100], epochs=1, batch_size=50, verbose=0)
    net._params[1]["row_clock"] += 7
    again = net._snapshot(into=first)
    assert again is first and {n: id(a) for n, a in again.arrays[1].items()} == buffers
    assert_same_state(net, again.arrays)
    kept = state_of(net)
    assert not np.array_equal(kept[1]["W"], before[1]["W"])
    net.fit(X[:100], Y[:100], epochs=1, batch_size=50, verbose=0)
    net._params[1]["row_clock"][:] = 0
    net._restore(first)
    assert_same_state(net, kept)
    other = make_net(X, Y)
    with pytest.raises(ValueError, match="snapshot must come from this network"):
        other._restore(first)


# --------------------------------------------------------------------------- protocol

def test_callback_protocol_order_and_plain_objects(small):
    X, Y, Xt, Yt = small
    calls = []

    class Recorder(ps.Callback):
        def on_train_begin(self, network, logs):
            calls.append(("begin", logs["epochs"], logs["steps"], logs["metrics"]))

        def on_epoch_end(self, network, epoch, logs):
            calls.append(("epoch", epoch, sorted(logs)))

        def on_train_end(self, network, logs):
            calls.append(("end", network.epoch_))

    class OnlyEpochEnd:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, network, epoch, logs):
            self.epochs.append(epoch)

    only = OnlyEpochEnd()
    net = make_net(X, Y)
    net.fit(X[:200], Y[:200], epochs=2, batch_size=100, validation_data=(Xt, Yt),
            eval_k=(1, 5), verbose=0, callbacks=[Recorder(), only, lambda n, e, l: None])
    keys = ["loss", "time", "val_loss", "val_p@1", "val_ndcg@1", "val_p@5", "val_ndcg@5"]
    assert calls[0] == ("begin", 2, 2, keys)
    assert [c[:2] for c in calls[1:3]] == [("epoch", 1), ("epoch", 2)]
    assert calls[1][2] == sorted(keys) and calls[3] == ("end", 2)
    assert only.epochs == [1, 2]
    ps.Callback().on_epoch_end(net, 1, {})   # the base class's hooks do nothing


@pytest.mark.parametrize("hidden", [[8], []], ids=["hidden", "no-hidden"])
def test_val_loss_is_the_exact_loss_over_every_output(small, hidden):
    # without hidden layers the output scores the sparse input rows themselves
    X, Y, Xt, Yt = small
    for loss in ("softmax", "bce"):
        share = "batch" if hidden else "sample"     # a shared set needs a hidden layer
        net = ps.Network(X.shape[1], [*map(ps.Dense, hidden),
                                      ps.Sampled(Y.shape[1], share=share)],
                         loss=loss, threads=1, seed=0)
        history = net.fit(X, Y, epochs=1, validation_data=(Xt, Yt), verbose=0)
        p = net.predict_proba(Xt).astype(np.float64)
        Yd = Yt.toarray()
        if loss == "softmax":
            target = Yd / np.maximum(Yd.sum(axis=1, keepdims=True), 1)
            expected = -(target * np.log(p)).sum(axis=1).mean()
        else:
            expected = -(Yd * np.log(p) + (1 - Yd) * np.log1p(-p)).sum(axis=1).mean()
        assert history["val_loss"][0] == pytest.approx(expected, rel=1e-4)


# --------------------------------------------------------------------------- validation_split

def test_validation_split_is_seeded_disjoint_and_used(small):
    X, Y, _, _ = small
    n = X.shape[0]
    seen = {}

    def record(network, epoch, logs):
        seen[epoch] = logs["val_p@1"]

    net = make_net(X, Y)
    net.fit(X, Y, epochs=1, batch_size=100, validation_split=0.25, verbose=0,
            callbacks=[record])
    rows = net.validation_rows_
    assert len(rows) == n // 4 and np.all(np.diff(rows) > 0)
    assert not np.array_equal(rows, np.arange(n - n // 4, n))   # not the last rows
    assert net.step_ == 3          # trained on the other 300 rows only
    assert seen[1] == net.evaluate(X[rows], Y[rows])["p@1"]
    again = make_net(X, Y)
    again.fit(X, Y, epochs=1, batch_size=100, validation_split=0.25, verbose=0)
    assert np.array_equal(again.validation_rows_, rows)
    other = make_net(X, Y, seed=1)
    other.fit(X, Y, epochs=1, batch_size=100, validation_split=0.25, verbose=0)
    assert not np.array_equal(other.validation_rows_, rows)
    net.fit(X, Y, epochs=1, batch_size=100, verbose=0)
    assert net.validation_rows_ is None


# --------------------------------------------------------------------------- ModelCheckpoint

def test_checkpoint_saves_only_after_improving_epochs(small, tmp_path):
    X, Y, _, _ = small
    per_epoch = ps.ModelCheckpoint(tmp_path / "m-{epoch:02d}.npz", monitor="p@1")
    latest = ps.ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss")
    every = ps.ModelCheckpoint(str(tmp_path / "all-{epoch}.npz"), save_best_only=False)
    net = make_net(X, Y)
    net.fit(X[:200], Y[:200], epochs=5, batch_size=100, validation_split=0.5, verbose=0,
            callbacks=[scripted("val_p@1", [0.1, 0.3, 0.2, 0.4, 0.4]),
                       scripted("val_loss", [5.0, 4.0, 4.5, 3.9, 3.0]),
                       per_epoch, latest, every])
    names = sorted(p.name for p in tmp_path.glob("m-*.npz"))
    assert names == ["m-01.npz", "m-02.npz", "m-04.npz"]
    assert per_epoch.saved == [str(tmp_path / n) for n in names]
    assert (per_epoch.best, per_epoch.best_epoch) == (0.4, 4)
    assert ps.load(tmp_path / "m-04.npz").epoch_ == 4
    assert ps.load(tmp_path / "best.npz").epoch_ == 5 and len(latest.saved) == 4
    assert sorted(p.name for p in tmp_path.glob("all-*.npz")) == [
        f"all-{e}.npz" for e in range(1, 6)]


# --------------------------------------------------------------------------- bad input

def test_bad_callback_arguments_name_the_argument(tmp_path):
    cases = [
        (lambda: ps.EarlyStopping(monitor="acc"), ValueError,
         "EarlyStopping: monitor must be 'loss', 'val_loss' or a validation metric"),
        (lambda: ps.EarlyStopping(monitor="p@0"), ValueError, "got 'p@0'"),
        (lambda: ps.EarlyStopping(patience=-1), ValueError, "patience must be an int >= 0"),
        (lambda: ps.EarlyStopping(patience=1.5), ValueError, "patience must be an int >= 0"),
        (lambda: ps.EarlyStopping(patience=True), ValueError, "patience must be an int >= 0"),
        (lambda: ps.EarlyStopping(min_delta=-0.1), ValueError, "min_delta must be a number >= 0"),
        (lambda: ps.EarlyStopping(min_delta=math.inf), ValueError, "min_delta must be"),
        (lambda: ps.EarlyStopping(mode="up"), ValueError,
         "mode must be 'auto', 'min' or 'max', got 'up'"),
        (lambda: ps.EarlyStopping(restore_best="yes"), TypeError,
         "restore_best must be True or False"),
        (lambda: ps.ModelCheckpoint(3), TypeError, "ModelCheckpoint: path must be a file path"),
        (lambda: ps.ModelCheckpoint("m-{step}.npz"), ValueError,
         "path may hold only '{epoch}' as a field"),
        (lambda: ps.ModelCheckpoint("m-{}.npz"), ValueError, "path may hold only '{epoch}'"),
        (lambda: ps.ModelCheckpoint("m.npz", save_best_only=1), TypeError,
         "save_best_only must be True or False"),
        (lambda: ps.ModelCheckpoint("m.npz", monitor="accuracy"), ValueError,
         "ModelCheckpoint: monitor must be"),
        (lambda: ps.ModelCheckpoint("m.npz", mode="best"), ValueError, "mode must be"),
    ]
    for make, error, fragment in cases:
        with pytest.raises(error) as info:
            make()
        assert fragment in str(info.value), (fragment, str(info.value))


def test_bad_fit_arguments_fail_before_training(small, tmp_path):
    X, Y, Xt, Yt = small
    net = make_net(X, Y)
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_loss' needs 'val_loss' .* "
                                         r"pass validation_data=\(X_val, Y_val\) or "
                                         r"validation_split=0.1 to fit"):
        net.fit(X, Y, callbacks=[ps.EarlyStopping()], verbose=0)
    with pytest.raises(ValueError, match=r"monitor 'ndcg@10' needs 'val_ndcg@10'.*eval_k"):
        net.fit(X, Y, validation_split=0.2, callbacks=[ps.EarlyStopping(monitor="ndcg@10")],
                verbose=0)
    with pytest.raises(ValueError, match="ModelCheckpoint: monitor 'val_loss' needs"):
        net.fit(X, Y, callbacks=[ps.ModelCheckpoint(tmp_path / "m.npz", monitor="val_loss")],
                verbose=0)
    with pytest.raises(FileNotFoundError, match="ModelCheckpoint: the folder .*nowhere"):
        net.fit(X, Y, callbacks=[ps.ModelCheckpoint(tmp_path / "nowhere" / "m.npz",
                                                    save_best_only=False)], verbose=0)
    for bad, error in [(1.0, ValueError), (-0.1, ValueError), (math.nan, ValueError),
                       ("0.1", TypeError), (True, TypeError)]:
        with pytest.raises(error, match=r"validation_split must be .*\[0, 1\) .*hold out"):
            net.fit(X, Y, validation_split=bad, verbose=0)
    with pytest.raises(ValueError, match="give validation_data or validation_split, not both"):
        net.fit(X, Y, validation_data=(Xt, Yt), validation_split=0.1, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split=0.01 of 50 rows leaves 0 "
                                         r"validation and 50 training rows"):
        net.fit(X[:50], Y[:50], validation_split=0.01, verbose=0)
    with pytest.raises(ValueError, match="eval_k values must be >= 1"):
        net.fit(X, Y, validation_split=0.2, eval_k=(1, 0), verbose=0)
    assert net.step_ == 0 and net.epoch_ == 0
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- command line

@pytest.fixture(scope="module")
def files(tmp_path_factory, small):
    folder = tmp_path_factory.mktemp("cb-cli")
    X, Y, Xt, Yt = small
    ps.data.save_xc(folder / "train.txt", X, Y)
    ps.data.save_xc(folder / "test.txt", Xt, Yt)
    return folder


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_early_stopping_and_checkpoints(capsys, files, tmp_path):
    common = ["train", files / "train.txt", "--hidden", "16", "--active", "40", "--threads",
              "1", "--lr", "0.05", "--epochs", "30"]
    code, out, err = run(capsys, *common, "--test", files / "test.txt", "--validation-split",
                         "0.2", "--early-stopping", "1", "--eval-every", "0",
                         "--checkpoint", tmp_path / "ck-{epoch}.npz", "--save",
                         tmp_path / "m.npz")
    assert code == 0, err
    assert "val_p@1" in out and "val_loss" in out
    stop = [line for line in out.splitlines() if line.startswith("early stopping:")]
    assert len(stop) == 1 and "kept the model of epoch" in stop[0], out
    best = int(stop[0].split("kept the model of epoch ")[1].split()[0])
    assert f"test, model of epoch {best}:  p@1 " in out
    model = ps.load(tmp_path / "m.npz")
    checkpoint = ps.load(tmp_path / f"ck-{best}.npz")
    for a, b in zip(model._params, checkpoint._params):
        for name in ("W", "b", "mW", "vW"):
            assert np.array_equal(a[name], b[name])
    assert model.epoch_ > best and model.step_ == checkpoint.step_

    code, out, err = run(capsys, *common[:-1], "2", "--validation", files / "test.txt",
                         "--checkpoint", tmp_path / "v.npz", "-q")
    assert code == 0 and out == "", err
    assert (tmp_path / "v.npz").exists()
    code, out, err = run(capsys, *common[:-1], "2", "--checkpoint",
                         tmp_path / "every-{epoch}.npz", "-q")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.glob("every-*")) == ["every-1.npz", "every-2.npz"]


@pytest.mark.parametrize("extra, status, fragment", [
    # fit's and the callbacks' own checks, followed by the flags of the parameters they name
    (["--early-stopping", "2"], 2, "needs 'val_loss' in the logs of every epoch"),
    (["--early-stopping", "2"], 2, "validation_data is --validation, validation_split is "
                                   "--validation-split"),
    (["--early-stopping", "0"], 2, "argument --early-stopping: expected an integer >= 1"),
    (["--validation-split", "1"], 2, "argument --validation-split: expected a fraction in "
                                     "[0, 1), got '1'"),
    (["--validation-split", "x"], 2, "argument --validation-split"),
    (["--validation-split", "0.001"], 2, "validation_split=0.001 of 400 rows leaves 0 "
                                         "validation"),
    (["--validation-split", "0.1", "--validation", "TEST"], 2,
     "give validation_data or validation_split, not both"),
    (["--checkpoint", "m-{step}.npz"], 2, "--checkpoint: ModelCheckpoint: path may hold only"),
    (["--checkpoint", "nowhere/m.npz"], 1, "ModelCheckpoint: the folder"),
    (["--validation", "missing.txt"], 1, "validation file 'missing.txt' does not exist"),
])
def test_cli_bad_validation_options(capsys, files, monkeypatch, extra, status, fragment):
    monkeypatch.chdir(files)
    extra = [str(files / "test.txt") if e == "TEST" else e for e in extra]
    code, out, err = run(capsys, "train", "train.txt", "--epochs", "1", "--threads", "1",
                         "-q", *extra)
    assert code == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyslide: error: ")
    assert fragment in lines[0], lines[0]


def test_epoch_report_prints_a_line_per_epoch_and_scores_test_data(small, capsys):
    import re
    X, Y, Xt, Yt = small
    net = make_net(X, Y)
    seen = []
    report = ps.EpochReport(test_data=(Xt, Yt), eval_every=2, eval_k=(1, 3))
    net.fit(X, Y, epochs=3, batch_size=100, verbose=0, validation_split=0.25, eval_k=(1, 3),
            callbacks=[report, lambda n, e, logs: seen.append(sorted(logs))])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    pattern = (r"epoch {}/3  loss \d\.\d{{4}}  \d+\.\d+ s  \d+\.\d steps/s  "
               r"val_loss \d\.\d{{4}}  val_p@1 \d\.\d{{4}}  val_p@3 \d\.\d{{4}}")
    assert re.fullmatch(pattern.format(1), lines[0])
    # scored on the test rows every 2nd epoch and after the last
    assert re.fullmatch(pattern.format(2) + r"  p@1 \S+  ndcg@1 \S+  p@3 \S+  ndcg@3 \S+",
                        lines[1])
    assert lines[2].startswith("epoch 3/3") and "ndcg@3" in lines[2]
    assert "test_p@1" not in seen[0] and "test_p@1" in seen[1]
    report.summary(net)
    summary = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"trained 9 steps in \d+\.\d+ s \(\d+\.\d steps/s\)", summary[0])
    assert summary[1].startswith("time by phase: hash ")


def test_epoch_report_summary_scores_the_model_early_stopping_kept(small, capsys, tmp_path):
    X, Y, Xt, Yt = small
    net = make_net(X, Y)
    stop = ps.EarlyStopping(patience=1)
    keep = ps.ModelCheckpoint(str(tmp_path / "m-{epoch}.npz"))
    report = ps.EpochReport(test_data=(Xt, Yt), eval_every=0, early_stopping=stop,
                            checkpoint=keep)
    net.fit(X, Y, epochs=2, batch_size=100, verbose=0, validation_split=0.25,
            callbacks=[scripted("val_loss", [1.0, 2.0]), report, stop, keep])
    lines = capsys.readouterr().out.splitlines()
    assert "p@1" not in lines[1].replace("val_p@1", "")     # the last epoch's is not scored
    report.summary(net)
    summary = capsys.readouterr().out.splitlines()
    assert summary[0] == ("early stopping: stopped after epoch 2; kept the model of epoch 1 "
                          "(val_loss 1.0000)")
    assert summary[1].startswith("test, model of epoch 1:  p@1 ")
    assert summary[2] == f"checkpoints: 1 written, the last to {tmp_path / 'm-1.npz'}"


def test_fit_verbose_2_prints_the_epoch_report_line_once(small, capsys):
    X, Y, Xt, Yt = small
    net = make_net(X, Y)
    net.fit(X, Y, epochs=2, batch_size=100, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    net.fit(X, Y, epochs=1, batch_size=100, verbose=1, validation_data=(Xt, Yt),
            callbacks=[ps.EpochReport()])         # the callback's line, not a second one
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("epoch 3/3  loss ") and "val_p@5" in lines[0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(eval_every=-1), r"EpochReport: eval_every must be an int >= 0 \(epochs between "
                          r"scores on test_data; 0: after the last only\), got -1"),
    (dict(eval_every=True), "eval_every must be an int >= 0"),
    (dict(test_data=[1, 2, 3]), r"EpochReport: test_data must be a pair \(X_test, Y_test\)"),
])
def test_epoch_report_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ps.EpochReport(**kwargs)
