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
    label,
    loads,
    page_router,
    see_other,
    whole,
)
from orderflow.kit.errors import Conflict, NotFound
from orderflow.kit.pagination import Page
from orderflow.kit.params import Id
from orderflow.production.context import Production, ProductionDep
from orderflow.production.orders import claims, reads
from orderflow.production.orders.schemas import OperatorAction, ProductionStatus
from orderflow.production.products import service as products

router = page_router()
templates = Templates(Path(__file__).parent / "templates")
MINE = 100  # the operator's own orders shown (an operator holds a handful)
PER_PAGE = 25  # the queue, a page at a time
Action = Literal["claim", "release", "complete"]
Operator = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]
Search = Annotated[str, Query(max_length=30)]


async def board_lists(
    p: Production, operator: int | None, page: int = 1, q: str = ""
) -> dict[str, Any]:
    """What a board shows: the operator's own orders (newest claim first), then the queue, a
    page at a time oldest first, or only the order searched for by its number."""
    mine = await own_orders(p, operator)
    found = await _search(p, q, operator) if q else None
    if found is not None:
        queue = {"items": found["items"], "total": len(found["items"])}
    else:
        window = Page(limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
        queue = loads(await reads.search(p, ProductionStatus.QUEUED, None, window))
    names = await products.item_names(p, products.item_ids_of([*mine["items"], *queue["items"]]))
    pages = max(1, -(-queue["total"] // PER_PAGE))
    return {
        "queue": queue,
        "mine": mine,
        "operator": operator,
        "names": names,
        "page": page,
        "pages": pages,
        "q": q,
        "found": found,
        "links": _links(operator, page, pages),
    }


async def own_orders(p: Production, operator: int | None) -> dict[str, Any]:
    """The operator's orders in progress, newest claim first (a cached list)."""
    if operator is None:
        return {"items": [], "total": 0}
    window = Page(limit=MINE, offset=0)
    return loads(await reads.search(p, ProductionStatus.IN_PROGRESS, operator, window))  # type: ignore[no-any-return]


def count_of_own(operator: int | None, mine: dict[str, Any]) -> str:
    return templates.render("board_counts.html", operator=operator, mine=mine)


async def _search(p: Production, q: str, operator: int | None) -> dict[str, Any]:
    """The order numbered `q`: a row to act on if it is on the queue, else what became of it."""
    number = q.strip().lstrip("#")
    if not (number.isascii() and number.isdigit()) or not 1 <= int(number) < 2**63:
        return {"items": [], "words": f"“{q}” is not an order number: type digits only."}
    try:
        order = loads(await reads.get_production_order(p, int(number)))
    except NotFound:
        words = f"No order {number} in production: a seller has not confirmed it yet."
        return {"items": [], "words": words}
    if order["status"] == ProductionStatus.IN_PROGRESS and order["operator_id"] == operator:
        return {"items": [], "words": f"Order {number} is yours: it is in your orders above."}
    if order["status"] in (ProductionStatus.QUEUED, ProductionStatus.IN_PROGRESS):
        return {"items": [order], "words": ""}
    return {"items": [], "words": f"Order {number} is {label(order['status'])}."}


def _links(operator: int | None, page: int, pages: int) -> dict[str, str | None]:
    def to(n: int) -> str:
        return "/?" + urlencode({"operator": operator, "page": n} if operator else {"page": n})

    return {
        "prev": to(page - 1) if page > 1 else None,
        "next": to(page + 1) if page < pages else None,
    }


DONE = {"claim": "You took", "release": "You released", "complete": "You completed"}


def done_words(done: Action | None, order: int | None) -> str:
    """The notice after a form's redirect, from a code: the address carries no free text,
    so a link from anywhere cannot make the board show words of its own."""
    return f"{DONE[done]} order {order}." if done is not None and order is not None else ""


@router.get("/", response_class=HTMLResponse)
async def board_page(
    p: ProductionDep,
    operator: Operator = None,
    page: PageNo = 1,
    q: Search = "",
    done: Action | None = None,
    order: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> HTMLResponse:
    """The production board of one operator (or of nobody: the queue only)."""
    lists = await board_lists(p, operator, page, q)
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
    names = await products.item_names(p, products.item_ids_of([order]))
    html = templates.render(
        "board_change.html",
        o=order,
        operator=operator,
        notice=notice,
        refused=refused,
        names=names,
        appends=True,
    ) + count_of_own(operator, await own_orders(p, operator))
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})
