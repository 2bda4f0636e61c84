"""Loading RFC 4475 messages from ``tests/data/rfc4475`` (see the README there)."""

from __future__ import annotations

import re
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "rfc4475"
_HEX = re.compile(r"<hex>([0-9A-Fa-f]*)</hex>")


def load(name: str) -> bytes:
    text = (DATA / f"{name}.txt").read_text(encoding="utf-8").replace("\n", "\r\n")
    out = bytearray()
    position = 0
    for match in _HEX.finditer(text):
        out += text[position : match.start()].encode("utf-8")
        out += bytes.fromhex(match.group(1))
        position = match.end()
    out += text[position:].encode("utf-8")
    return bytes(out)


def names() -> list[str]:
    return sorted(p.stem for p in DATA.glob("*.txt"))
