"""Our CTI frames as Basix's own client reads them: every message type, every element and
every channel state we send, decoded by the strict model of that client
(``tests/cti/basix_client.py``); the JSON variant carries the same values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchboard.cti import bert, messages
from switchboard.cti.bert import Atom, Chars
from switchboard.cti.channels import (
    FIELDS,
    Channel,
    ChannelState,
    EndUserItem,
    OtherInfo,
    Target,
)
from switchboard.cti.elements import (
    ELEMENT_FIELDS,
    DomainRow,
    GroupMemberRow,
    GroupRow,
    TerminalRow,
    UserRow,
)
from switchboard.cti.hub import Element
from tests.cti.basix_client import BasixClient, BasixDecodeError, decode_term

TS = 1_795_000_000_123_456
TIM = EndUserItem(
    id="#1234", name="田中 Tim Tyler", organization="Thimble & Co", prefecture="東京都"
)
ALICE_LEG = Channel(
    uuid="6b1e-1",
    domain="example.com",
    calling_name="Support",
    calling_number="1111",
    called_number="alice",
    offer_timestamp=TS,
    user_id=1001,
    group_id=1111,
    state=ChannelState(TS, "calling", "int", "user", 1001),
    target=Target("user", 1001, "alice"),
    origination=("call_group", "support"),
    last_event="STATE_CHANGE",
    call_id="6b1e-1",
)
TRUNK_LEG = Channel(
    uuid="d-1",
    domain="example.com",
    peer_location="external",
    calling_number="0506868000",
    called_number="0312341234",
    offer_timestamp=TS + 1,
    group_id=1111,
    state=ChannelState(TS + 1, "calling", "ext", "pstn", address="0312341234"),
    end_user=(TIM,),
    origination=("call_group", "support"),
    last_event="STATE_CHANGE",
    call_id="d-1",
    other_uuid="6b1e-1",
    other_info=OtherInfo("user", "outbound", "internal", "alice", TS, user_id=1001, group_id=1111),
)


def _client() -> BasixClient:
    """A client that has had every field_spec, as after connecting."""
    client = BasixClient()
    for element in ELEMENT_FIELDS:
        client.feed(messages.field_spec_bert(element))
    return client


def _event(client: BasixClient, event: str, item: Element) -> dict[str, Any]:
    message = client.feed(messages.info_event_bert(event, item))
    assert (message.kind, message.element, message.event) == ("info_event", item.ELEMENT, event)
    return message.info


def test_integers_and_text_use_only_what_the_client_reads_right() -> None:
    values: list[bert.Term] = [
        0,
        128,
        129,
        255,
        256,
        -1,
        2**27 - 1,
        2**27,
        -(2**27),
        -(2**27) - 1,
        TS,
        -TS,
    ]
    assert decode_term(bert.encode(values)) == values
    assert decode_term(bert.encode(1.5)) == 1.5
    assert decode_term(bert.encode(Chars("channel"))) == "channel"
    term = decode_term(bert.encode((Atom("ok"), None, True, "héllo")))
    assert repr(term).count("Atom") == 3  # ok, undefined, true
    with pytest.raises(ValueError):
        bert.encode(tuple(range(129)))  # the client has no large-tuple decoder
    with pytest.raises(ValueError):
        bert.encode(Atom("a" * 129))


def test_field_specs_name_each_element_and_its_fields_in_order() -> None:
    client = _client()
    assert client.field_specs == {element: list(f) for element, f in ELEMENT_FIELDS.items()}
    assert client.field_specs["channel"] == list(FIELDS)


def test_initial_info_of_each_element_fills_the_clients_store() -> None:
    client = _client()
    items: dict[str, list[Element]] = {
        "domain": [DomainRow("example.com", "5a9e-d", "example.com", 50, "0506868000")],
        "user": [UserRow("example.com", 1001, "alice", "Ålice", "1001", None, None, "offline")],
        "group": [GroupRow("example.com", 1111, "support", 1, "1111", "Support", None, 60, 15)],
        "group_member": [GroupMemberRow("example.com", "1111:1001", 1111, 1001, 1, 1)],
        "terminal": [
            TerminalRow("example.com", "t1", "sip:alice@h:5070", 1001, "static", None, True, None)
        ],
        "channel": [ALICE_LEG, TRUNK_LEG],
        "channel_waiting": [],
    }
    for element, rows in items.items():
        message = client.feed(messages.initial_info_bert(element, rows))
        assert (message.kind, message.element) == ("initial_info", element)
    store = client.store
    assert store["user"]["1001"]["label"] == "Ålice"  # UTF-8, decoded by the client
    assert store["user"]["1001"]["presence"] == "offline"
    assert store["group"]["1111"]["type"] == 1  # hunt
    assert store["group_member"]["1111:1001"]["priority"] == 1
    assert store["terminal"]["t1"]["registered"] is True
    assert store["terminal"]["t1"]["user_agent"] is None  # undefined
    assert set(store["channel"]) == {"6b1e-1", "d-1"}
    assert store["channel_waiting"] == {}
    assert client.get_domain()["5a9e-d"]["channel_limit"] == 50


def test_an_empty_initial_info_is_bert_nil() -> None:
    client = _client()
    message = client.feed(messages.initial_info_bert("channel", []))
    assert message.info == {} and decode_term(messages.initial_info_bert("channel", [])) != []


def test_a_member_channel_calling_then_ringing_then_bridged_then_hung_up() -> None:
    client = _client()
    added = _event(client, "added", ALICE_LEG)
    assert added["state"] == {
        "ts": TS,
        "name": "calling",
        "data": {"target_location": "int", "target_type": "user", "user_id": 1001},
    }
    assert added["target"] == {"type": "user", "id": 1001, "name": "alice", "address": None}
    assert added["origination"] == ["call_group", "support"]
    assert added["offer_timestamp"] == TS and added["answer_timestamp"] is None
    assert added["direction"] == "outbound" and added["last_event"] == "STATE_CHANGE"
    ringing = _event(client, "updated", ALICE_LEG.tagged("ringing"))
    assert ringing["tags"] == "ringing" and ringing["state"]["name"] == "calling"
    bridged = ALICE_LEG.with_(
        state=ChannelState(TS + 5, "bridged"),
        answer_timestamp=TS + 4,
        last_event="CHANNEL_ANSWER",
        other_uuid="d-1",
        other_info=OtherInfo(
            "end_user", "outbound", "external", "0312341234", TS + 1, end_user=(TIM,)
        ),
    )
    info = _event(client, "updated", bridged)
    assert info["state"] == {"ts": TS + 5, "name": "bridged", "data": {}}
    assert info["other_info"]["type"] == "end_user"
    assert info["other_info"]["end_user"]["items"][0]["name"] == "田中 Tim Tyler"
    assert info["other_info"]["address"] == "0312341234"
    assert client.store["channel"]["6b1e-1"]["last_event"] == "CHANNEL_ANSWER"
    hangup = bridged.with_(
        hangup_timestamp=TS + 9,
        last_event="CHANNEL_HANGUP",
        last_event_data="send_bye,NORMAL_CLEARING",
    )
    removed = _event(client, "removed", hangup)
    assert removed["last_event_data"] == "send_bye,NORMAL_CLEARING"
    assert client.store["channel"] == {}


def test_the_destination_channel_carries_the_end_user_and_its_member() -> None:
    client = _client()
    info = _event(client, "added", TRUNK_LEG)
    assert info["state"]["data"] == {
        "target_location": "ext",
        "target_type": "pstn",
        "address": "0312341234",
    }
    assert info["peer_location"] == "external"
    assert info["end_user"] == {
        "count": 1,
        "items": [
            {
                "id": "#1234",
                "name": "田中 Tim Tyler",
                "organization": "Thimble & Co",
                "avatar": "",
                "prefecture": "東京都",
            }
        ],
    }
    assert info["other_info"] == {
        "type": "user",
        "direction": "outbound",
        "peer_location": "internal",
        "address": "alice",
        "offer_timestamp": TS,
        "user_id": 1001,
        "group_id": 1111,
    }
    several = TRUNK_LEG.with_(end_user=(EndUserItem(name="A"), EndUserItem(name="B+C")))
    info = _event(client, "updated", several)
    assert info["end_user"]["count"] == 2
    assert [item["name"] for item in info["end_user"]["items"]] == ["A", "B+C"]


@pytest.mark.parametrize(
    ("state", "data"),
    [
        (ChannelState(TS, "calling", "int", "user", 7), {"user_id": 7}),
        (
            ChannelState(TS, "calling", "int", "group", 1111, group_type="hunt"),
            {"group_type": "hunt", "group_id": 1111},
        ),
        (
            ChannelState(TS, "calling", "int", "group", 1111, group_type="ring"),
            {"group_type": "ring", "group_id": 1111, "group_queue_id": None},
        ),
        (
            ChannelState(TS, "calling", "ext", "pstn", address="0312341234"),
            {"address": "0312341234"},
        ),
        (ChannelState(TS, "bridged"), {}),
    ],
)
def test_every_channel_state_we_send_reads_as_basix_documents_it(
    state: ChannelState, data: dict[str, Any]
) -> None:
    info = _event(_client(), "added", ALICE_LEG.with_(state=state))
    assert info["state"]["name"] == state.name
    assert {
        k: v
        for k, v in info["state"]["data"].items()
        if k not in ("target_location", "target_type")
    } == data
    json_state = ALICE_LEG.with_(state=state).to_json()["state"]
    assert json_state["name"] == state.name
    expected = {**data}
    expected.pop("group_queue_id", None)
    assert {
        k: v for k, v in json_state["data"].items() if k not in ("target_location", "target_type")
    } == expected


def test_only_basix_state_names_and_last_events_exist() -> None:
    with pytest.raises(ValueError):
        ChannelState(TS, "ringing")
    with pytest.raises(ValueError):
        Channel("x", "example.com", last_event="CHANNEL_PROGRESS")


def test_terminal_and_user_events() -> None:
    client = _client()
    terminal = TerminalRow(
        "example.com", "t9", "sip:alice@10.0.0.5:5070", 1001, "sip", "baresip 3.4", True,
        "udp:127.0.0.1:5070",
    )  # fmt: skip
    assert _event(client, "added", terminal)["registered"] is True
    assert client.store["terminal"]["t9"]["user_agent"] == "baresip 3.4"
    presence = UserRow("example.com", 1001, "alice", None, "1001", None, None, "available")
    assert _event(client, "updated", presence)["presence"] == "available"
    from dataclasses import replace  # noqa: PLC0415

    _event(client, "removed", replace(terminal, registered=False))
    assert client.store["terminal"] == {}


def test_system_messages_are_strings() -> None:
    message = _client().feed(messages.system_msg_bert("connection_replaced"))
    assert (message.kind, message.text) == ("system_msg", "connection_replaced")


def test_the_client_rejects_what_we_used_to_send() -> None:
    """The frames of the first round: UTF-8 atoms for everything, event before row."""
    old = bytes([131, 104, 2, 119, 10]) + b"system_msg" + bytes([119, 3]) + b"bye"
    with pytest.raises(BasixDecodeError, match="Unexpected BERT type"):
        BasixClient().feed(old)


def test_json_frames_carry_seq_and_the_same_values() -> None:
    frame = json.loads(messages.info_event_json("updated", TRUNK_LEG.tagged("ringing"), 42))
    assert (frame["type"], frame["element"], frame["event"], frame["seq"]) == (
        "info_event",
        "channel",
        "updated",
        42,
    )
    data = frame["data"]
    client = _client()
    wire = _event(client, "updated", TRUNK_LEG.tagged("ringing"))
    # a missing end_user field is null in JSON, an empty token on the wire
    assert _nulls_as_empty(data["end_user"]) == wire["end_user"]
    assert data["other_info"] == wire["other_info"]
    assert data["state"] == wire["state"]
    assert data["origination"] == wire["origination"]
    assert data["tags"] == ["ringing"] and wire["tags"] == "ringing"
    spec = json.loads(messages.field_spec_json("terminal"))
    assert spec == {"type": "field_spec", "element": "terminal", "data": list(TerminalRow.FIELDS)}
    user = UserRow("example.com", 1001, "alice", "Ålice", "1001", None, None, "offline")
    info = json.loads(messages.initial_info_json("user", [user], 7))
    assert info["data"] == [
        {
            "id": 1001,
            "name": "alice",
            "label": "Ålice",
            "main_extension": "1001",
            "email": None,
            "did": None,
            "presence": "offline",
        }
    ]


def _nulls_as_empty(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls_as_empty(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls_as_empty(v) for v in value]
    return "" if value is None else value
