"""A small Django 5.2 project (a lending library) with admin, auth, sessions and contenttypes.
The database URL comes from $LIBRARY_DATABASE_URL (sqlite:///FILE or postgresql://...)."""
