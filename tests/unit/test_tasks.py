"""`kit.tasks.cancel`: stopping a helper task never swallows the caller's own cancellation.

A listener that stops its heartbeat in a `finally` (service_cache/broadcast.py) was itself cancelled
while waiting for the heartbeat to finish; the CancelledError meant for the listener was
suppressed as if it were the heartbeat's, the listener resubscribed, and the service's
shutdown waited for it forever (a CI run: the teardown of test_cache_outage hung 120 s).
"""

import asyncio

import pytest

from orderflow.kit.tasks import cancel


async def slow_to_stop(stopping: asyncio.Event) -> None:
    """A task whose cleanup takes a while once cancelled (a pubsub's close, say)."""
    try:
        await asyncio.sleep(3600)
    finally:
        stopping.set()
        await asyncio.shield(asyncio.sleep(0.2))


async def test_cancel_waits_for_the_task_and_returns() -> None:
    stopping = asyncio.Event()
    task = asyncio.create_task(slow_to_stop(stopping))
    await asyncio.sleep(0)
    await cancel(task)
    assert task.cancelled() and stopping.is_set()


async def test_cancel_of_nothing_or_of_a_finished_task_is_a_no_op() -> None:
    await cancel(None)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await cancel(done)
    assert done.done() and not done.cancelled()


async def test_the_caller_cancelled_while_it_waits_stays_cancelled() -> None:
    stopping = asyncio.Event()
    went_on = asyncio.Event()

    async def listener() -> None:
        helper = asyncio.create_task(slow_to_stop(stopping))
        await asyncio.sleep(0)
        await cancel(helper)  # the listener's own stop arrives during this wait
        went_on.set()

    outer = asyncio.create_task(listener())
    await stopping.wait()  # the helper is cleaning up; the listener waits for it
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert not went_on.is_set()


async def test_a_task_that_will_not_stop_is_named_and_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    let_go = asyncio.Event()

    async def stubborn() -> None:
        while not let_go.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # the bug this guards against: a loop that swallows its stop

    task = asyncio.create_task(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    await cancel(task, wait_s=0.1)
    assert not task.done()
    assert "stubborn did not stop" in caplog.text
    let_go.set()
    task.cancel()
    await task  # it ends now, by itself
