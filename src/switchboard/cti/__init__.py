"""CTI: live channel events for web apps (API §4) — the channel model, the per-domain hub
with bounded queues and replay, and the Basix wire formats (BERT, JSON)."""
