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

A unit may do several writers' work (the relay applies a batch of events in one transaction):
each action then runs in the trace context it was registered in, so a board's event still
continues the trace of the write that announced it. A unit opened with `defer=True` leaves
its actions to `run_after_commit`, for an owner that must first finish something else (the
relay marks its batch published, releasing the source rows, before any Redis call).
"""

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orderflow.cache import Entity, Key
from orderflow.kit import tracing
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


@dataclass(frozen=True)
class _Action:
    run: AfterCommit | Apply
    row: int | None  # its journal row, if it is an upkeep
    upkeep: Upkeep | None
    trace: otel_context.Context  # the context it was registered in


class UnitOfWork:
    def __init__(
        self, sessions: Sessions, journal: UpkeepJournal | None = None, *, defer: bool = False
    ) -> None:
        self._sessions = sessions
        self._journal = journal
        self._defer = defer
        self._committed_at: float | None = None
        self._stack = AsyncExitStack()
        self._after_commit: list[_Action] = []
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
        if exc_type is None:
            self._committed_at = time.monotonic()
        await self._repair()
        if exc_type is None and not self._defer:
            await self.run_after_commit()

    async def run_after_commit(self) -> None:
        """What was registered with `keep_cached` and `after_commit`, once, in order (the unit
        runs it itself unless opened with `defer=True`)."""
        actions, self._after_commit = self._after_commit, []
        if self._committed_at is None or not actions:
            return
        journal = self._journal
        if journal is not None and any(a.row is not None for a in actions):
            journal.crash_point()
        committed = COMMITTED_AT.set(self._committed_at)
        try:
            for action in actions:
                with _in_context(action.trace):
                    await self._run(action, journal)
        finally:
            COMMITTED_AT.reset(committed)

    @staticmethod
    async def _run(action: _Action, journal: UpkeepJournal | None) -> None:
        if action.row is None:
            await action.run()
        elif journal is not None and action.upkeep is not None and await _applied(action.run):
            upkeep = action.upkeep
            journal.applied(action.row, (upkeep.entity, upkeep.key, upkeep.version))
        else:
            if journal is not None:  # a probe of this process must apply it (`Replay`)
                journal.replay.missed(action.row)
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
        self._after_commit.append(_Action(action, None, None, otel_context.get_current()))

    async def keep_cached(self, upkeep: Upkeep, apply: Apply) -> None:
        """Journal `upkeep` in this transaction; run `apply` once the commit succeeded, before
        the unit of work returns. Without a journal, `apply` merely runs after the commit."""
        row = None
        if self._journal is not None:
            row = await self._journal.record(self.session, upkeep)
        self._after_commit.append(_Action(apply, row, upkeep, otel_context.get_current()))


async def _applied(apply: Callable[[], Awaitable[Any]]) -> bool:
    """Run one upkeep; anything it raises is the journal's to repair, never the caller's."""
    try:
        return await apply() is True
    except Exception:
        log.exception("cache upkeep failed after the commit; the journal will repair it")
        return False


@contextmanager
def _in_context(context: otel_context.Context) -> Iterator[None]:
    """Run in the trace context an action was registered in. If its span has ended meanwhile
    (the relay's event spans end before their batch's upkeep runs), in a span of its own under
    it, so that the upkeep still shows in the write's trace."""
    span = trace.get_current_span(context)
    ended = not span.is_recording() and span.get_span_context().trace_flags.sampled
    if ended and tracing.enabled():
        with tracing.tracer().start_as_current_span("after commit", context=context):
            yield
        return
    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)
