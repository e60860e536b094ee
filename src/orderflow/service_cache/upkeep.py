"""What a write owes the cache, as one journal row: the pure part of the upkeep journal.

`Upkeep` names one entry (entity, key, committed version), the view families to bump and, for
the MES, the stream event to announce with the order's JSON. `UnitOfWork.keep_cached` writes
it in the write's own transaction; `service_cache/journal.py` deletes it once applied and repairs
it when it was not.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson

from orderflow.cache import Entity, Key
from orderflow.kit import tracing

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Upkeep:
    entity: Entity
    key: Key
    version: int
    families: tuple[str, ...] = ()
    event: str | None = None  # an MES stream event type, announced with `body`
    body: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        """The journal row's values."""
        return {
            "entity": self.entity.name,
            "key": encode_key(self.key),
            "version": self.version,
            "families": list(self.families),
            "event": self.event,
            "body": self.body if self.event else None,
            "traceparent": tracing.traceparent() if tracing.recording() else None,
        }


def encode_key(key: Key) -> str:
    """An entry key as JSON text; `decode_key` gives it back, tuples included."""
    return orjson.dumps(key).decode()


def decode_key(text: str) -> Key:
    value = orjson.loads(text)
    return _tuples(value)  # type: ignore[no-any-return]


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


Written = tuple[Entity, Key, int]  # an entry and the version its writer committed
Applied = tuple[int, Written, float]  # a journal row, what it wrote, when it was applied
# When the current unit of work committed (monotonic), while its after-commit upkeep runs.
COMMITTED_AT: ContextVar[float | None] = ContextVar("committed_at", default=None)


@dataclass
class AppliedIds:
    """Journal rows whose upkeep fully applied, each with the entry it wrote and when: waiting
    for one batched delete (or, once deleted, for their writer's second look, `Cache.recheck`).

    `take(older_than_s)` hands out the rows applied at least that long ago; `give_back` returns
    rows (a failed delete or recheck), up to `limit` kept in memory (beyond it a row is left for
    the workers, whose repair is idempotent, or not rechecked).
    """

    limit: int = 100_000
    clock: Callable[[], float] = time.monotonic
    _rows: dict[int, tuple[Written, float]] = field(default_factory=dict)

    def add(self, row_id: int, written: Written) -> None:
        if len(self._rows) < self.limit:
            self._rows[row_id] = (written, self.clock())

    def __contains__(self, row_id: object) -> bool:
        return row_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, older_than_s: float = 0.0) -> list[Applied]:
        due = self.clock() - older_than_s
        taken = sorted(row_id for row_id, (_, at) in self._rows.items() if at <= due)
        return [(row_id, *self._rows.pop(row_id)) for row_id in taken]

    def give_back(self, rows: Iterable[Applied]) -> None:
        """Keep `rows` again, with the time each was applied."""
        for row_id, written, at in rows:
            if len(self._rows) < self.limit:
                self._rows[row_id] = (written, at)


def union(families: Iterable[Iterable[str]]) -> list[str]:
    """Each family once, in the order first seen: one bump for a whole batch of rows."""
    return list(dict.fromkeys(f for group in families for f in group))


class Coalescer(Generic[K]):
    """Overlapping calls for one key share runs of `run(key)`: a caller waits for a run that
    started after it asked (so the run sees whatever was committed before), and per key at most
    one run is in flight and one more queued, which every caller arriving meanwhile joins.

    A 409 repairs its entry this way: fifty operators refused the same claim at once cost two
    repairs per process, not fifty connections waiting on the same row locks.
    """

    def __init__(self, run: Callable[[K], Awaitable[int]]) -> None:
        self._run = run
        self._last: dict[K, asyncio.Future[int]] = {}  # the newest run of each key
        self._queued: dict[K, asyncio.Future[int]] = {}  # a run not started yet: joinable
        self._tasks: set[asyncio.Task[None]] = set()
        self._began: dict[K, tuple[float, asyncio.Future[int]]] = {}  # newest started run

    async def __call__(self, key: K) -> int:
        run = self._queued.get(key)
        if run is None:
            run = asyncio.get_running_loop().create_future()
            # Its callers may all have given up (a probe's budget): the outcome is theirs to
            # see, not asyncio's to report as "never retrieved".
            run.add_done_callback(_retrieved)
            task = asyncio.create_task(self._start(key, run, self._last.get(key)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._queued[key] = self._last[key] = run
        return await asyncio.shield(run)

    def begun_since(self, key: K, moment: float) -> "tuple[float, asyncio.Future[int]] | None":
        """The newest run of `key` and when it began, if at or after `moment` (under way, or
        done without an error), else None."""
        began, run = self._began.get(key, (0.0, None))
        if run is None or began < moment:
            return None
        if run.done() and (run.cancelled() or run.exception() is not None):
            return None
        return began, run

    async def _start(
        self, key: K, run: asyncio.Future[int], previous: asyncio.Future[int] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # whatever its outcome
        del self._queued[key]  # from now on, a caller queues the next run
        self._began[key] = (time.monotonic(), run)
        try:
            run.set_result(await self._run(key))
        except Exception as exc:  # noqa: BLE001  every caller of this run gets it
            run.set_exception(exc)
        finally:
            if self._last.get(key) is run:
                del self._last[key]


def _retrieved(run: "asyncio.Future[int]") -> None:
    if not run.cancelled():
        run.exception()
