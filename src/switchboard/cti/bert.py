"""BERT: Erlang's external term format (version 131), the wire format of Basix CTI frames.

Basix's own client library decodes only part of the format (API §4): small integer (97),
integer (98), small and large big (110, 111), the old string float (99), ``ATOM_EXT`` (100)
and ``SMALL_ATOM_EXT`` (115), ``STRING_EXT`` (107), ``BINARY_EXT`` (109), small tuples
(104), lists (108) and nil (106); it names large tuples (105) but has no decoder for them.
Anything else (UTF-8 atoms, new floats, maps) makes it throw and drop the frame, so this
encoder writes only those tags, within the ranges it reads right (below).

Python values map to terms: ``Atom`` → atom, ``Chars`` → string (107: the client turns it
into a plain JavaScript string, which is what it compares element and event names with),
``tuple`` → tuple, ``list`` → list (``[]`` is nil), ``str``/``bytes`` → binary (UTF-8),
``int`` → integer, ``float`` → old float, ``bool`` → the atoms ``true``/``false``,
``None`` → the atom ``undefined`` (the client's JavaScript ``undefined``), ``BERT_NIL`` →
``{bert, nil}``. Encoding only: clients decode.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

VERSION = 131
# The client reads every big-endian number (values and lengths alike) as negative when its
# first byte is above 128. So a SMALL_INTEGER_EXT carries 0..128 only, a 4-byte
# INTEGER_EXT stays within ±2**27 (as its own encoder does), a tuple of more than 128 items
# or an atom of more than 128 characters cannot be sent, and a 2-byte length stays below
# 2**15. Larger integers go as bignums, which it reads exactly up to 2**53.
_SMALL_INTEGERS = range(129)
_INTEGER_RANGE = range(-(2**27), 2**27)
_MAX_SMALL = 128
_MAX_SHORT_LENGTH = 2**15 - 1


@dataclass(frozen=True, slots=True)
class Atom:
    name: str


@dataclass(frozen=True, slots=True)
class Chars:
    """A ``STRING_EXT`` term: Latin-1 text of at most 65535 characters."""

    text: str


UNDEFINED = Atom("undefined")
_UNDEFINED = bytes((115, 9)) + b"undefined"
BERT_NIL = (Atom("bert"), Atom("nil"))  # BERT's empty-collection marker

Term = Atom | Chars | tuple["Term", ...] | list["Term"] | str | bytes | int | float | None


def encode(term: Term) -> bytes:
    out = bytearray((VERSION,))
    _encode(term, out)
    return bytes(out)


def _encode(term: Term, out: bytearray) -> None:
    # The terms of a channel row, by exact type first (a row is ~40 terms, mostly atoms
    # and ``undefined``): 23 -> 9 µs an info_event; anything else by the general rules.
    if term is None:
        out += _UNDEFINED
    elif type(term) is Atom:
        out += _atom(term.name)
    elif type(term) is str:
        data = term.encode()
        out += b"m" + struct.pack(">I", len(data)) + data  # BINARY_EXT
    elif type(term) is int:
        _encode_int(term, out)
    elif type(term) is tuple:
        _encode_tuple(term, out)
    elif type(term) is list:
        _encode_list(term, out)
    else:
        _encode_other(term, out)


def _encode_tuple(term: tuple[Term, ...], out: bytearray) -> None:
    if len(term) > _MAX_SMALL:  # and the client has no LARGE_TUPLE_EXT decoder at all
        raise ValueError("a tuple of more than 128 items")
    out += bytes((104, len(term)))  # SMALL_TUPLE_EXT
    for item in term:
        _encode(item, out)


def _encode_list(term: list[Term], out: bytearray) -> None:
    if not term:
        out.append(106)  # NIL_EXT
        return
    out += b"l" + struct.pack(">I", len(term))  # LIST_EXT
    for item in term:
        _encode(item, out)
    out.append(106)  # proper list tail


def _encode_other(term: Term, out: bytearray) -> None:
    if isinstance(term, Atom):
        out += _atom(term.name)
    elif isinstance(term, Chars):
        data = term.text.encode("latin-1")
        if len(data) > _MAX_SHORT_LENGTH:
            raise ValueError("STRING_EXT longer than the client reads")
        out += b"k" + struct.pack(">H", len(data)) + data  # STRING_EXT
    elif isinstance(term, bool):
        out += _atom("true" if term else "false")
    elif isinstance(term, int):
        _encode_int(term, out)
    elif isinstance(term, float):
        out += b"c" + f"{term:.20e}".encode().ljust(31, b"\0")  # FLOAT_EXT
    elif isinstance(term, str | bytes):
        data = term.encode() if isinstance(term, str) else term
        out += b"m" + struct.pack(">I", len(data)) + data  # BINARY_EXT
    elif isinstance(term, tuple):
        _encode_tuple(term, out)
    elif isinstance(term, list):
        _encode_list(term, out)
    else:
        raise TypeError(f"cannot encode {type(term).__name__} as BERT")


@functools.lru_cache(maxsize=512)  # atoms are the code's own few names: made once each
def _atom(name: str) -> bytes:
    data = name.encode("ascii")
    if len(data) > _MAX_SMALL:
        raise ValueError("an atom of more than 128 characters")
    return bytes((115, len(data))) + data  # SMALL_ATOM_EXT


def _encode_int(value: int, out: bytearray) -> None:
    if value in _SMALL_INTEGERS:
        out += bytes((97, value))  # SMALL_INTEGER_EXT
    elif value in _INTEGER_RANGE:
        out += b"b" + struct.pack(">i", value)  # INTEGER_EXT
    else:
        magnitude = abs(value)
        digits = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
        sign = 1 if value < 0 else 0
        if len(digits) > _MAX_SMALL:  # beyond 2**53 the client loses precision anyway
            raise ValueError("an integer too large for the client")
        out += bytes((110, len(digits), sign)) + digits  # SMALL_BIG_EXT
