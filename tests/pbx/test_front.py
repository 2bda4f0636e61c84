"""Behind the cluster's SIP front (Kamailio): an INVITE the front relays is routed by the
address the front says it came from (X-Switchboard-Source), which only the front may say."""

from __future__ import annotations

from switchboard.config import Config, parse_config
from switchboard.sip.message import headers
from switchboard.testing.phones import CallState, ScriptedTrunk
from tests.pbx.test_calls_on_harness import CONFIG, TRUNK, Scene, run

FRONT = ("127.0.0.30", 5060)
STRANGER = ("127.0.0.66", 5060)


def _behind_front() -> Config:
    data = CONFIG.model_dump(exclude_unset=True)
    data["cluster"] = {"node": "node-1", "front": f"{FRONT[0]}:{FRONT[1]}"}
    return parse_config(_toml(data))


def _toml(data: dict[str, object]) -> str:
    import tomli_w  # noqa: PLC0415

    return tomli_w.dumps(data)


async def _relay(s: Scene, address: tuple[str, int]) -> ScriptedTrunk:
    relay = ScriptedTrunk(s.network, address=address)
    await relay.start()
    s.phones[f"relay-{address[0]}"] = relay  # type: ignore[assignment]
    return relay


async def _dial_via(relay: ScriptedTrunk, source: str | None) -> int | None:
    host, port = relay.server
    extra = headers(("X-Switchboard-Source", source)) if source else ()
    call = await relay.dial_uri(
        f"sip:0509999999@{host}:{port}", to=relay.server, from_uri="sip:0312345678@pstn",
        extra=extra,
    )  # fmt: skip
    await call.wait(CallState.ENDED)
    return call.final_status


def test_the_front_says_an_invite_came_from_the_trunk() -> None:
    async def scene(s: Scene) -> None:
        # an unknown DID from the trunk gets 404: the INVITE was taken as the trunk's
        front = await _relay(s, FRONT)
        assert await _dial_via(front, f"UDP:{TRUNK[0]}:{TRUNK[1]}") == 404
        # the front's own address is nobody's: 403
        assert await _dial_via(front, None) == 403

    run(scene, _behind_front())


def test_only_the_front_may_say_where_an_invite_came_from() -> None:
    async def scene(s: Scene) -> None:
        stranger = await _relay(s, STRANGER)
        assert await _dial_via(stranger, f"UDP:{TRUNK[0]}:{TRUNK[1]}") == 403

    run(scene, _behind_front())
