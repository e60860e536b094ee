"""The MES board for operators: the queue, an operator's orders, claim, release, complete.

Reads are the same cached lists as `GET /orders?status=queued` and `?operator_id=`; actions
are the same claims as `POST /orders/{id}/claim|release|complete`. With JavaScript the board
stays live over `/board/events` (see `apps/mes/live.py`); without, forms post and redirect.
"""

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from orderflow.apps.common.pages import (
    Templates,
    first,
    form_fields,
    is_htmx,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.kit.errors import Conflict
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.production.context import Production, ProductionDep
from orderflow.production.orders import claims, reads
from orderflow.production.orders.schemas import OperatorAction, ProductionStatus

router = page_router()
templates = Templates(Path(__file__).parent / "templates")
SHOWN = 100  # orders of each list on a board
Action = Literal["claim", "release", "complete"]
Operator = Annotated[int | None, Query(ge=1, le=2**63 - 1)]


async def board_lists(p: Production, operator: int | None) -> dict[str, Any]:
    """The queue and, for an operator, the orders they hold: what a board shows."""
    window = Page(limit=SHOWN, offset=0)
    queue = loads(await reads.search(p, ProductionStatus.QUEUED, None, window))
    mine = {"items": [], "total": 0}
    if operator is not None:
        mine = loads(await reads.search(p, ProductionStatus.IN_PROGRESS, operator, window))
    return {"queue": queue, "mine": mine, "operator": operator}


DONE = {"claim": "You took", "release": "You released", "complete": "You completed"}


def done_words(done: Action | None, order: int | None) -> str:
    """The notice after a form's redirect, from a code: the address carries no free text,
    so a link from anywhere cannot make the board show words of its own."""
    return f"{DONE[done]} order {order}." if done is not None and order is not None else ""


@router.get("/", response_class=HTMLResponse)
async def board_page(
    p: ProductionDep,
    operator: Operator = None,
    done: Action | None = None,
    order: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    """The production board of one operator (or of nobody: the queue only)."""
    lists = await board_lists(p, operator)
    notice = done_words(done, order)
    return templates.page(
        "board.html", service="mes", title="Production board", notice=notice, **lists
    )


def _refusal_words(order_id: int, exc: Conflict) -> str:
    """A lost race in words: who won, not an error code."""
    holder = exc.extra.get("holder")
    if exc.extra.get("order_status") == ProductionStatus.IN_PROGRESS and holder is not None:
        return f"Order {order_id}: operator {holder} took it."
    return f"Order {order_id}: {exc.detail}."


async def _act(p: Production, order_id: int, action: str, fields: dict[str, list[str]]) -> bytes:
    operator = whole(first(fields, "operator_id"), "operator_id")
    if action == "claim":
        return await claims.claim(p, order_id, operator)
    version = first(fields, "version")
    body = OperatorAction(
        operator_id=operator, version=whole(version, "version") if version else None
    )
    act = claims.release if action == "release" else claims.complete
    return await act(p, order_id, body)


@router.post("/board/orders/{order_id}/{action}", response_class=HTMLResponse)
async def act_on_order(
    request: Request, p: ProductionDep, order_id: Id, action: Action
) -> Response:
    """Claim, release or complete. Losing a race reads "operator N took it", not an error."""
    fields = await form_fields(request)
    operator = whole(first(fields, "operator_id"), "operator_id")
    try:
        order = loads(await _act(p, order_id, action, fields))
        notice, status, refused = done_words(action, order_id), 200, False
    except Conflict as exc:
        order = loads(await reads.get_production_order(p, order_id))
        notice, status, refused = _refusal_words(order_id, exc), 409, True
    if not is_htmx(request):
        if refused:
            lists = await board_lists(p, operator)
            return templates.page(
                "board.html", status_code=409, service="mes", notice=notice, **lists
            )
        return see_other(
            "/?" + urlencode({"operator": operator, "done": action, "order": order_id})
        )
    html = templates.render(
        "board_change.html", o=order, operator=operator, notice=notice, refused=refused
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
