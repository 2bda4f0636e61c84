"""Attack tests: each finding of the hardening review, against a running server.

See docs/security.md for the threat model and the defence each test proves."""
