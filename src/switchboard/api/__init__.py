"""The HTTP API (FastAPI): Basix-compatible methods under ``/basix/api/``, health, admin."""
