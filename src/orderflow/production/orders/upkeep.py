"""What the cache and the boards must learn of a production order write: the one after-commit
step of every MES writer (an operator's claim, release, completion; the relay's ingest).

After the commit and before the answer: the new state is written through to its entry (no
delay is acceptable for operators), the board lists it moved are bumped (so a board read after a
claim's response lists the order as taken), and the event is appended to the stream every board
follows. All three are journalled in the write's transaction and repaired if the writer dies
first or Redis fails them (rule 9, `service_cache/journal.py`).
"""

from typing import Any

import orjson

from orderflow.kit.http import dumps
from orderflow.kit.unit_of_work import UnitOfWork
from orderflow.production.caching import ENTRY_TTL, PRODUCTION_ORDER, moved_families
from orderflow.production.context import Production
from orderflow.service_cache.upkeep import Upkeep

REWRITE = ""  # the event of a state announced before: rewrite the cache, tell no board


async def keep_boards_current(
    uow: UnitOfWork,
    p: Production,
    event_type: str,
    order: dict[str, Any],
    from_status: str | None,
    *,
    operator_id: int | None = None,
    also: tuple[str, ...] = (),
) -> bytes:
    """Journal the order's upkeep on `uow` (the families it moved from `from_status`, and those
    in `also`); returns the order's JSON to answer with."""
    body = dumps(order)
    families = (*moved_families(from_status, order["status"], operator_id), *also)
    order_id, version = order["id"], order["version"]
    seen_epoch = p.cache.epoch  # before the commit: a put after an epoch move tombstones
    event = event_type or None

    async def apply() -> bool:
        written = await p.cache.put(
            PRODUCTION_ORDER, order_id, version, body, ENTRY_TTL, seen_epoch=seen_epoch
        )
        done = await p.cache.bump(families) and written
        if p.events is not None and event is not None:
            done = await p.events.publish(event, order) is not None and done
        return done

    journalled = orjson.loads(body) if event else None  # JSON, as a repair announces it
    upkeep = Upkeep(PRODUCTION_ORDER, order_id, version, families, event, journalled)
    await uow.keep_cached(upkeep, apply)
    return body


async def repair_production_order(uow: UnitOfWork, order_id: int) -> None:
    """A refused claim, release or completion (409) re-applies the order's pending upkeep once
    `uow` ends: the boards then show the state the refusal names."""
    await uow.repair_pending(PRODUCTION_ORDER, order_id)
