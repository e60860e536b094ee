"""A bare FastAPI app: one route answering constant bytes, no middleware, no database.

The framework's own ceiling, measured the way /work/shared/FACTS.md measured it, so that a
run can say how fast the machine was that day. Run with `python -m perf.bench.bare PORT SIZE [CPU]`.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI, Response


def build(size: int) -> FastAPI:
    app = FastAPI()
    body = b"x" * size

    @app.get("/r/{variant}/{kind}/{key}")  # the bench app's route shape: same parsing cost
    async def read(variant: str, kind: str, key: str) -> Response:
        return Response(body, media_type="application/json")

    return app


def main() -> None:
    port, size = int(sys.argv[1]), int(sys.argv[2])
    if len(sys.argv) > 3:
        os.sched_setaffinity(0, {int(sys.argv[3])})
    uvicorn.run(
        build(size),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
