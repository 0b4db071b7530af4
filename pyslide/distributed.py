"""Label-sharded training and inference on a Ray cluster (ShardedNetwork: the model, its inference and its model folders); imports _topk, _shard_group and _shard_steps (its shards and its step backend), network, settings, seeds, training, persist, shard_actor, inference, state, layers, metrics, atomic and _validate (Ray at call time only; never the CLI or the loader).

The output layer's rows are split into R contiguous ranges, one per Ray
actor (a *shard*). A shard holds its rows, their optimizer state and its
own LSH tables, and runs the kernels of ``_shard.pyx`` with its own
threads (the actor's body is ``shard_actor.ShardWorker``). The driver
holds the trunk (the input and hidden layers) and runs it with the
engine's headless entry points (``Engine.forward_hidden`` /
``backward_hidden``).

One softmax step moves, besides the batch's labels and a few numbers per
sample, the batch's last hidden vectors (once, through Ray's object store)
and each shard's gradient with respect to them: bytes proportional to
batch x hidden width, never to the number of labels.

1. ``begin``: the driver puts the hidden vectors and the batch's labels;
   each shard puts its labels in its active set and, with LSH, hashes the
   hidden vectors and counts the candidates of the buckets they hit.
2. ``forward``: the driver splits the active budget (``max_active``) over
   the shards in proportion to their candidates (uniform top-up up to
   ``min_active`` in proportion to the rows they have left), so the whole
   step does the single-node network's work; each shard computes its
   logits and returns each sample's max and sum of exponentials.
3. ``backward``: the driver forms each sample's partition sum and sends it
   back; each shard forms its deltas and returns its part of the hidden
   gradient. BCE needs no partition sum: its ``forward`` and ``backward``
   are sent together.
4. ``update``: once the loss is known to be finite, the driver tells the
   shards to update their rows, and sums the parts and back-propagates
   through the trunk while they do (the next step's calls queue behind
   the update in each actor).

Calls that need nothing from the driver in between are sent together
(Ray runs an actor's calls in order), so a softmax step waits on the
shards twice, or three times with LSH.

Rounds 1 to 3 are ``_shard_steps.ShardSteps.compute`` and round 4 its
``apply``: the step backend that ``training.Trainer``'s epoch loop (the
single node's too) drives. The actors are placed, called and closed by
``_shard_group.ShardGroup``.
"""
import contextlib
import json
import os
import shutil
import tempfile

import numpy as np

from . import _topk
from ._shard_group import (PlacementError, ShardError, ShardGroup, TOKEN_CPU,  # noqa: F401
                           ray_module, shard_bounds)
from ._shard_steps import ShardSteps, softmax_row_losses
from ._validate import integer, real
from .atomic import atomic_write
from .inference import Ranking, hidden_activations, probabilities
from .layers import Dense, Sampled
from .network import Network
from .persist import (FOLDER_FORMAT, FOLDER_VERSION, MANIFEST, build_tables, crc32,
                      is_sharded_folder, load_folder, read_manifest, read_trunk, set_counters)
from .seeds import normal_blocks, weights_rng
from .settings import Settings, checked_config
from .shard_actor import Spec
from .state import PERSISTENT, LayerState
from .training import Trainer
from .weights import NAMES, check_weights, copy_weights, like

__all__ = ["ShardedNetwork", "ShardError", "PlacementError"]


class _ShardedInference(Ranking):
    """A ``ShardedNetwork``'s inference (mixed into it): the trunk's exact
    hidden vectors here, each shard's top k, scores and loss parts over its
    rows, merged in the driver."""

    def _hidden(self, X):
        """Exact activations of the last hidden layer (float32, C order), with
        BLAS on ``threads`` threads as in ``Network``'s inference."""
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            h = hidden_activations(X, self.layers[:-1], self._states)
        return np.ascontiguousarray(h, dtype=np.float32)

    def predict_topk(self, X, k=5, sampled=False):
        """Top-k outputs per row, best first; as ``Network.predict_topk``.

        Each shard returns its own top k (ids and scores) of every row and
        the driver merges them: exact by default; ``sampled=True`` scores
        only the rows each shard's LSH tables return.
        """
        self._check_open()
        k = integer(k, "k", 1)
        if not isinstance(sampled, bool):
            raise TypeError(f"sampled must be True or False, got {sampled!r}")
        X = self._check_X(X)
        n = X.shape[0]
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        if n == 0:
            return ids, scores
        self._ensure_initialized()
        if sampled and not all(self._group.call_all("ensure_tables", self.step_)):
            raise ValueError("predict_topk(sampled=True) needs a Sampled output layer with a "
                             "hash family (not a dense-equivalent or uniform one)")
        ray = ray_module()
        chunk = 4096
        for start in range(0, n, chunk):
            h = self._hidden(X[start:start + chunk])
            ref = ray.put(h)
            parts = self._group.get([a.topk.remote(ref, k, sampled) for a in self._actors])
            _merge_topk(parts, k, self.n_threads, ids[start:start + len(h)],
                        scores[start:start + len(h)])
        return ids, scores

    def predict_proba(self, X):
        """Output probabilities (n, n_outputs), gathered from every shard
        (the full matrix in the driver: for small inputs)."""
        self._check_open()
        X = self._check_X(X)
        self._ensure_initialized()
        ray = ray_module()
        ref = ray.put(self._hidden(X))
        z = np.concatenate(self._group.get([a.scores.remote(ref) for a in self._actors]), axis=1)
        return probabilities(z, self.loss)

    def _scoring_threads(self):
        # the driver's BLAS work is _hidden's, which limits its own threads
        return contextlib.nullcontext()

    def _row_chunks(self, n):
        return range(0, n, 4096), 4096

    def _score_rows(self, h, Y, k, ids, scores):
        """Every shard's top k and loss parts of these hidden rows, merged into
        ``ids``/``scores``; their loss sum."""
        ray = ray_module()
        ref = ray.put(h)
        labels = ray.put((Y.indptr.astype(np.int64), Y.indices.astype(np.int32)))
        top = [a.topk.remote(ref, k, False) for a in self._actors]
        parts = self._group.get([a.loss_parts.remote(ref, labels) for a in self._actors])
        _merge_topk(self._group.get(top), k, self.n_threads, ids, scores)
        if self.loss == "softmax":
            return float(softmax_row_losses(parts, np.diff(Y.indptr))[0].sum())
        return float(sum(p[0] for p in parts).sum() - sum(p[2] for p in parts).sum())


class _ShardedFiles:
    """A ``ShardedNetwork``'s config, model folders and conversions from and
    to a single-node ``Network`` (mixed into it); ``persist`` reads the
    folders."""

    def get_config(self):
        """``Network.get_config()`` plus ``shards``."""
        return dict(Settings.get_config(self), shards=self.shards)

    @classmethod
    def from_config(cls, config, threads=None, actor_options=None, placement_timeout=60.0):
        """The sharded network a ``get_config()`` dict describes (untrained):
        ``Network.from_config``'s keys and defaults, and ``shards`` (default
        2); ``threads``, when given, overrides the config's; ``actor_options``
        and ``placement_timeout`` as for ``ShardedNetwork``."""
        config = checked_config(config, "ShardedNetwork", extra_keys=("shards",))
        shards = config.pop("shards", 2)
        if threads is not None:
            config["threads"] = threads
        return cls._from_config(config, shards, actor_options, placement_timeout)

    def save(self, path):
        """Write the model to the folder ``path``: ``manifest.json``, the
        trunk's arrays (``trunk.npz``) and one file per shard
        (``shard-<r>.npz``, written by the shard itself, so ``path`` must be
        on storage every machine of the cluster sees).

        Atomic: the files go to a new folder beside ``path`` that replaces
        it only once every file is complete; a failure leaves the previous
        model at ``path`` intact. ``pyslide.load`` reads it back, sharded
        (any number of shards) or into a single-node ``Network``.
        """
        self._check_open()
        self._ensure_initialized()
        path = os.path.abspath(os.fspath(path))
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise FileNotFoundError(f"cannot save to {path!r}: the folder {parent!r} does "
                                    f"not exist")
        if os.path.exists(path) and not is_sharded_folder(path):
            raise ValueError(f"cannot save to {path!r}: it exists and is not a sharded model "
                             f"folder (it would be replaced)")
        temp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=parent)
        try:
            trunk = {f"layer{i}_{name}": state[name] for i, state in enumerate(self._states)
                     for name in PERSISTENT if name in state}
            with atomic_write(os.path.join(temp, "trunk.npz"), "wb") as f:
                np.savez(f, **trunk)
            files = [f"shard-{r}.npz" for r in range(self.shards)]
            checksums = self._group.get([a.save.remote(os.path.join(temp, name))
                                   for a, name in zip(self._actors, files)])
            manifest = {
                "format": FOLDER_FORMAT, "version": FOLDER_VERSION,
                "config": Settings.get_config(self),
                "trunk": {"file": "trunk.npz",
                          "checksums": {k: crc32(v) for k, v in trunk.items()}},
                "shards": [{"file": name, "start": self.bounds[r], "stop": self.bounds[r + 1],
                            "checksums": checksums[r]} for r, name in enumerate(files)],
                "state": {"step": self.step_, "epoch": self.epoch_,
                          "initialized": self._initialized, "log_decay": self._log_decay,
                          "history": {k: [float(x) for x in v]
                                      for k, v in self.history_.items()}}}
            with atomic_write(os.path.join(temp, MANIFEST), "w") as f:
                json.dump(manifest, f)
            _replace_folder(temp, path)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path, shards=None, threads=None, actor_options=None,
             placement_timeout=60.0):
        """A ``ShardedNetwork`` from a sharded model folder (any number of
        ``shards``: ``None`` keeps the saved one) or from a single-node model
        file (``shards`` then defaults to 2). Training continues from it.
        ``actor_options`` and ``placement_timeout`` as for ``ShardedNetwork``."""
        path = os.fspath(path)
        if not is_sharded_folder(path):
            single = Network.load(path, threads=threads)
            return cls.from_network(single, shards=2 if shards is None else shards,
                                    threads=threads, actor_options=actor_options,
                                    placement_timeout=placement_timeout)
        manifest = read_manifest(path)
        config = dict(manifest["config"])
        if threads is not None:
            config["threads"] = threads
        saved = manifest["shards"]
        shards = len(saved) if shards is None else shards
        net = cls._from_config(config, shards, actor_options, placement_timeout)
        try:
            trunk = read_trunk(path, manifest)
            for i, state in enumerate(net._states):
                for name in PERSISTENT:
                    if name in state:
                        state[name][...] = trunk[f"layer{i}_{name}"]
            sources = [(os.path.join(path, s["file"]), int(s["start"]), s["checksums"])
                       for s in saved]
            calls = []
            for r, actor in enumerate(net._actors):
                mine = [src for src, s in zip(sources, saved)
                        if s["start"] < net.bounds[r + 1] and s["stop"] > net.bounds[r]]
                calls.append(actor.load_rows.remote(mine))
            net._group.get(calls)
            set_counters(net, manifest["state"])
            net._group.call_all("setup_hashing", net.step_)
            net._group.call_all("rebuild_tables", net.step_)
        except BaseException:
            net.close()
            raise
        return net

    @classmethod
    def _from_config(cls, config, shards, actor_options=None, placement_timeout=60.0):
        spec = Spec(config, config.get("threads"))
        return cls(spec.input_dim, spec.layers, shards=shards, loss=spec.loss,
                   optimizer=spec.optimizer, threads=spec.threads, seed=spec.seed,
                   actor_options=actor_options, placement_timeout=placement_timeout)

    @classmethod
    def from_network(cls, network, shards=2, threads=None, actor_options=None,
                     placement_timeout=60.0):
        """A ``ShardedNetwork`` holding ``network``'s weights, optimizer state
        and counters, its output rows split over ``shards`` actors;
        ``actor_options`` and ``placement_timeout`` as for ``ShardedNetwork``."""
        if not isinstance(network, Network):
            raise TypeError(f"network must be a pyslide.Network, got {network!r}")
        config = network.get_config()
        if threads is not None:
            config["threads"] = threads
        net = cls._from_config(config, shards, actor_options, placement_timeout)
        try:
            for state, source in zip(net._states, network._states[:-1]):
                for name in PERSISTENT:
                    if name in state:
                        state[name][...] = source[name]
            out = network._states[-1]
            ray = ray_module()
            calls = []
            for r, actor in enumerate(net._actors):
                rows = slice(net.bounds[r], net.bounds[r + 1])
                calls.append(actor.set_arrays.remote(
                    ray.put({name: out[name][rows] for name in PERSISTENT if name in out})))
            net._group.get(calls)
            set_counters(net, {"step": network.step_, "epoch": network.epoch_,
                             "initialized": network._initialized,
                             "log_decay": network._log_decay, "history": network.history_})
            net._group.call_all("setup_hashing", net.step_)
            net._group.call_all("rebuild_tables", net.step_)
        except BaseException:
            net.close()
            raise
        return net

    def to_network(self):
        """A single-node ``Network`` with this model's weights and state (the
        whole output layer in the driver's memory)."""
        self._check_open()
        net = Network.from_config(Settings.get_config(self))
        for state, source in zip(net._states[:-1], self._states):
            for name in PERSISTENT:
                if name in state:
                    state[name][...] = source[name]
        for name, values in self.output_arrays().items():
            if name in net._states[-1]:
                net._states[-1][name][...] = values
        set_counters(net, {"step": self.step_, "epoch": self.epoch_,
                         "initialized": self._initialized, "log_decay": self._log_decay,
                         "history": self.history_})
        build_tables(net)
        return net


# ---------------------------------------------------------------------------- the driver

class ShardedNetwork(_ShardedFiles, _ShardedInference, Trainer, Settings):
    """A network whose output layer is split by rows over Ray actors.

    The same network, training and results as :class:`pyslide.Network`
    (same arguments, same initial weights, loss and optimizer) with the
    output layer's rows split into ``shards`` contiguous ranges, each held
    by a Ray actor with its optimizer state and LSH tables. The trunk
    (input and hidden layers) runs in the calling process. What crosses the
    network per step is proportional to batch x hidden width, not to the
    number of labels. See ``docs/distributed.md``.

    Parameters
    ----------
    input_dim, layers, loss, optimizer, seed
        As for ``Network``. The output layer must be
        ``Sampled(..., share="batch")`` (the default ``share``; ``active=1.0``
        computes every label) after at least one ``Dense`` hidden layer.
    shards : int
        Number of actors holding rows of the output layer (at most its units).
    threads : int or None
        Threads of each shard's kernels and of the driver's trunk. ``None``:
        the cores available to each process (Ray sets ``OMP_NUM_THREADS``
        of an actor to its ``num_cpus``).
    actor_options : dict or None
        Passed to Ray's ``.options()`` for every shard actor (default
        ``{"num_cpus": 0}``: a shard reserves no cores; give
        ``{"num_cpus": threads}`` to reserve them). The shards are placed
        with a Ray placement group of one bundle per shard holding what the
        actor asks for (``num_cpus``, ``num_gpus``, ``memory``,
        ``resources``; 0.01 CPU when that is nothing): ``STRICT_SPREAD``
        (every shard on a machine of its own) when the cluster has at least
        ``shards`` alive machines that can hold a shard, else ``SPREAD``
        (as evenly as Ray can). A ``scheduling_strategy`` of your own
        replaces the placement group.
    placement_timeout : float or None
        Seconds to wait for every shard's actor to be placed and started
        (default 60). Past it, ``PlacementError`` names the shard that could
        not be placed, what it asks for and what the cluster has. ``None``
        waits as long as it takes (e.g. for an autoscaler to add machines).

    Uses the Ray cluster the process is connected to (``ray.init(address=
    ...)``), or starts a local one.

    ``get_weights()`` / ``set_weights(weights)`` are ``Network``'s: one
    ``{"W": ..., "b": ...}`` per layer, the output layer's rows gathered
    from the shards (all in the driver's memory) and scattered back to them.

    Examples
    --------
    >>> import pyslide as ps                                  # doctest: +SKIP
    >>> from pyslide.distributed import ShardedNetwork       # doctest: +SKIP
    >>> X, Y = ps.data.make_xc("small", n_samples=2000, seed=0)   # doctest: +SKIP
    >>> net = ShardedNetwork(X.shape[1], [ps.Dense(64), ps.Sampled(Y.shape[1])],
    ...                      shards=2, threads=1)                 # doctest: +SKIP
    >>> history = net.fit(X, Y, epochs=1, verbose=0)              # doctest: +SKIP
    """

    def __init__(self, input_dim, layers, shards=2, loss="softmax", optimizer="adam",
                 threads=None, seed=0, actor_options=None, placement_timeout=60.0):
        self._configure(input_dim, layers, loss, optimizer, threads, seed)
        self.shards = integer(shards, "shards", 1, hint=" (the number of actors holding the "
                                                        "output layer's rows)")
        out = self.layers[-1]
        if not isinstance(out, Sampled) or out.share != "batch" or len(self.layers) < 2:
            raise ValueError("layers: a ShardedNetwork's output layer must be "
                             "pyslide.Sampled(..., share='batch') after at least one Dense "
                             "hidden layer (the shards score the batch's hidden vectors)")
        for i, layer in enumerate(self.layers[:-1]):
            if not isinstance(layer, Dense):
                raise ValueError(f"layers[{i}]: the trunk of a ShardedNetwork is Dense layers "
                                 f"only, got {layer!r}")
        if self.shards > out.units:
            raise ValueError(f"shards must be <= the output layer's units ({out.units}), "
                             f"got {self.shards}")
        if actor_options is not None and not isinstance(actor_options, dict):
            raise TypeError(f"actor_options must be None or a dict of Ray actor options, "
                            f"got {actor_options!r}")
        self.actor_options = actor_options
        self.placement_timeout = real(placement_timeout, "placement_timeout", 0, min_open=True,
                                      none_ok=True, hint=" (seconds to wait for the shards to "
                                      "be placed; None waits as long as it takes)")
        self.n_outputs = out.units
        self.bounds = shard_bounds(out.units, self.shards)
        self._states = [LayerState(arrays) for arrays in self._layer_arrays()[:-1]]
        self.step_ = 0
        self._log_decay = 0.0
        self.epoch_ = 0
        self.history_ = {"loss": []}
        self.timings_ = {}
        self.step_times_ = np.zeros(0)
        self.bytes_per_step_ = {}
        self.shard_timings_ = None
        self.stop_training = False
        self._initialized = False
        self._engine = None
        self._group = ShardGroup(Settings.get_config(self), self.bounds, self.threads,
                                 actor_options, self.placement_timeout)

    # ------------------------------------------------------------ the shards

    # the shards' actor handles (empty once the network is closed)
    _actors = property(lambda self: self._group.actors)

    def _steps(self):
        """``Trainer``'s step backend: the trunk here, the output rows in the shards."""
        return ShardSteps(self)

    def _check_open(self):
        # checked on entry by every public method that needs the shards, so
        # a closed network says so before it touches any state or file
        self._group.check_open()

    def shard_nodes(self):
        """The Ray node id (hex) of each shard's actor, in shard order."""
        return self._group.nodes()

    def shard_memory(self):
        """Bytes each shard holds, one dict per shard: ``arrays`` (its rows
        and their optimizer state: about 1/R of the output layer's) and
        ``tables`` (its LSH tables, sized by the hash family, the same in
        every shard)."""
        return self._group.call_all("memory")

    def close(self):
        """End the shard actors and free their placement group. The network
        cannot be used afterwards (its methods raise ``RuntimeError`` saying
        so): ``ShardedNetwork.load`` a saved folder or checkpoint to go on."""
        self._group.close()

    def fit(self, X, Y, epochs=1, batch_size=128, validation_data=None, shuffle=True,
            callbacks=None, verbose=1, eval_k=(1, 3, 5), validation_split=0.0):
        """Train for ``epochs`` passes over (X, Y); as ``Network.fit`` (the same
        loop, ``training.Trainer``, driving the shards' step backend).

        Raises ``ShardError`` naming the shard when a shard's actor dies
        (training cannot go on without its rows; the network closes its
        other shards, freeing what they reserved): with a
        ``pyslide.ModelCheckpoint`` callback, ``ShardedNetwork.load`` the
        last checkpoint and call ``fit`` again to resume.

        After ``fit``, ``timings_`` holds the seconds in the trunk and
        waiting on the shards, ``shard_timings_`` each shard's seconds of
        computing (``rebuild``, ``begin``, ``forward``, ``backward``), and
        ``bytes_per_step_`` the bytes sent to and received from the shards
        per step (arrays' sizes).
        """
        return Trainer.fit(self, X, Y, epochs=epochs, batch_size=batch_size,
                           validation_data=validation_data, shuffle=shuffle,
                           callbacks=callbacks, verbose=verbose, eval_k=eval_k,
                           validation_split=validation_split)

    # ------------------------------------------------------------ weights

    def _init_weights(self, mean_sq_norm, Y=None):
        """``Network._init_weights``'s draws, in its order: the trunk here, the
        output layer's rows streamed to their shards block by block, and the
        output biases' start (``_prior_bias``), each shard its range."""
        ray = ray_module()
        self._check_open()
        rng = weights_rng(self.seed)
        for i, state in enumerate(self._states):
            std = self._init_std(i, mean_sq_norm)
            for start, values in normal_blocks(rng, state["W"].shape, std):
                state["W"][start:start + len(values)] = values
            state["b"][:] = 0
        last = len(self.layers) - 1
        shape = (self.n_outputs, self._dims[-1][0])
        pending = []
        for start, values in normal_blocks(rng, shape, self._init_std(last, mean_sq_norm)):
            stop = start + len(values)
            for r in range(self.shards):
                lo, hi = max(start, self.bounds[r]), min(stop, self.bounds[r + 1])
                if hi > lo:
                    pending.append(self._actors[r].set_rows.remote(
                        lo - self.bounds[r], ray.put(values[lo - start:hi - start])))
        prior = self._prior_bias(Y)
        if prior is not None:
            pending += [actor.set_arrays.remote({"b": prior[self.bounds[r]:self.bounds[r + 1]]})
                        for r, actor in enumerate(self._actors)]
        self._group.get_any(pending)
        self._initialized = True

    def _ensure_initialized(self):
        if not self._initialized:
            self._init_weights(1.0)

    def output_arrays(self):
        """The output layer's persistent arrays gathered from every shard
        (all rows in the driver: for tests and small models)."""
        parts = self._group.call_all("arrays", list(PERSISTENT))
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    def get_weights(self):
        """``Network.get_weights``: one ``{"W", "b"}`` copy per layer, the
        output layer's rows gathered from the shards."""
        self._check_open()
        out = self.output_arrays()
        return [copy_weights(state) for state in self._states] + [copy_weights(out)]

    def set_weights(self, weights):
        """``Network.set_weights``: the output layer's rows are scattered
        to their shards, which rebuild their hash tables when their rows
        changed."""
        self._check_open()
        out = self.output_arrays()
        checked = check_weights(weights, [*self._states, {name: like(out[name].shape,
                                                                     out[name].dtype)
                                                          for name in NAMES}])
        for state, given in zip(self._states, checked):
            for name, array in given.items():
                state[name][...] = array
        ray = ray_module()
        calls = []
        for r, actor in enumerate(self._actors):
            rows = slice(self.bounds[r], self.bounds[r + 1])
            given = {name: checked[-1][name][rows] for name in NAMES}
            calls.append(actor.set_arrays.remote(ray.put(given)))
            if not np.array_equal(out["W"][rows], given["W"]):
                calls.append(actor.rebuild_tables.remote(self.step_))
        self._group.get(calls)
        self._initialized = True

    def __reduce__(self):
        raise TypeError("a ShardedNetwork cannot be pickled (its rows live in Ray actors); "
                        "save it with .save(folder)")

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return (f"ShardedNetwork(input_dim={self.input_dim}, layers=[{inner}], "
                f"shards={self.shards}, loss={self.loss!r}, optimizer={self.optimizer!r}, "
                f"threads={self.threads!r}, seed={self.seed})")


def _merge_topk(parts, k, threads, ids_out, scores_out):
    """Each shard's top k of every row, merged into the rows' top k (ties:
    the lower id, as within a shard)."""
    all_ids = np.ascontiguousarray(np.concatenate([p[0] for p in parts], axis=1))
    all_scores = np.ascontiguousarray(np.concatenate([p[1] for p in parts], axis=1))
    pos = np.zeros(ids_out.shape, np.int32)
    _topk.topk_rows(all_scores, min(k, all_scores.shape[1]), threads, pos, scores_out)
    ids_out[...] = np.take_along_axis(all_ids, pos, axis=1)
    ids_out[~np.isfinite(scores_out)] = -1


def _replace_folder(temp, path):
    """Put the complete folder ``temp`` at ``path``; the old one goes only
    after the new one is in place."""
    old = None
    if os.path.exists(path):
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".old",
                               dir=os.path.dirname(path))
        os.rmdir(old)
        os.rename(path, old)
    try:
        os.rename(temp, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_single(path, threads=None):
    """A single-node ``Network`` from a sharded model folder (no Ray needed:
    the driver reads every shard's file); ``Network.load`` does the same."""
    return load_folder(path, Network, threads=threads)
