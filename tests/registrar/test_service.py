"""What the PBX rings for a user: registered terminals, then static ones from the config."""

from __future__ import annotations

from pathlib import Path

from switchboard.registrar.location import Binding
from tests.interop.servers import running_server

CONFIG = """
[[domains]]
name = "example.com"
api_token = "token-for-tests"
  [[domains.users]]
  id = 1
  name = "lobby"
  sip_password = "pw"
  contacts = ["sip:lobby@192.0.2.70:5060", "sip:lobby-desk@192.0.2.71"]
"""


async def test_static_contacts_are_permanent_terminals_after_registered_ones(
    tmp_path: Path,
) -> None:
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        service = server.registrar
        assert service.contacts("example.com", "lobby") == [
            "sip:lobby@192.0.2.70:5060",
            "sip:lobby-desk@192.0.2.71",
        ]
        service.location.put(
            Binding("example.com", "lobby", "sip:lobby@192.0.2.99:5062", 4e9, "c", 1, "0.9")
        )
        assert service.contacts("example.com", "lobby")[0] == "sip:lobby@192.0.2.99:5062"
        assert service.contacts("example.com", "nobody") == []


async def test_registered_from_tells_whether_a_phone_registered_from_an_address(
    tmp_path: Path,
) -> None:
    async with running_server(CONFIG, tmp_path / "db.sqlite") as server:
        service = server.registrar
        assert not service.registered_from("192.0.2.99")
        assert not service.registered_from("192.0.2.70")  # a static contact registered nothing
        service.location.put(
            Binding(
                "example.com",
                "lobby",
                "sip:lobby@10.0.0.5",
                4e9,
                "c",
                1,
                received="UDP:192.0.2.99:5062",
            )
        )
        assert service.registered_from("192.0.2.99")
