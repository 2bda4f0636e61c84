"""CTI messages in both wire formats (API §4): BERT binary frames (Basix) and JSON text
frames (``format=json``, ours, with ``seq``).

BERT messages have the shapes Basix's client library reads: ``{field_spec, Element,
[Field…]}`` with field names as atoms (it reads their ``.value``), ``{initial_info, Element,
[Row…] | {bert, nil}}``, ``{info_event, Element, Row, Event}`` and ``{system_msg, Msg}``.
Element, event and message names travel as strings, because the client compares them with
JavaScript ``===`` against strings; an atom there would never match.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

from switchboard.cti import bert
from switchboard.cti.bert import Atom, Chars
from switchboard.cti.elements import ELEMENT_FIELDS
from switchboard.cti.hub import Element, Event


@functools.cache  # a constant per element: encoded once, not per connection
def field_spec_bert(element: str) -> bytes:
    fields: list[bert.Term] = [Atom(name) for name in ELEMENT_FIELDS[element]]
    return bert.encode((Atom("field_spec"), Chars(element), fields))


def initial_info_bert(element: str, items: Iterable[Element]) -> bytes:
    rows: bert.Term = [item.to_row() for item in items] or bert.BERT_NIL
    return bert.encode((Atom("initial_info"), Chars(element), rows))


def info_event_bert(event: str, item: Element) -> bytes:
    return bert.encode((Atom("info_event"), Chars(item.ELEMENT), item.to_row(), Chars(event)))


def event_frame(event: Event, as_json: bool) -> bytes | str:
    """The event's ``info_event`` frame (JSON text or BERT), encoded once per event
    however many subscribers send it, and kept on the event."""
    key = "json" if as_json else "bert"
    frame = event.frames.get(key)
    if frame is None:
        frame = event.frames[key] = (
            info_event_json(event.event, event.item, event.seq)
            if as_json
            else info_event_bert(event.event, event.item)
        )
    return frame


def system_msg_bert(message: str) -> bytes:
    return bert.encode((Atom("system_msg"), Chars(message)))


@functools.cache
def field_spec_json(element: str) -> str:
    return _json({"type": "field_spec", "element": element, "data": list(ELEMENT_FIELDS[element])})


def initial_info_json(element: str, items: Iterable[Element], seq: int) -> str:
    data = [item.to_json() for item in items]
    return _json({"type": "initial_info", "element": element, "data": data, "seq": seq})


def info_event_json(event: str, item: Element, seq: int) -> str:
    return _json(
        {
            "type": "info_event",
            "element": item.ELEMENT,
            "event": event,
            "data": item.to_json(),
            "seq": seq,
        }
    )


def system_msg_json(message: str) -> str:
    return _json({"type": "system_msg", "data": message})


def _json(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
