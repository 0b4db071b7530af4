"""The group of a sharded network's label shards on a Ray cluster: placing their actors, calling them, turning their failures into ShardError, closing them; imports shard_actor, and ray at call time only (never a model module).
"""
import re
import time
import weakref

from .shard_actor import ShardWorker

__all__ = ["ShardGroup", "ShardError", "PlacementError", "TOKEN_CPU", "shard_bounds",
           "ray_module"]


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




def ray_module():
    """Ray, imported at call time (``import pyslide`` works without it)."""
    try:
        import ray
    except ImportError:
        raise ImportError("pyslide.distributed needs Ray: pip install \".[distributed]\" in "
                          "pyslide's source folder (or pip install \"ray>=2.9\")") from None
    return ray


def shard_bounds(units, shards):
    """The first row of each of ``shards`` contiguous ranges of ``units`` rows, and the end."""
    return [units * r // shards for r in range(shards + 1)]


class ShardGroup:
    """One Ray actor per shard (``shard_actor.ShardWorker``) holding rows
    ``bounds[r]`` to ``bounds[r + 1] - 1`` of the output layer of the network
    ``config`` describes, placed as ``actor_options`` asks (see
    ``ShardedNetwork``); a dead actor closes the group."""

    def __init__(self, config, bounds, threads, actor_options, placement_timeout):
        self.shards = len(bounds) - 1
        self.bounds = bounds
        self.threads = threads
        self.actor_options = actor_options
        self.placement_timeout = placement_timeout
        self.actors = []
        self._placement_group = None
        self.closed_because = "it was never started"
        self._start(config)

    def _start(self, config):
        """Place one actor per shard (see ``actor_options``) and wait, at most
        ``placement_timeout`` seconds, until every one answers."""
        ray = ray_module()
        if not ray.is_initialized():
            ray.init(include_dashboard=False)
        deadline = (None if self.placement_timeout is None
                    else time.monotonic() + self.placement_timeout)
        options = {"num_cpus": 0, **(self.actor_options or {})}
        actor_class = ray.remote(ShardWorker)
        # Ray checks the options here, naming a bad one, before any is used
        remote = actor_class.options(**options)
        ask = _bundle(options)
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
            self.actors = [placed[r].remote(r, self.bounds[r], self.bounds[r + 1], config,
                                             self.threads) for r in range(self.shards)]
            pings = [actor.ping.remote() for actor in self.actors]
            _, waiting = ray.wait(pings, num_returns=len(pings), timeout=_left(deadline))
            if waiting:
                waiting = set(waiting)
                late = [r for r, ref in enumerate(pings) if ref in waiting]
                names = ", ".join(self.shard_name(r) for r in late)
                raise PlacementError(
                    f"{names} did not start within placement_timeout="
                    f"{self.placement_timeout:g} s (each shard asks for {_resources_text(ask)}, "
                    f"{how}); {_cluster_text(ray)}. {_PLACEMENT_FIXES}")
            self.get(pings)
        except BaseException:
            self.close()
            raise
        self.closed_because = None

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
            why = (f"{self.shard_name(0)} asks for {_resources_text(ask)}, more than any alive "
                   f"machine has")
        else:
            why = (f"{self.shard_name(fit)} asks for {_resources_text(ask)}, and no alive "
                   f"machine has that left once shards 0 to {fit - 1} are placed")
        raise PlacementError(
            f"the {self.shards} shards could not be placed within placement_timeout="
            f"{self.placement_timeout:g} s, {how}: {why}; {_cluster_text(ray)}. {_PLACEMENT_FIXES}")

    def nodes(self):
        """The Ray node id (hex) of each shard's actor, in shard order."""
        self.check_open()
        return self.get([actor.__ray_call__.remote(_node_id) for actor in self.actors])

    def shard_name(self, r):
        return (f"shard {r} of {self.shards} (output rows {self.bounds[r]} to "
                f"{self.bounds[r + 1] - 1})")

    def check_open(self):
        # checked on entry by every public method that needs the shards, so
        # a closed network says so before it touches any state or file
        if not self.actors:
            raise RuntimeError(f"this ShardedNetwork has no shards: {self.closed_because}; "
                               f"load a saved model or checkpoint (ShardedNetwork.load) to go on")

    def get(self, refs):
        """``ray.get`` of one reference per shard; a dead or failing actor
        becomes a ``ShardError`` naming its shard. A dead one closes the
        network: it cannot go on without those rows, and what its other
        shards reserved is freed for the resumed run."""
        ray = ray_module()
        self.check_open()
        out = []
        for r, ref in enumerate(refs):
            try:
                out.append(ray.get(ref))
            except ray.exceptions.RayActorError as exc:
                self._close(f"{self.shard_name(r)} died")
                raise ShardError(f"{self.shard_name(r)} died: {_death_reason(exc)}. "
                                 f"Training cannot go on without its rows (the other shards "
                                 f"were closed, freeing what they reserved); load the last "
                                 f"checkpoint (pyslide.ModelCheckpoint) to resume") from exc
            except ray.exceptions.RayTaskError as exc:
                raise ShardError(f"{self.shard_name(r)} failed: "
                                 f"{_first_line(exc.cause if exc.cause else exc)}") from exc
        return out

    def call_all(self, method, *args):
        return self.get([getattr(a, method).remote(*args) for a in self.actors])

    def close(self):
        """End the shard actors and free their placement group. The network
        cannot be used afterwards (its methods raise ``RuntimeError`` saying
        so): ``ShardedNetwork.load`` a saved folder or checkpoint to go on."""
        self._close("it was closed")

    def _close(self, reason):
        ray = ray_module()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._placement_group is not None:
            self._release_group()
            self._placement_group = None
        if self.closed_because is None:
            self.closed_because = reason

    def get_any(self, refs):
        """``ray.get`` of a list of calls to any shards (errors name no shard)."""
        ray = ray_module()
        self.check_open()
        try:
            return ray.get(refs)
        except ray.exceptions.RayActorError as exc:
            self._close("a shard died")
            raise ShardError(f"a shard died: {_death_reason(exc)}") from exc


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _death_reason(exc):
    """Ray's first line of an actor's death, and its line saying why (e.g.
    "The actor died because its node has died"), when there is one."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    why = [line for line in lines[1:] if line.startswith("The actor died because")]
    return " ".join([_first_line(exc)] + why[:1])


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
