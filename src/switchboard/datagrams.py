"""Where the edges bind UDP when it is not a socket: ``switchboard.testing.network.Network``
implements it, and ``SipEndpoint`` and ``MediaRelay`` take one to run without sockets."""

from __future__ import annotations

import asyncio
from typing import Protocol


class DatagramNetwork(Protocol):
    def bind(self, protocol: asyncio.DatagramProtocol, host: str, port: int = 0) -> object:
        """Bind ``protocol`` at (host, port), port 0 for any; calls its ``connection_made``;
        raises ``OSError`` when the address is taken."""
        ...
