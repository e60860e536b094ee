"""What the cache and the boards must learn of a production order write: the one after-commit
step of every MES writer (an operator's claim, release, completion; the relay's ingest).

After the commit and before the answer: the new state is written through to its entry (no
delay is acceptable for operators), the board lists it moved are bumped (so a board read after a
claim's response lists the order as taken), and the event is appended to the stream every board
follows.
"""

from typing import Any

from orderflow.kit.http import dumps
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.production.caching import ENTRY_TTL, PRODUCTION_ORDER, moved_families
from orderflow.production.context import Production

REWRITE = ""  # the event of a state announced before: rewrite the cache, tell no board


def keep_boards_current(
    uow: UnitOfWork,
    p: Production,
    event_type: str,
    order: dict[str, Any],
    from_status: str | None,
    *,
    operator_id: int | None = None,
    also: tuple[str, ...] = (),
) -> bytes:
    """Register the order's upkeep on `uow` (the families it moved from `from_status`, and those
    in `also`); returns the order's JSON to answer with."""
    body = dumps(order)
    families = [*moved_families(from_status, order["status"], operator_id), *also]

    async def upkeep() -> None:
        await p.cache.put(PRODUCTION_ORDER, order["id"], order["version"], body, ENTRY_TTL)
        await p.cache.bump(families)
        if p.events is not None and event_type != REWRITE:
            await p.events.publish(event_type, order)

    uow.after_commit(upkeep)
    return body
