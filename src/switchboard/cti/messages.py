"""CTI messages in both wire formats (API §4): BERT binary frames (Basix) and JSON text
frames (``format=json``, ours, with ``seq``)."""

from __future__ import annotations

import json
from typing import Any

from switchboard.cti import bert
from switchboard.cti.bert import Atom
from switchboard.cti.channels import FIELDS, Channel

ELEMENT = "channel"


def field_spec_bert() -> bytes:
    return bert.encode((Atom("field_spec"), Atom(ELEMENT), [Atom(f) for f in FIELDS]))


def initial_info_bert(channels: list[Channel]) -> bytes:
    rows: bert.Term = [c.to_row() for c in channels] if channels else bert.BERT_NIL
    return bert.encode((Atom("initial_info"), Atom(ELEMENT), rows))


def info_event_bert(event: str, channel: Channel) -> bytes:
    return bert.encode((Atom("info_event"), Atom(ELEMENT), Atom(event), channel.to_row()))


def system_msg_bert(message: str) -> bytes:
    return bert.encode((Atom("system_msg"), Atom(message)))


def field_spec_json() -> str:
    return _json({"type": "field_spec", "element": ELEMENT, "data": list(FIELDS)})


def initial_info_json(channels: list[Channel], seq: int) -> str:
    return _json({"type": "initial_info", "element": ELEMENT,
                  "data": [c.to_json() for c in channels], "seq": seq})  # fmt: skip


def info_event_json(event: str, channel: Channel, seq: int) -> str:
    return _json({"type": "info_event", "element": ELEMENT, "event": event,
                  "data": channel.to_json(), "seq": seq})  # fmt: skip


def system_msg_json(message: str) -> str:
    return _json({"type": "system_msg", "data": message})


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
