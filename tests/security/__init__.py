"""Attack tests: each finding of the hardening review, against a running server (docs/security.md)."""
