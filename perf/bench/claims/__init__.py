"""MES claims under contention: N operators, M live boards, K MES API processes.

`make bench-claims` (or `python -m perf.bench.claims --help`). The run, start to finish:

1. PostgreSQL and Redis: the ones ORDERFLOW_SHOP_DSN / ORDERFLOW_MES_DSN / ORDERFLOW_REDIS_URL
   name, else embedded servers in a temporary directory (removed at the end).
2. Both databases migrated; a small demo data set seeded when ShopDB is empty; at least N
   operators in the MES db (`data`).
3. Q production orders inserted `queued` straight into `mesdb.production_orders` (one
   `INSERT ... SELECT generate_series`), with ids from 10**12 up so they can never shadow a
   real Shop order. The Shop, the CRM and the relay take no part: the claim path is what is
   measured, and the `in_production` outbox rows the claims write stay unpublished.
4. K `orderflow serve mes` processes on free ports; M boards on `GET /events` (board j on
   process j mod K), each subscribed before the load starts (`board`).
5. N operators (operator i on process i mod K, one keep-alive connection each) claim random
   orders among those still shown as queued (`view`) -- by the boards' `claimed` events and
   their own answers -- until all Q are taken or `--seconds` runs out (`load`).
6. Checks (PostgreSQL assignments, HTTP winners, board events) and figures (`results`), and
   the results in docs/performance.md (only this benchmark's section, `report`) and
   docs/bench/claims.json.

Every time is `time.perf_counter()` in this one process: an operator stamps when it sends a
claim and when the answer arrives, a board when an event's bytes arrive. Claim-to-event
latency is therefore the full path: HTTP, PostgreSQL commit, cache write-through, XADD to the
Redis stream, each MES process's XREAD fan-out, SSE, and this process's own event loop.
"""
