"""One unit of work per database visit: the transaction, its repositories, what follows the commit.

    async with UnitOfWork(sessions) as uow:
        order = await uow.repository(OrderRepository).set_status(...)
        uow.after_commit(upkeep)         # write-through, generation bumps, stream events
    # committed, then `upkeep` ran: only now may the caller answer

The only place a transaction begins and ends. On a clean exit it commits, then runs the actions
registered with `after_commit` in order, before control returns to the caller, so before the
response (rule 4: write-through means before the response). An error inside the block rolls back
and runs none of them: nothing uncommitted ever reaches the cache or the event stream.
"""

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

Sessions = async_sessionmaker[AsyncSession]
AfterCommit = Callable[[], Awaitable[None]]
R = TypeVar("R")


class UnitOfWork:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._stack = AsyncExitStack()
        self._after_commit: list[AfterCommit] = []
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
            for action in self._after_commit:
                await action()

    def repository(self, kind: Callable[[AsyncSession], R]) -> R:
        """The repository of `kind` over this unit's session (one per kind)."""
        if kind not in self._repositories:
            self._repositories[kind] = kind(self.session)
        repository: R = self._repositories[kind]
        return repository

    def after_commit(self, action: AfterCommit) -> None:
        """Run `action` once the commit succeeded, before the unit of work returns."""
        self._after_commit.append(action)
