"""Storage: SQLAlchemy models, sessions and Alembic migrations. No business rules."""

from .db import Database, default_url

__all__ = ["Database", "default_url"]
