"""Storage: SQLAlchemy Core tables, Alembic migrations and the one writer per process."""
