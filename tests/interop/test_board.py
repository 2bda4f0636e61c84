"""The call board (/board) in headless Chromium, driven by Playwright, watching a real
call_group call: a SIPp phone that rings for two seconds, then answers; a SIPp trunk."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

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
from tests.interop.sipp import SCENARIOS, free_port, start_sipp

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


async def test_board_shows_the_ringing_member_then_the_bridged_call(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    alice = await start_sipp(uas(phones.alice, SCENARIOS / "uas_ring_then_answer.xml"))
    trunk = await start_sipp(uas(phones.trunk, trunk_scenario(tmp_path, "05068680000")))
    ARTIFACTS.mkdir(exist_ok=True)
    async with serving(tmp_path, config_for(phones)) as (server, client), _board(client) as page:
        await _log_in(page, "example.com", "token-for-tests")
        await expect(page.locator("#status")).to_have_text("connected to example.com")

        uuids = await start_call_group(client, {
            "group_name": "support",
            "destination": {"called_number": "0312341234", "calling_number": "05068680000",
                            "end_user": {"id": "#1234", "name": "Tim Tyler",
                                         "organization": "Thimble & Co"}},
        })  # fmt: skip
        ringing = page.locator(f'tr.call[data-uuid="{uuids[0]}"][data-state="ringing"]')
        await expect(ringing).to_contain_text("alice")
        await page.screenshot(path=ARTIFACTS / "board-ringing.png")

        await wait_bridged(server)
        bridged = page.locator(f'tr.call[data-uuid="{uuids[0]}"][data-state="bridged"]')
        await expect(bridged).to_contain_text("0312341234")
        await expect(bridged.locator(".end-user")).to_have_text("Tim Tyler, Thimble & Co")
        await expect(bridged.locator(".duration")).to_have_text("0:01", timeout=3000)
        await page.screenshot(path=ARTIFACTS / "board-bridged.png")
        assert await page.locator("tr.call").count() == 1, "one row per call"

        await post(client, "hangup", {"uuid": uuids[0]})
        await expect(page.locator("tr.call")).to_have_count(0)
        await expect(page.locator("tr.hangup .cause").first).to_have_text(
            "send_bye,NORMAL_CLEARING"
        )
    await asyncio.wait_for(alice.communicate(), 15)
    await asyncio.wait_for(trunk.communicate(), 15)


async def test_board_refuses_a_wrong_token(tmp_path: Path) -> None:
    phones = Phones(free_port(), free_port(), free_port())
    async with serving(tmp_path, config_for(phones)) as (_, client), _board(client) as page:
        await _log_in(page, "example.com", "not-the-token")
        await expect(page.locator("#status")).to_have_text("login refused: authentication_required")


@asynccontextmanager
async def _board(client: httpx.AsyncClient) -> AsyncIterator[Page]:
    """Debian's chromium, headless, on the server's /board page."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{client.base_url}/board")
            yield page
        finally:
            await browser.close()


async def _log_in(page: Page, domain: str, token: str) -> None:
    await page.fill("#domain", domain)
    await page.fill("#token", token)
    await page.click("#login button")
