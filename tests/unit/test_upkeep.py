"""The upkeep journal's pure parts: keys as JSON, rows, the applied set, and the unit of work's
order of things (commit, crash point, upkeep, applied) over a fake session."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from orderflow.cache import Entity
from orderflow.kit.settings import Settings
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.service_cache.facade import PUT_WITHIN_S, _prompt
from orderflow.service_cache.journal import RECHECK_AFTER_S, UpkeepJournal
from orderflow.service_cache.upkeep import (
    COMMITTED_AT,
    AppliedIds,
    Coalescer,
    Upkeep,
    decode_key,
    encode_key,
    union,
)

ORDER = Entity("order")


@pytest.mark.parametrize(
    "key", [17, "a:b", ("Chairs", "", 50, 0), ("categories",), (1, ("nested", 2)), ()]
)
def test_keys_survive_the_journal(key: Any) -> None:
    assert decode_key(encode_key(key)) == key
    assert isinstance(encode_key(key), str)


def test_a_row_keeps_a_body_only_for_an_event() -> None:
    body = {"id": 5, "version": 2}
    plain = Upkeep(ORDER, 5, 2, ("status:created", "counts"), body=body).row()
    assert plain == {
        "entity": "order",
        "key": "5",
        "version": 2,
        "families": ["status:created", "counts"],
        "event": None,
        "body": None,
        "traceparent": None,  # written outside any recording span
    }
    announced = Upkeep(ORDER, 5, 2, event="claimed", body=body).row()
    assert announced["event"] == "claimed" and announced["body"] == body


def test_applied_ids_are_taken_once_and_given_back_up_to_the_limit() -> None:
    applied = AppliedIds(limit=3)
    for row_id in (5, 1, 5, 9):
        applied.add(row_id, (ORDER, row_id, 1))
    assert len(applied) == 3 and 9 in applied
    assert [row_id for row_id, _, _ in applied.take()] == [1, 5, 9]
    assert applied.take() == []
    applied.add(2, (ORDER, 2, 1))
    applied.give_back([(n, (ORDER, n, 1), 0.0) for n in (1, 5, 9)])  # a failed delete: kept
    assert [row_id for row_id, _, _ in applied.take()] == [1, 2, 5]


def test_applied_rows_are_taken_only_once_they_are_old_enough_to_recheck() -> None:
    now = [10.0]
    applied = AppliedIds(clock=lambda: now[0])
    applied.add(1, (ORDER, 7, 3))
    now[0] = 10.4
    applied.add(2, (ORDER, 8, 1))
    assert applied.take(0.5) == []
    now[0] = 10.6
    assert applied.take(0.5) == [(1, (ORDER, 7, 3), 10.0)]  # what it wrote, and when
    assert 2 in applied
    applied.give_back([(1, (ORDER, 7, 3), 10.0)])  # given back with its time
    assert applied.take(0.5) == [(1, (ORDER, 7, 3), 10.0)]


def test_union_keeps_each_family_once_in_first_seen_order() -> None:
    assert union([["a", "b"], ["b", "c"], [], ["a"]]) == ["a", "b", "c"]


class FakeSession:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        yield
        self.log.append("commit")

    async def execute(self, statement: Any) -> Any:
        """`kit.replication`'s question, answered as a server without synchronous standbys."""
        row = SimpleNamespace(lsn="0/0", alone=True)
        return SimpleNamespace(one=lambda: row)


class FakeJournal(UpkeepJournal):
    def __init__(self, log: list[str], crash_after_commit: float) -> None:
        settings = Settings(crash_after_commit=crash_after_commit)
        super().__init__(None, None, None, [], settings, database="test")  # type: ignore[arg-type]
        self.log = log
        self.crash = lambda: log.append("crash")
        self._flusher = True

    async def record(self, session: Any, upkeep: Upkeep) -> int:
        self.log.append(f"record {upkeep.key}")
        return 40 + int(upkeep.key)  # type: ignore[call-overload]

    async def pending(self, session: Any, entity: Entity, key: Any) -> bool:
        return bool(key % 2)

    async def repair(self, entity: Entity, key: Any) -> int:
        self.log.append(f"repair {key}")
        return 1


def unit(log: list[str], journal: UpkeepJournal) -> UnitOfWork:
    @asynccontextmanager
    async def sessions() -> AsyncIterator[FakeSession]:
        yield FakeSession(log)

    return UnitOfWork(sessions, journal)  # type: ignore[arg-type]


@pytest.mark.parametrize(("probability", "crashes"), [(0.0, False), (1.0, True)])
async def test_commit_then_crash_point_then_upkeep_then_applied(
    probability: float, crashes: bool
) -> None:
    log: list[str] = []
    journal = FakeJournal(log, probability)

    def apply(ok: bool, name: str) -> Any:
        async def run() -> bool:
            log.append(name)
            return ok

        return run

    async with unit(log, journal) as uow:
        await uow.keep_cached(Upkeep(ORDER, 1, 1), apply(True, "apply 1"))
        await uow.keep_cached(Upkeep(ORDER, 2, 1), apply(False, "apply 2"))
    expected = ["record 1", "record 2", "commit", "apply 1", "apply 2"]
    if crashes:  # the real hook never returns: os._exit(137)
        expected.insert(3, "crash")
    assert log == expected
    taken = [(row_id, written) for row_id, written, _ in journal.applied_ids.take()]
    assert taken == [(41, (ORDER, 1, 1))]  # only the upkeep that fully applied


async def test_an_error_rolls_back_and_runs_no_upkeep() -> None:
    log: list[str] = []
    journal = FakeJournal(log, 1.0)

    async def apply() -> bool:
        log.append("apply")
        return True

    async def refused() -> None:
        async with unit(log, journal) as uow:
            await uow.keep_cached(Upkeep(ORDER, 1, 1), apply)
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await refused()
    assert log == ["record 1"]


async def test_a_failing_upkeep_is_left_to_the_journal_not_raised() -> None:
    log: list[str] = []
    journal = FakeJournal(log, 0.0)

    async def apply() -> bool:
        raise ConnectionResetError("after the commit")

    async with unit(log, journal) as uow:
        await uow.keep_cached(Upkeep(ORDER, 3, 1), apply)
    assert journal.applied_ids.take() == []


class Runs:
    """A run per call of `run`, held until released; remembers when each started."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.gates: list[asyncio.Event] = []
        self.fail = False

    async def run(self, key: str) -> int:
        self.started.append(key)
        number = len(self.started)
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail:
            raise ConnectionResetError("the repair failed")
        return number


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_during_a_run_share_the_next_one() -> None:
    runs = Runs()
    repair = Coalescer(runs.run)
    first = asyncio.create_task(repair("a"))
    await settle()
    late = [asyncio.create_task(repair("a")) for _ in range(20)]  # asked while run 1 runs
    other = asyncio.create_task(repair("b"))
    await settle()
    assert runs.started == ["a", "b"]  # "a"'s next run waits for the first to end
    runs.gates[0].set()
    await settle()
    assert await first == 1 and runs.started == ["a", "b", "a"]
    runs.gates[1].set()
    runs.gates[2].set()
    assert await asyncio.gather(*late) == [3] * 20  # the run that started after they asked
    assert await other == 2
    assert len(runs.started) == 3


async def test_a_failed_run_fails_its_callers_and_the_next_call_runs_again() -> None:
    runs = Runs()
    repair = Coalescer(runs.run)
    runs.fail = True
    calls = [asyncio.create_task(repair("a")) for _ in range(3)]
    await settle()
    runs.gates[0].set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ConnectionResetError) for r in results)
    runs.fail = False
    again = asyncio.create_task(repair("a"))
    await settle()
    runs.gates[1].set()
    assert await again == 2


async def test_a_refusal_repairs_pending_upkeep_after_its_transaction_ends() -> None:
    log: list[str] = []
    journal = FakeJournal(log, 0.0)

    async def refused() -> None:
        async with unit(log, journal) as uow:
            await uow.repair_pending(ORDER, 7)  # pending: repaired
            await uow.repair_pending(ORDER, 8)  # nothing pending: no second transaction
            raise RuntimeError("409")

    with pytest.raises(RuntimeError):
        await refused()
    assert log == ["repair 7"]  # after the rollback (the fake logs commits only)
    async with unit(log, journal) as uow:
        await uow.repair_pending(ORDER, 9)
    assert log == ["repair 7", "commit", "repair 9"]


def test_a_put_sent_late_after_its_commit_is_a_tombstone_instead() -> None:
    """The recheck that undoes an older put landed after an eviction looks again only a moment
    after the commit: a put that would leave later than `PUT_WITHIN_S` writes a tombstone."""
    assert _prompt()  # outside a unit of work
    token = COMMITTED_AT.set(time.monotonic())
    try:
        assert _prompt()
    finally:
        COMMITTED_AT.reset(token)
    token = COMMITTED_AT.set(time.monotonic() - PUT_WITHIN_S - 0.01)
    try:
        assert not _prompt()
    finally:
        COMMITTED_AT.reset(token)
    assert RECHECK_AFTER_S > PUT_WITHIN_S
