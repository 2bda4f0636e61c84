"""Mutated messages thrown at the parser: only ParseError may come out (bounded in time)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.sip.errors import ParseError
from switchboard.sip.framing import StreamFramer
from switchboard.sip.message import parse_message
from tests.sip.torture import load, names

SEEDS = [load(name) for name in names()]


def _parse_or_reject(data: bytes) -> None:
    try:
        message = parse_message(data)
    except ParseError:
        return
    # Whatever parses must serialise and parse again.
    parse_message(bytes(message))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif kind == "insert":
            token = draw(
                st.sampled_from(
                    [
                        b"\r\n",
                        b":",
                        b";",
                        b",",
                        b'"',
                        b"<",
                        b">",
                        b" ",
                        b"\x00",
                        b"%",
                        b"\r\n ",
                        b"=",
                        b"@",
                        b"\xff",
                    ]
                )
            )
            data[position:position] = token
        elif kind == "delete":
            del data[position : position + draw(st.integers(1, 20))]
        elif kind == "duplicate":
            end = position + draw(st.integers(1, 60))
            data[position:position] = data[position:end]
        else:
            del data[position:]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_torture_messages_never_raise_anything_but_parse_error(data: bytes) -> None:
    _parse_or_reject(data)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise_anything_but_parse_error(data: bytes) -> None:
    _parse_or_reject(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(mutated(), max_size=4), st.integers(1, 50))
def test_stream_framer_survives_mutated_streams(messages: list[bytes], chunk: int) -> None:
    framer = StreamFramer()
    stream = b"".join(messages)
    try:
        for i in range(0, len(stream), chunk):
            for item in framer.feed(stream[i : i + chunk]):
                if isinstance(item, bytes):
                    _parse_or_reject(item)
    except ParseError:
        pass  # a framing error closes the connection
