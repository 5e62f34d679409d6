"""The database layer: the pool, the named statements, SQLSTATE classification, migrations and
the process's LISTEN connection."""
