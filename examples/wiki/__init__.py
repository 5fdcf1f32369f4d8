"""A small async wiki service (FastAPI + SQLAlchemy 2), like the wiki-service that moves from
aiosqlite to asyncpg. The database URL comes from $WIKI_DATABASE_URL."""
