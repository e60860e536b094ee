"""Generation counters for families of views (the CRM's lists and counts); `Store.bump` bumps
them, `Store.lookup_view` reads them.

A view's key carries the current generation of every family it depends on. A writer bumps the
families its change touches after committing, so the old view entries become unreachable. A
reader that read generation g before the bump can only fill a g key, which nobody reads any
more. The counters live under the epoch of their slot like the entries, so an epoch bump resets
them too. A counter is tagged by its family (`KeySpace.generation`): on a cluster the families
of one write may be bumped on several shards, one script per slot, at once.

Counters expire `GENERATION_TTL_MS` after their last bump (one per client and operator would
otherwise pile up for ever), and a bump of a missing counter starts it from a fresh value, never
from a number it had before. A reader that finds the counter missing keys its view by 0; any
view cached under 0 was cached before the counter's first bump, so it expired long before the
counter can: every view TTL is shorter than `GENERATION_TTL_MS`.
"""

GENERATION_TTL_MS = 7 * 24 * 3600 * 1000  # longer than any view's TTL (10 min, quiet window)
