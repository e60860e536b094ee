"""Generation counters for families of views (the CRM's lists and counts).

A view's key carries the current generation of every family it depends on. A writer bumps the
families its change touches after committing, so the old view entries become unreachable. A
reader that read generation g before the bump can only fill a g key, which nobody reads any
more. The counters live under the epoch like the entries, so an epoch bump resets them too.

Counters expire `GENERATION_TTL_MS` after their last bump (one per client and operator would
otherwise pile up for ever), and a bump of a missing counter starts it from a fresh value, never
from a number it had before. A reader that finds the counter missing keys its view by 0; any
view cached under 0 was cached before the counter's first bump, so it expired long before the
counter can: every view TTL is shorter than `GENERATION_TTL_MS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orderflow.cache.epoch import Epoch
from orderflow.cache.keys import KeySpace
from orderflow.cache.scripts import Scripts

GENERATION_TTL_MS = 7 * 24 * 3600 * 1000  # longer than any view's TTL (10 min, quiet window)


class Generations:
    """Bumps generation counters (`Store.lookup_view` reads them). Raises redis errors."""

    def __init__(self, keys: KeySpace, epoch: Epoch, scripts: Scripts) -> None:
        self._keys = keys
        self._epoch = epoch
        self._scripts = scripts

    async def bump(self, families: Sequence[str]) -> None:
        """Increment every family's counter under the current epoch, adopting it if it moved."""

        async def attempt(epoch: int) -> Any:
            counters = [self._keys.generation(epoch, f) for f in families]
            keys = [self._keys.epoch, *counters]
            return await self._scripts.bump(keys=keys, args=[epoch, GENERATION_TTL_MS])

        await self._epoch.write(attempt)
