"""The short fault suite on a Redis Cluster of 3 masters and 3 replicas: every fault once under
load, a master killed with SIGKILL (its replica takes over, it rejoins as a replica) and one
paused, and nothing acknowledged goes wrong. The long run: python -m tests.faults.suite --cluster
"""

import tempfile
from pathlib import Path

import pytest

from tests.faults.cluster import FAILOVER_BOUND_S
from tests.faults.suite import CLUSTER_FAULTS, examples, explain, run, table
from tests.faults.workload import TIMEOUT_S


@pytest.mark.timeout(600)
async def test_a_master_killed_under_load_loses_nothing_and_serves_nothing_stale() -> None:
    # Not under pytest's tmp_path (see tests/faults/test_faults.py).
    with tempfile.TemporaryDirectory(prefix="orderflow-cluster-faults-") as root:
        verdict, history = await run(Path(root), seconds=0, faults=CLUSTER_FAULTS, cluster=True)
    print(table(verdict, history))
    print(examples(verdict, n=20))
    print(explain(verdict, history))
    for f in verdict.failovers:
        print(
            f"master {f.port} killed: its slots served by its replica after {f.served_s:.2f} s, "
            f"every API's cache healthy again after {f.healthy_s} s"
        )
    assert {f.name for f in history.faults} == {f.name for f in CLUSTER_FAULTS}
    assert len(verdict.failovers) == 1
    assert 0 < verdict.failovers[0].served_s < FAILOVER_BOUND_S
    assert verdict.orders_acknowledged > 20
    assert history.confirmed and history.completed
    assert history.crashes  # the crash-after-commit fault made some API exit
    failed = {name: n for name, n in verdict.failures().items() if n}
    assert not failed, f"{failed}\n{examples(verdict)}"
    assert verdict.slowest_s < 2 * TIMEOUT_S  # as on one node: no hang past the timeouts
