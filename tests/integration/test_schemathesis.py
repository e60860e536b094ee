"""Property-based API fuzzing of each service's OpenAPI with schemathesis (draft)."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi as schemathesis_asgi

from orderflow.cli import build_app
from orderflow.kit.settings import Settings

CONFIG = {
    "seed": 6,
    "generation": {"max-examples": 20, "deterministic": True, "database": "none"},
}


def load(service: str) -> Any:
    spec = build_app(service, Settings()).openapi()
    schema = schemathesis.openapi.from_dict(spec, config=schemathesis.Config.from_dict(CONFIG))
    return schema.exclude(path_regex="^/admin/").exclude(path="/events")


shop_schema = load("shop")
crm_schema = load("crm")
mes_schema = load("mes")


@pytest.fixture(scope="module")
def apps(settings: Settings) -> Iterator[dict[str, Any]]:
    yield {s: build_app(s, settings) for s in ("shop", "crm", "mes")}
    schemathesis_asgi.shutdown_lifespans()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@shop_schema.parametrize()
def test_shop(case: schemathesis.Case, apps: dict[str, Any]) -> None:
    case.call_and_validate(app=apps["shop"], checks=CHECKS)


@crm_schema.parametrize()
def test_crm(case: schemathesis.Case, apps: dict[str, Any]) -> None:
    case.call_and_validate(app=apps["crm"], checks=CHECKS)


@mes_schema.parametrize()
def test_mes(case: schemathesis.Case, apps: dict[str, Any]) -> None:
    case.call_and_validate(app=apps["mes"], checks=CHECKS)
