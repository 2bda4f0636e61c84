"""The stream framer's buffer is bounded whatever arrives, and how (RFC 3261 §18.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.sip.framing import MAX_BODY, MAX_HEAD, FramingError, StreamFramer
from tests.sip.factories import request

MESSAGE = bytes(request("OPTIONS", branch="z9hG4bK-f1"))
PIECES = [
    MESSAGE,
    b"\r\n\r\n",
    b"\r\n",
    b"X-Junk: " + b"y" * 900 + b"\r\n",
    b"Content-Length: 9\r\n",
    MESSAGE.replace(b"Content-Length: 0", b"Content-Length: 65535"),
    b"x" * 3000,
]


def test_a_header_section_too_long_is_refused_even_when_it_arrives_whole() -> None:
    head = MESSAGE.replace(b"Max-Forwards", b"X-Long: " + b"z" * MAX_HEAD + b"\r\nMax-Forwards")
    with pytest.raises(FramingError, match="Header section too long"):
        StreamFramer().feed(head)


def test_messages_cut_before_an_error_in_the_same_input_are_kept() -> None:
    broken = MESSAGE.replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(FramingError) as info:
        StreamFramer().feed(MESSAGE + broken)
    assert info.value.framed == [MESSAGE]
    assert info.value.head == broken


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=60), st.integers(1, 4000))
def test_the_buffer_never_holds_more_than_one_message_and_a_head(
    pieces: list[bytes], chunk: int
) -> None:
    framer = StreamFramer()
    stream = b"".join(pieces)
    try:
        for at in range(0, len(stream), chunk):
            framer.feed(stream[at : at + chunk])
            assert framer.buffered <= MAX_HEAD + 4 + MAX_BODY
    except FramingError:
        pass  # the connection is closed: nothing more is buffered
