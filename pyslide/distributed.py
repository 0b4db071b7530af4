"""Label-sharded training and inference on a Ray cluster (ShardedNetwork); imports ray (optional, at use), the kernels (_kernels, _loss, _optim, _topk), shard_actor, network, state, layers, training, callbacks, metrics, atomic and _validate (never the CLI).

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
"""
import json
import os
import re
import shutil
import tempfile
import time
import weakref

import numpy as np

from . import _kernels, _loss, _optim, _topk
from ._validate import integer, integers, real
from .atomic import atomic_write
from .callbacks import check_callbacks as _check_callbacks
from .inference import probabilities
from .layers import Dense, Sampled
from .network import Network
from .persist import (FOLDER_FORMAT, FOLDER_VERSION, MANIFEST, build_tables, crc32,
                      is_sharded_folder, load_folder,
                      read_manifest, read_trunk, set_counters)
from .seeds import normal_blocks, weights_rng
from .settings import Settings, checked_config
from .shard_actor import ShardWorker, Spec
from .state import PERSISTENT, LayerState
from .training import _check_validation_split, _end_epoch, _progress

__all__ = ["ShardedNetwork", "ShardError", "PlacementError"]



class ShardError(RuntimeError):
    """A shard (a Ray actor holding rows of the output layer) failed or died."""


class PlacementError(ShardError):
    """The shards' actors could not be placed on the Ray cluster (or did not
    start) within ``placement_timeout`` seconds; the message names the shard,
    what it asks for and what the cluster has."""


# A placement-group bundle cannot be empty: a shard that reserves nothing
# (num_cpus=0) reserves this token share of a CPU, which places it on a node
# that has CPUs and never waits for free cores in practice.
TOKEN_CPU = 0.01
# what a PlacementError suggests, whichever way placement failed
_PLACEMENT_FIXES = ("Ask for less in actor_options, use fewer shards, add machines, or raise "
                    "placement_timeout (None waits as long as it takes)")


def _ray():
    try:
        import ray
    except ImportError:
        raise ImportError("pyslide.distributed needs Ray: pip install \".[distributed]\" in "
                          "pyslide's source folder (or pip install \"ray>=2.9\")") from None
    return ray


def shard_bounds(units, shards):
    """The first row of each of ``shards`` contiguous ranges of ``units`` rows, and the end."""
    return [units * r // shards for r in range(shards + 1)]


# ---------------------------------------------------------------------------- the driver

class ShardedNetwork(Settings):
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
        self._actors = []
        self._placement_group = None
        self._closed_because = "it was never started"
        self._start_actors()

    # ------------------------------------------------------------ actors

    def _start_actors(self):
        """Place one actor per shard (see ``actor_options``) and wait, at most
        ``placement_timeout`` seconds, until every one answers."""
        ray = _ray()
        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        deadline = (None if self.placement_timeout is None
                    else time.monotonic() + self.placement_timeout)
        options = {"num_cpus": 0, **(self.actor_options or {})}
        actor_class = ray.remote(ShardWorker)
        # Ray checks the options here, naming a bad one, before any is used
        remote = actor_class.options(**options)
        ask = _bundle(options)
        config = Network.get_config(self)
        try:
            if "scheduling_strategy" in options:
                how = "with the scheduling_strategy given in actor_options"
                placed = [remote] * self.shards
            else:
                how = self._reserve(ray, ask, deadline)
                from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
                placed = [actor_class.options(**options, scheduling_strategy=(
                    PlacementGroupSchedulingStrategy(self._placement_group,
                                                     placement_group_bundle_index=r)))
                    for r in range(self.shards)]
            self._actors = [placed[r].remote(r, self.bounds[r], self.bounds[r + 1], config,
                                             self.threads) for r in range(self.shards)]
            pings = [actor.ping.remote() for actor in self._actors]
            _, waiting = ray.wait(pings, num_returns=len(pings), timeout=_left(deadline))
            if waiting:
                waiting = set(waiting)
                late = [r for r, ref in enumerate(pings) if ref in waiting]
                names = ", ".join(self._shard_name(r) for r in late)
                raise PlacementError(
                    f"{names} did not start within placement_timeout="
                    f"{self.placement_timeout:g} s (each shard asks for {_resources_text(ask)}, "
                    f"{how}); {_cluster_text(ray)}. {_PLACEMENT_FIXES}")
            self._get(pings)
        except BaseException:
            self.close()
            raise
        self._closed_because = None

    def _reserve(self, ray, ask, deadline):
        """A placement group of one ``ask`` bundle per shard, STRICT_SPREAD
        when enough machines can each hold one, else SPREAD; returns how the
        shards are placed, in words."""
        from ray.util.placement_group import placement_group
        capacities = [_capacity(node, ask) for node in _alive_nodes(ray)]
        hosts = sum(c > 0 for c in capacities)
        strict = hosts >= self.shards
        group = placement_group([ask] * self.shards,
                                strategy="STRICT_SPREAD" if strict else "SPREAD")
        self._placement_group = group
        # a network dropped without close() frees its reservation too (its
        # actors go with their handles)
        self._release_group = weakref.finalize(self, _remove_group, group)
        self._release_group.atexit = False
        how = ("each on a machine of its own (a STRICT_SPREAD placement group)" if strict else
               f"spread over the machines (a SPREAD placement group: {hosts} alive machine(s) "
               f"can hold a shard, fewer than the {self.shards} shards)")
        ready, _ = ray.wait([group.ready()], timeout=_left(deadline))
        if ready:
            return how
        fit = sum(capacities)
        if fit >= self.shards:
            why = (f"the cluster's machines could hold all {self.shards} shards when idle, but "
                   f"other actors, tasks or placement groups hold part of them now")
        elif fit == 0:
            why = (f"{self._shard_name(0)} asks for {_resources_text(ask)}, more than any alive "
                   f"machine has")
        else:
            why = (f"{self._shard_name(fit)} asks for {_resources_text(ask)}, and no alive "
                   f"machine has that left once shards 0 to {fit - 1} are placed")
        raise PlacementError(
            f"the {self.shards} shards could not be placed within placement_timeout="
            f"{self.placement_timeout:g} s, {how}: {why}; {_cluster_text(ray)}. {_PLACEMENT_FIXES}")

    def shard_nodes(self):
        """The Ray node id (hex) of each shard's actor, in shard order."""
        self._check_open()
        return self._get([actor.__ray_call__.remote(_node_id) for actor in self._actors])

    def _shard_name(self, r):
        return (f"shard {r} of {self.shards} (output rows {self.bounds[r]} to "
                f"{self.bounds[r + 1] - 1})")

    def _check_open(self):
        # checked on entry by every public method that needs the shards, so
        # a closed network says so before it touches any state or file
        if not self._actors:
            raise RuntimeError(f"this ShardedNetwork has no shards: {self._closed_because}; "
                               f"load a saved model or checkpoint (ShardedNetwork.load) to go on")

    def _get(self, refs):
        """``ray.get`` of one reference per shard; a dead or failing actor
        becomes a ``ShardError`` naming its shard. A dead one closes the
        network: it cannot go on without those rows, and what its other
        shards reserved is freed for the resumed run."""
        ray = _ray()
        self._check_open()
        out = []
        for r, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError as exc:
                self._close(f"{self._shard_name(r)} died")
                raise ShardError(f"{self._shard_name(r)} died: {_death_reason(exc)}. "
                                 f"Training cannot go on without its rows (the other shards "
                                 f"were closed, freeing what they reserved); load the last "
                                 f"checkpoint (pyslide.ModelCheckpoint) to resume") from exc
            except ray.exceptions.RayTaskError as exc:
                raise ShardError(f"{self._shard_name(r)} failed: "
                                 f"{_first_line(exc.cause if exc.cause else exc)}") from exc
        return out

    def _call_all(self, method, *args):
        return self._get([getattr(a, method).remote(*args) for a in self._actors])

    def shard_memory(self):
        """Bytes each shard holds, one dict per shard: ``arrays`` (its rows
        and their optimizer state: about 1/R of the output layer's) and
        ``tables`` (its LSH tables, sized by the hash family, the same in
        every shard)."""
        return self._call_all("memory")

    def close(self):
        """End the shard actors and free their placement group. The network
        cannot be used afterwards (its methods raise ``RuntimeError`` saying
        so): ``ShardedNetwork.load`` a saved folder or checkpoint to go on."""
        self._close("it was closed")

    def _close(self, reason):
        ray = _ray()
        for actor in self._actors:
            ray.kill(actor)
        self._actors = []
        if self._placement_group is not None:
            self._release_group()
            self._placement_group = None
        if self._closed_because is None:
            self._closed_because = reason

    # ------------------------------------------------------------ weights

    def _init_weights(self, mean_sq_norm, Y=None):
        """``Network._init_weights``'s draws, in its order: the trunk here, the
        output layer's rows streamed to their shards block by block, and the
        output biases' start (``_prior_bias``), each shard its range."""
        ray = _ray()
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
        self._get_any(pending)
        self._initialized = True

    def _get_any(self, refs):
        """``ray.get`` of a list of calls to any shards (errors name no shard)."""
        ray = _ray()
        self._check_open()
        try:
            return ray.get(refs)
        except ray.exceptions.RayActorError as exc:
            self._close("a shard died")
            raise ShardError(f"a shard died: {_death_reason(exc)}") from exc

    def _ensure_initialized(self):
        if not self._initialized:
            self._init_weights(1.0)

    def output_arrays(self):
        """The output layer's persistent arrays gathered from every shard
        (all rows in the driver: for tests and small models)."""
        parts = self._call_all("arrays", list(PERSISTENT))
        return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}

    # ------------------------------------------------------------ training

    def _trunk_engine(self, batch_size, max_labels, max_row_nnz):
        specs = []
        for i, (layer, state) in enumerate(zip(self.layers[:-1], self._states)):
            d_in, d_out = self._dims[i]
            specs.append({"sampled": 0, "in_dim": d_in, "units": d_out,
                          "relu": int(layer.activation == "relu"),
                          "dropout": self._dropout_rate(i), **state.engine_arrays()})
        return _kernels.Engine(specs, batch_size, self.n_threads, _loss.LOSSES[self.loss],
                               max_labels, self.seed, False, max_row_nnz, headless=True)

    def _prepare(self, X, Y, batch_size):
        n = X.shape[0]
        batch_size = min(batch_size, n)
        x_indptr = X.indptr.astype(np.int64)
        y_indptr = Y.indptr.astype(np.int64)
        max_labels = int(np.diff(y_indptr).max()) if n else 0
        if not self._initialized:
            row_sq = np.asarray(X.multiply(X).sum(axis=1)).ravel()
            self._init_weights(float(row_sq.mean()) if n else 1.0, Y)
        max_row_nnz = int(np.diff(x_indptr).max()) if n else 0
        self._engine = self._trunk_engine(batch_size, max_labels, max_row_nnz)
        self._set_visit_rate(Y, batch_size)
        log1m = self._label_log1m(Y)
        ray = _ray()
        self._get([a.prepare.remote(batch_size, max_labels,
                                    None if log1m is None else ray.put(
                                        log1m[self.bounds[r]:self.bounds[r + 1]]),
                                    self.step_)
                   for r, a in enumerate(self._actors)])
        run = _Run(X, Y, x_indptr, y_indptr, batch_size, self._dims[-1][0])
        out = self.layers[-1]
        run.tables = not out.dense_equivalent and out.resolve_hash(self._dims[-1][0]) is not None
        run.optimizer = _optim.OPTIMIZERS[self.optimizer.kind]
        return run

    def _budgets(self, n_labels, n_cand):
        """Each shard's ``(max_active, min_active)`` for this step: the
        single-node budget ``max_active`` minus the batch's labels, split in
        proportion to the shards' candidates; then the uniform top-up (to
        ``min_active``, and at least ``negatives`` beyond the labels) in
        proportion to the rows each has left."""
        out = self.layers[-1]
        n_labels = np.asarray(n_labels, np.int64)
        sizes = np.diff(self.bounds)
        if out.dense_equivalent:
            return sizes, sizes
        n_cand = np.asarray(n_cand, np.int64)
        need = max(0, out.max_active - int(n_labels.sum()))
        quota = _split(need, n_cand) if n_cand.sum() > need else n_cand
        n_set = n_labels + quota
        # the single-node top-up: to min_active, and at least ``negatives``
        # rows beyond the batch's labels
        target = max(out.min_active, int(n_labels.sum()) + out.negatives)
        deficit = target - int(n_set.sum())
        top_up = _split(deficit, sizes - n_set) if deficit > 0 else np.zeros_like(n_set)
        return n_set, n_set + top_up

    def _step(self, run, rows, step, losses):
        """One training step (rounds in the module's docstring); False when
        the loss is not finite (the step is dropped everywhere), else True."""
        ray = _ray()
        X, Y, engine = run.X, run.Y, self._engine
        n_b = len(rows)
        hidden = run.hidden[:n_b]
        t0 = time.perf_counter()
        engine.forward_hidden(run.x_indptr, X.indices, X.data, rows, step, hidden,
                              self._log_decay)
        t1 = time.perf_counter()
        batch_y = Y[rows]
        labels = (batch_y.indptr.astype(np.int64), batch_y.indices.astype(np.int32))
        n_labels = np.diff(labels[0]).astype(np.int32)
        hidden_ref = ray.put(hidden)
        labels_ref = ray.put(labels)
        sent = hidden.nbytes + labels[0].nbytes + labels[1].nbytes
        received = 0
        out = self.layers[-1]
        force = self.step_ == 0 and not run.rebuilt
        run.rebuilt = True
        begin = [a.begin.remote(hidden_ref, labels_ref, step, self.step_, force)
                 for a in self._actors]
        # the last step's row updates ran while the driver back-propagated;
        # they are done before these calls start (an actor runs in order)
        self._settle(run)
        if out.dense_equivalent or not run.tables:
            # budgets need no candidate counts: from the labels alone
            uniq = np.unique(labels[1])
            n_lab = np.diff(np.searchsorted(uniq, self.bounds))
            max_a, min_a = self._budgets(n_lab, np.zeros(self.shards, np.int64))
        else:
            counts = self._get(begin)
            received += 16 * self.shards
            max_a, min_a = self._budgets([c[0] for c in counts], [c[1] for c in counts])
        forward = [a.forward.remote(int(max_a[r]), int(min_a[r]), self._log_decay)
                   for r, a in enumerate(self._actors)]
        sent += 16 * self.shards
        opt = self.optimizer
        optimizer = {"kind": run.optimizer,
                     "step_size": opt.step_size(step, run.steps_per_epoch),
                     "beta1": getattr(opt, "beta1", 0.0), "beta2": getattr(opt, "beta2", 0.0),
                     "eps": getattr(opt, "eps", 0.0), "lazy": opt.lazy,
                     "log_decay": self._log_decay + opt.log_decay_at(step, run.steps_per_epoch),
                     "lr": opt.lr_at(step, run.steps_per_epoch)}
        if self.loss == "softmax":
            parts = self._get(forward)
            received += sum(p[0].nbytes * 3 for p in parts)
            # a diverged step gives infinite logits: its NaN loss is the
            # message, not NumPy's warnings on the way
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                zmax = np.stack([p[0] for p in parts]).astype(np.float64)
                top = zmax.max(axis=0)
                total = (np.stack([p[1] for p in parts]) * np.exp(zmax - top)).sum(axis=0)
                label_sum = np.stack([p[2] for p in parts]).astype(np.float64).sum(axis=0)
                row_loss = np.where(n_labels > 0, top + np.log(total)
                                    - label_sum / np.maximum(n_labels, 1), 0.0)
            losses[:n_b] = row_loss
            if not np.isfinite(row_loss).all():
                self._abort_step(step)
                return False
            partition = (top.astype(np.float32), total.astype(np.float32), n_labels)
            sent += sum(a.nbytes for a in partition)
            backward = [a.backward.remote(partition) for a in self._actors]
        else:
            backward = [a.backward.remote(None) for a in self._actors]
        results = self._get(backward)
        if out.dense_equivalent or not run.tables:
            self._get(begin)    # done by now; an error in it must not pass unseen
        t2 = time.perf_counter()
        d_hidden = results[0][0]
        for part, _ in results[1:]:
            d_hidden = d_hidden + part
        received += sum(part.nbytes for part, _ in results)
        if self.loss == "bce":
            losses[:n_b] = np.sum([p for _, p in results], axis=0)
            received += sum(p.nbytes for _, p in results)
            if not np.isfinite(losses[:n_b]).all():
                self._abort_step(step)
                return False
        # the output's rows take its lr_scale, multiplied in float32 as the
        # single node's engine does, so that one shard repeats it bit for bit
        scale = np.float32(self._lr_scale(len(self.layers) - 1, step, run.steps_per_epoch))
        shard_optimizer = dict(optimizer,
                               step_size=float(np.float32(optimizer["step_size"]) * scale),
                               lr=float(np.float32(optimizer["lr"]) * scale))
        run.pending = [a.update.remote(shard_optimizer) for a in self._actors]
        engine.backward_hidden(run.x_indptr, X.indices, X.data, rows, step,
                               np.ascontiguousarray(d_hidden))
        engine.optimizer_step(step, run.optimizer, optimizer["step_size"], optimizer["beta1"],
                              optimizer["beta2"], optimizer["eps"], opt.lazy,
                              optimizer["log_decay"], optimizer["lr"])
        self._log_decay = optimizer["log_decay"]
        self.step_ = step
        t3 = time.perf_counter()
        run.timings["trunk"] += (t1 - t0) + (t3 - t2)
        run.timings["shards"] += t2 - t1
        run.bytes_sent += sent
        run.bytes_received += received
        return True

    def _settle(self, run):
        """Wait for the shards' row updates of the last step (if any)."""
        if run is not None and run.pending:
            pending, run.pending = run.pending, None
            self._get(pending)

    def _abort_step(self, step):
        self._engine.discard_gradients(step)
        self._call_all("discard")

    def fit(self, X, Y, epochs=1, batch_size=128, validation_data=None, shuffle=True,
            callbacks=None, verbose=1, eval_k=(1, 3, 5), validation_split=0.0):
        """Train for ``epochs`` passes over (X, Y); as ``Network.fit``.

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
        self._check_open()
        epochs = integer(epochs, "epochs", 1)
        batch_size = integer(batch_size, "batch_size", 1)
        if verbose not in (0, 1, 2, True, False):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        X = self._check_X(X)
        n = X.shape[0]
        if n == 0:
            raise ValueError("X has no rows: fit needs at least one training example")
        Y = self._check_Y(Y, n)
        validation_split = _check_validation_split(validation_split)
        self.validation_rows_ = None
        if validation_data is not None:
            if validation_split:
                raise ValueError("give validation_data or validation_split, not both")
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, Y_val)")
            Xv = self._check_X(validation_data[0], "validation_data[0]")
            Yv = self._check_Y(validation_data[1], Xv.shape[0], "validation_data[1]")
        elif validation_split:
            X, Y, Xv, Yv = Network._split_validation(self, X, Y, validation_split)
            n = X.shape[0]
            validation_data = (Xv, Yv)
        eval_k = integers(eval_k, "eval_k")
        callbacks = _check_callbacks(callbacks)
        run = self._prepare(X, Y, batch_size)
        train_time = self.history_["time"][-1] if self.history_.get("time") else 0.0
        self.stop_training = False
        metrics = ["loss", "time"]
        if validation_data is not None:
            metrics += ["val_loss"] + [f"val_{m}@{k}" for k in eval_k for m in ("p", "ndcg")]
        for cb in callbacks:
            cb.on_train_begin(self, {"epochs": epochs, "steps": run.steps_per_epoch,
                                     "metrics": metrics})
        from threadpoolctl import threadpool_limits
        bar = None
        try:
            with threadpool_limits(limits=1, user_api="blas"):
                for _ in range(epochs):
                    epoch = self.epoch_
                    if verbose == 1:
                        bar = _progress(run.steps_per_epoch, f"epoch {epoch + 1}")
                    t_epoch = time.perf_counter()
                    loss_sum = self._train_epoch(run, epoch, shuffle, bar)
                    self._settle(run)
                    self._engine.apply_pending_decay(self._log_decay)
                    self._call_all("apply_pending_decay", self._log_decay)
                    train_time += time.perf_counter() - t_epoch
                    if bar is not None:
                        bar.close()
                        bar = None
                    logs = _end_epoch(self, loss_sum / run.n, train_time,
                                      None if validation_data is None else (Xv, Yv),
                                      eval_k, verbose, callbacks)
                    if self.stop_training:
                        break
                for cb in callbacks:
                    cb.on_train_end(self, logs)
        except (KeyboardInterrupt, ShardError):
            # the step in progress is dropped in the trunk and in every shard
            # that has not applied it yet (its rows are updated once the
            # driver has sent the update, just before its own backward)
            self._engine.discard_gradients(self.step_ + 1)
            try:
                if self._actors:        # a dead shard closed them all
                    self._call_all("discard")
            except ShardError:
                pass
            raise
        finally:
            if bar is not None:
                bar.close()
            steps = max(1, len(run.step_times))
            self.timings_ = dict(run.timings)
            self.step_times_ = np.asarray(run.step_times)
            self.bytes_per_step_ = {"sent": run.bytes_sent / steps,
                                    "received": run.bytes_received / steps}
            self.shard_timings_ = None
            try:
                if self._actors:
                    self._settle(run)
                    self.shard_timings_ = self._call_all("timings")
            except ShardError:
                pass
        return self.history_

    def _train_epoch(self, run, epoch, shuffle, bar):
        n, batch_size = run.n, run.batch_size
        if shuffle:
            order = np.random.default_rng([self.seed, 2, epoch]).permutation(n)
        else:
            order = np.arange(n)
        order = order.astype(np.int64)
        loss_sum = 0.0
        for s in range(run.steps_per_epoch):
            t0 = time.perf_counter()
            rows = order[s * batch_size:(s + 1) * batch_size]
            step = self.step_ + 1
            if not self._step(run, rows, step, run.losses):
                batch_loss = float(run.losses[:len(rows)].mean(dtype=np.float64))
                raise FloatingPointError(
                    f"the loss became {batch_loss} at step {step} (epoch {epoch + 1}, batch "
                    f"{s + 1}); weights were left as they were before this step. Lower the "
                    f"learning rate or check the inputs for extreme values")
            batch_loss = float(run.losses[:len(rows)].mean(dtype=np.float64))
            run.step_times.append(time.perf_counter() - t0)
            loss_sum += batch_loss * len(rows)
            if bar is not None:
                bar.update(1)
                if s % 10 == 0 or s == run.steps_per_epoch - 1:
                    bar.set_postfix(loss=f"{loss_sum / min(n, (s + 1) * batch_size):.4f}",
                                    refresh=False)
        return loss_sum

    # ------------------------------------------------------------ snapshots

    def _snapshot(self, into=None):
        """Copy the training state (early stopping): the trunk's arrays here,
        each shard's in its own actor (nothing crosses the network)."""
        if into is None or into.get("owner") is not self:
            into = {"owner": self, "arrays": [{name: np.empty_like(a) for name, a in
                                               state.state_arrays().items()}
                                              for state in self._states]}
        for arrays, state in zip(into["arrays"], self._states):
            for name, array in arrays.items():
                np.copyto(array, state[name])
        into["step"], into["log_decay"] = self.step_, self._log_decay
        self._call_all("snapshot")
        return into

    def _restore(self, snapshot):
        if not isinstance(snapshot, dict) or snapshot.get("owner") is not self:
            raise ValueError("snapshot must come from this network's _snapshot()")
        for arrays, state in zip(snapshot["arrays"], self._states):
            for name, array in arrays.items():
                np.copyto(state[name], array)
        self.step_, self._log_decay = snapshot["step"], snapshot["log_decay"]
        self._call_all("restore", self.step_)

    # ------------------------------------------------------------ inference

    def _hidden(self, X):
        """Exact activations of the last hidden layer (float32, C order), with
        BLAS on ``threads`` threads as in ``Network``'s inference."""
        from threadpoolctl import threadpool_limits
        h = X
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            for layer, state in zip(self.layers[:-1], self._states):
                h = np.asarray(h @ state["W"], dtype=np.float32)
                h += state["b"]
                if layer.activation == "relu":
                    np.maximum(h, 0, out=h)
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
        if sampled and not all(self._call_all("ensure_tables", self.step_)):
            raise ValueError("predict_topk(sampled=True) needs a Sampled output layer with a "
                             "hash family (not a dense-equivalent or uniform one)")
        ray = _ray()
        chunk = 4096
        for start in range(0, n, chunk):
            h = self._hidden(X[start:start + chunk])
            ref = ray.put(h)
            parts = self._get([a.topk.remote(ref, k, sampled) for a in self._actors])
            _merge_topk(parts, k, self.n_threads, ids[start:start + len(h)],
                        scores[start:start + len(h)])
        return ids, scores

    def predict(self, X, k=5):
        """Top-k label ids per row (n, k), best first (exact)."""
        return self.predict_topk(X, k=k)[0]

    def predict_proba(self, X):
        """Output probabilities (n, n_outputs), gathered from every shard
        (the full matrix in the driver: for small inputs)."""
        self._check_open()
        X = self._check_X(X)
        self._ensure_initialized()
        ray = _ray()
        ref = ray.put(self._hidden(X))
        z = np.concatenate(self._get([a.scores.remote(ref) for a in self._actors]), axis=1)
        return probabilities(z, self.loss)

    def evaluate(self, X, Y, k=(1, 3, 5)):
        """Precision@k and nDCG@k of exact top-k predictions against Y."""
        from .metrics import evaluate_topk
        self._check_open()
        ks = integers(k, "k")
        X = self._check_X(X)
        Y = self._check_Y(Y, X.shape[0])
        ids, _ = self.predict_topk(X, k=max(ks))
        return evaluate_topk(ids, Y, ks=ks)

    def _validation_scores(self, X, Y, ks):
        """``evaluate``'s metrics and the exact mean loss over every output."""
        from .metrics import evaluate_topk
        ray = _ray()
        n, k = X.shape[0], max(ks)
        ids = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        loss_sum = 0.0
        chunk = 4096
        for start in range(0, n, chunk):
            h = self._hidden(X[start:start + chunk])
            Yc = Y[start:start + len(h)]
            ref = ray.put(h)
            labels = ray.put((Yc.indptr.astype(np.int64), Yc.indices.astype(np.int32)))
            top = [a.topk.remote(ref, k, False) for a in self._actors]
            parts = self._get([a.loss_parts.remote(ref, labels) for a in self._actors])
            _merge_topk(self._get(top), k, self.n_threads, ids[start:start + len(h)],
                        scores[start:start + len(h)])
            counts = np.diff(Yc.indptr)
            label_sum = sum(p[2] for p in parts)
            if self.loss == "softmax":
                zmax = np.stack([p[0] for p in parts])
                top_z = zmax.max(axis=0)
                lse = top_z + np.log(sum(p[1] * np.exp(p[0] - top_z) for p in parts))
                loss_sum += float(np.where(counts > 0, lse - label_sum / np.maximum(counts, 1),
                                           0.0).sum())
            else:
                loss_sum += float(sum(p[0] for p in parts).sum() - label_sum.sum())
        return {"loss": loss_sum / max(n, 1), **evaluate_topk(ids, Y, ks=ks)}

    # ------------------------------------------------------------ persistence

    def get_config(self):
        """``Network.get_config()`` plus ``shards``."""
        return dict(Network.get_config(self), shards=self.shards)

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
            checksums = self._get([a.save.remote(os.path.join(temp, name))
                                   for a, name in zip(self._actors, files)])
            manifest = {
                "format": FOLDER_FORMAT, "version": FOLDER_VERSION,
                "config": Network.get_config(self),
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
            net._get(calls)
            set_counters(net, manifest["state"])
            net._call_all("setup_hashing", net.step_)
            net._call_all("rebuild_tables", net.step_)
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
            ray = _ray()
            calls = []
            for r, actor in enumerate(net._actors):
                rows = slice(net.bounds[r], net.bounds[r + 1])
                calls.append(actor.set_arrays.remote(
                    ray.put({name: out[name][rows] for name in PERSISTENT if name in out})))
            net._get(calls)
            set_counters(net, {"step": network.step_, "epoch": network.epoch_,
                             "initialized": network._initialized,
                             "log_decay": network._log_decay, "history": network.history_})
            net._call_all("setup_hashing", net.step_)
            net._call_all("rebuild_tables", net.step_)
        except BaseException:
            net.close()
            raise
        return net

    def to_network(self):
        """A single-node ``Network`` with this model's weights and state (the
        whole output layer in the driver's memory)."""
        self._check_open()
        net = Network.from_config(Network.get_config(self))
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

    def __reduce__(self):
        raise TypeError("a ShardedNetwork cannot be pickled (its rows live in Ray actors); "
                        "save it with .save(folder)")

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return (f"ShardedNetwork(input_dim={self.input_dim}, layers=[{inner}], "
                f"shards={self.shards}, loss={self.loss!r}, optimizer={self.optimizer!r}, "
                f"threads={self.threads!r}, seed={self.seed})")


# ---------------------------------------------------------------------------- helpers

class _Run:
    """A sharded training run's data, scratch and counters."""

    def __init__(self, X, Y, x_indptr, y_indptr, batch_size, d):
        self.X, self.Y, self.x_indptr, self.y_indptr = X, Y, x_indptr, y_indptr
        self.n = X.shape[0]
        self.batch_size = batch_size
        self.steps_per_epoch = (self.n + batch_size - 1) // batch_size
        self.losses = np.zeros(batch_size, dtype=np.float32)
        self.hidden = np.zeros((batch_size, d), dtype=np.float32)
        self.optimizer = None
        self.rebuilt = False
        self.pending = None        # the shards' row updates of the last step, in flight
        self.tables = False        # the shards have LSH tables (a candidates round)
        self.timings = {"trunk": 0.0, "shards": 0.0}
        self.step_times = []
        self.bytes_sent = 0
        self.bytes_received = 0


def _split(total, weights):
    """``total`` split over ``weights`` in proportion (largest remainders),
    never more than a weight: integers summing to min(total, sum(weights))."""
    weights = np.asarray(weights, np.int64)
    cap = int(weights.sum())
    total = min(int(total), cap)
    if total <= 0 or cap == 0:
        return np.zeros_like(weights)
    exact = weights * (total / cap)
    share = np.minimum(np.floor(exact).astype(np.int64), weights)
    left = total - int(share.sum())
    order = np.argsort(-(exact - share), kind="stable")
    for r in order:
        if left == 0:
            break
        if share[r] < weights[r]:
            share[r] += 1
            left -= 1
    return share


def _merge_topk(parts, k, threads, ids_out, scores_out):
    """Each shard's top k of every row, merged into the rows' top k (ties:
    the lower id, as within a shard)."""
    all_ids = np.ascontiguousarray(np.concatenate([p[0] for p in parts], axis=1))
    all_scores = np.ascontiguousarray(np.concatenate([p[1] for p in parts], axis=1))
    pos = np.zeros(ids_out.shape, np.int32)
    _topk.topk_rows(all_scores, min(k, all_scores.shape[1]), threads, pos, scores_out)
    ids_out[...] = np.take_along_axis(all_ids, pos, axis=1)
    ids_out[~np.isfinite(scores_out)] = -1


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _death_reason(exc):
    """Ray's first line of an actor's death, and its line saying why (e.g.
    "The actor died because its node has died"), when there is one."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    why = [line for line in lines[1:] if line.startswith("The actor died because")]
    return " ".join([_first_line(exc)] + why[:1])


# ---------------------------------------------------------------------------- placement

def _left(deadline):
    """Seconds until ``deadline`` (``time.monotonic``), None for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _bundle(options):
    """The resources one shard's actor asks Ray for, as a placement-group
    bundle (never empty: ``TOKEN_CPU`` when it asks for nothing)."""
    ask = {"CPU": options.get("num_cpus"), "GPU": options.get("num_gpus"),
           "memory": options.get("memory"), **(options.get("resources") or {})}
    ask = {name: float(value) for name, value in ask.items() if value}
    return ask or {"CPU": TOKEN_CPU}


def _alive_nodes(ray):
    """Each alive node's total resources."""
    return [node["Resources"] for node in ray.nodes() if node.get("Alive")]


def _capacity(node, ask):
    """How many ``ask`` bundles a node's resources hold."""
    # the tolerance absorbs float error in sums like 100 x 0.01 CPU
    return min(int(node.get(name, 0.0) / value + 1e-9) for name, value in ask.items())


def _resources_text(resources):
    """Resources in words ("2 CPU, 12.5 GiB memory"), without Ray's
    bookkeeping entries (node ids, object store, placement groups)."""
    shown = []
    for name in sorted(resources, key=lambda n: (n not in ("CPU", "GPU", "memory"), n)):
        if (name.startswith("node:") or name == "object_store_memory"
                or re.search(r"_group_(\d+_)?[0-9a-f]{16,}$", name)):
            continue
        value = resources[name]
        shown.append(f"{value / 2**30:.1f} GiB memory" if name == "memory"
                     else f"{value:g} {name}")
    return ", ".join(shown) or "nothing"


def _cluster_text(ray):
    total, available = ray.cluster_resources(), ray.available_resources()
    # Ray leaves out what is used up: "0 CPU free" is the news
    free = {name: available.get(name, 0.0) for name in total}
    return (f"the cluster has {_resources_text(total)} in all on {len(_alive_nodes(ray))} "
            f"alive machine(s), {_resources_text(free)} of it free")


def _remove_group(group):
    import ray
    if ray.is_initialized():      # else the group went with the Ray it belonged to
        ray.util.remove_placement_group(group)


def _node_id(worker):
    """Run inside a shard's actor: the id of the node it runs on."""
    import ray
    return ray.get_runtime_context().get_node_id()


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
