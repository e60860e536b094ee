"""Alembic environments for ShopDB and the MES db, and a function that runs them."""

from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config

Database = Literal["shopdb", "mesdb"]
HERE = Path(__file__).parent


def alembic_config(database: Database, dsn: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE / database))
    config.set_main_option("sqlalchemy.url", dsn.replace("%", "%%"))
    return config


def upgrade(database: Database, dsn: str) -> None:
    """Bring `database` to the newest revision. Alembic's env runs its own event loop."""
    command.upgrade(alembic_config(database, dsn), "head")
