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
import functools

import httpx

from switchboard.callbacks import policy
from switchboard.callbacks.addresses import IPAddress, literal_address
from switchboard.callbacks.connect import Resolver, pinned, system_resolver
from switchboard.callbacks.http1 import AnswerError, Http1Pool, request_head


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
        # The POSTs go out through ``http1`` (a tenth of httpx's CPU per POST); a transport
        # given here (a test double, another TLS trust) sends them through httpx instead.
        self._wire: Http1Pool | None = None
        self._client: httpx.AsyncClient | None = None
        if transport is None:
            # SSL_CERT_FILE and SSL_CERT_DIR still name the trusted CAs, as for httpx.
            tls = httpx.create_ssl_context(trust_env=True)
            self._wire = Http1Pool(tls=tls, max_response=max_response)
        else:
            self._client = httpx.AsyncClient(
                transport=transport,
                timeout=deadline,
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would look the name up again
            )

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
        if self._client is not None:
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
        except (httpx.HTTPError, AnswerError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        policy.check_url(url, allow_private=self.allow_private)
        target, auth = _parse(url) if "@" in url else _parse_cached(url)
        host = target.raw_host.decode("ascii")
        port = target.port or _default_port(target)
        addresses = await self._addresses(host, port)
        policy.check_addresses(host, addresses, allow_private=self.allow_private)
        if self._wire is not None:
            if auth is not None:  # as httpx.BasicAuth writes it (RFC 7617)
                headers = {**headers, "Authorization": _basic(auth)}
            head = request_head(target.raw_path, target.netloc, len(body), headers)
            status = await self._wire.post((target.scheme, host, port), addresses, head, body)
            return None if 200 <= status < 300 else f"HTTP {status}"
        assert self._client is not None
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


def _parse(url: str) -> tuple[httpx.URL, httpx.BasicAuth | None]:
    """The URL without its userinfo, and the userinfo as Basic authentication."""
    target = httpx.URL(url)
    auth = httpx.BasicAuth(target.username, target.password) if target.userinfo else None
    return target.copy_with(userinfo=b""), auth


# A domain's callbacks go to the same few URLs: parsing one (httpx.URL, 50 µs of the 100 µs
# a POST costs here) once is enough. A URL with credentials is not kept.
_parse_cached = functools.lru_cache(maxsize=512)(_parse)


def _basic(auth: httpx.BasicAuth) -> str:
    request = httpx.Request("POST", "http://localhost/")
    return next(auth.auth_flow(request)).headers["Authorization"]


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80
