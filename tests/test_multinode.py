"""ShardedNetwork on a simulated three-machine Ray cluster (ray.cluster_utils.Cluster:
three raylets on this machine, one CPU each): the shards on distinct machines, a
machine lost in the middle of an epoch, the resume from the checkpoint on the two
machines left. Skipped without Ray. Starting the machines takes most of its time."""
import signal
import time
from contextlib import contextmanager

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: the distributed tests need "
                                        "pip install -e '.[test,distributed]'")
from ray.cluster_utils import Cluster  # noqa: E402

import pyslide as ps  # noqa: E402
from pyslide.distributed import ShardError, ShardedNetwork  # noqa: E402

# the whole test, machines included, normally takes well under a minute; a
# hang (a wait Ray never answers) fails it here instead of stalling the suite
TIME_LIMIT = 150


@contextmanager
def time_limit(seconds):
    if not hasattr(signal, "SIGALRM"):      # Windows: no alarm, no limit
        yield
        return

    def expired(signum, frame):
        raise TimeoutError(f"the multi-machine test ran past its {seconds} s limit")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def three_machines():
    """A head and two workers of one CPU each, the driver connected to them;
    taken down even when the test fails, so that later tests can start Ray."""
    if ray.is_initialized():
        ray.shutdown()          # e.g. test_distributed.py's one-machine cluster
    cluster = Cluster()
    try:
        with time_limit(TIME_LIMIT):
            cluster.add_node(num_cpus=1, include_dashboard=False)
            workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
            cluster.wait_for_nodes(timeout=60)
            cluster.connect()
            yield cluster, workers
    finally:
        ray.shutdown()
        cluster.shutdown()


def alive_nodes():
    return {node["NodeID"] for node in ray.nodes() if node["Alive"]}


def test_shards_spread_a_lost_machine_stops_fit_and_the_checkpoint_resumes(three_machines,
                                                                          tmp_path):
    t0 = time.monotonic()
    cluster, workers = three_machines
    X, Y = ps.data.make_xc("small", n_samples=192, seed=0)      # 6 steps an epoch
    layers = [ps.Dense(16), ps.Sampled(Y.shape[1], active=1.0)]
    net = ShardedNetwork(X.shape[1], layers, shards=3, threads=1, seed=0,
                         placement_timeout=60)
    resumed = None
    try:
        # as many machines as shards: one shard on each (STRICT_SPREAD)
        nodes = net.shard_nodes()
        assert sorted(nodes) == sorted(alive_nodes())
        lost = workers[1]
        r = nodes.index(lost.node_id)
        make_steps = net._steps

        def steps_that_lose_a_machine_at_step_9():
            steps = make_steps()
            take_step = steps.compute

            def compute(run, rows, step):
                if step == 9:          # epoch 2, batch 3
                    cluster.remove_node(lost)
                return take_step(run, rows, step)

            steps.compute = compute
            return steps

        net._steps = steps_that_lose_a_machine_at_step_9
        checkpoint = ps.ModelCheckpoint(str(tmp_path / "ckpt"), monitor="loss",
                                        save_best_only=False)
        lo, hi = net.bounds[r], net.bounds[r + 1] - 1
        with pytest.raises(ShardError, match=rf"shard {r} of 3 \(output rows {lo} to {hi}\) "
                                             rf"died: .*its node has died.*load the last "
                                             rf"checkpoint"):
            net.fit(X, Y, epochs=3, batch_size=32, verbose=0, callbacks=[checkpoint])
        assert net.step_ == 8 and net.epoch_ == 1 and net._actors == []
        left = alive_nodes()
        assert len(left) == 2 and lost.node_id not in left
        # fewer machines than shards: the resumed shards spread over both left
        resumed = ShardedNetwork.load(tmp_path / "ckpt", placement_timeout=60)
        assert resumed.epoch_ == 1 and resumed.step_ == 6 and resumed.shards == 3
        assert set(resumed.shard_nodes()) == left
        resumed.fit(X, Y, epochs=2, batch_size=32, verbose=0)
        assert resumed.epoch_ == 3 and resumed.step_ == 18
        losses = resumed.history_["loss"]
        assert len(losses) == 3 and losses[2] < losses[0]
    finally:
        net.close()
        if resumed is not None:
            resumed.close()
    print(f"the test body took {time.monotonic() - t0:.1f} s")
