"""Schemathesis against each service's OpenAPI, in-process over ASGI, with every check on.

Every operation of the three services is fuzzed (the examples, coverage and fuzzing phases:
the schema's boundary cases, undeclared methods, then `MAX_EXAMPLES` generated cases,
positive and negative, derandomized), and each service once more as a stateful sequence of
calls (`STATEFUL_EXAMPLES` sequences of up to `STATEFUL_STEPS` calls, linking the ids one
answer creates into the next call). Each response goes through all of Schemathesis's checks,
none relaxed: no 5xx; a documented status, content type (errors are
`application/problem+json`), schema and headers; schema-valid requests accepted and
schema-violating ones refused; a 405 with an `Allow` header that names exactly the methods
documented for the path.

The one operation left out is `GET /events`: its success is an endless stream, which an
in-process call would wait on forever (its refusals are tested in `test_bad_input.py`, its
stream in `tests/e2e`).

The services run on databases and a Redis of their own, created and seeded here, because
the fuzzer edits items, clients and orders and flips the cache switch freely; the shared ones
other tests use stay as they were.

What no OpenAPI can say, the generated cases are steered to respect when they are meant to be
valid (positive), so that "valid data is accepted" holds for them; invalid (negative) cases
are sent as generated. The schema cannot say that a referenced client, item or operator must
exist (unknown ones are refused with 422 naming the field), that `created_from` must not be
after `created_to`, nor that an `Idempotency-Key` is tied to the body first sent with it:
a positive case refers to seeded clients, items and operators, sends its dates in order, and
a key derived from its body. Path ids are swapped for seeded ones half of the time, so that
success answers are checked as well as 404s.
"""

import asyncio
import copy
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from rich.progress import Progress
from schemathesis.checks import not_a_server_error
from schemathesis.engine import events
from schemathesis.python import asgi as schemathesis_asgi

from orderflow.cli import build_app
from orderflow.data.migrations import upgrade
from orderflow.kit.db import asyncpg_dsn
from orderflow.kit.embedded import EmbeddedRedis, free_port
from orderflow.kit.params import MAX_ID
from orderflow.kit.settings import ServiceName, Settings
from orderflow.seed import seed
from tests.conftest import TEST_VOLUMES, PgServer

SERVICES: tuple[ServiceName, ...] = ("shop", "crm", "mes")
MAX_EXAMPLES = 40
STATEFUL_EXAMPLES = 30
STATEFUL_STEPS = 8
STATELESS = ("examples", "coverage", "fuzzing")
SEED = 20260606
CONFIG = {
    "seed": SEED,
    "checks": {"enabled": True},
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
}
# The OpenAPI each app serves at /openapi.json (checked below), built without servers.
SPECS = {service: build_app(service, Settings()).openapi() for service in SERVICES}
# Ids that exist in the seeded databases.
SEEDED = {
    "item_id": TEST_VOLUMES.items,
    "client_id": TEST_VOLUMES.clients,
    "order_id": TEST_VOLUMES.orders,
    "operator_id": TEST_VOLUMES.operators,
}


def _an_id(value: Any) -> bool:
    """A valid id, JSON-wise: 7 or 7.0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return 1 <= value <= MAX_ID and float(value).is_integer()


def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    """The ids as generated, or (as often) seeded ones; only valid ids are swapped, so a
    case meant to be invalid stays invalid."""
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    ids = [k for k, v in path_parameters.items() if k in SEEDED and isinstance(v, int)]
    ids = [k for k in ids if _an_id(path_parameters[k])]  # not 0, -1 or 2**63
    if not ids:
        return st.just(path_parameters)
    seeded = st.fixed_dictionaries({k: st.integers(1, SEEDED[k]) for k in ids})
    return st.one_of(st.just(path_parameters), seeded.map(lambda new: {**path_parameters, **new}))


def _seeded(name: str, value: Any) -> Any:
    return 1 + int(value) % SEEDED[name] if _an_id(value) else value


def steer(case: schemathesis.Case) -> None:
    """What the schema cannot say, respected by the cases meant to be valid (see above)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    body = case.body
    if isinstance(body, dict):
        case.body = body = copy.deepcopy(body)  # not the generated value itself
        for name in ("client_id", "operator_id"):
            if name in body:
                body[name] = _seeded(name, body[name])
        for line in body.get("lines") or []:
            if isinstance(line, dict) and "item_id" in line:
                line["item_id"] = _seeded("item_id", line["item_id"])
    query = case.query
    if isinstance(query, Mapping) and query.get("created_from") and query.get("created_to"):
        case.query = query = type(query)(query)
        span = sorted((query["created_from"], query["created_to"]), key=_moment)
        query["created_from"], query["created_to"] = span
    headers = case.headers  # case-insensitive
    if isinstance(headers, Mapping) and headers.get("Idempotency-Key"):
        case.headers = headers = type(headers)(headers)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        headers["Idempotency-Key"] = f"{headers['Idempotency-Key'][:180]}-{digest}"


@schemathesis.hook("before_call")
def steer_before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    steer(case)


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.upper())


def load(service: ServiceName, config: dict[str, Any] = CONFIG) -> Any:
    # a copy: Schemathesis adds the links it infers for the stateful tests to the dict
    loaded = schemathesis.Config.from_dict(config)
    schema = schemathesis.openapi.from_dict(copy.deepcopy(SPECS[service]), config=loaded)
    schema = schema.exclude(path="/events")
    schema.hook("flatmap_path_parameters")(flatmap_path_parameters)
    return schema


SCHEMAS = {service: load(service) for service in SERVICES}
shop_schema, crm_schema, mes_schema = (SCHEMAS[service] for service in SERVICES)


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


@shop_schema.parametrize()
def test_shop_conforms(case: schemathesis.Case, fuzz_apps: dict[str, Any]) -> None:
    case.call_and_validate(app=fuzz_apps["shop"])


@crm_schema.parametrize()
def test_crm_conforms(case: schemathesis.Case, fuzz_apps: dict[str, Any]) -> None:
    case.call_and_validate(app=fuzz_apps["crm"])


@mes_schema.parametrize()
def test_mes_conforms(case: schemathesis.Case, fuzz_apps: dict[str, Any]) -> None:
    case.call_and_validate(app=fuzz_apps["mes"])


@pytest.mark.parametrize("service", SERVICES)
def test_call_sequences_conform(service: ServiceName, fuzz_apps: dict[str, Any]) -> None:
    """Stateful: calls chained by the ids their answers carry (a client registered, then read
    and patched; an order placed, then read and cancelled...), every response through every
    check. Run by Schemathesis's own engine, as `st run --phases stateful` would: a live server
    keeps what earlier scenarios did, and the engine, unlike a bare Hypothesis state machine,
    starts a scenario again when that makes a replay differ instead of calling it flaky (and,
    its default for state machines, without Hypothesis's health checks, which judge data
    generation that here depends on the server's answers)."""
    config = {**CONFIG, "phases": {name: {"enabled": False} for name in STATELESS}}
    config["phases"]["stateful"] = {"enabled": True, "max-steps": STATEFUL_STEPS}
    config["generation"] = {**CONFIG["generation"], "max-examples": STATEFUL_EXAMPLES}
    schema = load(service, config)
    schema.app = fuzz_apps[service]
    problems: list[str] = []
    scenarios = 0
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            problems += [
                f"{check.name}: {check.failure_info.failure.title}\n"
                f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
                for checks in event.recorder.checks.values()
                for check in checks
                if check.failure_info is not None
            ]
        elif isinstance(event, events.NonFatalError):
            problems.append(f"error: {event.value!r}")
        elif isinstance(event, events.FatalError):
            problems.append(f"fatal error: {event.exception!r}")
    assert not problems, "\n\n".join(problems)
    assert scenarios > 0


# --- answers fuzzing does not reach, through the same checks ----------------------------


def checked(
    service: ServiceName, app: Any, path: str, method: str, *, outage: bool = False, **parts: Any
) -> Any:
    """`method path` with the given parts of a request, its answer through every check; but
    "not a server error" in an `outage`, where a 503 is the answer the test is after."""
    case = SCHEMAS[service][path][method].Case(**parts)
    return case.call_and_validate(app=app, excluded_checks=[not_a_server_error] if outage else [])


def test_an_oversized_body_answers_the_documented_413(fuzz_apps: dict[str, Any]) -> None:
    body = {"name": "x" * 70_000, "email": "big@example.com"}
    response = checked("shop", fuzz_apps["shop"], "/clients", "POST", body=body)
    assert response.status_code == 413


@pytest.fixture(scope="module")
def database_down(settings: Settings, fuzz_apps: dict[str, Any]) -> dict[str, Any]:
    """The three apps on a PostgreSQL that does not answer, and no Redis to answer instead."""
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    update = {"shop_dsn": dead, "mes_dsn": dead, "redis_url": "", "db_connect_timeout_s": 1.0}
    broken = settings.model_copy(update=update)
    return {service: build_app(service, broken) for service in SERVICES}  # shut down as above


@pytest.mark.parametrize(
    ("service", "path", "method", "parts"),
    [
        ("shop", "/health", "GET", {}),
        ("shop", "/items/{item_id}", "GET", {"path_parameters": {"item_id": 2}}),
        ("shop", "/clients", "POST", {"body": {"name": "Ada", "email": "ada@example.com"}}),
        ("crm", "/orders", "GET", {"query": {"status": "created"}}),
        ("crm", "/orders/{order_id}/confirm", "POST", {"path_parameters": {"order_id": 1}}),
        ("mes", "/orders", "GET", {}),
        (
            "mes",
            "/orders/{order_id}/claim",
            "POST",
            {"path_parameters": {"order_id": 1}, "body": {"operator_id": 1}},
        ),
    ],
)
def test_an_unreachable_database_answers_the_documented_503(
    service: ServiceName,
    path: str,
    method: str,
    parts: dict[str, Any],
    database_down: dict[str, Any],
) -> None:
    response = checked(service, database_down[service], path, method, outage=True, **parts)
    assert response.status_code == 503


@pytest.mark.parametrize("service", SERVICES)
async def test_a_405_names_every_method_the_path_serves(
    service: ServiceName, settings: Settings
) -> None:
    """RFC 9110: `Allow` lists them all, not only the first route's that matched the path."""
    transport = httpx.ASGITransport(app=build_app(service, settings))  # routing needs no lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path, operations in SPECS[service]["paths"].items():
            response = await client.request("DELETE", re.sub(r"\{\w+\}", "1", path))
            assert response.status_code == 405, path
            allowed = set(response.headers["allow"].split(", ")) - {"HEAD"}
            assert allowed == {method.upper() for method in operations}, path


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
