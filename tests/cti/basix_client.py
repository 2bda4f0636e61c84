"""A model of Basix's own CTI client library, the oracle for the BERT frames we send (API §4).

It reproduces, in our own Python, what ``brastelcloud/basix_ws_cti.js`` does with one binary
WebSocket frame: ``lib/bert.js`` decodes the external term format, ``lib/message_parser.js``
dispatches ``field_spec`` / ``initial_info`` / ``info_event`` / ``system_msg``,
``lib/utils.js`` (``create_entity_info``) turns a row into an object, and ``lib/cti.js`` keeps
the store. It never uses our encoder: a frame passes only if Basix's web apps would show it
right.

Rules it shares with the JS:
- The frame is read as a binary string, one character per byte, so every atom name, STRING
  (107) and BINARY (109) is Latin-1 text here: UTF-8 arrives as mojibake unless the client
  decodes it later (``label`` of ``user``/``group`` by UTF-8, ``end_user`` and
  ``origination`` by ``decodeURIComponent``). Any other non-ASCII text stays mojibake.
- Tags 97, 98, 110, 111, 99, 100, 115, 107, 109, 104, 108, 106 only; atoms ``true``/``false``
  become booleans, the atom ``undefined`` becomes ``None`` (JavaScript ``undefined``).
- Rows are keyed by ``id`` for ``user``/``group``/``group_member``/``terminal``, by ``uuid``
  otherwise; the store by ``id || uuid || (group_member: "user_id:group_id") || name``.
- Avatars are never adjusted: message_parser.js passes a boolean where utils.js expects
  ``opts.base_url``.
- Only ``channel`` gets ``other_info`` translated; ``channel``, ``queued_channel`` and
  ``parked_channel`` get ``state``/``target``/``end_user``/``origination`` translated;
  ``channel_waiting`` rows stay as normalised (its ``state`` is a plain list).
- A channel whose ``last_event`` is ``CHANNEL_HANGUP`` leaves the channel store even on an
  ``updated`` event; a ``removed`` domain is ignored.

Stricter than the JS, raising ``BasixDecodeError`` where it would throw *or silently show
something wrong*:
- A length or SMALL_INTEGER whose first byte is above 128 (bert.js reads it as negative, so
  integers 129..255 sent as tag 97 arrive as -127..-1); an INTEGER whose first byte is 128
  (read as positive); a bignum beyond 2**53 - 1 (a JS number loses digits); a bignum sign byte
  other than 0/1; an old float that is not a plain finite number padded with NULs; truncated
  input (substring past the end silently yields shorter text); tag 105 (bert.js dispatches it
  to ``decode_large_tuple``, which it never defines, so the JS throws a TypeError).
- The top level must be a tuple of the exact arity of its kind; unknown kinds (and ``msg``,
  which cti.js has no callback for) raise instead of being logged and dropped.
- Element and event names must be STRINGs: the JS compares them with ``===``/``includes``,
  so an atom or binary silently skips the channel post-processing or turns ``removed`` into
  an update. ``system_msg`` text must be a STRING too.
- Field names must be atoms or binaries (a STRING has no ``.value``), non-empty, no
  duplicates; rows need a field_spec first (also for an empty ``initial_info``) and exactly
  one value per field (the JS silently misaligns otherwise).
- A list as a value in a row raises (``normalize_data`` reads ``.value`` of an array: the
  value vanishes). A row key that is missing or repeated, or a row the store would drop or
  file under ``undefined``, raises.
- ``state``, ``target``, ``other_info`` must be tuples holding every position the JS reads;
  state names and channel ``last_event`` must be Basix's; ``other_info`` has 7 items and
  type ``user`` or ``end_user``; ``end_user`` and ``origination`` must be strings whose tokens
  are ASCII (a raw non-ASCII character passes ``decodeURIComponent`` as mojibake) and decode
  as percent-encoded UTF-8 (URIError in the JS); an end_user item has 4 or 5 tokens and the
  ``_MANY_:<count>`` head is digits only; a ``label`` that is truthy must be valid UTF-8 text.

Ours beyond the JS: an end_user item keeps its 5th token as ``prefecture`` (API §4; the JS
drops it; ``None`` when absent).

The store mirrors cti.js, with one shape note: cti.js keeps ``domain`` as an id → object map
after ``initial_info`` but replaces it with the domain object itself after a domain
``info_event``; here the latter is ``store["domain"] == {"": domain_object}`` and
``get_domain()`` returns what cti.js's ``get_domain()`` would.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias


class BasixDecodeError(Exception):
    """A frame Basix's client would throw on, or would silently mis-handle."""


@dataclass(frozen=True, slots=True)
class Atom:
    name: str | bool  # bert.js turns the atoms true/false into booleans


@dataclass(frozen=True, slots=True)
class Binary:
    value: str  # Latin-1: one character per byte


@dataclass(frozen=True, slots=True)
class Tuple:
    items: tuple[Term, ...]


Term: TypeAlias = "Atom | Binary | Tuple | str | int | float | list[Term]"


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded message. ``info``: the entity (info_event) or key → entity (initial_info)."""

    kind: str  # field_spec | initial_info | info_event | system_msg
    element: str | None = None
    event: str | None = None  # info_event: added | updated | removed
    info: dict[str, Any] = field(default_factory=dict)
    fields: tuple[str, ...] = ()  # field_spec
    text: str | None = None  # system_msg


# Basix's state names (utils.js translate_state) and channel last_event values.
STATE_NAMES = frozenset(
    [
        "calling",
        "bridged",
        "voicemail",
        "checking_voicemail",
        "calling_siptermination",
        "ivr",
        "system_operation",
        "conference",
        "xml_ivr",
        "park",
        "eavesdrop",
        "plivo",
    ]
)
LAST_EVENTS = frozenset(
    [
        "STATE_CHANGE",
        "CHANNEL_ANSWER",
        "CHANNEL_HANGUP",
        "CHANNEL_BRIDGE",
        "CHANNEL_PARK",
        "CHANNEL_ORIGINATE",
        "NEW_CHANNEL",
        "CHANNEL_APPLICATION",
    ]
)
EVENTS = ("added", "updated", "removed")
# The elements cti.js keeps a store for.
STORE_ELEMENTS = tuple(
    [
        "domain",
        "channel",
        "channel_waiting",
        "queued_channel",
        "parked_channel",
        "user",
        "group",
        "group_member",
        "terminal",
    ]
)
_ID_KEYED = frozenset(("user", "group", "group_member", "terminal"))
_TRANSLATED = frozenset(("channel", "queued_channel", "parked_channel"))
_CHANNELS = _TRANSLATED | {"channel_waiting"}
_MAX_SAFE_INTEGER = 2**53 - 1
_FLOAT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_MANY = re.compile(r"_MANY_:([0-9]+)")


# --- bert.js: the external term format -------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, count: int, what: str) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise BasixDecodeError(f"truncated BERT: {what} needs {count} bytes at {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def length(self, count: int, what: str) -> int:
        raw = self.take(count, what)
        if raw[0] > 128:
            raise BasixDecodeError(
                f"{what} {int.from_bytes(raw)}: bert.js reads a first byte above 128 as negative"
            )
        return int.from_bytes(raw)

    def text(self, count: int, what: str) -> str:
        return self.take(count, what).decode("latin-1")


def decode_term(frame: bytes) -> Term:
    """Decode one frame as bert.js does (a binary string), failing where it would mislead."""
    if not frame or frame[0] != 131:
        raise BasixDecodeError("Not a valid BERT.")
    reader = _Reader(frame, 1)
    term = _decode(reader)
    if reader.pos != len(frame):
        raise BasixDecodeError(f"Invalid BERT. ({len(frame) - reader.pos} trailing bytes)")
    return term


def _decode(reader: _Reader) -> Term:
    tag = reader.take(1, "tag")[0]
    decoder = _DECODERS.get(tag)
    if decoder is None:
        # bert.js names the byte after the tag here; the tag is the useful number.
        raise BasixDecodeError(f"Unexpected BERT type: {tag}")
    return decoder(reader)


def _small_integer(reader: _Reader) -> Term:
    value = reader.take(1, "SMALL_INTEGER")[0]
    if value > 128:
        raise BasixDecodeError(f"SMALL_INTEGER {value}: bert.js reads it as {value - 256}")
    return value


def _integer(reader: _Reader) -> Term:
    raw = reader.take(4, "INTEGER")
    if raw[0] == 128:
        value = int.from_bytes(raw, signed=True)
        raise BasixDecodeError(f"INTEGER {value}: bert.js reads it as {value + 2**32}")
    return int.from_bytes(raw, signed=True)


def _big(reader: _Reader, count: int) -> Term:
    sign = reader.take(1, "bignum sign")[0]
    if sign not in (0, 1):
        raise BasixDecodeError(f"bignum sign byte {sign}")
    value = int.from_bytes(reader.take(count, "bignum digits"), "little")
    if value > _MAX_SAFE_INTEGER:
        raise BasixDecodeError(f"bignum {value} is beyond a JavaScript number's exact range")
    return -value if sign else value


def _float(reader: _Reader) -> Term:
    text = reader.text(31, "FLOAT").rstrip("\0")
    if not _FLOAT.fullmatch(text):
        raise BasixDecodeError(f"FLOAT {text!r} is not a NUL-padded number")
    value = float(text)
    if not math.isfinite(value):
        raise BasixDecodeError(f"FLOAT {text!r} is not finite")
    return value


def _atom(reader: _Reader, count: int) -> Term:
    name = reader.text(reader.length(count, "atom length"), "atom")
    return Atom(True if name == "true" else False if name == "false" else name)


def _tuple(reader: _Reader) -> Term:
    arity = reader.length(1, "SMALL_TUPLE arity")
    return Tuple(tuple(_decode(reader) for _ in range(arity)))


def _large_tuple(reader: _Reader) -> Term:
    raise BasixDecodeError(
        "Unexpected BERT type: 105 (LARGE_TUPLE: bert.js calls decode_large_tuple, "
        "which it never defines)"
    )


def _list(reader: _Reader) -> Term:
    count = reader.length(4, "LIST length")
    items = [_decode(reader) for _ in range(count)]
    if reader.take(1, "LIST tail")[0] != 106:
        raise BasixDecodeError("List does not end with NIL!")
    return items


_DECODERS: dict[int, Callable[[_Reader], Term]] = {
    97: _small_integer,
    98: _integer,
    110: lambda r: _big(r, r.length(1, "SMALL_BIG length")),
    111: lambda r: _big(r, r.length(4, "LARGE_BIG length")),
    99: _float,
    100: lambda r: _atom(r, 2),
    115: lambda r: _atom(r, 1),
    107: lambda r: r.text(r.length(2, "STRING length"), "STRING"),
    109: lambda r: Binary(r.text(r.length(4, "BINARY length"), "BINARY")),
    104: _tuple,
    105: _large_tuple,
    108: _list,
    106: lambda r: [],
}


# --- JavaScript value semantics --------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float | str):
        return bool(value) and not (isinstance(value, float) and math.isnan(value))
    return True  # arrays and objects


def _js_key(value: Any, what: str) -> str:
    """``String(value)`` as a property key, for the values a key may sensibly be."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    raise BasixDecodeError(f"{what} {value!r} would be filed under its JavaScript string form")


def _loose_name(term: Term) -> str | None:
    """The string a term equals under JavaScript ``==`` (atoms compare by their name)."""
    if isinstance(term, Atom) and isinstance(term.name, str):
        return term.name
    return term if isinstance(term, str) else None


def _decode_uri_component(token: str) -> str:
    """``decodeURIComponent``: %XX runs are UTF-8; raises where the JS throws URIError and on
    raw non-ASCII (which the JS passes through as mojibake)."""
    out = bytearray()
    i = 0
    while i < len(token):
        char = token[i]
        if char == "%":
            digits = token[i + 1 : i + 3]
            if len(digits) != 2 or not set(digits) <= set(string.hexdigits):
                raise BasixDecodeError(f"URIError: malformed escape in {token!r}")
            out.append(int(digits, 16))
            i += 3
        elif ord(char) < 128:
            out.append(ord(char))
            i += 1
        else:
            raise BasixDecodeError(f"raw non-ASCII {char!r} in URL-encoded token {token!r}")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BasixDecodeError(f"URIError: {token!r} is not UTF-8 ({exc.reason})") from exc


# --- utils.js: rows into objects -------------------------------------------------------------


def _normalize(term: Term, where: str) -> Any:
    if isinstance(term, Atom):
        return None if term.name == "undefined" else term.name
    if isinstance(term, Tuple):
        return [_normalize(item, where) for item in term.items]
    if isinstance(term, Binary):
        return term.value
    if isinstance(term, list):
        raise BasixDecodeError(f"{where}: a list in a row is undefined to the client")
    return term


def create_entity_info(element: str, row: Term, fields: list[str]) -> dict[str, Any]:
    """A row → the object the client builds (utils.js ``create_entity_info``)."""
    if isinstance(row, Tuple):
        values: list[Term] | tuple[Term, ...] = row.items
    elif isinstance(row, list):
        values = row
    else:
        raise BasixDecodeError(f"{element} row must be a list or tuple, not {row!r}")
    if len(values) != len(fields):
        raise BasixDecodeError(
            f"{element} row has {len(values)} values for {len(fields)} fields in its field_spec"
        )
    info = {
        name: _normalize(value, f"{element}.{name}")
        for name, value in zip(fields, values, strict=True)
    }
    _post_process(element, info)
    return info


def _post_process(element: str, info: dict[str, Any]) -> None:
    if element == "channel" and _truthy(info.get("other_info")):
        info["other_info"] = _other_info(info["other_info"])
    if element in _TRANSLATED:
        for name, translate in _TRANSLATIONS:
            if _truthy(info.get(name)):
                info[name] = translate(info[name])
    elif element in ("user", "group"):
        info["label"] = _utf8_decode(info.get("label"))  # the JS sets the key even if absent
    last_event = info.get("last_event")
    if element in _CHANNELS and last_event is not None and last_event not in LAST_EVENTS:
        raise BasixDecodeError(f"{element}.last_event {last_event!r} is not Basix's")


def _at(values: list[Any], index: int, what: str) -> Any:
    if index >= len(values):
        raise BasixDecodeError(f"{what}: no item {index} in {values!r} (JavaScript undefined)")
    return values[index]


def _items(value: Any, what: str, minimum: int) -> list[Any]:
    if not isinstance(value, list) or len(value) < minimum:
        raise BasixDecodeError(f"{what} must be a tuple of at least {minimum}, not {value!r}")
    return value


def _utf8_decode(label: Any) -> Any:
    if not _truthy(label):
        return label
    if not isinstance(label, str):
        raise BasixDecodeError(f"label {label!r} is not text")
    try:
        return label.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BasixDecodeError(f"label {label!r} is not UTF-8 ({exc.reason})") from exc


def _other_info(value: Any) -> dict[str, Any]:
    data = _items(value, "other_info", 7)
    if len(data) != 7:
        raise BasixDecodeError(f"other_info has {len(data)} items, not 7")
    kind = data[0]
    out = {
        "type": kind,
        "direction": data[2],
        "peer_location": data[3],
        "address": data[4],
        "offer_timestamp": data[5],
    }
    if kind == "user":
        out.update(user_id=data[1], group_id=data[6])
    elif kind == "end_user":
        out["end_user"] = _end_user(data[1]) if _truthy(data[1]) else None
    else:
        raise BasixDecodeError(f"other_info type {kind!r} is neither user nor end_user")
    return out


_STATE_DATA: dict[str, tuple[tuple[str, int], ...]] = {
    "voicemail": (("target_type", 2), ("target_id", 3), ("target_name", 4)),
    "checking_voicemail": (("target_name", 2),),
    "calling_siptermination": (("url", 2),),
    "ivr": (("ivr_id", 2),),
    "system_operation": (("operation", 2),),
    "conference": (("room_id", 2),),
    "park": (("slot", 2), ("parker_id", 4), ("parker_name", 5)),
    "eavesdrop": (("uuid", 2), ("eavesdrop_state", 3)),
    "bridged": (),
    "xml_ivr": (),
    "plivo": (),
}


def _state(value: Any) -> dict[str, Any]:
    state = _items(value, "state", 2)
    name = state[1]
    if not isinstance(name, str) or name not in STATE_NAMES:
        raise BasixDecodeError(f"state name {name!r} is not Basix's")
    if name == "calling":
        data = _calling(state)
    else:
        data = {key: _at(state, index, f"state {name}") for key, index in _STATE_DATA[name]}
    return {"ts": state[0], "name": name, "data": data}


def _calling(state: list[Any]) -> dict[str, Any]:
    target_type = _at(state, 3, "state calling")
    data = {"target_location": _at(state, 2, "state calling"), "target_type": target_type}
    if target_type not in ("user", "group", "pstn", "bridged_endpoint"):
        return data  # the JS reads no target data for other types
    target = _items(_at(state, 4, "state calling"), f"calling {target_type} target data", 1)
    what = f"calling {target_type} target data"
    if target_type == "user":
        data["user_id"] = target[0]
    elif target_type == "group":
        data.update(group_type=target[0], group_id=_at(target, 1, what))
        if data["group_type"] == "ring":
            data["group_queue_id"] = _at(target, 4, what)
    elif target_type == "pstn":
        data["address"] = target[0]
    else:
        host, port = target[0], _at(target, 1, what)
        if not isinstance(host, str) or not isinstance(port, str):
            raise BasixDecodeError(f"{what} {target!r}: the JS joins them as text")
        data["address"] = f"{host}@{port}"
    return data


def _target(value: Any) -> dict[str, Any]:
    target = _items(value, "target", 4)
    return {"type": target[0], "id": target[1], "name": target[2], "address": target[3]}


def _end_user(value: Any) -> dict[str, Any]:
    if not isinstance(value, str):
        raise BasixDecodeError(f"end_user {value!r} is not a string")
    if not value.startswith("_MANY_:"):
        return {"count": 1, "items": [_end_user_item(value)]}
    head, *items = value.split("|")
    many = _MANY.fullmatch(head)
    if many is None:
        raise BasixDecodeError(f"end_user head {head!r} is not _MANY_:<count>")
    return {"count": int(many[1]), "items": [_end_user_item(item) for item in items]}


def _end_user_item(text: str) -> dict[str, Any]:
    tokens = [_decode_uri_component(token.replace("+", "%20")) for token in text.split("*")]
    if len(tokens) not in (4, 5):
        raise BasixDecodeError(f"end_user item {text!r} has {len(tokens)} tokens, not 4 or 5")
    return {
        "id": tokens[0],
        "name": tokens[1],
        "organization": tokens[2],
        "avatar": tokens[3],
        "prefecture": tokens[4] if len(tokens) == 5 else None,  # ours, API §4
    }


def _origination(value: Any) -> list[str]:
    if not isinstance(value, str):
        raise BasixDecodeError(f"origination {value!r} is not a string")
    return [_decode_uri_component(token) for token in value.split("*")]  # no '+' → ' ' here


_TRANSLATIONS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("state", _state),
    ("target", _target),
    ("end_user", _end_user),
    ("origination", _origination),
)


# --- message_parser.js and cti.js ------------------------------------------------------------


def _element(term: Term) -> str:
    if not isinstance(term, str):
        raise BasixDecodeError(f"element name {term!r} must be a STRING: the client uses ===")
    return term


def _field_name(term: Term) -> str:
    if isinstance(term, Atom) and isinstance(term.name, str) and term.name:
        return term.name
    if isinstance(term, Binary) and term.value:
        return term.value
    raise BasixDecodeError(f"field name {term!r} must be an atom or binary (JS .value)")


def _is_bert_nil(term: Term) -> bool:
    return (
        isinstance(term, Tuple)
        and len(term.items) == 2
        and _loose_name(term.items[0]) == "bert"
        and _loose_name(term.items[1]) == "nil"
    )


def _store_key(element: str, info: dict[str, Any]) -> str:
    """cti.js: ``id || uuid || (group_member ? `${user_id}:${group_id}` : name || id)``."""
    for name in ("id", "uuid"):
        if _truthy(info.get(name)):
            return _js_key(info[name], f"{element}.{name}")
    if element == "group_member":
        user = _js_key(info.get("user_id"), "group_member.user_id")
        group = _js_key(info.get("group_id"), "group_member.group_id")
        return f"{user}:{group}"
    if _truthy(info.get("name")):
        return _js_key(info["name"], f"{element}.name")
    raise BasixDecodeError(f"{element} {info!r} has no id, uuid or name: cti.js drops it")


class BasixClient:
    """Basix's client as one object: feed it binary frames, read its store and its log.

    ``store``: element → key → object, as cti.js keeps it (``domain``: see the module doc).
    ``messages``: every decoded message in order. A frame that raises changes nothing.
    """

    def __init__(self) -> None:
        self.store: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in STORE_ELEMENTS}
        self.messages: list[Message] = []
        self.system_messages: list[str] = []
        self.field_specs: dict[str, list[str]] = {}
        self._domain_is_object = False

    def feed(self, frame: bytes) -> Message:
        message = self._interpret(decode_term(frame))
        self._apply(message)
        self.messages.append(message)
        return message

    def get_domain(self) -> dict[str, Any]:
        """cti.js ``get_domain()``: the domain object after a domain info_event, else the
        id → object map ``initial_info`` filled."""
        domain = self.store["domain"]
        return domain[""] if self._domain_is_object else domain

    def _interpret(self, term: Term) -> Message:
        if not isinstance(term, Tuple) or not term.items:
            raise BasixDecodeError(f"a message is a tuple {{Kind, …}}, not {term!r}")
        kind = _loose_name(term.items[0])
        arity = {"field_spec": 3, "initial_info": 3, "info_event": 4, "system_msg": 2}
        if kind not in arity:
            raise BasixDecodeError(f"Unknown message type {term.items[0]!r}: the client drops it")
        if len(term.items) != arity[kind]:
            raise BasixDecodeError(f"{kind} has {len(term.items)} items, not {arity[kind]}")
        if kind == "system_msg":
            text = term.items[1]
            if not isinstance(text, str):
                raise BasixDecodeError(f"system_msg {text!r} must be a STRING")
            return Message(kind, text=text)
        element = _element(term.items[1])
        if kind == "field_spec":
            return Message(kind, element, fields=self._field_spec(term.items[2]))
        fields = self.field_specs.get(element)
        if fields is None:
            raise BasixDecodeError(f"{kind} for {element} before its field_spec")
        if kind == "initial_info":
            return Message(kind, element, info=self._initial_rows(element, term.items[2], fields))
        event = term.items[3]
        if not isinstance(event, str) or event not in EVENTS:
            raise BasixDecodeError(f"event {event!r} must be a STRING among {EVENTS}")
        info = create_entity_info(element, term.items[2], fields)
        return Message(kind, element, event, info)

    @staticmethod
    def _field_spec(term: Term) -> tuple[str, ...]:
        if not isinstance(term, list) or not term:
            raise BasixDecodeError(f"field_spec fields must be a non-empty list, not {term!r}")
        names = tuple(_field_name(item) for item in term)
        if len(set(names)) != len(names):
            raise BasixDecodeError(f"field_spec repeats a field: {names}")
        return names

    @staticmethod
    def _initial_rows(element: str, rows: Term, fields: list[str]) -> dict[str, Any]:
        if _is_bert_nil(rows):
            return {}
        if not isinstance(rows, list):
            raise BasixDecodeError(f"initial_info rows must be a list or {{bert, nil}}: {rows!r}")
        key_field = "id" if element in _ID_KEYED else "uuid"
        infos: dict[str, Any] = {}
        for row in rows:
            info = create_entity_info(element, row, fields)
            if info.get(key_field) is None:
                raise BasixDecodeError(f"{element} row without {key_field}: keyed 'undefined'")
            key = _js_key(info[key_field], f"{element}.{key_field}")
            if key in infos:
                raise BasixDecodeError(f"{element} rows repeat {key_field} {key!r}")
            infos[key] = info
        return infos

    def _apply(self, message: Message) -> None:
        element = message.element or ""
        if message.kind == "field_spec":
            self.field_specs[element] = list(message.fields)
        elif message.kind == "system_msg":
            self.system_messages.append(message.text or "")
        elif message.kind == "initial_info":
            self._initial_info(element, message.info)
        else:
            self._info_event(element, message.info, message.event or "")

    def _initial_info(self, element: str, infos: dict[str, Any]) -> None:
        if element not in self.store:
            return  # cti.js keeps no store for it
        if element == "channel":
            filled = dict(infos)
        else:
            filled = {}
            for info in infos.values():
                key = _store_key(element, info)
                if key in filled:
                    raise BasixDecodeError(f"{element} rows share the store key {key!r}")
                filled[key] = info
        self.store[element] = filled
        if element == "domain":
            self._domain_is_object = False

    def _info_event(self, element: str, info: dict[str, Any], event: str) -> None:
        if element == "domain":
            if event != "removed":  # cti.js ignores a removed domain
                self.store["domain"] = {"": info}
                self._domain_is_object = True
            return
        hangup = element == "channel" and info.get("last_event") == "CHANNEL_HANGUP"
        hangup_key = _js_key(info.get("uuid"), "channel.uuid") if hangup else None
        element_store = self.store.get(element)
        if element_store is not None:
            key = _store_key(element, info)
            if event == "removed":
                element_store.pop(key, None)
            else:
                element_store[key] = info
        if hangup_key is not None:
            self.store["channel"].pop(hangup_key, None)
