"""Schemathesis against each service's OpenAPI, in-process over ASGI.

Every generated request (the schema's boundary cases, then `MAX_EXAMPLES` fuzzed ones per
operation, positive and negative, derandomized) must get: no 5xx; a documented status; on
success the documented content type, schema and headers; on error an RFC 9457
problem+json body.

The services run on databases and a Redis of their own, created and seeded here, because
the fuzzer edits items, clients and orders freely; the shared ones other tests use stay as
they were. The admin endpoints (`PUT /admin/cache` flips cache modes of every process) and
`GET /events` (an endless stream) are not fuzzed.

What the OpenAPI documents differently from what the code does (so not checked by the
schema, but by `assert_problem_body` or the notes below):

- every error is `application/problem+json` (`kit/errors.py`), while FastAPI's generated
  schema documents 422 as `application/json` `HTTPValidationError` (`{"detail": [...]}`)
  and 404/409 with no content;
- a body that is not UTF-8 gets FastAPI's own 400 ("There was an error parsing the body"),
  which no operation documents;
- `GET /metrics` answers Prometheus text, documented as `application/json`.

Strings are generated without U+0000 (`allow-x00`): any text containing it that reaches
PostgreSQL answers 500 today (a bug, documented by strict xfails in `test_bad_input.py`).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from rich.progress import Progress
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi as schemathesis_asgi

from orderflow.cli import build_app
from orderflow.data.migrations import upgrade
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import EmbeddedRedis, free_port
from orderflow.kit.http import PROBLEM
from orderflow.kit.settings import ServiceName, Settings
from orderflow.seed import seed
from tests.conftest import TEST_VOLUMES, PgServer

SERVICES: tuple[ServiceName, ...] = ("shop", "crm", "mes")
MAX_EXAMPLES = 20
CONFIG = {
    "seed": 20260606,
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "database": "none",
        "allow-x00": False,
    },
}
# The OpenAPI each app serves at /openapi.json (checked below), built without servers.
SPECS = {service: build_app(service, Settings()).openapi() for service in SERVICES}
# Ids that exist in the seeded databases: fuzzed ids are often swapped for one of them, so
# that the success paths (and their response schemas) are exercised, not only 404 and 422.
SEEDED = {
    "item_id": TEST_VOLUMES.items,
    "client_id": TEST_VOLUMES.clients,
    "order_id": TEST_VOLUMES.orders,
    "operator_id": TEST_VOLUMES.operators,
}
BODY_PARSE_ERROR = "There was an error parsing the body"


def _positive_integer(value: Any) -> bool:
    """An int, or a float with an integer value (JSON has one number type)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value >= 1 and float(value).is_integer()


def _seeded_ids(values: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`values`, or the same with its positive integer ids replaced by seeded ones."""
    ids = [k for k, v in values.items() if k in SEEDED and _positive_integer(v)]
    if not ids:
        return st.just(values)
    seeded = st.fixed_dictionaries({k: st.integers(1, SEEDED[k]) for k in ids})
    return st.one_of(st.just(values), seeded.map(lambda new: {**values, **new}))


def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    return _seeded_ids(path_parameters)


def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict):
        return st.just(body)
    lines = body.get("lines")
    if isinstance(lines, list) and all(isinstance(line, dict) for line in lines):
        seeded_lines = st.tuples(*(_seeded_ids(line) for line in lines)).map(list)
        return st.tuples(_seeded_ids(body), seeded_lines).map(
            lambda pair: {**pair[0], "lines": pair[1]}
        )
    return _seeded_ids(body)


def load(service: ServiceName) -> Any:
    config = schemathesis.Config.from_dict(CONFIG)
    schema = schemathesis.openapi.from_dict(SPECS[service], config=config)
    schema = schema.exclude(path_regex="^/admin/").exclude(path="/events")
    schema.hook("flatmap_path_parameters")(flatmap_path_parameters)
    schema.hook("flatmap_body")(flatmap_body)
    return schema


shop_schema = load("shop")
crm_schema = load("crm")
mes_schema = load("mes")


@pytest.fixture(scope="module")
async def fuzz_apps(
    settings: Settings, pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Any]]:
    """The three apps on fresh, seeded databases and a Redis of their own.

    Schemathesis runs each app's lifespan itself, on its own event loop thread, at the first
    request (an app's connection pools must live on the loop that serves its requests);
    here they are shut down at the end of the module.
    """
    suffix = uuid.uuid4().hex[:8]
    names = {"shopdb": f"shopdb_fuzz_{suffix}", "mesdb": f"mesdb_fuzz_{suffix}"}
    dsns = {db: await pg_server.create_database(name) for db, name in names.items()}
    for db, dsn in dsns.items():
        await asyncio.to_thread(upgrade, db, dsn)
    with Progress(disable=True) as progress:
        await seed(dsns["shopdb"], dsns["mesdb"], TEST_VOLUMES, progress=progress)
    redis = EmbeddedRedis(tmp_path_factory.mktemp("fuzz-redis"), free_port())
    redis.start()
    own = settings.model_copy(
        update={"shop_dsn": dsns["shopdb"], "mes_dsn": dsns["mesdb"], "redis_url": redis.url}
    )
    try:
        yield {service: build_app(service, own) for service in SERVICES}
    finally:
        try:
            await asyncio.to_thread(schemathesis_asgi.shutdown_lifespans)
        finally:
            redis.stop()
            conn = await asyncpg.connect(asyncpg_dsn(pg_server.admin_dsn))
            try:
                for name in names.values():
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


def assert_problem_body(response: schemathesis.Response) -> None:
    """An error answer is RFC 9457 problem+json whose `status` is the response's."""
    assert response.headers["content-type"] == [PROBLEM], response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert body["status"] == response.status_code, body
    assert body["type"] == "about:blank", body
    assert isinstance(body["title"], str) and body["title"], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert isinstance(body["instance"], str) and body["instance"].startswith("/"), body
    if response.status_code == 422:
        assert body["errors"], body
        assert all(e["field"] and e["message"] for e in body["errors"]), body


def validate(case: schemathesis.Case, app: Any) -> None:
    response = case.call(app=app)
    case.validate_response(response, checks=[not_a_server_error])
    if response.status_code < 400:
        checks = [status_code_conformance, response_schema_conformance]
        checks += [response_headers_conformance]
        if case.operation.path == "/metrics":  # documented application/json
            assert response.headers["content-type"][0].startswith("text/plain")
        else:
            checks.append(content_type_conformance)
        case.validate_response(response, checks=checks)
        return
    # Errors: problem+json, whatever the schema says (see the module's docstring).
    assert_problem_body(response)
    undocumented_400 = response.status_code == 400 and response.json()["detail"] == (
        BODY_PARSE_ERROR
    )
    if not undocumented_400:
        case.validate_response(response, checks=[status_code_conformance])


@shop_schema.parametrize()
def test_shop_conforms(case: schemathesis.Case, fuzz_apps: dict[str, Any]) -> None:
    validate(case, fuzz_apps["shop"])


@crm_schema.parametrize()
def test_crm_conforms(case: schemathesis.Case, fuzz_apps: dict[str, Any]) -> None:
    validate(case, fuzz_apps["crm"])


@mes_schema.parametrize()
def test_mes_conforms(case: schemathesis.Case, fuzz_apps: dict[str, Any]) -> None:
    validate(case, fuzz_apps["mes"])


@pytest.mark.parametrize("service", SERVICES)
async def test_the_fuzzed_schema_is_the_served_one(
    service: ServiceName, settings: Settings
) -> None:
    app = build_app(service, settings)
    transport = httpx.ASGITransport(app=app)  # /openapi.json needs no lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        served = await client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == SPECS[service]
