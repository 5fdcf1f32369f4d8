"""Two small applications written for this project to prove that the migration keeps apps working.

`wiki` is an async SQLAlchemy 2 + FastAPI service (aiosqlite on SQLite, asyncpg on PostgreSQL);
`library` is a Django 5.2 project. Each builds its schema its own way, fills it through its ORM
(`seed`), dumps every object as its ORM reads it (`snapshot`) and has its own test suite that
runs unchanged on SQLite and on PostgreSQL (`tests/`). tests/examples/ migrates them.
"""
