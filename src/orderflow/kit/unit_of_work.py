"""One unit of work per database visit: the transaction, its repositories, what follows the commit.

    async with sales.unit() as uow:
        order = await uow.repository(OrderRepository).set_status(...)
        await uow.keep_cached(Upkeep(ORDER, order.id, order.version, families), apply)
    # committed (the upkeep journalled with it), then `apply` ran: only now may the caller answer

The only place a transaction begins and ends. On a clean exit it commits, then runs what was
registered with `keep_cached` and `after_commit`, in order, before control returns to the
caller, so before the response (rule 4: write-through means before the response). An error
inside the block rolls back and runs none of them: nothing uncommitted ever reaches the cache or
the event stream.

`keep_cached` also writes the upkeep into the journal inside the transaction (rule 9), so that
what the cache is owed survives the process: if `apply` reports that every Redis call applied,
the journal row is deleted in the background; otherwise (or if the process died before running
it) every API process repairs it within about 2 s (`service_cache/journal.py`). A unit that answers
about a state it did not write (a replay, a 409) calls `repair_pending`: rows its entry still has
are re-applied as the unit ends, before the answer.
"""

import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.cache import Entity, Key
from orderflow.kit.replication import replicated
from orderflow.service_cache.journal import UpkeepJournal
from orderflow.service_cache.upkeep import COMMITTED_AT, Upkeep

log = logging.getLogger(__name__)
Sessions = async_sessionmaker[AsyncSession]
AfterCommit = Callable[[], Awaitable[None]]
Apply = Callable[[], Awaitable[bool]]  # True: every cache call of the upkeep applied
R = TypeVar("R")


@dataclass
class Deferred:
    """Whether a request's cache upkeep was left to the journal's repair (one per request)."""

    any: bool = False


# The current request's (`kit/edge.Edge` sets it), None outside a request.
DEFERRED: ContextVar[Deferred | None] = ContextVar("upkeep_deferred", default=None)


def note_deferred() -> None:
    """The current request committed a write whose upkeep did not fully apply: its answer says
    so (`Orderflow-Upkeep: deferred`), since reads may show the state before it for up to the
    repair bound (about 2 s) instead of not at all."""
    if (deferred := DEFERRED.get()) is not None:
        deferred.any = True


class UnitOfWork:
    def __init__(self, sessions: Sessions, journal: UpkeepJournal | None = None) -> None:
        self._sessions = sessions
        self._journal = journal
        self._stack = AsyncExitStack()
        self._after_commit: list[tuple[AfterCommit | Apply, int | None, Upkeep | None]] = []
        self._repairs: list[tuple[Entity, Key]] = []
        self._repositories: dict[Callable[[AsyncSession], Any], Any] = {}
        self.session: AsyncSession

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            self.session = await stack.enter_async_context(self._sessions())
            await stack.enter_async_context(self.session.begin())
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.__aexit__(exc_type, exc, tb)  # commits, or rolls back on an error
        committed = COMMITTED_AT.set(time.monotonic())
        try:
            await self._repair()
            if exc_type is None:
                await self._run_after_commit()
        finally:
            COMMITTED_AT.reset(committed)

    async def _run_after_commit(self) -> None:
        journal = self._journal
        if journal is not None and any(row is not None for _, row, _ in self._after_commit):
            journal.crash_point()
        for action, row, upkeep in self._after_commit:
            if row is None:
                await action()
            elif journal is not None and upkeep is not None and await _applied(action):
                journal.applied(row, (upkeep.entity, upkeep.key, upkeep.version))
            else:
                note_deferred()

    async def repair_pending(self, entity: Entity, key: Key) -> None:
        """This unit answers about a state it did not write (an idempotent replay, a refusal):
        if the entry has upkeep left in the journal (its writer may have died after its commit),
        re-apply it once this unit ends, before its caller answers, error or not. First, the
        state it answers about must be on the synchronous standby (`kit.replication`): it may
        be a commit whose wait for the standby was cancelled, which a failover would lose."""
        await replicated(self.session)
        if self._journal is not None and await self._journal.pending(self.session, entity, key):
            self._repairs.append((entity, key))

    async def _repair(self) -> None:
        if (journal := self._journal) is None:
            return
        for entity, key in self._repairs:
            try:
                await journal.repair(entity, key)
            except Exception:  # the answer stands; the journal's workers repair it soon
                log.exception("could not repair the cache upkeep of %s %r", entity.name, key)
                note_deferred()

    def repository(self, kind: Callable[[AsyncSession], R]) -> R:
        """The repository of `kind` over this unit's session (one per kind)."""
        if kind not in self._repositories:
            self._repositories[kind] = kind(self.session)
        repository: R = self._repositories[kind]
        return repository

    def after_commit(self, action: AfterCommit) -> None:
        """Run `action` once the commit succeeded, before the unit of work returns."""
        self._after_commit.append((action, None, None))

    async def keep_cached(self, upkeep: Upkeep, apply: Apply) -> None:
        """Journal `upkeep` in this transaction; run `apply` once the commit succeeded, before
        the unit of work returns. Without a journal, `apply` merely runs after the commit."""
        row = None
        if self._journal is not None:
            row = await self._journal.record(self.session, upkeep)
        self._after_commit.append((apply, row, upkeep))


async def _applied(apply: Callable[[], Awaitable[Any]]) -> bool:
    """Run one upkeep; anything it raises is the journal's to repair, never the caller's."""
    try:
        return await apply() is True
    except Exception:
        log.exception("cache upkeep failed after the commit; the journal will repair it")
        return False
