"""Credentials in a callback URL, at rest (API §3): sealed, never stored in the clear, pure.

A callback URL may carry userinfo (``https://user:password@host/hook``, sent as HTTP Basic
authentication, RFC 7617). The outbox keeps the URL so that a retry after a restart can
still be sent, so before the URL is stored its userinfo is replaced by ``sealed.v1.<token>``,
``token`` = base64url(nonce ‖ ciphertext ‖ tag):

- Keys: HMAC-SHA256 over the domain's key material (its ``api_token``, which lives in the
  config file and never in the database), labelled with the purpose and the domain name,
  one key to encrypt and one to authenticate.
- Ciphertext: the userinfo XORed with HMAC-SHA256(encryption key, nonce ‖ counter) blocks
  (HMAC as a pseudo-random function in counter mode, a fresh 16-byte random nonce a URL).
- Tag: HMAC-SHA256(authentication key, nonce ‖ ciphertext ‖ the URL without userinfo),
  checked in constant time before anything is decrypted (encrypt-then-MAC). The URL is
  authenticated too, so a sealed userinfo copied onto another URL (another host) in the
  database does not open.

A token that does not open (the domain's ``api_token`` was rotated, the domain removed, the
row altered) raises ``SealError``. A stored userinfo without the ``sealed.v1.`` prefix was
stored before sealing existed and is used as it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "sealed.v1."
_NONCE = 16
_TAG = 32
_BLOCK = hashlib.sha256().digest_size


class SealError(ValueError):
    """A sealed userinfo that cannot be opened with the domain's key."""


def split_userinfo(url: str) -> tuple[str, str | None]:
    """(the URL without userinfo, the userinfo or None); the rest of the URL byte for byte."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not at:
        return url, None
    return f"{scheme}://{hostport}{rest[end:]}", userinfo


def derive_key(domain: str, material: str) -> bytes:
    """The domain's sealing key: ``material`` (its api_token) bound to the domain's name."""
    key = hmac.new(b"switchboard callback credentials v1", material.encode(), hashlib.sha256)
    return hmac.new(key.digest(), domain.encode(), hashlib.sha256).digest()


def seal(url: str, key: bytes, nonce: bytes | None = None) -> str:
    """The URL to store: its userinfo, if any, sealed under ``key``."""
    bare, userinfo = split_userinfo(url)
    if userinfo is None:
        return url
    nonce = secrets.token_bytes(_NONCE) if nonce is None else nonce
    encryption, authentication = _subkeys(key)
    ciphertext = _xor(userinfo.encode(), _keystream(encryption, nonce, len(userinfo.encode())))
    tag = _tag(authentication, nonce, ciphertext, bare)
    token = base64.urlsafe_b64encode(nonce + ciphertext + tag).decode().rstrip("=")
    scheme, _, rest = bare.partition("://")
    return f"{scheme}://{PREFIX}{token}@{rest}"


def is_sealed(url: str) -> bool:
    userinfo = split_userinfo(url)[1]
    return userinfo is not None and userinfo.startswith(PREFIX)


def open_sealed(stored: str, key: bytes) -> str:
    """The URL as it was given, from what ``seal`` stored; ``SealError`` if it won't open."""
    bare, userinfo = split_userinfo(stored)
    if userinfo is None or not userinfo.startswith(PREFIX):
        return stored
    token = userinfo.removeprefix(PREFIX)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise SealError("the sealed credentials are malformed") from None
    nonce, ciphertext, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
    encryption, authentication = _subkeys(key)
    if len(raw) < _NONCE + _TAG or not hmac.compare_digest(
        tag, _tag(authentication, nonce, ciphertext, bare)
    ):
        raise SealError("the sealed credentials do not open with the domain's key")
    plain = _xor(ciphertext, _keystream(encryption, nonce, len(ciphertext)))
    scheme, _, rest = bare.partition("://")
    return f"{scheme}://{plain.decode()}@{rest}"


def _subkeys(key: bytes) -> tuple[bytes, bytes]:
    return (
        hmac.new(key, b"encrypt", hashlib.sha256).digest(),
        hmac.new(key, b"authenticate", hashlib.sha256).digest(),
    )


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (
        hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        for counter in range(-(-length // _BLOCK))
    )
    return b"".join(blocks)[:length]


def _tag(key: bytes, nonce: bytes, ciphertext: bytes, bare_url: str) -> bytes:
    length = len(ciphertext).to_bytes(4, "big")  # where the ciphertext ends and the URL begins
    return hmac.new(key, nonce + length + ciphertext + bare_url.encode(), hashlib.sha256).digest()


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))
