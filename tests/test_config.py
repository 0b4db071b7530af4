"""pyslide.config: config files and networks from flat settings."""
import json
import os

import pytest

import pyslide as ps
from pyslide import config

needs_toml = pytest.mark.skipif(
    not any(__import__("importlib").util.find_spec(m) for m in ("tomllib", "tomli")),
    reason="TOML needs Python >= 3.11 (tomllib) or tomli")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_toml
def test_read_config_merges_sections_and_normalises_keys(tmp_path):
    path = write(tmp_path, "cfg.toml", 'train = "t.txt"\nk = 4\n[lsh]\nbin-size = 8\n'
                                       '[optimizer]\nlr = 0.01\n[other]\nx = 1\n')
    flat = config.read_config(path, paths=("train",))
    assert flat == {"train": os.path.join(str(tmp_path), "t.txt"), "K": 4, "bin_size": 8,
                    "lr": 0.01, "other": {"x": 1}}      # [other] is no section: a plain key


def test_read_config_checks_keys_and_values(tmp_path):
    path = write(tmp_path, "cfg.json", json.dumps({"epochs": 3, "training": {"seed": "x"}}))
    assert config.read_config(path) == {"epochs": 3, "seed": "x"}

    def convert(key, value):
        if not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        return value * 2
    with pytest.raises(config.ConfigError, match=r"cfg.json: key 'seed': expected an integer, "
                                                 r"got 'x'$"):
        config.read_config(path, convert=convert)
    with pytest.raises(config.ConfigError, match=r"cfg.json: unknown key \[training\] 'seed'; "
                                                 r"known keys: epochs, lr$"):
        config.read_config(path, known=("lr", "epochs"))


@pytest.mark.parametrize("name, text, message", [
    ("a.json", '{"lr": }', r"a.json: not valid JSON \("),
    ("b.json", "[1, 2]", r"b.json: the top level must be a table of options"),
    ("c.json", '{"lr": 1, "optimizer": {"lr": 2}}', r"c.json: key 'lr' is given twice"),
    ("d.json", '{"bin-size": 1, "bin_size": 2}', r"d.json: key 'bin_size' is given twice"),
])
def test_read_config_refuses_malformed_files(tmp_path, name, text, message):
    with pytest.raises(config.ConfigError, match=message):
        config.read_config(write(tmp_path, name, text))


def test_read_config_refuses_a_missing_file_and_toml_without_tomllib(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"^no such file '.*nope.toml'$"):
        config.read_config(tmp_path / "nope.toml")
    monkeypatch.setitem(__import__("sys").modules, "tomllib", None)
    monkeypatch.setitem(__import__("sys").modules, "tomli", None)
    with pytest.raises(config.ConfigError, match=r"cfg.toml: TOML config files need Python "
                                                 r"3.11 or later"):
        config.read_config(write(tmp_path, "cfg.toml", "lr = 1\n"))


def test_layers_from_list_fills_in_the_labels_and_names_the_layer():
    layers = config.layers_from_list([{"kind": "dense", "units": 8, "init-std": 0.1},
                                      {"kind": "sampled", "active": 4}], n_labels=20)
    assert layers == [{"kind": "dense", "units": 8, "init_std": 0.1},
                      {"kind": "sampled", "active": 4, "units": 20}]
    for specs, error, message in [
            ([], ValueError, r"'layers' must be a non-empty list of tables"),
            ([3], ValueError, r"^layers\[0\] must be a table, got 3$"),
            ([{"kind": "sampled", "units": 7}], ValueError,
             r"layers\[0\] is the output layer: units must be the number of labels \(20\) or "
             r"\"labels\", got 7"),
            ([{"kind": "conv", "units": 3}, {"kind": "dense"}], ValueError,
             r"^layers\[0\]: unknown layer kind 'conv'"),
            ([{"kind": "dense", "units": 0}, {"kind": "dense"}], ValueError,
             r"^layers\[0\]: Dense: units")]:
        with pytest.raises(error, match=message):
            config.layers_from_list(specs, n_labels=20)


def test_optimizer_from_settings():
    assert config.optimizer_from_settings({"hidden": [4], "lr": None}) is None
    sgd = config.optimizer_from_settings({"optimizer": "sgd", "lr": 0.5, "cosine": True,
                                          "warmup": 1, "epochs": 4})
    assert isinstance(sgd, ps.SGD) and sgd.lr == 0.5
    assert isinstance(sgd.schedule, ps.CosineDecay) and sgd.schedule.warmup == 1
    adam = config.optimizer_from_settings({"dense_adam": True, "beta1": 0.8})
    assert isinstance(adam, ps.Adam) and adam.lazy is False and adam.beta1 == 0.8
    assert config.optimizer_from_settings({"idle_rows": "coast"}).idle_rows == "coast"
    with pytest.raises(ValueError, match=r"^Adam: idle_rows must be 'hold', 'coast' or 'mixed', got 'drift'$"):
        config.optimizer_from_settings({"idle_rows": "drift"})
    with pytest.raises(ValueError, match=r"^beta1, eps applies to optimizer adam, not sgd$"):
        config.optimizer_from_settings({"optimizer": "sgd", "eps": 1e-6, "beta1": 0.5})
    with pytest.raises(ValueError, match=r"^--cosine needs --epochs \(the decay's length\)$"):
        config.optimizer_from_settings({"cosine": True}, names={"cosine": "--cosine",
                                                                "epochs": "--epochs"})
    with pytest.raises(ValueError, match=r"Adam: beta1"):
        config.optimizer_from_settings({"beta1": 1.5})


def test_network_from_settings_leaves_what_is_unset_to_the_library():
    net = config.network_from_settings({"hidden": [16], "lr": None}, input_dim=50, n_labels=30)
    assert net.get_config() == ps.Network(50, [ps.Dense(16), ps.Sampled(30)]).get_config()
    net = config.network_from_settings(
        {"hidden": [16, 8], "dropout": 0.1, "share": "sample", "hash": "wta", "K": 2, "L": 3,
         "bin_size": 4, "loss": "bce", "seed": 5, "threads": 1, "output": None}, 50, 30)
    dense, _, out = net.layers
    assert (dense.units, dense.dropout, out.share, net.loss, net.seed) == (16, 0.1, "sample",
                                                                           "bce", 5)
    assert type(out.hash).__name__ == "WTA" and (out.hash.K, out.hash.L) == (2, 3)
    dense_out = config.network_from_settings({"hidden": [], "output": "dense"}, 50, 30)
    assert [type(layer).__name__ for layer in dense_out.layers] == ["Dense"]
    listed = config.network_from_settings(
        {"layers": [{"kind": "dense", "units": 8}, {"kind": "sampled"}], "seed": 2}, 50, 30)
    assert [layer.units for layer in listed.layers] == [8, 30] and listed.seed == 2


@pytest.mark.parametrize("settings, message", [
    ({"hash": "none", "bits": 3}, r"^bits does not apply to hash none \(uniform sampling\)$"),
    ({"output": "dense", "negatives": 2}, r"^negatives applies to a sampled output layer, "
                                          r"not to output dense$"),
    ({"dropout": 0.5}, r"^dropout applies to hidden layers, and hidden none gives none$"),
    ({"layers": [{"kind": "sampled"}], "active": 3},
     r"^active cannot be combined with layers \(the list describes every layer\)"),
    ({"colour": "red"}, r"^unknown setting\(s\) 'colour'; known: K, L, activation, active, "),
    ({"hash": "simhash", "bin_size": 4}, r"bin_size does not apply to the SimHash family"),
])
def test_network_from_settings_refuses_contradictions(settings, message):
    with pytest.raises(ValueError, match=message):
        config.network_from_settings(settings, 50, 30)


def test_network_from_settings_names_keys_as_told():
    with pytest.raises(ValueError, match=r"^-K does not apply to --hash none"):
        config.network_from_settings({"hash": "none", "K": 3}, 50, 30,
                                     names={"K": "-K", "hash": "--hash"})


def test_check_setting_checks_a_layer_or_optimizer_value_alone():
    assert config.check_setting("active", 0.5) == 0.5
    assert config.check_setting("K", 0) == 0            # checked with its family, later
    assert config.check_setting("beta1", None) is None
    with pytest.raises(ValueError, match=r"Adam: beta1 must be in \(0, 1.0\), got 1.5"):
        config.check_setting("beta1", 1.5)
    with pytest.raises(ValueError, match=r"Sampled: rebuild_growth must be None or a number "
                                         r">= 1, got 0.5"):
        config.check_setting("rebuild_growth", 0.5)
    with pytest.raises(ValueError, match=r"Dense: dropout"):
        config.check_setting("dropout", 1.5)
    with pytest.raises(ValueError, match=r"^unknown setting 'colour'; known: K, L, "):
        config.check_setting("colour", 1)
