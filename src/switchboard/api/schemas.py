"""The JSON of the Basix methods as named JSON Schemas (API §1, §2, §2b, §2c, §4): request
bodies, answers and the error envelope.

Handlers read their raw body and validate it by hand, so that every error stays in Basix's
envelope (never FastAPI's 422): these schemas document, they do not validate. They are
``components.schemas`` of the OpenAPI document (``api/openapi.py`` puts them there) and
refer to each other with ``ref``. Each is named after what it is (``CallGroupRequest``,
``CallAnswer``, ``Destination``): a client generator makes a class of each, by that name.
An answer's ``result_code`` is required and constant (0, or 500 in ``ErrorAnswer``), so a
client tells a success from an error by the schema alone.
"""

from __future__ import annotations

from typing import Any

from switchboard.api.selectors import GROUP_SELECTORS, USER_SELECTORS

JsonSchema = dict[str, Any]


def ref(name: str) -> JsonSchema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def _selectors(keys: tuple[str, ...], what: str) -> JsonSchema:
    return {
        key: {"type": ["string", "integer"], "description": f"selects {what} by {key}"}
        for key in keys
    }


def _answer(result_code: int, properties: JsonSchema, description: str) -> JsonSchema:
    return {
        "type": "object",
        "description": description,
        "required": ["result_code", *properties],
        "properties": {"result_code": {"type": "integer", "const": result_code}, **properties},
    }


_SECONDS = {"type": "integer", "minimum": 1, "maximum": 3600}
_CALLING_NAME = {
    "type": "string",
    "maxLength": 64,
    "description": "display name the rung phones show (printable ASCII, no quote or backslash)",
}
_URL = {"type": "string", "format": "uri"}
_CALL_URLS = {
    "callback_url": {
        **_URL,
        "description": "http(s) URL that gets the call's outcome (API §3), once",
    },
    "call_events_url": {**_URL, "description": "http(s) URL that gets the end-of-call event"},
}
_GROUP_CONTEXT = _selectors(GROUP_SELECTORS, "the group context (the channels' group_id)")
_CHANNEL = {"type": "string", "description": "a channel's uuid, as a call method answered it"}

COMPONENTS: dict[str, JsonSchema] = {
    "EndUser": {
        "type": "object",
        "description": "who is at the far end, shown on the channel (ws_cti) and to the phones",
        "properties": {
            "id": {"type": ["string", "integer"]},
            **{key: {"type": "string"} for key in ("name", "organization", "avatar", "prefecture")},
        },
    },
    "PstnNumber": {
        "type": "object",
        "description": "a number on the PSTN, with the caller ID it is shown",
        "required": ["called_number"],
        "properties": {
            "called_number": {"type": "string", "example": "0312341234"},
            "calling_number": {
                "type": "string",
                "description": "one of the domain's calling_numbers",
            },
            "end_user": ref("EndUser"),
        },
    },
    "Destination": {
        "description": (
            "where the call goes (DESIGN §5): a string naming a user, group, extension, DID "
            "or PSTN number, with an optional {name=…,id=…,organization=…,avatar=…,"
            "prefecture=…,calling_number=…} prefix; or a PSTN number as an object"
        ),
        "oneOf": [
            {"type": "string", "example": "{name=James Hudson}0312341234"},
            ref("PstnNumber"),
        ],
    },
    "CallGroupRequest": {
        "type": "object",
        "description": (
            "exactly one group selector (several only if they name the same group) and a "
            "destination; timeouts and strategy default to the group's"
        ),
        "required": ["destination"],
        "properties": {
            **_selectors(GROUP_SELECTORS, "the group to ring"),
            "destination": ref("Destination"),
            "answer_timeout": {**_SECONDS, "description": "seconds the whole hunt may take"},
            "member_answer_timeout": {**_SECONDS, "description": "seconds each member rings"},
            "calling_name": _CALLING_NAME,
            **_CALL_URLS,
            "strategy": {"type": "string", "enum": ["hunt", "ring"]},
        },
    },
    "CallUserRequest": {
        "type": "object",
        "description": "one user selector and a destination; all the user's terminals ring",
        "required": ["destination"],
        "properties": {
            **_selectors(USER_SELECTORS, "the user to ring"),
            **_GROUP_CONTEXT,
            "group_resolver": {
                "type": "string",
                "enum": ["*"],
                "description": "the group context is the first group the user is a member of",
            },
            "destination": ref("Destination"),
            "answer_timeout": {**_SECONDS, "default": 180},
            "auto_answer": {
                "type": "boolean",
                "default": False,
                "description": "asks SIP terminals to answer by themselves",
            },
            "calling_name": _CALLING_NAME,
            **_CALL_URLS,
        },
    },
    "CallExternalRequest": {
        "type": "object",
        "description": "ring a PSTN number first, then connect it to a user or group",
        "required": ["target", "destination"],
        "properties": {
            **_GROUP_CONTEXT,
            "target": {
                "description": "the PSTN number rung first (a string may take the {…} prefix)",
                "oneOf": [{"type": "string", "example": "0312341234"}, ref("PstnNumber")],
            },
            "destination": {"type": "string", "description": "a user, group or extension"},
            "answer_timeout": {**_SECONDS, "default": 180},
            "calling_name": _CALLING_NAME,
            **_CALL_URLS,
        },
    },
    "InitiateCallRequest": {
        "type": "object",
        "description": (
            "Basix's older method: user_name behaves as call_user, pstn_number as "
            "call_external (give one of them)"
        ),
        "required": ["destination"],
        "properties": {
            "user_name": {"type": "string"},
            "pstn_number": {"type": "string"},
            "destination": ref("Destination"),
            "ani": {"type": "string", "description": "caller ID toward the PSTN"},
            "group_name": {"type": "string", "description": "the group context"},
            "answer_timeout": {**_SECONDS, "default": 180},
            "calling_name": _CALLING_NAME,
            **_CALL_URLS,
        },
    },
    "HangupRequest": {
        "type": "object",
        "required": ["uuid"],
        "properties": {"uuid": _CHANNEL},
    },
    "TransferRequest": {
        "type": "object",
        "description": "the channel is released and its peer connected to a user or destination",
        "required": ["uuid"],
        "properties": {
            "uuid": {**_CHANNEL, "description": "the channel released; its peer moves"},
            "user_id": {"type": ["integer", "string"]},
            "user_name": {"type": "string"},
            "destination": ref("Destination"),
        },
    },
    "ParkRequest": {
        "type": "object",
        "description": "the channel is released and its peer waits; the parker rings again",
        "required": ["uuid"],
        "properties": {
            "uuid": {**_CHANNEL, "description": "the channel released; its peer waits"},
            "timeout": {**_SECONDS, "default": 60},
        },
    },
    "WsTicketRequest": {
        "type": "object",
        "required": ["uri"],
        "properties": {
            "uri": {
                "type": "string",
                "pattern": "^/basix/api/ws_cti",
                "example": "/basix/api/ws_cti?format=json",
                "description": "exactly the ws_cti path and query the ticket will open",
            }
        },
    },
    "CallAnswer": _answer(
        0,
        {"uuids": {"type": "array", "items": {"type": "string"}}},
        "the call started: one channel uuid per leg it will create, in ringing order",
    ),
    "Done": _answer(0, {}, "the command was carried out"),
    "WsTicket": _answer(
        0,
        {"ticket": {"type": "string"}},
        "a single-use ticket, valid 10 s, for the uri asked",
    ),
    "Statistics": _answer(
        0,
        {"counters": {"type": "object", "additionalProperties": {"type": "integer"}}},
        "the server's counters (the same for every domain)",
    ),
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "const": "ok"},
            "trunks": {
                "type": "object",
                "description": (
                    "with a domain's credentials only: its trunks' health by name (ours)"
                ),
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "state": {"type": "string", "enum": ["up", "down", "unknown"]},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["id", "description"],
        "properties": {
            "id": {
                "type": "string",
                "description": "what went wrong, for programs",
                "example": "group_not_found",
            },
            "description": {"type": "string", "description": "what went wrong, for people"},
        },
    },
    "ErrorAnswer": _answer(
        500,
        {"error": ref("Error")},
        "the request was refused or failed; internal_error is a bug, logged with the id "
        "its description names",
    ),
}
