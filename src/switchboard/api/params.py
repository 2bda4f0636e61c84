"""Reading what a client sends, with every length bounded.

- Numbers are ASCII digits, at most ``MAX_DIGITS`` of them. Python's ``int()`` takes any
  Unicode digit, underscores and spaces, and raises ``ValueError`` past 4300 digits; a
  parameter that names a count, a timeout or a sequence number needs none of that, so
  anything else is ``invalid_parameter`` before ``int()`` sees it. JSON bodies are parsed
  with the same bound on their integers, and without ``NaN``/``Infinity`` (not JSON).
- Text that ends up in a SIP header (``calling_name`` is the display name of the INVITE's
  From, RFC 3261 §25.1 ``quoted-string``) is printable ASCII only: no control character
  (CR and LF would start a header of the client's choosing, NUL cuts it short on many
  phones), no ``"`` or ``\\`` (they would end or escape the quoting), and bounded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from switchboard.api.errors import ApiError

MAX_DIGITS = 18  # fits a signed 64-bit integer: every count, timeout and sequence number
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}\Z")
_DISPLAY_NAME = re.compile(r"[\x20-\x7e]*\Z")
_NOT_IN_DISPLAY_NAME = frozenset('"\\')


def whole_number(text: str, name: str, *, http_status: int = 200) -> int:
    """``text`` as a non-negative integer of at most ``MAX_DIGITS`` ASCII digits."""
    if not _DIGITS.match(text):
        raise ApiError(
            "invalid_parameter",
            f"{name} must be a whole number of at most {MAX_DIGITS} digits",
            http_status=http_status,
        )
    return int(text)


def parse_json(raw: bytes) -> Any:
    """JSON with integers of at most ``MAX_DIGITS`` digits; ``invalid_json`` (HTTP 400) for
    anything that is not JSON, ``invalid_parameter`` (HTTP 400) for a longer integer."""
    try:
        return json.loads(raw, parse_int=_json_int, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: thousands of nested brackets, which is no request of ours either.
        raise ApiError("invalid_json", "the body is not JSON", http_status=400) from None


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ApiError(
            "invalid_parameter",
            f"a number in the body has more than {MAX_DIGITS} digits",
            http_status=400,
        )
    return int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def display_name(value: object, name: str, max_length: int = 64) -> str:
    """``value`` if it can be a SIP display name as it is: printable ASCII without ``"`` or
    ``\\``, at most ``max_length`` characters."""
    if (
        not isinstance(value, str)
        or len(value) > max_length
        or not _DISPLAY_NAME.match(value)
        or not _NOT_IN_DISPLAY_NAME.isdisjoint(value)
    ):
        raise ApiError(
            "invalid_parameter",
            f'{name} must be printable ASCII without " or \\, at most {max_length} characters',
        )
    return value
