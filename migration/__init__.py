"""SQLite to PostgreSQL migration engine: plan, run (COPY, one transaction), verify, rehearse."""

__version__ = "1.0.0"
