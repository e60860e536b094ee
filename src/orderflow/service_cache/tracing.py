"""The cache's decisions on the spans: a span per cache read or write of a service.

`traced_read` and `traced_write` decorate `ServiceCache`'s methods (`service_cache/facade.py`,
one line each). Nothing in the cache library changes: a read's outcome is read from what
happened under its span, counted by the tracing's span processor as the redis and SQLAlchemy
instrumentations start their spans (`tracing.counting_calls`):

    cache.outcome     near_hit    no Redis call, no load: the process's near cache answered
                      hit         Redis answered, nothing loaded
                      miss        loaded from PostgreSQL after asking Redis (filled under the
                                  lease, or loaded beside a lease another caller held)
                      first_sight loaded without asking Redis: a key's first read in a while is
                                  not admitted (cache/admission.py)
                      breaker_open loaded without asking Redis: Redis is failing
                      off         the service's cache is switched off
    cache.round_trips Redis calls under the read (a miss: lookup and fill; a wait: polls)
    cache.loads       SQL statements under the read
    cache.entity      the entity (or the list view) read
    cache.key_kind    what the key is made of (`id`, `name`, `query`), never the key itself:
                      a query may hold a client's search words

A write's span says whether it applied (`cache.outcome` = `applied` | `failed`). With tracing
off, or in a request that is not sampled, a decorated method costs one check.
"""

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from opentelemetry.trace import Span

from orderflow.kit import tracing

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def key_kind(key: Any) -> str:
    if isinstance(key, int):
        return "id"
    if isinstance(key, str):
        return "name"
    if isinstance(key, tuple):
        return f"query({len(key)})"
    return type(key).__name__


def _name(what: Any) -> str:
    """An Entity's name, or a Listing's (its view entity's)."""
    return str(getattr(what, "name", None) or getattr(getattr(what, "view", None), "name", "?"))


def _outcome(service_cache: Any, seen: tracing.Calls) -> str:
    if not service_cache.reading:
        return "off"
    if seen.sql == 0:
        return "near_hit" if seen.redis == 0 else "hit"
    if seen.redis:
        return "miss"
    cache = service_cache.cache
    return "breaker_open" if cache is not None and cache.breaker_state == "open" else "first_sight"


def traced_read(method: F) -> F:
    """A span `cache <entity>` around a read, with its outcome."""

    @functools.wraps(method)
    async def read(self: Any, what: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        if not tracing.recording():
            return await method(self, what, key, *args, **kwargs)
        name = _name(what)
        span_name = f"cache {name}"
        with (
            tracing.tracer().start_as_current_span(span_name) as span,
            tracing.counting_calls() as seen,
        ):
            try:
                return await method(self, what, key, *args, **kwargs)
            finally:
                _describe(span, name, key, seen, _outcome(self, seen))

    return cast(F, read)


def traced_write(op: str) -> Callable[[F], F]:
    """A span `cache <op> <entity>` around a write, applied or not."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        async def write(self: Any, what: Any, *args: Any, **kwargs: Any) -> Any:
            if not tracing.recording():
                return await method(self, what, *args, **kwargs)
            name = _name(what) if not isinstance(what, list | tuple) else "generations"
            with tracing.tracer().start_as_current_span(f"cache {op} {name}") as span:
                with tracing.counting_calls() as seen:
                    done = bool(await method(self, what, *args, **kwargs))
                key = args[0] if args and name != "generations" else "families"
                _describe(span, name, key, seen, "applied" if done else "failed")
                return done

        return cast(F, write)

    return decorate


def _describe(span: Span, name: str, key: Any, seen: tracing.Calls, outcome: str) -> None:
    span.set_attributes(
        {
            "cache.entity": name,
            "cache.key_kind": key_kind(key),
            "cache.outcome": outcome,
            "cache.round_trips": seen.redis,
            "cache.loads": seen.sql,
        }
    )


@contextmanager
def repairing(entity: str, parent: str | None) -> Iterator[Span | None]:
    """A span `cache repair <entity>` continuing the trace of the write whose upkeep a journal
    row holds (its `traceparent`), around that row's repair: so a write's trace shows when the
    cache got right after all. No span when the write was not traced."""
    if parent is None:
        yield None
        return
    with tracing.continued(parent, f"cache repair {entity}") as span:
        span.set_attribute("cache.entity", entity)
        yield span
