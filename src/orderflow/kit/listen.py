"""A PostgreSQL LISTEN connection kept open: reconnected after every loss, probed for a dead peer.

PostgreSQL sends a NOTIFY when the transaction that raised it commits, never for one that
rolls back, and only to connections listening at that moment: what is announced while the
connection is down is not sent again. So the owner is told when listening starts (`on_up`:
re-read what may have been missed) and when it stops (`on_down`: fall back to reading
without being told). Users: the Shop's live "my orders" (`sales/orders/changes.py`) and the
relay's wake-up (`relay/bell.py`).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from orderflow.kit.db import asyncpg_dsn

log = logging.getLogger(__name__)
RETRY_S = (0.5, 1.0, 2.0, 5.0)
PROBE_S = 5.0  # a peer that died without closing is found by a query, not by waiting
FAILURES = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Notified = Callable[[str], None]


class Listener:
    """LISTEN `channel` on `dsn` until cancelled (`run`), `on_notify(payload)` per notification."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        name: str,
        on_notify: Notified,
        on_up: Callable[[], None] = lambda: None,
        on_down: Callable[[], None] = lambda: None,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.name = name  # the connection's application_name in pg_stat_activity
        self.on_notify = on_notify
        self.on_up = on_up
        self.on_down = on_down
        self.live = False
        self._lost = asyncio.Event()

    async def run(self) -> None:
        """Listen, and listen again after every loss, until cancelled."""
        attempt = 0
        while True:
            try:
                conn = await asyncpg.connect(
                    asyncpg_dsn(self.dsn),
                    timeout=5,
                    server_settings={"application_name": self.name},
                )
            except FAILURES as exc:
                log.warning("%s: cannot listen (%s)", self.name, exc)
                await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                attempt += 1
                continue
            attempt = 0
            try:
                await self._listen(conn)
            except FAILURES as exc:
                log.warning("%s: listening stopped (%s)", self.name, exc)
            finally:
                if self.live:
                    self.live = False
                    self.on_down()
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_notify(payload)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        self._lost.clear()
        conn.add_termination_listener(lambda _conn: self._lost.set())
        await conn.add_listener(self.channel, self._notified)
        self.live = True
        self.on_up()
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), PROBE_S)
            if not self._lost.is_set():
                try:
                    await conn.execute("SELECT 1", timeout=2)
                except FAILURES:
                    self._lost.set()
