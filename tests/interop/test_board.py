"""The call board (/board) in headless Chromium, driven by Playwright: watching a real
call_group call (a SIPp phone that rings, then answers; a SIPp trunk; a SIPp phone that
registers while the board watches; a user that never registers), and fed the frames the
call machine publishes for calls from a phone and from a trunk."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from switchboard.app import Server
from switchboard.cti import messages as cti_messages
from switchboard.cti.elements import GROUP_TYPES
from switchboard.pbx import messages as m
from switchboard.pbx.plan import Kind
from tests.interop.call_group_harness import (
    Phones,
    config_for,
    post,
    serving,
    start_call_group,
    trunk_scenario,
    uas,
    wait_bridged,
)
from tests.interop.servers import injection_file
from tests.interop.sipp import SCENARIOS, free_port, run_sipp, start_sipp
from tests.pbx.calls import DOMAIN, Driver, from_phone

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BOARD = (resources.files("switchboard") / "api" / "static" / "board.html").read_text()
# dave has no static contact: he is offline until his SIPp phone registers
DAVE = """
  [[domains.users]]
  id = 4
  name = "dave"
  sip_password = "pw-dave"
"""


async def test_board_shows_the_ringing_member_then_the_bridged_call(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, _ringing_for(tmp_path, seconds=6)))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "05068680000")))
    ARTIFACTS.mkdir(exist_ok=True)
    config = config_for(phones) + DAVE
    async with serving(tmp_path, config) as (server, client), _board(client) as page:
        await _log_in(page, "example.com", "token-for-tests")
        await expect(page.locator("#status")).to_have_text("connected to example.com")
        dave = page.locator('tr.user[data-user="dave"]')
        await expect(dave).to_have_attribute("data-presence", "offline")

        await _register(server, tmp_path, "dave")
        await expect(dave).to_have_attribute("data-presence", "idle")  # live, from the feed
        await expect(dave).to_have_attribute("data-registered", "true")
        await expect(dave.locator(".terminals")).to_have_text("1")

        uuids = await start_call_group(client, {
            "group_name": "support",
            "destination": {"called_number": "0312341234", "calling_number": "05068680000",
                            "end_user": {"id": "#1234", "name": "Tim Tyler",
                                         "organization": "Thimble & Co"}},
        })  # fmt: skip
        # alice rings: her row says for which group, how it hunts and where the call goes,
        # before any destination channel exists
        ringing = page.locator(f'tr.call[data-uuid="{uuids[0]}"][data-state="ringing"]')
        await expect(ringing).to_contain_text("alice")
        await expect(ringing).to_have_attribute("data-group", "support")
        await expect(ringing).to_have_attribute("data-strategy", "hunt")
        await expect(ringing.locator(".group")).to_contain_text("Support")
        await expect(ringing.locator(".group .strategy")).to_have_text("hunt")
        await expect(ringing.locator(".destination")).to_have_text("0312341234")
        await expect(ringing.locator(".end-user")).to_have_text("Tim Tyler, Thimble & Co")
        assert not any(call.bridged for call in server.engine.calls), "alice still rings"

        users = page.locator("tr.user")
        await expect(users).to_have_count(4)
        await _expect_user(page, "alice", "ringing", registered=True)
        await expect(page.locator('tr.user[data-user="alice"] .now')).to_have_text(
            "Support ringing → 0312341234"
        )
        await _expect_user(page, "bob", "idle", registered=True)  # a static contact
        await _expect_user(page, "dave", "idle", registered=True)  # registered by SIPp
        await _expect_user(page, "carol", "offline", registered=False)  # never registered
        await expect(page.locator('tr.user[data-user="carol"] .presence')).to_have_text("offline")
        await expect(page.locator('tr.user[data-user="bob"] .presence')).to_have_text("idle")

        support = page.locator('section.group[data-group="support"]')
        await expect(support).to_have_attribute("data-strategy", "hunt")
        await expect(support.locator("li.member")).to_have_count(2)
        await expect(support.locator('li.member[data-user="alice"]')).to_have_attribute(
            "data-presence", "ringing"
        )
        await expect(support.locator('li.member[data-user="bob"]')).to_have_attribute(
            "data-presence", "idle"
        )
        await expect(support.locator(".group-counts")).to_have_attribute("data-ringing", "1")
        await expect(support.locator(f'li.group-call[data-uuid="{uuids[0]}"]')).to_have_text(
            "alice → 0312341234 · ringing"
        )
        at_a_glance = {"calls": 1, "ringing": 1, "on-call": 0, "idle": 2, "offline": 1}
        for name, value in at_a_glance.items():
            await expect(page.locator(f'[data-count="{name}"] .value')).to_have_text(str(value))
        await page.screenshot(path=ARTIFACTS / "board-ringing.png", full_page=True)

        bridged = page.locator(f'tr.call[data-uuid="{uuids[0]}"][data-state="bridged"]')
        await expect(bridged).to_contain_text("0312341234", timeout=15_000)  # alice answered
        await wait_bridged(server)
        await expect(bridged.locator(".end-user")).to_have_text("Tim Tyler, Thimble & Co")
        await expect(bridged.locator(".duration")).to_have_text("0:01", timeout=3000)
        await _expect_user(page, "alice", "on-call", registered=True)
        await expect(page.locator('[data-count="bridged"] .value')).to_have_text("1")
        await page.screenshot(path=ARTIFACTS / "board-bridged.png", full_page=True)
        assert await page.locator("tr.call").count() == 1, "one row per call"

        await post(client, "hangup", {"uuid": uuids[0]})
        await expect(page.locator("tr.call")).to_have_count(0)
        await expect(page.locator("tr.hangup .cause").first).to_have_text(
            "send_bye,NORMAL_CLEARING"
        )
        await _expect_user(page, "alice", "idle", registered=True)
    await asyncio.wait_for(alice.communicate(), 15)
    await asyncio.wait_for(trunk.communicate(), 15)


async def test_board_draws_calls_from_phones_and_trunks_as_the_machine_projects_them() -> None:
    """No server: the page is fed the JSON frames of the channels the call machine
    publishes (``tests.pbx.calls``, the example domain) for a phone calling a ring group and
    a trunk calling a hunt group, each to the bridge."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with _page() as page:
        await page.set_content(BOARD)
        await _feed(page, *_directory())

        phone = Driver.start(from_phone("sales"))  # alice's phone calls sales (ring)
        await _publish(page, phone.commands)
        row = page.locator('tr.call[data-uuid="caller-ch"]')
        await expect(row).to_have_attribute("data-group", "sales")
        await expect(row).to_have_attribute("data-strategy", "ring")
        await expect(row.locator(".destination")).to_have_text("sales")
        await _expect_user(page, "alice", "on-call", registered=True)  # her phone is off-hook
        await expect(page.locator('tr.user[data-user="alice"] .now')).to_have_text(
            "calling → sales"
        )
        sales = page.locator('section.group[data-group="sales"]')
        await expect(sales.locator('li.group-call[data-uuid="caller-ch"]')).to_have_count(1)
        await _publish(page, phone.feed(m.LegAnswered("destination-0"), 2.0))  # erik answers
        await expect(row).to_have_attribute("data-state", "bridged")
        await expect(row.locator(".destination")).to_have_text("sales → erik")
        await expect(page.locator('tr.user[data-user="erik"] .now')).to_have_text(
            "Sales talking ← alice"
        )
        await page.screenshot(path=ARTIFACTS / "board-phone-to-ring-group.png", full_page=True)
        await _publish(page, phone.feed(m.LegHungUp("caller"), 9.0))
        await expect(page.locator("tr.call")).to_have_count(0)

        trunk = Driver.start(from_phone("support", kind=Kind.TRUNK))
        trunk.feed(m.LegAnswered("destination-0"), 1.0)  # alice, support's first member
        await _publish(page, trunk.commands)
        row = page.locator('tr.call[data-uuid="caller-ch"][data-state="bridged"]')
        await expect(row.locator(".destination")).to_have_text("support → alice")
        await expect(row).to_have_attribute("data-strategy", "hunt")
        await expect(page.locator("tr.call")).to_have_count(1)  # the caller with its destination


async def test_board_refuses_a_wrong_token(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (_, client), _board(client) as page:
        await _log_in(page, "example.com", "not-the-token")
        await expect(page.locator("#status")).to_have_text("login refused: authentication_required")


@asynccontextmanager
async def _page() -> AsyncIterator[Page]:
    """A page of Debian's chromium, headless; a script error on it fails the test."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page
            assert errors == [], errors
        finally:
            await browser.close()


@asynccontextmanager
async def _board(client: httpx.AsyncClient) -> AsyncIterator[Page]:
    """The server's /board page."""
    async with _page() as page:
        await page.goto(f"{client.base_url}/board")
        yield page


async def _log_in(page: Page, domain: str, token: str) -> None:
    await page.fill("#domain", domain)
    await page.fill("#token", token)
    await page.click("#login button")


async def _expect_user(page: Page, name: str, presence: str, *, registered: bool) -> None:
    row = page.locator(f'tr.user[data-user="{name}"]')
    await expect(row).to_have_attribute("data-presence", presence)
    await expect(row).to_have_attribute("data-registered", str(registered).lower())


def _ringing_for(tmp_path: Path, *, seconds: int) -> Path:
    """The phone that rings then answers, ringing long enough for every check of the
    ringing board to run before it answers."""
    text = (SCENARIOS / "uas_ring_then_answer.xml").read_text()
    pause = '<pause milliseconds="2000"/>'
    assert pause in text
    path = tmp_path / "ring_then_answer.xml"
    path.write_text(text.replace(pause, f'<pause milliseconds="{seconds * 1000}"/>'))
    return path


async def _register(server: Server, tmp_path: Path, user: str) -> None:
    """A SIPp phone registers ``user`` (digest, password ``pw-<user>``) and leaves."""
    users = injection_file(tmp_path / "users.csv", [user])
    result = await run_sipp(
        ["-sf", str(SCENARIOS / "uac_register.xml"), "-inf", str(users),
         f"127.0.0.1:{server.endpoint.listen_port}", "-i", "127.0.0.1",
         "-p", str(free_port()), "-m", "1", "-nostdin", "-timeout", "20"],
        25,
    )  # fmt: skip
    assert result.returncode == 0, result.output[-2000:]


async def _feed(page: Page, *messages: dict[str, Any]) -> None:
    """Hand the page's socket handler what ws_cti?format=json would send."""
    for message in messages:
        await page.evaluate("message => receive(message)", message)


async def _publish(page: Page, commands: list[m.Command]) -> None:
    """The channel events among a call machine's commands, as ws_cti's JSON frames."""
    for command in commands:
        if isinstance(command, m.Publish):
            frame = cti_messages.info_event_json(command.event, command.channel, 0)
            await _feed(page, json.loads(frame))


def _directory() -> list[dict[str, Any]]:
    """The example domain's users (carol offline), groups and members, as initial_info."""
    users = [
        {"id": user.id, "name": user.name, "label": user.label,
         "main_extension": user.extension,
         "presence": "offline" if user.name == "carol" else "available"}
        for user in DOMAIN.users
    ]  # fmt: skip
    groups = [
        {"id": group.id, "name": group.name, "label": group.label,
         "type": GROUP_TYPES[group.strategy], "main_extension": group.extension}
        for group in DOMAIN.groups
    ]  # fmt: skip
    ids = {user.name: user.id for user in DOMAIN.users}
    members = [
        {"id": f"{group.id}:{ids[name]}", "group_id": group.id, "user_id": ids[name],
         "priority": place, "login_status": 1}
        for group in DOMAIN.groups
        for place, name in enumerate(group.members, start=1)
    ]  # fmt: skip
    return [
        {"type": "initial_info", "element": element, "data": data, "seq": 0}
        for element, data in (("user", users), ("group", groups), ("group_member", members))
    ]
