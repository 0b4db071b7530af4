"""The step backend of a sharded network (ShardSteps): the trunk's headless engine here, the output layer's rows in the shard group's actors, one training step in the rounds distributed.py describes; imports the kernels (_kernels, _loss), training (the backend's interface and the engine's layer specs), seeds and _shard_group (never a model module; Ray at call time only).
"""
import time

import numpy as np

from . import _kernels, _loss
from ._shard_group import ShardError, ray_module
from .seeds import sampling_seed
from .training import engine_specs, optimizer_settings

__all__ = ["ShardSteps"]


class ShardSteps:
    """``Trainer``'s backend for a ``ShardedNetwork`` (the interface is in
    ``pyslide.training``'s docstring): ``compute`` runs the trunk forward
    and the shards' rounds up to the loss, ``apply`` sends the shards their
    row updates and back-propagates through the trunk while they run."""

    fatal_errors = (ShardError,)

    def __init__(self, net):
        self.net = net
        self.group = net._group

    def check_ready(self):
        self.group.check_open()

    def prepare(self, run, max_labels, max_row_nnz, label_log1m):
        net, group = self.net, self.group
        run.engine = _kernels.Engine(engine_specs(net, net._states), run.batch_size,
                                     net.n_threads, _loss.LOSSES[net.loss], max_labels,
                                     sampling_seed(net.seed), False, max_row_nnz, headless=True)
        optimizer = optimizer_settings(net.optimizer)
        run.engine.set_optimizer(optimizer[0], **optimizer[1])
        net._engine = run.engine
        ray = ray_module()
        bounds = net.bounds
        group.get([a.prepare.remote(run.batch_size, max_labels,
                                    None if label_log1m is None else ray.put(
                                        label_log1m[bounds[r]:bounds[r + 1]]),
                                    net.step_, optimizer)
                   for r, a in enumerate(group.actors)])
        out = net.layers[-1]
        run.hidden = np.zeros((run.batch_size, net._dims[-1][0]), dtype=np.float32)
        run.rebuilt = False
        run.pending = None        # the shards' row updates of the last step, in flight
        # the shards have LSH tables (a candidates round)
        run.tables = not out.dense_equivalent and out.resolve_hash(net._dims[-1][0]) is not None
        run.timings = {"trunk": 0.0, "shards": 0.0}
        run.bytes_sent = 0
        run.bytes_received = 0

    def start(self, run):
        pass    # the shards rebuild their tables in the first step's ``begin``

    def _budgets(self, n_labels, n_cand):
        """Each shard's ``(max_active, min_active)`` for this step: the
        single-node budget ``max_active`` minus the batch's labels, split in
        proportion to the shards' candidates; then the uniform top-up (to
        ``min_active``, and at least ``negatives`` beyond the labels) in
        proportion to the rows each has left."""
        net = self.net
        out = net.layers[-1]
        n_labels = np.asarray(n_labels, np.int64)
        sizes = np.diff(net.bounds)
        if out.dense_equivalent:
            return sizes, sizes
        n_cand = np.asarray(n_cand, np.int64)
        need = max(0, out.max_active - int(n_labels.sum()))
        quota = _split(need, n_cand) if n_cand.sum() > need else n_cand
        n_set = n_labels + quota
        # the single-node top-up: to min_active, and at least ``negatives``
        # rows beyond the batch's labels
        target = out.filled_rows(int(n_labels.sum()))
        deficit = target - int(n_set.sum())
        top_up = _split(deficit, sizes - n_set) if deficit > 0 else np.zeros_like(n_set)
        return n_set, n_set + top_up

    def compute(self, run, rows, step):
        """The trunk's forward pass and the shards' rounds up to the loss and
        the hidden gradient (kept in ``run`` for ``apply``); returns the
        batch's mean loss. A loss that is not finite drops the step in the
        trunk and in every shard."""
        ray = ray_module()
        net, group = self.net, self.group
        X, Y, engine, losses = run.X, run.Y, run.engine, run.losses
        n_b = len(rows)
        hidden = run.hidden[:n_b]
        t0 = time.perf_counter()
        engine.forward_hidden(run.x_indptr, X.indices, X.data, rows, step, hidden,
                              net._log_decay)
        t1 = time.perf_counter()
        batch_y = Y[rows]
        labels = (batch_y.indptr.astype(np.int64), batch_y.indices.astype(np.int32))
        n_labels = np.diff(labels[0]).astype(np.int32)
        hidden_ref = ray.put(hidden)
        labels_ref = ray.put(labels)
        sent = hidden.nbytes + labels[0].nbytes + labels[1].nbytes
        received = 0
        out = net.layers[-1]
        force = net.step_ == 0 and not run.rebuilt
        run.rebuilt = True
        begin = [a.begin.remote(hidden_ref, labels_ref, step, net.step_, force)
                 for a in group.actors]
        # the last step's row updates ran while the driver back-propagated;
        # they are done before these calls start (an actor runs in order)
        self._settle_updates(run)
        if out.dense_equivalent or not run.tables:
            # budgets need no candidate counts: from the labels alone
            uniq = np.unique(labels[1])
            n_lab = np.diff(np.searchsorted(uniq, net.bounds))
            max_a, min_a = self._budgets(n_lab, np.zeros(net.shards, np.int64))
        else:
            counts = group.get(begin)
            received += 16 * net.shards
            max_a, min_a = self._budgets([c[0] for c in counts], [c[1] for c in counts])
        forward = [a.forward.remote(int(max_a[r]), int(min_a[r]), net._log_decay)
                   for r, a in enumerate(group.actors)]
        sent += 16 * net.shards
        if net.loss == "softmax":
            parts = group.get(forward)
            received += sum(p[0].nbytes * 3 for p in parts)
            row_loss, top, total = softmax_row_losses(parts, n_labels)
            losses[:n_b] = row_loss
            if not np.isfinite(row_loss).all():
                return self._drop(run, step, n_b)
            partition = (top.astype(np.float32), total.astype(np.float32), n_labels)
            sent += sum(a.nbytes for a in partition)
            backward = [a.backward.remote(partition) for a in group.actors]
        else:
            backward = [a.backward.remote(None) for a in group.actors]
        results = group.get(backward)
        if out.dense_equivalent or not run.tables:
            group.get(begin)    # done by now; an error in it must not pass unseen
        t2 = time.perf_counter()
        d_hidden = results[0][0]
        for part, _ in results[1:]:
            d_hidden = d_hidden + part
        received += sum(part.nbytes for part, _ in results)
        if net.loss == "bce":
            losses[:n_b] = np.sum([p for _, p in results], axis=0)
            received += sum(p.nbytes for _, p in results)
            if not np.isfinite(losses[:n_b]).all():
                return self._drop(run, step, n_b)
        run.batch_rows, run.d_hidden = rows, d_hidden
        run.timings["trunk"] += t1 - t0
        run.timings["shards"] += t2 - t1
        run.bytes_sent += sent
        run.bytes_received += received
        return float(losses[:n_b].mean(dtype=np.float64))

    def _drop(self, run, step, n_b):
        """Drop a step whose loss is not finite; returns that loss."""
        run.engine.discard_gradients(step)
        self.group.call_all("discard")
        return float(run.losses[:n_b].mean(dtype=np.float64))

    def apply(self, run, step, schedule):
        """Send the shards their row updates (the loss is known finite), then
        back-propagate through the trunk and update it while they run."""
        t0 = time.perf_counter()
        net, engine = self.net, run.engine
        # the output's rows take its lr_scale, multiplied in float32 as the
        # single node's engine does, so that one shard repeats it bit for bit
        scale = np.float32(schedule["lr_scales"][len(net.layers) - 1])
        shard_optimizer = {"step_size": float(np.float32(schedule["step_size"]) * scale),
                           "log_decay": schedule["log_decay"],
                           "lr": float(np.float32(schedule["lr"]) * scale), "step": step}
        run.pending = [a.update.remote(shard_optimizer) for a in self.group.actors]
        X = run.X
        engine.backward_hidden(run.x_indptr, X.indices, X.data, run.batch_rows, step,
                               np.ascontiguousarray(run.d_hidden))
        engine.optimizer_step(step, schedule["step_size"], schedule["log_decay"], schedule["lr"])
        run.d_hidden = None
        run.timings["trunk"] += time.perf_counter() - t0

    def _settle_updates(self, run):
        """Wait for the shards' row updates of the last step (if any)."""
        if run is not None and run.pending:
            pending, run.pending = run.pending, None
            self.group.get(pending)

    def settle(self, run):
        log_decay = self.net._log_decay
        self._settle_updates(run)
        step = self.net.step_
        run.engine.apply_pending(log_decay, **run.pending_steps(step))
        out = len(self.net.layers) - 1
        scale = 1.0 if run.last_schedule is None else run.last_schedule["lr_scales"][out]
        self.group.call_all("apply_pending", log_decay, run.pending_steps(step, scale))

    def abort(self, run):
        # the step in progress is dropped in the trunk and in every shard
        # that has not applied it yet (its rows are updated once the driver
        # has sent the update, just before its own backward)
        run.engine.discard_gradients(self.net.step_ + 1)
        try:
            if self.group.actors:        # a dead shard closed them all
                self.group.call_all("discard")
        except ShardError:
            pass

    def finish(self, run):
        net = self.net
        steps = max(1, len(run.step_times))
        net.timings_ = dict(run.timings)
        net.bytes_per_step_ = {"sent": run.bytes_sent / steps,
                               "received": run.bytes_received / steps}
        net.shard_timings_ = None
        try:
            if self.group.actors:
                self._settle_updates(run)
                net.shard_timings_ = self.group.call_all("timings")
        except ShardError:
            pass

    def snapshot(self):
        # each shard copies its rows in its own actor: nothing crosses the network
        self.group.call_all("snapshot")

    def restore(self):
        self.group.call_all("restore", self.net.step_)


def softmax_row_losses(parts, n_labels):
    """Each row's softmax cross-entropy from the shards' parts (per shard: the
    row's largest logit, its sum of ``exp(z - largest)``, its labels' logit
    sum) and the merged largest logit and sum the shards' backward passes
    need; a row without labels gives 0. Training and validation both merge
    with it."""
    # a diverged step gives infinite logits: its NaN loss is the message,
    # not NumPy's warnings on the way
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zmax = np.stack([p[0] for p in parts]).astype(np.float64)
        top = zmax.max(axis=0)
        total = (np.stack([p[1] for p in parts]) * np.exp(zmax - top)).sum(axis=0)
        label_sum = np.stack([p[2] for p in parts]).astype(np.float64).sum(axis=0)
        row_loss = np.where(n_labels > 0, top + np.log(total)
                            - label_sum / np.maximum(n_labels, 1), 0.0)
    return row_loss, top, total


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
