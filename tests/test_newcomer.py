"""Issue 18: what a new user tripped on (busy machines, silent acceptance of
wrong inputs, late or raw errors, fork after training, help()). One test
(at least) per point; the Ray points live in ``test_distributed.py``.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyslide as ps
from pyslide import _openmp_env, cli

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
