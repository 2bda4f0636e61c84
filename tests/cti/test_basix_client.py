"""The model of Basix's client (``basix_client``) against frames written byte by byte here.

Nothing comes from our encoder: each frame is built with ``struct`` from the external term
format, so these tests pin the oracle itself.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from tests.cti.basix_client import (
    Atom,
    BasixClient,
    BasixDecodeError,
    Binary,
    Message,
    Term,
    Tuple,
    decode_term,
)

# --- a tiny term builder ---------------------------------------------------------------------

NIL = b"\x6a"


def atom(name: str) -> bytes:  # SMALL_ATOM_EXT
    data = name.encode("latin-1")
    return struct.pack(">BB", 115, len(data)) + data


def atom_ext(name: str) -> bytes:  # ATOM_EXT
    data = name.encode("latin-1")
    return struct.pack(">BH", 100, len(data)) + data


def string(text: str) -> bytes:  # STRING_EXT
    data = text.encode("latin-1")
    return struct.pack(">BH", 107, len(data)) + data


def binary(data: bytes) -> bytes:  # BINARY_EXT
    return struct.pack(">BI", 109, len(data)) + data


def small_int(value: int) -> bytes:  # SMALL_INTEGER_EXT
    return struct.pack(">BB", 97, value)


def integer(value: int) -> bytes:  # INTEGER_EXT
    return struct.pack(">Bi", 98, value)


def small_big(value: int) -> bytes:  # SMALL_BIG_EXT
    digits = abs(value).to_bytes((abs(value).bit_length() + 7) // 8, "little")
    return struct.pack(">BBB", 110, len(digits), value < 0) + digits


def old_float(text: str) -> bytes:  # FLOAT_EXT
    return b"c" + text.encode("ascii").ljust(31, b"\0")


def tup(*items: bytes) -> bytes:  # SMALL_TUPLE_EXT
    return struct.pack(">BB", 104, len(items)) + b"".join(items)


def lst(*items: bytes) -> bytes:  # LIST_EXT, or NIL_EXT when empty
    if not items:
        return NIL
    return struct.pack(">BI", 108, len(items)) + b"".join(items) + NIL


def frame(term: bytes) -> bytes:
    return b"\x83" + term


UNDEFINED = atom("undefined")
BERT_NIL = tup(atom("bert"), atom("nil"))
TS = 1_795_000_000_123_456  # µs since the epoch: needs a bignum

CHANNEL_FIELDS = [
    "uuid",
    "direction",
    "peer_location",
    "calling_name",
    "calling_number",
    "called_number",
    "offer_timestamp",
    "answer_timestamp",
    "hangup_timestamp",
    "other_uuid",
    "user_id",
    "group_id",
    "state",
    "target",
    "origination",
    "end_user",
    "tags",
    "last_event",
    "last_event_data",
    "call_id",
    "other_info",
    "last_bridged_user_id",
]
# "#1234", "山田 太郎", "Thimble & Co" ('+' for the spaces), no avatar, "東京"
YAMADA = b"%231234*%E5%B1%B1%E7%94%B0%20%E5%A4%AA%E9%83%8E*Thimble+%26+Co**%E6%9D%B1%E4%BA%AC"
YAMADA_ITEM = {
    "id": "#1234",
    "name": "山田 太郎",
    "organization": "Thimble & Co",
    "avatar": "",
    "prefecture": "東京",
}


def field_spec(element: str, *names: str) -> bytes:
    return frame(tup(atom("field_spec"), string(element), lst(*(atom(n) for n in names))))


def info_event(element: str, row: bytes, event: str = "added") -> bytes:
    return frame(tup(atom("info_event"), string(element), row, string(event)))


def initial_info(element: str, rows: bytes) -> bytes:
    return frame(tup(atom("initial_info"), string(element), rows))


def channel_row(**values: bytes) -> bytes:
    """A channel row in ``CHANNEL_FIELDS`` order; fields not given are ``undefined``."""
    assert set(values) <= set(CHANNEL_FIELDS), set(values) - set(CHANNEL_FIELDS)
    return lst(*(values.get(name, UNDEFINED) for name in CHANNEL_FIELDS))


def calling_user_state(user_id: int = 1001) -> bytes:
    return tup(small_big(TS), atom("calling"), atom("int"), atom("user"), tup(integer(user_id)))


@pytest.fixture
def client() -> BasixClient:
    client = BasixClient()
    client.feed(field_spec("channel", *CHANNEL_FIELDS))
    return client


def channel(client: BasixClient, uuid: str, **values: bytes) -> dict[str, Any]:
    """Feed a channel ``added`` event and return the object the client built."""
    client.feed(info_event("channel", channel_row(uuid=binary(uuid.encode()), **values)))
    return client.store["channel"][uuid]


# --- bert.js: terms --------------------------------------------------------------------------

LARGE_BIG = struct.pack(">BIB", 111, 2, 1) + (513).to_bytes(2, "little")


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        pytest.param(small_int(7), 7, id="small-integer"),
        pytest.param(small_int(128), 128, id="small-integer-128"),
        pytest.param(integer(-5), -5, id="integer-negative"),
        pytest.param(integer(-(2**31) + 2**24), -(2**31) + 2**24, id="integer-first-byte-129"),
        pytest.param(integer(2**31 - 1), 2**31 - 1, id="integer-max"),
        pytest.param(small_big(TS), TS, id="small-big-timestamp"),
        pytest.param(small_big(-TS), -TS, id="small-big-negative"),
        pytest.param(LARGE_BIG, -513, id="large-big"),
        pytest.param(old_float("1.50000000000000000000e+00"), 1.5, id="old-float"),
        pytest.param(atom_ext("hello"), Atom("hello"), id="atom"),
        pytest.param(atom("hello"), Atom("hello"), id="small-atom"),
        pytest.param(atom("true"), Atom(True), id="atom-true"),
        pytest.param(atom("false"), Atom(False), id="atom-false"),
        pytest.param(string("abc"), "abc", id="string"),
        pytest.param(binary("山".encode()), Binary("å±±"), id="binary-is-latin-1"),
        pytest.param(string("caf\xe9"), "café", id="string-is-latin-1"),
        pytest.param(tup(atom("a"), small_int(1)), Tuple((Atom("a"), 1)), id="tuple"),
        pytest.param(tup(), Tuple(()), id="empty-tuple"),
        pytest.param(lst(small_int(1), string("x")), [1, "x"], id="list"),
        pytest.param(NIL, [], id="nil"),
        pytest.param(lst(lst(), tup(NIL)), [[], Tuple(([],))], id="nested"),
    ],
)
def test_decode_term_reads_the_tags_bert_js_knows(term: bytes, expected: Term) -> None:
    decoded = decode_term(frame(term))
    assert decoded == expected
    assert type(decoded) is type(expected)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(frame(b"\x77\x01a"), "Unexpected BERT type: 119", id="small-atom-utf8"),
        pytest.param(frame(b"\x76\x00\x01a"), "Unexpected BERT type: 118", id="atom-utf8"),
        pytest.param(frame(b"F" + struct.pack(">d", 1.5)), "type: 70", id="new-float"),
        pytest.param(frame(struct.pack(">BI", 116, 0)), "type: 116", id="map"),
        pytest.param(frame(struct.pack(">BI", 105, 1) + NIL), "type: 105", id="large-tuple"),
        pytest.param(frame(small_int(200)), "SMALL_INTEGER 200", id="small-integer-above-128"),
        pytest.param(frame(integer(-(2**31))), "INTEGER", id="integer-first-byte-128"),
        pytest.param(frame(small_big(2**53)), "exact range", id="bignum-beyond-2**53"),
        pytest.param(frame(b"\x6e\x01\x02\x05"), "sign byte 2", id="bignum-bad-sign"),
        pytest.param(frame(old_float("abc")), "FLOAT", id="float-not-a-number"),
        pytest.param(frame(old_float("1.5e+00 junk")), "FLOAT", id="float-trailing-junk"),
        pytest.param(frame(small_int(1)) + b"\x00", "Invalid BERT", id="trailing-bytes"),
        pytest.param(frame(string("abc"))[:-1], "truncated", id="truncated-string"),
        pytest.param(frame(integer(1))[:-2], "truncated", id="truncated-integer"),
        pytest.param(frame(tup(small_int(1), small_int(2)))[:-2], "truncated", id="short-tuple"),
        pytest.param(b"\x82" + small_int(1), "Not a valid BERT", id="version-byte"),
        pytest.param(b"", "Not a valid BERT", id="empty-frame"),
        pytest.param(
            frame(struct.pack(">BI", 108, 1) + small_int(1) + small_int(2)),
            "List does not end with NIL",
            id="improper-list",
        ),
        pytest.param(frame(bytes((115, 129)) + b"a" * 129), "negative", id="atom-length-129"),
        pytest.param(frame(bytes((104, 129)) + NIL * 129), "negative", id="tuple-arity-129"),
    ],
)
def test_decode_term_rejects(data: bytes, error: str) -> None:
    with pytest.raises(BasixDecodeError, match=error):
        decode_term(data)


# --- message_parser.js: field_spec -----------------------------------------------------------


def test_field_spec_takes_atom_and_binary_names() -> None:
    client = BasixClient()
    names = lst(atom("id"), atom_ext("name"), binary(b"label"))
    message = client.feed(frame(tup(atom("field_spec"), string("user"), names)))
    assert message == Message("field_spec", "user", fields=("id", "name", "label"))
    assert client.field_specs == {"user": ["id", "name", "label"]}
    assert client.messages == [message]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        pytest.param(lst(atom("id"), string("name")), "atom or binary", id="string-name"),
        pytest.param(lst(atom("id"), atom("true")), "atom or binary", id="boolean-name"),
        pytest.param(NIL, "non-empty list", id="no-fields"),
        pytest.param(tup(atom("id")), "non-empty list", id="tuple-of-fields"),
        pytest.param(lst(atom("id"), atom("id")), "repeats", id="duplicate"),
    ],
)
def test_field_spec_rejects(fields: bytes, error: str) -> None:
    client = BasixClient()
    with pytest.raises(BasixDecodeError, match=error):
        client.feed(frame(tup(atom("field_spec"), string("user"), fields)))
    assert client.field_specs == {}
    assert client.messages == []


# --- utils.js: a channel row -----------------------------------------------------------------


def test_channel_info_event_builds_the_client_object(client: BasixClient) -> None:
    other_info = tup(
        atom("end_user"),
        binary(YAMADA),
        atom("outbound"),
        atom("external"),
        binary(b"0312345678"),
        small_big(TS),
        UNDEFINED,
    )
    row = channel_row(
        uuid=binary(b"c-1"),
        direction=atom("inbound"),
        peer_location=atom("internal"),
        calling_name=binary(b"Support"),
        called_number=binary(b"alice"),
        offer_timestamp=small_big(TS),
        user_id=integer(1001),
        group_id=integer(1111),
        state=calling_user_state(),
        target=tup(atom("user"), integer(1001), binary(b"alice"), UNDEFINED),
        origination=binary(b"0312345678*a%2Bb+c*%E5%B1%B1"),
        end_user=binary(YAMADA),
        tags=binary(b"monitoring_required;vip"),
        last_event=atom("STATE_CHANGE"),
        call_id=string("call-1"),
        other_info=other_info,
    )
    message = client.feed(info_event("channel", row))

    expected = dict.fromkeys(CHANNEL_FIELDS)
    expected.update(
        uuid="c-1",
        direction="inbound",
        peer_location="internal",
        calling_name="Support",
        called_number="alice",
        offer_timestamp=TS,
        user_id=1001,
        group_id=1111,
        state={
            "ts": TS,
            "name": "calling",
            "data": {"target_location": "int", "target_type": "user", "user_id": 1001},
        },
        target={"type": "user", "id": 1001, "name": "alice", "address": None},
        origination=["0312345678", "a+b+c", "山"],  # no '+' → ' ' for origination
        end_user={"count": 1, "items": [YAMADA_ITEM]},
        tags="monitoring_required;vip",
        last_event="STATE_CHANGE",
        call_id="call-1",
        other_info={
            "type": "end_user",
            "direction": "outbound",
            "peer_location": "external",
            "address": "0312345678",
            "offer_timestamp": TS,
            "end_user": {"count": 1, "items": [YAMADA_ITEM]},
        },
    )
    assert message == Message("info_event", "channel", "added", expected)
    assert client.store["channel"] == {"c-1": expected}
    assert [m.kind for m in client.messages] == ["field_spec", "info_event"]


def test_other_info_of_a_user(client: BasixClient) -> None:
    other_info = tup(
        atom("user"),
        integer(1002),
        atom("inbound"),
        atom("internal"),
        binary(b"bob"),
        small_big(TS),
        integer(1111),
    )
    assert channel(client, "c-2", other_info=other_info)["other_info"] == {
        "type": "user",
        "direction": "inbound",
        "peer_location": "internal",
        "address": "bob",
        "offer_timestamp": TS,
        "user_id": 1002,
        "group_id": 1111,
    }


def test_other_info_of_an_anonymous_end_user(client: BasixClient) -> None:
    other_info = tup(*(atom("end_user"), UNDEFINED, *[UNDEFINED] * 5))
    assert channel(client, "c-3", other_info=other_info)["other_info"]["end_user"] is None


def test_end_user_many(client: BasixClient) -> None:
    many = b"_MANY_:3|%231*A*B*|%232*%E9%88%B4%E6%9C%A8*C*http%3A%2F%2Fx%2Fa.png*"
    assert channel(client, "c-4", end_user=binary(many))["end_user"] == {
        "count": 3,  # as sent: the client does not count the items
        "items": [
            {"id": "#1", "name": "A", "organization": "B", "avatar": "", "prefecture": None},
            {
                "id": "#2",
                "name": "鈴木",
                "organization": "C",
                "avatar": "http://x/a.png",
                "prefecture": "",
            },
        ],
    }


def test_non_ascii_text_outside_labels_stays_mojibake(client: BasixClient) -> None:
    # The client decodes only labels (UTF-8) and end_user/origination (URL): a UTF-8
    # calling_name shows as its bytes.
    info = channel(client, "c-5", calling_name=binary("山田".encode()))
    assert info["calling_name"] == "å±±ç\x94°"


@pytest.mark.parametrize(
    ("state", "data"),
    [
        pytest.param(tup(integer(1), atom("bridged")), {}, id="bridged"),
        pytest.param(
            tup(
                integer(1),
                atom("calling"),
                atom("int"),
                atom("group"),
                tup(atom("ring"), integer(1111), UNDEFINED, UNDEFINED, integer(7)),
            ),
            {
                "target_location": "int",
                "target_type": "group",
                "group_type": "ring",
                "group_id": 1111,
                "group_queue_id": 7,
            },
            id="calling-ring-group",
        ),
        pytest.param(
            tup(
                integer(1),
                atom("calling"),
                atom("int"),
                atom("group"),
                tup(atom("hunt"), integer(1111)),
            ),
            {
                "target_location": "int",
                "target_type": "group",
                "group_type": "hunt",
                "group_id": 1111,
            },
            id="calling-hunt-group",
        ),
        pytest.param(
            tup(integer(1), atom("calling"), atom("ext"), atom("pstn"), tup(binary(b"0312"))),
            {"target_location": "ext", "target_type": "pstn", "address": "0312"},
            id="calling-pstn",
        ),
        pytest.param(
            tup(
                integer(1),
                atom("calling"),
                atom("ext"),
                atom("bridged_endpoint"),
                tup(binary(b"sip"), binary(b"10.0.0.1")),
            ),
            {
                "target_location": "ext",
                "target_type": "bridged_endpoint",
                "address": "sip@10.0.0.1",
            },
            id="calling-bridged-endpoint",
        ),
        pytest.param(
            tup(integer(1), atom("park"), integer(3), UNDEFINED, integer(1001), binary(b"al")),
            {"slot": 3, "parker_id": 1001, "parker_name": "al"},
            id="park",
        ),
        pytest.param(
            tup(integer(1), atom("voicemail"), atom("user"), integer(1001), binary(b"al")),
            {"target_type": "user", "target_id": 1001, "target_name": "al"},
            id="voicemail",
        ),
        pytest.param(tup(integer(1), string("conference"), integer(9)), {"room_id": 9}, id="conf"),
    ],
)
def test_state_translation(client: BasixClient, state: bytes, data: dict[str, Any]) -> None:
    translated = channel(client, "c-6", state=state)["state"]
    assert translated["ts"] == 1
    assert translated["data"] == data


# --- cti.js: the store -----------------------------------------------------------------------


def test_user_and_group_labels_are_utf8_decoded() -> None:
    client = BasixClient()
    client.feed(field_spec("user", "id", "name", "label"))
    client.feed(field_spec("group", "id", "name", "label"))
    rows = lst(
        lst(integer(1001), binary(b"yamada"), binary("山田 太郎".encode())),
        lst(integer(1002), binary(b"bob"), UNDEFINED),
    )
    message = client.feed(initial_info("user", rows))
    client.feed(info_event("group", tup(integer(1111), binary(b"sales"), binary("営業".encode()))))

    assert set(message.info) == {"1001", "1002"}
    assert client.store["user"] == {
        "1001": {"id": 1001, "name": "yamada", "label": "山田 太郎"},
        "1002": {"id": 1002, "name": "bob", "label": None},
    }
    assert client.store["group"]["1111"]["label"] == "営業"


def test_initial_info_replaces_the_channel_store(client: BasixClient) -> None:
    channel(client, "old")
    rows = lst(channel_row(uuid=binary(b"c-1")), channel_row(uuid=binary(b"c-2")))
    message = client.feed(initial_info("channel", rows))
    assert set(message.info) == {"c-1", "c-2"}
    assert set(client.store["channel"]) == {"c-1", "c-2"}

    empty = client.feed(initial_info("channel", BERT_NIL))
    assert empty == Message("initial_info", "channel", info={})
    assert client.store["channel"] == {}


def test_channel_hangup_removes_the_channel(client: BasixClient) -> None:
    channel(client, "c-1", last_event=atom("STATE_CHANGE"))
    channel(client, "c-2", last_event=atom("CHANNEL_ANSWER"))
    hangup = channel_row(uuid=binary(b"c-1"), last_event=atom("CHANNEL_HANGUP"))
    message = client.feed(info_event("channel", hangup, "updated"))
    assert message.info["last_event"] == "CHANNEL_HANGUP"
    assert set(client.store["channel"]) == {"c-2"}
    client.feed(info_event("channel", channel_row(uuid=binary(b"c-2")), "removed"))
    assert client.store["channel"] == {}
    assert [m.event for m in client.messages] == [None, "added", "added", "updated", "removed"]


def test_group_member_without_id_is_stored_as_user_and_group() -> None:
    client = BasixClient()
    client.feed(field_spec("group_member", "id", "group_id", "user_id"))
    client.feed(info_event("group_member", tup(binary(b""), integer(1111), integer(1001))))
    assert list(client.store["group_member"]) == ["1001:1111"]


def test_domain_info_event_replaces_the_domain() -> None:
    client = BasixClient()
    client.feed(field_spec("domain", "uuid", "name"))
    client.feed(initial_info("domain", lst(tup(binary(b"d-1"), binary(b"example.com")))))
    assert client.get_domain() == {"d-1": {"uuid": "d-1", "name": "example.com"}}

    client.feed(info_event("domain", tup(binary(b"d-1"), binary(b"example.org")), "updated"))
    assert client.store["domain"] == {"": {"uuid": "d-1", "name": "example.org"}}
    assert client.get_domain() == {"uuid": "d-1", "name": "example.org"}

    client.feed(info_event("domain", tup(binary(b"d-1"), binary(b"gone")), "removed"))
    assert client.get_domain() == {"uuid": "d-1", "name": "example.org"}  # cti.js ignores it


def test_system_msg() -> None:
    client = BasixClient()
    message = client.feed(frame(tup(atom("system_msg"), string("connection_replaced"))))
    assert message == Message("system_msg", text="connection_replaced")
    assert client.system_messages == ["connection_replaced"]


def test_a_rejected_frame_changes_nothing(client: BasixClient) -> None:
    channel(client, "c-1")
    before = [dict(client.store["channel"]), list(client.messages)]
    rows = lst(channel_row(uuid=binary(b"c-2")), channel_row(uuid=binary(b"c-3"), tags=NIL))
    with pytest.raises(BasixDecodeError, match="list"):
        client.feed(initial_info("channel", rows))
    assert [client.store["channel"], client.messages] == before


# --- rejections ------------------------------------------------------------------------------

UUID = binary(b"c-1")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(
            frame(
                tup(atom("info_event"), atom("channel"), channel_row(uuid=UUID), string("added"))
            ),
            "element name",
            id="element-as-atom",
        ),
        pytest.param(
            frame(tup(atom("initial_info"), binary(b"channel"), BERT_NIL)),
            "element name",
            id="element-as-binary",
        ),
        pytest.param(
            frame(
                tup(atom("info_event"), string("channel"), channel_row(uuid=UUID), atom("added"))
            ),
            "event",
            id="event-as-atom",
        ),
        pytest.param(
            frame(
                tup(atom("info_event"), string("channel"), channel_row(uuid=UUID), binary(b"added"))
            ),
            "event",
            id="event-as-binary",
        ),
        pytest.param(
            frame(tup(atom("info_event"), string("channel"), string("added"), channel_row())),
            "event",
            id="event-before-row",
        ),
        pytest.param(info_event("channel", channel_row(uuid=UUID), "changed"), "event", id="event"),
        pytest.param(
            info_event("channel", lst(UUID, *[UNDEFINED] * 20)), "values for", id="short-row"
        ),
        pytest.param(
            info_event("channel", lst(UUID, *[UNDEFINED] * 22)), "values for", id="long-row"
        ),
        pytest.param(info_event("channel", binary(b"c-1")), "list or tuple", id="row-not-a-list"),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, tags=lst(binary(b"vip")))),
            "list in a row",
            id="list-in-row",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, target=tup(atom("user"), NIL))),
            "list in a row",
            id="nil-in-tuple-in-row",
        ),
        pytest.param(
            info_event(
                "channel",
                channel_row(uuid=UUID, state=tup(integer(1), atom("ringing"))),
            ),
            "state name 'ringing'",
            id="unknown-state",
        ),
        pytest.param(
            info_event(
                "channel",
                channel_row(uuid=UUID, state=tup(integer(1), atom("park"), integer(3))),
            ),
            "no item 4",
            id="short-park-state",
        ),
        pytest.param(
            info_event(
                "channel",
                channel_row(
                    uuid=UUID,
                    state=tup(
                        integer(1), atom("calling"), atom("ext"), atom("pstn"), binary(b"03")
                    ),
                ),
            ),
            "target data",
            id="pstn-target-data-not-a-tuple",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, last_event=atom("RINGING"))),
            "last_event",
            id="unknown-last-event",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, end_user=binary(b"%E5%B1*a*b*c"))),
            "URIError",
            id="end-user-cut-utf8",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, end_user=binary(b"%ZZ*a*b*c"))),
            "URIError",
            id="end-user-bad-escape",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, end_user=binary(b"%C0%AF*a*b*c"))),
            "URIError",
            id="end-user-overlong-utf8",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, end_user=binary("山*a*b*c".encode()))),
            "raw non-ASCII",
            id="end-user-not-url-encoded",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, end_user=binary(b"1*a*b"))),
            "3 tokens",
            id="end-user-too-few-tokens",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, end_user=binary(b"_MANY_:x|1*a*b*c"))),
            "_MANY_",
            id="end-user-many-count",
        ),
        pytest.param(
            info_event("channel", channel_row(uuid=UUID, origination=binary(b"a*%E5"))),
            "URIError",
            id="origination-bad-escape",
        ),
        pytest.param(
            info_event(
                "channel",
                channel_row(uuid=UUID, other_info=tup(atom("robot"), *[UNDEFINED] * 6)),
            ),
            "other_info type",
            id="other-info-type",
        ),
        pytest.param(
            info_event(
                "channel",
                channel_row(uuid=UUID, other_info=tup(atom("user"), *[UNDEFINED] * 5)),
            ),
            "other_info",
            id="other-info-short",
        ),
        pytest.param(
            initial_info("channel", lst(channel_row(uuid=UUID), channel_row(uuid=UUID))),
            "repeat uuid",
            id="duplicate-key",
        ),
        pytest.param(initial_info("channel", lst(channel_row())), "without uuid", id="missing-key"),
        pytest.param(
            initial_info("channel", tup(channel_row(uuid=UUID))),
            "rows must be a list",
            id="rows-in-a-tuple",
        ),
        pytest.param(
            frame(tup(atom("system_msg"), atom("logout"))), "system_msg", id="system-msg-atom"
        ),
        pytest.param(
            frame(tup(atom("msg"), string("hello"))), "Unknown message type", id="msg-kind"
        ),
        pytest.param(
            frame(tup(binary(b"system_msg"), string("x"))), "Unknown message type", id="kind-bin"
        ),
        pytest.param(frame(tup(atom("system_msg"), string("x"), string("y"))), "not 2", id="arity"),
        pytest.param(frame(lst(atom("system_msg"), string("x"))), "tuple", id="not-a-tuple"),
    ],
)
def test_client_rejects(client: BasixClient, data: bytes, error: str) -> None:
    store = {name: dict(objects) for name, objects in client.store.items()}
    with pytest.raises(BasixDecodeError, match=error):
        client.feed(data)
    assert client.store == store
    assert len(client.messages) == 1  # only the fixture's field_spec


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(info_event("user", tup(integer(1))), id="info-event"),
        pytest.param(initial_info("user", BERT_NIL), id="empty-initial-info"),
    ],
)
def test_rows_need_a_field_spec_first(data: bytes) -> None:
    with pytest.raises(BasixDecodeError, match="before its field_spec"):
        BasixClient().feed(data)


@pytest.mark.parametrize(
    "label",
    [
        pytest.param(b"\xe5\xb1", id="cut"),
        pytest.param(b"\xff", id="invalid-byte"),
        pytest.param(b"\xed\xa0\x80", id="surrogate"),
    ],
)
def test_user_label_must_be_utf8(label: bytes) -> None:
    client = BasixClient()
    client.feed(field_spec("user", "id", "label"))
    with pytest.raises(BasixDecodeError, match="not UTF-8"):
        client.feed(info_event("user", tup(integer(1001), binary(label))))
    assert client.store["user"] == {}
