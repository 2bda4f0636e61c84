"""The registrar (RFC 3261 §10.3): pure REGISTER processing and bindings, plus the service
that persists them and expires them on time."""
