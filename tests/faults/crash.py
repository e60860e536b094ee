"""`python -m tests.faults.crash serve crm --port N`: `orderflow serve` whose unit of work exits
the process (`os._exit(137)`) right after a commit that has cache upkeep, before the upkeep
runs, with the probability in ORDERFLOW_CRASH_AFTER_COMMIT.

A stand-in for the setting of that name until orderflow has it: once `Settings` knows
`crash_after_commit`, this only runs `orderflow` (whose own unit of work then crashes).
"""

import os
import random
import sys
from types import TracebackType

from orderflow.kit.settings import Settings
from orderflow.kit.unit_of_work import UnitOfWork


def crash_after_commit(probability: float) -> None:
    commit_then_upkeep = UnitOfWork.__aexit__

    async def aexit(
        self: UnitOfWork,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        owes_cache = exc_type is None and self._after_commit
        if not owes_cache or random.random() >= probability:
            return await commit_then_upkeep(self, exc_type, exc, tb)
        await self._stack.__aexit__(None, None, None)  # the commit
        sys.stderr.write("crash after commit: exiting before the cache upkeep\n")
        os._exit(137)

    UnitOfWork.__aexit__ = aexit  # type: ignore[method-assign]


def main() -> None:
    probability = float(os.environ.get("ORDERFLOW_CRASH_AFTER_COMMIT") or 0)
    if probability and "crash_after_commit" not in Settings.model_fields:
        crash_after_commit(probability)
    from orderflow.cli import app

    app(prog_name="orderflow")


if __name__ == "__main__":
    main()
