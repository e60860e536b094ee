"""Tracing's pure parts: the sampler from OTEL_* settings, which spans may start a trace, the
order's journey ids, cache outcomes and key kinds, the bounded buffer, the waterfall layout."""

import gc
import random
from types import SimpleNamespace

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import (
    is_http_instrumentation_enabled,
    is_instrumentation_enabled,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from orderflow.apps.common.traces import WIDTH, merge_summaries, waterfall
from orderflow.kit import trace_gate
from orderflow.kit.trace_buffer import SpanBuffer
from orderflow.kit.trace_config import RequestRoots, configured_sampler
from orderflow.kit.trace_gate import DrawnIds
from orderflow.kit.tracing import Calls, journey_trace_id
from orderflow.service_cache.tracing import _outcome, key_kind


@pytest.mark.parametrize(
    ("name", "arg", "description"),
    [
        (None, None, "ParentBased{root:AlwaysOnSampler"),
        ("parentbased_traceidratio", "0.01", "ParentBased{root:TraceIdRatioBased{0.01}"),
        ("traceidratio", "1", "TraceIdRatioBased{1.0}"),
        ("always_off", None, "AlwaysOffSampler"),
        ("no_such_sampler", None, "ParentBased{root:AlwaysOnSampler"),
        ("parentbased_traceidratio", "lots", "ParentBased{root:TraceIdRatioBased{1.0}"),
    ],
)
def test_the_sampler_is_what_otel_variables_name(
    monkeypatch: pytest.MonkeyPatch, name: str | None, arg: str | None, description: str
) -> None:
    for variable, value in (("OTEL_TRACES_SAMPLER", name), ("OTEL_TRACES_SAMPLER_ARG", arg)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert configured_sampler().get_description().startswith(description)


def test_only_requests_and_deliveries_start_a_trace() -> None:
    roots = RequestRoots(ALWAYS_ON)
    empty = Context()
    for kind in (SpanKind.CLIENT, SpanKind.INTERNAL):  # a background statement or Redis call
        assert roots.should_sample(empty, 1, "SELECT", kind).decision is Decision.DROP
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER):
        assert roots.should_sample(empty, 1, "GET", kind).decision.is_sampled()
    parent = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    inside = trace.set_span_in_context(NonRecordingSpan(parent), Context())
    assert roots.should_sample(inside, 1, "SELECT", SpanKind.CLIENT).decision.is_sampled()


def test_an_order_has_one_journey_trace_id() -> None:
    assert journey_trace_id(42) == journey_trace_id(42)
    assert journey_trace_id(42) != journey_trace_id(43)
    assert len(journey_trace_id(42)) == 32 and int(journey_trace_id(42), 16)


def test_a_key_kind_never_holds_the_key() -> None:
    assert key_kind(123) == "id"
    assert key_kind("all") == "name"
    kind = key_kind(("ada@example.com", "Lovelace", 24, 0))
    assert kind == "query(4)" and "ada" not in kind


@pytest.mark.parametrize(
    ("reading", "breaker", "redis", "sql", "outcome"),
    [
        (False, "closed", 0, 1, "off"),
        (True, "closed", 0, 0, "near_hit"),
        (True, "closed", 1, 0, "hit"),
        (True, "closed", 2, 1, "miss"),
        (True, "open", 0, 1, "breaker_open"),
        (True, "closed", 0, 1, "first_sight"),
    ],
)
def test_a_read_outcome_comes_from_what_happened_under_it(
    reading: bool, breaker: str, redis: int, sql: int, outcome: str
) -> None:
    service_cache = SimpleNamespace(reading=reading, cache=SimpleNamespace(breaker_state=breaker))
    assert _outcome(service_cache, Calls(redis=redis, sql=sql)) == outcome


def test_the_buffer_keeps_the_latest_spans_only() -> None:
    spans = SpanBuffer(3)
    provider = TracerProvider()
    provider.add_span_processor(spans)
    tracer = provider.get_tracer("test")
    for n in range(5):
        with tracer.start_as_current_span(f"span {n}", attributes={"orderflow.order_id": n}):
            pass
    assert [orjson.loads(kept)["name"] for _, kept in spans.spans] == ["span 2", "span 3", "span 4"]
    gc.collect()  # a collection untracks tuples of atoms: later ones never walk the buffer
    assert not any(gc.is_tracked(kept) for kept in spans.spans)
    found = spans.summaries(order_id=3, limit=10)
    assert [s["orders"] for s in found] == [[3]]
    assert spans.spans_of([found[0]["trace_id"]])[0]["name"] == "span 3"


def test_an_orders_journey_comes_first_however_many_requests_followed_it() -> None:
    """A board polls an order's page many times after its journey began: the journey, the
    oldest trace about the order, is still the first answered."""
    spans = SpanBuffer(100)
    provider = TracerProvider()
    provider.add_span_processor(spans)
    tracer = provider.get_tracer("test")
    for n in range(20):
        with tracer.start_as_current_span(f"request {n}", attributes={"orderflow.order_id": 7}):
            pass
    journey = format(spans.spans[0][0], "032x")
    found = spans.summaries(order_id=7, limit=5, first=journey)
    assert [s["name"] for s in found] == ["request 0", "request 19", "request 18",
                                          "request 17", "request 16"]  # fmt: skip
    assert [s["name"] for s in spans.summaries(order_id=7, limit=1)] == ["request 19"]


def test_the_buffer_keeps_a_span_whose_attribute_json_cannot_hold() -> None:
    """An order id of 2**70 in a path (refused with 422) is still a span: as text."""
    spans = SpanBuffer(3)
    provider = TracerProvider()
    provider.add_span_processor(spans)
    with provider.get_tracer("test").start_as_current_span("GET", attributes={"n": 2**70}):
        pass
    (kept,) = spans.spans_of([format(spans.spans[0][0], "032x")])
    assert kept["attributes"] == {"n": str(2**70)}


def span(span_id: str, parent: str | None, start: int, end: int, service: str = "shop") -> dict:  # type: ignore[type-arg]
    return {"span_id": span_id, "parent_id": parent, "start": start, "end": end,
            "service": service, "name": span_id, "attributes": {}, "links": []}  # fmt: skip


def test_a_waterfall_puts_children_under_parents_and_orphans_at_the_top() -> None:
    shop = [span("a", None, 0, 100), span("b", "a", 10, 40)]
    relay = [span("c", "gone", 50, 100, "relay"), span("b", "a", 10, 40)]  # one duplicate
    rows = waterfall([shop, relay])
    assert [(r.span["span_id"], r.depth) for r in rows] == [("a", 0), ("b", 1), ("c", 0)]
    assert all(r.x >= 0 and r.x + r.width <= WIDTH for r in rows)
    assert rows[2].x == WIDTH / 2


def test_summaries_of_every_process_merge_into_one_line_per_trace() -> None:
    part = {"trace_id": "t", "name": "order placed", "start": 10, "end": 20, "spans": 2,
            "errors": 0, "services": ["shop"], "orders": [7]}  # fmt: skip
    later = {**part, "name": "relay", "start": 15, "end": 40, "spans": 3, "services": ["relay"]}
    (merged,) = merge_summaries([[part], [later]])
    assert merged["name"] == "order placed" and merged["spans"] == 5
    assert merged["services"] == ["relay", "shop"] and merged["end"] == 40


def test_the_gate_decides_a_request_as_the_sdk_will() -> None:
    """The gate draws the request's trace id and asks the sampler; the SDK then gives the
    request's span that same id, so its own decision is the gate's (`kit/trace_gate.py`)."""
    ratio = ParentBased(TraceIdRatioBased(0.5))
    ids = DrawnIds()
    decided = []
    for _ in range(200):
        sampled = trace_gate.sampled([], ratio)
        if sampled:
            trace_id = ids.generate_trace_id()
            assert ratio.should_sample(Context(), trace_id, "GET").decision.is_sampled()
        decided.append(sampled)
    assert 60 < sum(decided) < 140  # the ratio (about 100), not its square (about 50)


@pytest.mark.parametrize(
    "sampler",
    [ParentBased(TraceIdRatioBased(0.01)), RequestRoots(ParentBased(TraceIdRatioBased(0.3)))],
)
def test_the_gates_inlined_ratio_is_the_sdks_test(
    sampler: ParentBased | RequestRoots, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no parent under a ratio the gate does the ratio's test itself: for the same trace
    ids, kept and dropped alike, the same decision as the sampler's own."""
    seeded = random.Random(7)
    ids = [seeded.getrandbits(128) for _ in range(2000)]
    drawn = iter(ids)
    monkeypatch.setattr(trace_gate.random, "getrandbits", lambda _: next(drawn))
    bound = trace_gate.root_bound(sampler)
    assert bound is not None  # the inlined test applies
    gate = [trace_gate.sampled([], sampler, bound) for _ in ids]
    sdk = [
        sampler.should_sample(Context(), i, "GET", SpanKind.SERVER).decision.is_sampled()
        for i in ids
    ]
    assert gate == sdk
    assert 0 < sum(gate) < len(ids)


@pytest.mark.parametrize(("flags", "sampled"), [("01", True), ("00", False)])
def test_a_request_with_a_parent_follows_its_flag(flags: str, sampled: bool) -> None:
    parent = f"00-{'ab' * 16}-{'cd' * 8}-{flags}"
    headers = [(b"host", b"x"), (b"traceparent", parent.encode())]
    assert trace_gate.sampled(headers, ParentBased(ALWAYS_ON)) is sampled


def test_an_untraced_request_suppresses_every_instrumentation_but_a_sampled_journey() -> None:
    assert is_instrumentation_enabled() and is_http_instrumentation_enabled()
    with trace_gate.untraced():
        assert not is_instrumentation_enabled() and not is_http_instrumentation_enabled()
        with trace_gate.traced():
            assert is_instrumentation_enabled()
        assert not is_instrumentation_enabled()
    assert is_instrumentation_enabled()
