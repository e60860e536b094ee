"""The upkeep journal's pure parts: keys as JSON, rows, the applied set, and the unit of work's
order of things (commit, crash point, upkeep, applied) over a fake session."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from orderflow.cache import Entity
from orderflow.kit.settings import Settings
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.kit.upkeep import AppliedIds, Upkeep, decode_key, encode_key, union
from orderflow.kit.upkeep_journal import UpkeepJournal

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
    }
    announced = Upkeep(ORDER, 5, 2, event="claimed", body=body).row()
    assert announced["event"] == "claimed" and announced["body"] == body


def test_applied_ids_are_taken_once_and_given_back_up_to_the_limit() -> None:
    applied = AppliedIds(limit=3)
    for row_id in (5, 1, 5, 9):
        applied.add(row_id)
    assert len(applied) == 3 and 9 in applied
    assert applied.take() == [1, 5, 9]
    assert applied.take() == []
    applied.add(2)
    applied.give_back([1, 5, 9])  # a failed delete: kept for the next one, within the limit
    assert applied.take() == [1, 2, 5]


def test_union_keeps_each_family_once_in_first_seen_order() -> None:
    assert union([["a", "b"], ["b", "c"], [], ["a"]]) == ["a", "b", "c"]


class FakeSession:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        yield
        self.log.append("commit")


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
    assert journal.applied_ids.take() == [41]  # only the upkeep that fully applied


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
