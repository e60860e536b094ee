"""Alembic environment of the mesdb database."""

import orderflow.data.mesdb  # noqa: F401  (registers the models on the metadata)
from orderflow.data.base import MesBase
from orderflow.data.migrations.env_common import run

run(MesBase.metadata)
