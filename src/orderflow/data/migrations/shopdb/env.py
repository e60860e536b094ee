"""Alembic environment of the shopdb database."""

import orderflow.data.shopdb  # noqa: F401  (registers the models on the metadata)
from orderflow.data.base import ShopBase
from orderflow.data.migrations.env_common import run

run(ShopBase.metadata)
