"""Alembic migrations of the state database; `state.upgrade` runs them when a StateStore opens it."""
