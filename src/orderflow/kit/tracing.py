"""OpenTelemetry tracing for every process, configured by the standard `OTEL_*` variables.

`setup` runs once per process (the app factory and the relay call it; never at import time):

- `OTEL_SDK_DISABLED=true`: nothing is traced; every helper here is a no-op.
- `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`;
  `parentbased_traceidratio` with `0.01` keeps 1 % of the journeys, whole).
- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`): spans are also sent there over
  OTLP/HTTP in batches. Without it nothing leaves the machine.
- Always: a bounded buffer in the process keeps the latest spans (`kit/trace_buffer.py`) for
  `/admin/traces`, which gathers them from every process of the platform.

Traces start only at requests (SERVER spans), deliveries (CONSUMER spans) and order journeys:
the statements and Redis calls of background work (journal repairs, heartbeats, the board's
blocking stream read) would otherwise each start a trace of one span, every second.

One order is one trace (`journey`): its trace id is derived from the order id, so the Shop's
placement, the CRM's confirmation and the MES's claim and completion, separate requests from
separate people, all join it; each request's own span is linked to it. Between processes the
context travels as a W3C `traceparent`: stored with each outbox row (`traceparent()`),
continued by the relay (`continued`), carried by each MES stream message, continued by the
board's push.
"""

import contextvars
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
)
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from orderflow.kit import trace_gate
from orderflow.kit.trace_buffer import SpanBuffer
from orderflow.kit.trace_config import (
    RequestRoots,
    configured_sampler,
    install_log_context,
    otlp_endpoint,
)

log = logging.getLogger(__name__)
TRACER = "orderflow"
SERVICE_ATTR = "orderflow.service"
ORDER_ATTR = "orderflow.order_id"
_SERVICE: contextvars.ContextVar[str] = contextvars.ContextVar("orderflow_service", default="")
_PROPAGATOR = TraceContextTextMapPropagator()


@dataclass
class _Tracing:
    provider: TracerProvider
    sampler: Sampler
    buffer: SpanBuffer
    service: str
    root_bound: int | None  # trace_gate.root_bound(sampler), worked out once
    tracer: trace.Tracer


_state: _Tracing | None = None


def enabled() -> bool:
    return _state is not None


def buffer() -> SpanBuffer | None:
    return None if _state is None else _state.buffer


def setup(service: str, *, buffer_size: int = 5000) -> bool:
    """Tracing for this process (idempotent: several services in one process, as in tests,
    share the first provider; each span still names its service). False when disabled."""
    global _state
    install_log_context()
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if _state is not None:
        return True
    sampler = RequestRoots(configured_sampler())
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    provider = TracerProvider(
        resource=Resource.create(attributes), sampler=sampler, id_generator=trace_gate.DrawnIds()
    )
    provider.add_span_processor(_Stamp(service))
    spans = SpanBuffer(buffer_size)
    provider.add_span_processor(spans)
    if otlp_endpoint():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    from orderflow.kit.trace_instrument import instrument_clients

    instrument_clients()
    bound = trace_gate.root_bound(sampler)
    _state = _Tracing(provider, sampler, spans, service, bound, provider.get_tracer(TRACER))
    log.info("tracing on: sampler %s, OTLP %s", sampler.get_description(), otlp_endpoint() or "off")
    return True


def flush(timeout_ms: int = 5000) -> None:
    """Send what the OTLP exporter still holds (a process that stops, a test)."""
    if _state is not None:
        _state.provider.force_flush(timeout_ms)


class _Stamp(SpanProcessor):
    """Names each span's service (several share a process in tests) and counts the Redis
    round trips and database statements under a cache read (`service_cache/tracing.py`)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        span.set_attribute(SERVICE_ATTR, _SERVICE.get() or self.service)
        calls = _CALLS.get()
        if calls is not None and span.instrumentation_scope is not None:
            scope = span.instrumentation_scope.name
            if "redis" in scope:
                calls.redis += 1
            elif "sqlalchemy" in scope:
                calls.sql += 1

    def on_end(self, span: ReadableSpan) -> None:
        pass


@dataclass
class Calls:
    redis: int = 0
    sql: int = 0


_CALLS: contextvars.ContextVar[Calls | None] = contextvars.ContextVar("calls", default=None)


@contextmanager
def counting_calls() -> Iterator[Calls]:
    """Counts the Redis calls and SQL statements whose spans start inside
    (`service_cache/tracing.py`)."""
    calls = Calls()
    token = _CALLS.set(calls)
    try:
        yield calls
    finally:
        _CALLS.reset(token)


@contextmanager
def as_service(service: str) -> Iterator[None]:
    """Spans started inside belong to `service` (the relay)."""
    token = _SERVICE.set(service)
    try:
        yield
    finally:
        _SERVICE.reset(token)


def serve(service: str) -> "contextvars.Token[str]":
    """`as_service` without a context manager, for every request (`kit/app.Service`): the
    token to give `served`."""
    return _SERVICE.set(service)


def served(token: "contextvars.Token[str]") -> None:
    _SERVICE.reset(token)


def tracer() -> trace.Tracer:
    """orderflow's tracer: made once (`get_tracer` makes a new one, with its scope, per call)."""
    return _state.tracer if _state is not None else trace.get_tracer(TRACER)


def request_sampled(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request with these ASGI headers will be sampled (`kit/trace_gate.py`); True
    when tracing is off (nothing to suppress)."""
    return _state is None or trace_gate.sampled(headers, _state.sampler, _state.root_bound)


def recording() -> bool:
    return _state is not None and trace.get_current_span().is_recording()


def note_order(order_id: int) -> None:
    """Marks the current span as about `order_id` (what `/admin/traces` finds it by)."""
    if _state is not None:
        trace.get_current_span().set_attribute(ORDER_ATTR, order_id)


def traceparent() -> str | None:
    """The current context as a W3C `traceparent`, to store with an outbox row or a message."""
    if _state is None or not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def _context_of(parent: str | None) -> Context:
    return _PROPAGATOR.extract({"traceparent": parent}) if parent else Context()


@contextmanager
def continued(
    parent: str | None,
    name: str,
    *,
    links: Sequence[Link] = (),
    attributes: Attributes = None,
) -> Iterator[trace.Span]:
    """A span continuing the trace of `parent` (a stored `traceparent`; None: a new trace)."""
    if _state is None:
        yield trace.INVALID_SPAN
        return
    with tracer().start_as_current_span(
        name, context=_context_of(parent), kind=SpanKind.CONSUMER, links=links,
        attributes=attributes,
    ) as span, _instrumented(span):  # fmt: skip
        yield span


def journey_context(order_id: int) -> Context:
    """The context of order `order_id`'s journey: its trace id and a root span id derived from
    the order id, sampled as the configured sampler samples that trace id."""
    digest = hashlib.blake2b(f"orderflow-order:{order_id}".encode(), digest_size=24).digest()
    trace_id = int.from_bytes(digest[:16], "big") or 1
    span_id = int.from_bytes(digest[16:], "big") or 1
    sampled = False
    if _state is not None:
        decision = _state.sampler.should_sample(Context(), trace_id, "order", SpanKind.SERVER)
        sampled = decision.decision in (Decision.RECORD_AND_SAMPLE,)
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    root = SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(root), Context())


def journey_trace_id(order_id: int) -> str:
    """The trace id of order `order_id`'s journey, as 32 hex digits."""
    root = trace.get_current_span(journey_context(order_id)).get_span_context()
    return format(root.trace_id, "032x")


@contextmanager
def journey(order_id: int, name: str) -> Iterator[None]:
    """A span of order `order_id`'s trace around one step of it (placed, confirmed, claimed...),
    linked to the request that took it; the request's span is marked with the order too."""
    if _state is None:
        yield
        return
    request = trace.get_current_span()
    request.set_attribute(ORDER_ATTR, order_id)
    here = request.get_span_context()
    journey_root = journey_context(order_id)
    if (
        here.is_valid
        and here.trace_id == trace.get_current_span(journey_root).get_span_context().trace_id
    ):
        journey_root = otel_context.get_current()  # already on the journey: a plain child
    links = [Link(here)] if here.is_valid else []
    with (
        tracer().start_as_current_span(
            name, context=journey_root, links=links, attributes={ORDER_ATTR: order_id}
        ) as span,
        _instrumented(span),
    ):
        yield


def _instrumented(span: trace.Span) -> AbstractContextManager[None]:
    """A recording span started inside an untraced request (a sampled journey, a board push)
    gets the statements and calls under it (`trace_gate.traced`)."""
    return trace_gate.traced() if span.is_recording() else nullcontext()
