"""The request gate: a request the sampler will drop runs with every instrumentation suppressed.

Measured (docs/tracing.md), most of tracing's cost was the instrumentation itself, sampled or
not: for every request the ASGI middleware collected its attributes and started a span only for
the sampler to drop it, and each Redis call and SQL statement started a span that recorded
nothing. So a request's sampling is decided here, before any instrumentation runs, as the SDK
will decide it: from the parent its `traceparent` names, else from a trace id drawn here, which
the SDK's id generator then gives the request's span (`DrawnIds`); the standard samplers decide
from those alone. A request the sampler drops runs with OpenTelemetry's suppression keys set
(`untraced`): each instrumentation then steps aside after one context lookup. A sampled order
journey inside such a request (its trace is decided by its order id, not by the request) lifts
the suppression for its own spans (`traced`).
"""

import contextvars
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import (
    _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
    _SUPPRESS_INSTRUMENTATION_KEY,
    Context,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The keys OpenTelemetry's `suppress_instrumentation` and `suppress_http_instrumentation` set
# (the plain one for instrumentations of older releases).
_KEYS = (
    _SUPPRESS_INSTRUMENTATION_KEY,
    "suppress_instrumentation",
    _SUPPRESS_HTTP_INSTRUMENTATION_KEY,
)
_UNTRACED = Context(dict.fromkeys(_KEYS, True))
_PROPAGATOR = TraceContextTextMapPropagator()
# The trace id drawn for the current request's span, until the SDK takes it. A list, so that a
# task started with a copy of the context (Starlette's) takes the same one.
_DRAWN: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("drawn", default=None)


class DrawnIds(RandomIdGenerator):
    """Random ids, except a request's trace id: the one its sampling was decided on."""

    def generate_trace_id(self) -> int:
        drawn = _DRAWN.get()
        return drawn.pop() if drawn else super().generate_trace_id()


def sampled(
    headers: Iterable[tuple[bytes, bytes]], sampler: Sampler, bound: int | None = None
) -> bool:
    """Whether `sampler` will record the server span of a request with these (ASGI) headers;
    `bound` is `root_bound(sampler)`, worked out once."""
    parent = next((value for name, value in headers if name == b"traceparent"), None)
    if parent is None and bound is not None:
        # The usual request, with no parent, under a ratio: the SDK's own test, inlined (the
        # sampler's call builds a result object per request to say the same).
        trace_id = random.getrandbits(128) or 1
        if trace_id & TraceIdRatioBased.TRACE_ID_LIMIT >= bound:
            return False
        _DRAWN.set([trace_id])
        return True
    found = _PROPAGATOR.extract({"traceparent": parent.decode("latin-1")}) if parent else None
    ctx = found or Context()
    span = trace.get_current_span(ctx).get_span_context()
    trace_id = span.trace_id if span.is_valid else random.getrandbits(128) or 1
    if sampler.should_sample(ctx, trace_id, "request", SpanKind.SERVER).decision is Decision.DROP:
        return False
    if not span.is_valid:
        _DRAWN.set([trace_id])
    return True


def suppress() -> "contextvars.Token[Context]":
    """`untraced` without a context manager, for the request gate (one per request): the
    token to `release`."""
    ctx = otel_context.get_current()
    if ctx:
        for key in _KEYS:
            ctx = otel_context.set_value(key, True, ctx)
    return otel_context.attach(ctx or _UNTRACED)


def release(token: "contextvars.Token[Context]") -> None:
    otel_context.detach(token)


def root_bound(sampler: Sampler) -> int | None:
    """The bound of the ratio that decides a request with no parent, when `sampler` is (the
    platform's `RequestRoots` around) `ParentBased(TraceIdRatioBased)`; None for any other."""
    inner = getattr(sampler, "inner", sampler)
    root = getattr(inner, "_root", None) if isinstance(inner, ParentBased) else None
    return root.bound if isinstance(root, TraceIdRatioBased) else None


@contextmanager
def untraced() -> Iterator[None]:
    """Every instrumentation steps aside inside (a request the sampler drops)."""
    with _suppressed(True):
        yield


@contextmanager
def traced() -> Iterator[None]:
    """The instrumentations record again inside (a sampled journey in an untraced request)."""
    with _suppressed(False):
        yield


@contextmanager
def _suppressed(value: bool) -> Iterator[None]:
    ctx = otel_context.get_current()
    if value and not ctx:  # a request's context starts empty: no copy to make
        ctx = _UNTRACED
    else:
        for key in _KEYS:
            ctx = otel_context.set_value(key, value, ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)
