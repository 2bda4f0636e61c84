"""Storage: SQLAlchemy 2 async (SQLite by default, PostgreSQL for production), with Alembic
migrations. The config file is the source of the directory; the database holds a copy for
joins and other nodes, plus what changes at run time (registrations)."""
