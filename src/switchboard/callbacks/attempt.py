"""One try at delivering a callback (API §3), the edge: resolve, check, POST, read a little.

Rules of a try:
- The host is resolved once; every address is checked (``policy.check_addresses``) and the
  POST goes to one of those addresses (``connect.pinned``), never to a second lookup's.
- Redirects are not followed: a 3xx is an answer that is not 2xx, so the try failed.
- The whole try (resolving, connecting, TLS, sending, the answer) has one deadline; a
  receiver that answers a byte at a time cannot hold it longer.
- Only the status decides. The answer's body is read (so the connection can be kept
  alive) up to ``max_response`` bytes as they came over the wire (no decompression: we ask
  for ``identity``); past that the connection is closed, unread.
- Credentials in the URL's userinfo are sent as HTTP Basic authentication (RFC 7617), the
  URL itself goes to httpx without them, so nothing httpx logs carries them.
"""

from __future__ import annotations

import asyncio

import httpx

from switchboard.callbacks import policy
from switchboard.callbacks.addresses import IPAddress, literal_address
from switchboard.callbacks.connect import PinnedTransport, Resolver, pinned, system_resolver


class Attempts:
    def __init__(
        self,
        *,
        allow_private: bool,
        max_response: int = 65536,
        deadline: float = 10.0,
        resolver: Resolver = system_resolver,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.max_response = max_response
        self.deadline = deadline
        self.resolver = resolver
        self._client = httpx.AsyncClient(
            transport=transport or PinnedTransport(),
            timeout=deadline,
            follow_redirects=False,
            trust_env=False,  # a proxy from the environment would look the name up again
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """None when the receiver answered 2xx, else why not (never with credentials)."""
        try:
            async with asyncio.timeout(self.deadline):
                return await self._post(url, body, headers)
        except TimeoutError:
            return f"no answer within the {self.deadline:g} s deadline"
        except policy.CallbackUrlError as exc:
            return str(exc)
        except httpx.InvalidURL:
            return "not a valid URL"
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        policy.check_url(url, allow_private=self.allow_private)
        target = httpx.URL(url)
        auth = httpx.BasicAuth(target.username, target.password) if target.userinfo else None
        target = target.copy_with(userinfo=b"")
        host = target.raw_host.decode("ascii")
        addresses = await self._addresses(host, target.port or _default_port(target))
        policy.check_addresses(host, addresses, allow_private=self.allow_private)
        with pinned(host, addresses):
            async with self._client.stream(
                "POST",
                target,
                content=body,
                headers={**headers, "Accept-Encoding": "identity"},
                auth=auth,
            ) as response:
                await _read_at_most(response, self.max_response)
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = literal_address(host)
        if literal is not None:
            return [literal]
        try:
            addresses = await self.resolver(host, port)
        except OSError as exc:
            raise policy.CallbackUrlError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise policy.CallbackUrlError(f"{host} has no address")
        return addresses


async def _read_at_most(response: httpx.Response, limit: int) -> None:
    if response.is_stream_consumed:
        return  # nothing left on the wire to read
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > limit:
            return  # leaving the stream closes the connection with the rest unread


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
