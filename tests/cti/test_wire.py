"""BERT frames decoded by an independent decoder (erlang_py) into the Basix shapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import erlang

from switchboard.cti import bert, messages
from switchboard.cti.bert import Atom
from switchboard.cti.channels import FIELDS, Channel, ChannelState, EndUserItem, Target

ALICE_LEG = Channel(
    uuid="6b1e-…", domain="example.com", calling_name="Support", called_number="alice",
    offer_timestamp=1_795_000_000_123_456, user_id=1001, group_id=1111,
    state=ChannelState(1_795_000_000_200_000, "calling", "int", "user", 1001),
    target=Target("user", 1001, "alice"), last_event="STATE_CHANGE", call_id="6b1e-…",
)  # fmt: skip
TRUNK_LEG = Channel(
    uuid="d-1", domain="example.com", peer_location="external", called_number="0312341234",
    other_uuid="6b1e-…", state=ChannelState(7, "bridged"),
    end_user=(EndUserItem(id="#1234", name="Tim Tyler", organization="Thimble & Co"),),
    tags=("monitoring_required", "vip"), last_event="CHANNEL_HANGUP",
    last_event_data="recv_bye,NORMAL_CLEARING",
)  # fmt: skip


def _value(term: Any) -> Any:
    """erlang_py objects → plain Python, as Basix's client normalises them."""
    if isinstance(term, erlang.OtpErlangAtom):
        value = term.value
        name = value.decode() if isinstance(value, bytes) else value
        return None if name == "undefined" else name
    if isinstance(term, erlang.OtpErlangList):
        return [_value(t) for t in term.value]
    if isinstance(term, tuple):
        return tuple(_value(t) for t in term)
    if isinstance(term, list):
        return [_value(t) for t in term]
    if isinstance(term, erlang.OtpErlangBinary):
        return term.value.decode()
    if isinstance(term, bytes):
        return term.decode()
    return term


def _decode(frame: bytes) -> Any:
    return _value(erlang.binary_to_term(frame))


def test_scalars_and_containers() -> None:
    assert _decode(bert.encode([1, 300, -5, 2**40, -(2**70), 1.5, "héllo", (), []])) == [
        1, 300, -5, 2**40, -(2**70), 1.5, "héllo", (), [],
    ]  # fmt: skip
    assert _decode(bert.encode((Atom("ok"), None, True))) == ("ok", None, True)  # atom true


def test_field_spec_then_rows_in_that_order() -> None:
    kind, element, fields = _decode(messages.field_spec_bert())
    assert (kind, element, tuple(fields)) == ("field_spec", "channel", FIELDS)
    kind, element, event, row = _decode(messages.info_event_bert("added", ALICE_LEG))
    assert (kind, element, event) == ("info_event", "channel", "added")
    channel = dict(zip(fields, row, strict=True))
    assert channel["uuid"] == "6b1e-…" and channel["offer_timestamp"] == 1_795_000_000_123_456
    assert channel["direction"] == "outbound" and channel["answer_timestamp"] is None
    # state as Basix's translate_state reads it: ts, name, location, type, target data
    assert channel["state"] == (1_795_000_000_200_000, "calling", "int", "user", (1001,))
    assert channel["target"] == ("user", 1001, "alice", None)


def test_end_user_and_tags_travel_as_basix_strings() -> None:
    fields = list(FIELDS)
    row = _decode(messages.info_event_bert("removed", TRUNK_LEG))[3]
    channel = dict(zip(fields, row, strict=True))
    identifier, name, organization, avatar, prefecture = channel["end_user"].split("*")
    assert [unquote(identifier), unquote(name), unquote(organization)] == [
        "#1234", "Tim Tyler", "Thimble & Co",
    ]  # fmt: skip
    assert avatar == prefecture == ""
    assert channel["tags"] == "monitoring_required;vip"
    assert channel["state"] == (7, "bridged")
    assert channel["last_event_data"] == "recv_bye,NORMAL_CLEARING"
    several = Channel("x", "example.com", end_user=(EndUserItem(name="A"), EndUserItem(name="B")))
    wire = dict(zip(fields, _decode(messages.info_event_bert("added", several))[3], strict=True))
    assert wire["end_user"].startswith("_MANY_:2|")


def test_an_empty_initial_info_is_bert_nil_and_system_messages() -> None:
    assert _decode(messages.initial_info_bert([])) == ("initial_info", "channel", ("bert", "nil"))
    kind, _, rows = _decode(messages.initial_info_bert([ALICE_LEG, TRUNK_LEG]))
    assert kind == "initial_info" and len(rows) == 2
    assert _decode(messages.system_msg_bert("connection_replaced")) == (
        "system_msg", "connection_replaced",
    )  # fmt: skip


def test_json_frames_carry_seq_and_the_api_shapes() -> None:
    import json  # noqa: PLC0415

    frame = json.loads(messages.info_event_json("updated", TRUNK_LEG, 42))
    assert (frame["type"], frame["element"], frame["event"], frame["seq"]) == (
        "info_event", "channel", "updated", 42,
    )  # fmt: skip
    data = frame["data"]
    item = {"id": "#1234", "name": "Tim Tyler", "organization": "Thimble & Co", "avatar": None}
    assert data["end_user"] == {"count": 1, "items": [item]}
    assert data["state"] == {"ts": 7, "name": "bridged", "data": {}}
    assert data["tags"] == ["monitoring_required", "vip"]
