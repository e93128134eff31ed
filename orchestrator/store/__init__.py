"""Persistence: sqlmodel tables, the engine, queries and Alembic migrations."""
