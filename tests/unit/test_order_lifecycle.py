"""The Shop order lifecycle (README, "How it holds together"), checked against its table.

created -> confirmed -> in_production -> ready -> shipped -> delivered, and cancelled from
created or confirmed. Sellers and clients act (confirm, ship, deliver, cancel); production
moves an order to in_production and ready through the relay, only ever forward.
"""

from itertools import product

import pytest

from orderflow.sales.orders.lifecycle import (
    ACTIONS,
    PRODUCTION_EVENTS,
    OrderStatus,
    statuses_before,
)

S = OrderStatus

# The README's lifecycle, written out independently of the module under test.
README_ACTIONS = {
    ("confirm", S.CREATED): S.CONFIRMED,
    ("ship", S.READY): S.SHIPPED,
    ("deliver", S.SHIPPED): S.DELIVERED,
    ("cancel", S.CREATED): S.CANCELLED,
    ("cancel", S.CONFIRMED): S.CANCELLED,
}
HAPPY_PATH = [S.CREATED, S.CONFIRMED, S.IN_PRODUCTION, S.READY, S.SHIPPED, S.DELIVERED]
PRODUCED = (S.IN_PRODUCTION, S.READY)  # the statuses production events lead to


def act(status: OrderStatus, action: str) -> OrderStatus | None:
    """The status `action` leads to from `status`, or None when the lifecycle forbids it (409)."""
    allowed_from, target = ACTIONS[action]
    return target if status in allowed_from else None


def produce(status: OrderStatus, target: OrderStatus) -> OrderStatus:
    """What a production event for `target` does to an order in `status` (the relay's UPDATE)."""
    return target if status.value in statuses_before(target) else status


def test_the_statuses_are_the_seven_of_the_readme() -> None:
    assert {s.value for s in OrderStatus} == {
        "created",
        "confirmed",
        "in_production",
        "ready",
        "shipped",
        "delivered",
        "cancelled",
    }


def test_the_actions_are_the_crm_endpoints() -> None:
    assert set(ACTIONS) == {"confirm", "ship", "deliver", "cancel"}


@pytest.mark.parametrize(
    ("action", "status"),
    list(product(sorted(ACTIONS), list(OrderStatus))),
    ids=lambda v: str(v),
)
def test_every_action_from_every_status(action: str, status: OrderStatus) -> None:
    assert act(status, action) == README_ACTIONS.get((action, status))


@pytest.mark.parametrize("status", [S.DELIVERED, S.CANCELLED])
def test_terminal_statuses_allow_no_action(status: OrderStatus) -> None:
    assert all(act(status, action) is None for action in ACTIONS)
    assert all(produce(status, target) == status for target in PRODUCED)


@pytest.mark.parametrize("status", [S.IN_PRODUCTION, S.READY, S.SHIPPED, S.DELIVERED])
def test_an_order_cannot_be_cancelled_once_production_started(status: OrderStatus) -> None:
    assert act(status, "cancel") is None


def test_the_mes_events_lead_to_the_statuses_production_sets() -> None:
    """The MES writes `in_production` on a claim and `ready` on completion to its outbox."""
    assert PRODUCTION_EVENTS == {"in_production": S.IN_PRODUCTION, "ready": S.READY}
    assert set(PRODUCTION_EVENTS.values()) == set(PRODUCED)


def test_no_action_leads_to_a_status_only_production_sets() -> None:
    assert {target for _, target in ACTIONS.values()}.isdisjoint(PRODUCED)


def test_the_happy_path_from_created_to_delivered() -> None:
    status = S.CREATED
    seen = [status]
    for step in ["confirm", S.IN_PRODUCTION, S.READY, "ship", "deliver"]:
        if isinstance(step, OrderStatus):
            status = produce(status, step)
        else:
            moved = act(status, step)
            assert moved is not None, f"{step} refused from {status}"
            status = moved
        seen.append(status)
    assert seen == HAPPY_PATH


@pytest.mark.parametrize("target", PRODUCED)
def test_production_moves_an_order_only_forward(target: OrderStatus) -> None:
    before = statuses_before(target)
    index = HAPPY_PATH.index(target)
    assert set(before) == {s.value for s in HAPPY_PATH[:index]}
    assert target.value not in before  # a redelivered event changes nothing
    assert S.CANCELLED.value not in before  # a cancelled order stays cancelled


def test_statuses_before_are_plain_strings_for_sql() -> None:
    for target in OrderStatus:
        assert all(type(s) is str for s in statuses_before(target))


def test_statuses_before_cancelled_is_every_other_status() -> None:
    assert set(statuses_before(S.CANCELLED)) == {s.value for s in OrderStatus} - {"cancelled"}


def test_statuses_before_created_is_empty() -> None:
    assert statuses_before(S.CREATED) == []


def test_a_late_in_production_event_does_not_undo_ready() -> None:
    """At-least-once delivery may bring the claim's event after the completion's."""
    status = produce(S.CONFIRMED, S.READY)
    assert status == S.READY
    assert produce(status, S.IN_PRODUCTION) == S.READY


@pytest.mark.parametrize("target", PRODUCED)
@pytest.mark.parametrize("status", [S.SHIPPED, S.DELIVERED, S.CANCELLED])
def test_production_events_leave_later_and_cancelled_orders_alone(
    status: OrderStatus, target: OrderStatus
) -> None:
    assert produce(status, target) == status


def test_a_status_parses_from_its_stored_string() -> None:
    assert OrderStatus("in_production") is S.IN_PRODUCTION
    assert f"{S.IN_PRODUCTION}" == "in_production"  # what families and SQL see
    with pytest.raises(ValueError, match="not a valid OrderStatus"):
        OrderStatus("shipping")
