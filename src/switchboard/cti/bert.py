"""BERT: Erlang's external term format (version 131), the wire format of Basix CTI frames.

Python values map to terms: ``Atom`` → atom, ``tuple`` → tuple, ``list`` → list (``[]`` is
nil), ``str``/``bytes`` → binary (UTF-8), ``int`` → small integer, integer or big, ``float``
→ new float, ``None`` → the atom ``undefined`` (what Basix sends for a missing field),
``BERT_NIL`` → ``{bert, nil}``. Encoding only: clients decode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION = 131


@dataclass(frozen=True, slots=True)
class Atom:
    name: str


UNDEFINED = Atom("undefined")
BERT_NIL = (Atom("bert"), Atom("nil"))  # BERT's empty-collection marker

Term = Atom | tuple["Term", ...] | list["Term"] | str | bytes | int | float | None


def encode(term: Term) -> bytes:
    out = bytearray((VERSION,))
    _encode(term, out)
    return bytes(out)


def _encode(term: Term, out: bytearray) -> None:
    if term is None:
        term = UNDEFINED
    if isinstance(term, Atom):
        name = term.name.encode()
        if len(name) > 255:
            raise ValueError("atom too long")
        out += bytes((119, len(name))) + name  # SMALL_ATOM_UTF8_EXT
    elif isinstance(term, bool):
        _encode(Atom("true" if term else "false"), out)
    elif isinstance(term, int):
        _encode_int(term, out)
    elif isinstance(term, float):
        out += b"F" + struct.pack(">d", term)  # NEW_FLOAT_EXT
    elif isinstance(term, str | bytes):
        data = term.encode() if isinstance(term, str) else term
        out += b"m" + struct.pack(">I", len(data)) + data  # BINARY_EXT
    elif isinstance(term, tuple):
        if len(term) < 256:
            out += bytes((104, len(term)))  # SMALL_TUPLE_EXT
        else:
            out += b"i" + struct.pack(">I", len(term))  # LARGE_TUPLE_EXT
        for item in term:
            _encode(item, out)
    elif isinstance(term, list):
        if not term:
            out.append(106)  # NIL_EXT
            return
        out += b"l" + struct.pack(">I", len(term))  # LIST_EXT
        for item in term:
            _encode(item, out)
        out.append(106)  # proper list tail
    else:
        raise TypeError(f"cannot encode {type(term).__name__} as BERT")


def _encode_int(value: int, out: bytearray) -> None:
    if 0 <= value < 256:
        out += bytes((97, value))  # SMALL_INTEGER_EXT
    elif -(2**31) <= value < 2**31:
        out += b"b" + struct.pack(">i", value)  # INTEGER_EXT
    else:
        magnitude = abs(value)
        digits = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
        out += bytes((110, len(digits), 1 if value < 0 else 0)) + digits  # SMALL_BIG_EXT
