"""A channel's ``call`` (ours, JSON only): where a member's call goes and for which group, in
JSON frames; the BERT row Basix's client reads stays exactly what it was."""

from __future__ import annotations

import json

from switchboard.cti import messages
from switchboard.cti.channels import FIELDS, CallGroup, CallSummary
from switchboard.cti.elements import ELEMENT_FIELDS
from tests.cti.basix_client import BasixClient
from tests.cti.test_wire import ALICE_LEG, TIM

SUMMARY = CallSummary("pstn", "0312341234", (TIM,), CallGroup(1111, "support", "hunt"))
RINGING = ALICE_LEG.with_(call=SUMMARY).tagged("ringing")


def test_json_carries_the_destination_its_end_user_and_the_calling_group() -> None:
    frame = json.loads(messages.info_event_json("updated", RINGING, 5))
    assert frame["data"]["call"] == {
        "destination": {
            "type": "pstn",
            "party": "0312341234",
            "end_user": {
                "count": 1,
                "items": [
                    {
                        "id": "#1234",
                        "name": "田中 Tim Tyler",
                        "organization": "Thimble & Co",
                        "avatar": None,
                        "prefecture": "東京都",
                    }
                ],
            },
        },
        "group": {"id": 1111, "name": "support", "strategy": "hunt"},
    }


def test_a_channel_without_one_says_null_and_a_context_group_has_no_strategy() -> None:
    assert ALICE_LEG.to_json()["call"] is None
    context = CallSummary("user", "carol", (), CallGroup(1111, "support"))
    assert ALICE_LEG.with_(call=context).to_json()["call"] == {
        "destination": {"type": "user", "party": "carol", "end_user": None},
        "group": {"id": 1111, "name": "support", "strategy": None},
    }


def test_the_bert_row_and_field_spec_are_unchanged() -> None:
    for event in ("added", "updated", "removed"):
        assert messages.info_event_bert(event, RINGING) == messages.info_event_bert(
            event, RINGING.with_(call=None)
        )
    assert messages.initial_info_bert("channel", [RINGING]) == messages.initial_info_bert(
        "channel", [RINGING.with_(call=None)]
    )
    assert "call" not in FIELDS and "call" not in ELEMENT_FIELDS["channel"]
    spec = json.loads(messages.field_spec_json("channel"))
    assert spec["data"] == list(FIELDS), "the JSON field_spec names the row's fields only"
    client = BasixClient()
    for element in ELEMENT_FIELDS:
        client.feed(messages.field_spec_bert(element))
    info = client.feed(messages.info_event_bert("added", RINGING)).info
    assert "call" not in info and info["uuid"] == RINGING.uuid
