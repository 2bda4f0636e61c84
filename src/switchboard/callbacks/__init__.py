"""Callbacks (API §3): a durable outbox, signed POSTs, retries with backoff."""
