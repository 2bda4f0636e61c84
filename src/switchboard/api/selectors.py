"""Naming one group or one user of the caller's domain in a request (API §2, §2c): by any
of its selectors (``group_id`` … ``group_did``, ``user_id`` … ``user_email``); several are
allowed only if they name the same one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from switchboard.api.errors import ApiError

GROUP_SELECTORS = ("group_id", "group_name", "group_label", "group_extension", "group_did")
USER_SELECTORS = ("user_id", "user_name", "user_label", "user_extension", "user_did", "user_email")

T = TypeVar("T")


def select(
    items: Sequence[T], body: Mapping[str, Any], keys: tuple[str, ...], noun: str
) -> T | None:
    """The item the selectors in ``body`` name; None when none is given."""
    given = {key: body[key] for key in keys if body.get(key) not in (None, "")}
    if not given:
        return None
    found: dict[str, T | None] = {}
    for key, value in given.items():
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise ApiError("invalid_parameter", f"{key} must be a string or a number")
        field = key.removeprefix(f"{noun}_")
        text = str(value)
        found[key] = next((i for i in items if str(getattr(i, field) or "") == text), None)
    distinct = {id(item): item for item in found.values() if item is not None}
    if len(distinct) > 1:
        raise ApiError(f"conflicting_{noun}_selectors", f"the selectors name different {noun}s")
    if not distinct:
        raise ApiError(f"{noun}_not_found", f"no {noun} matches {given}")
    if None in found.values():
        missing = [key for key, item in found.items() if item is None]
        raise ApiError(f"conflicting_{noun}_selectors", f"{', '.join(missing)} match no {noun}")
    return next(iter(distinct.values()))
