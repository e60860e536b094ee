"""The short fault suite: every fault once, under load, and nothing acknowledged goes wrong."""

from pathlib import Path

import pytest

from tests.faults.suite import FAULTS, run, table


@pytest.mark.timeout(600)
async def test_nothing_acknowledged_is_lost_and_nothing_stale_is_served(tmp_path: Path) -> None:
    verdict, history = await run(tmp_path, seconds=0)  # each fault once
    print(table(verdict, history))
    assert {f.name for f in history.faults} == {f.name for f in FAULTS}
    assert verdict.orders_acknowledged > 20
    assert history.confirmed and history.completed
    assert history.crashes  # the crash-after-commit fault made some API exit
    assert verdict.failures() == dict.fromkeys(verdict.failures(), 0), verdict
    assert verdict.slowest_s < 10  # no hang past the client timeout
