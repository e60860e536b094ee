"""Production order statuses and the body of an operator's action."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from orderflow.production.orders.schemas import (
    MAX_ID,
    OperatorAction,
    ProductionOrderOut,
    ProductionStatus,
)


def test_the_production_statuses_of_the_readme() -> None:
    assert {s.value for s in ProductionStatus} == {"queued", "in_progress", "done", "cancelled"}


def test_a_production_status_parses_from_its_stored_string() -> None:
    assert ProductionStatus("in_progress") is ProductionStatus.IN_PROGRESS
    assert f"{ProductionStatus.IN_PROGRESS}" == "in_progress"
    with pytest.raises(ValueError, match="not a valid ProductionStatus"):
        ProductionStatus("claimed")  # an event type, not a status


def out(status: str) -> ProductionOrderOut:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return ProductionOrderOut.model_validate(
        {
            "id": 1,
            "status": status,
            "operator_id": None,
            "lines": [{"item_id": 3, "quantity": 2}],
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
    )


def test_an_output_order_carries_a_known_status() -> None:
    assert out("queued").status is ProductionStatus.QUEUED
    with pytest.raises(ValidationError):
        out("in_production")  # the Shop's status, not the MES's


def test_an_operator_action_needs_only_the_operator() -> None:
    action = OperatorAction.model_validate({"operator_id": 3})
    assert (action.operator_id, action.version) == (3, None)
    assert OperatorAction.model_validate({"operator_id": 3, "version": 7}).version == 7


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"operator_id": 0},
        {"operator_id": -1},
        {"operator_id": MAX_ID + 1},
        {"operator_id": 3, "version": 0},
        {"operator_id": 3, "version": MAX_ID + 1},
        {"operator_id": 3, "holder": 4},  # unknown fields are refused, not ignored
    ],
)
def test_an_invalid_operator_action_is_refused(body: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        OperatorAction.model_validate(body)


def test_ids_up_to_the_63_bit_limit_are_accepted() -> None:
    assert MAX_ID == 2**63 - 1  # PostgreSQL bigint
    action = OperatorAction.model_validate({"operator_id": MAX_ID, "version": MAX_ID})
    assert action.operator_id == action.version == MAX_ID
