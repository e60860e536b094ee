"""The data layer: SQLAlchemy models of ShopDB and the MES db, and their Alembic migrations."""
