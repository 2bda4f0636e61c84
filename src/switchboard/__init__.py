"""Switchboard: a self-hosted PBX with a Basix-compatible call control API."""

__version__ = "0.1.0"
