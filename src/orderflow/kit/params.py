"""Path parameters shared by the routers: ids are positive 63-bit integers."""

from typing import Annotated

from fastapi import Path

Id = Annotated[int, Path(ge=1, le=2**63 - 1, description="a positive integer id")]
