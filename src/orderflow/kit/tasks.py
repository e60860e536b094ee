"""Background tasks a process runs beside its requests."""

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from orderflow.kit import trace_gate

log = logging.getLogger(__name__)

STOP_WAIT_S = 10.0


def background(work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    """A task of the process's own, not of a request: it runs untraced. Its statements and
    Redis calls would each start a root span for the sampler to drop (only requests and
    deliveries start traces, `trace_config.RequestRoots`), at a cost measured on the idle
    platform (`make idle`). A span it starts itself (a relay batch, a journal repair that
    continues a write's trace) records what runs under it all the same (`tracing.continued`).
    """
    context = contextvars.copy_context()
    context.run(trace_gate.suppress)  # in the task's own context only; it ends with the task
    return asyncio.create_task(work, name=name, context=context)


async def cancel(task: asyncio.Task[None] | None, wait_s: float = STOP_WAIT_S) -> None:
    """Cancel `task` and wait until it has stopped, `wait_s` at most.

    The caller's own cancellation, arriving while it waits, goes on: suppressing every
    CancelledError here swallowed it, and a listener stopping its heartbeat in a `finally`
    then ran on forever under a shutdown waiting for it (tests/unit/test_tasks.py). A task
    that does not stop in time is named in the log and left behind: a process that is
    shutting down must not hang on it."""
    if task is None:
        return
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=wait_s)
    if not done:
        log.error("task %s did not stop %.0f s after its cancellation", task.get_name(), wait_s)
    elif not task.cancelled():
        task.result()  # it ended by itself: its error, if any, is the caller's to see


async def every_until(
    interval_s: float, work: Callable[[], Awaitable[None]], stop: asyncio.Event
) -> None:
    """`work()` every `interval_s` until `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if not stop.is_set():
            await work()
