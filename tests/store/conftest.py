"""Store tests run on SQLite and on a real PostgreSQL: the fixtures ``postgres_url`` and ``database_url``
come from ``fakes/postgres.py`` (registered in ``tests/conftest.py``)."""
