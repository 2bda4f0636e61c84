"""What a scripted phone sends to register, pure: the REGISTER (RFC 3261 §10.2) and the
request that answers a digest challenge (§22.2, RFC 7616).

Rules, as deployed phones behave:
- One Call-ID and From tag per phone, for every REGISTER it sends, with CSeq growing by
  one each time (§10.2: a registrar orders a phone's REGISTERs by CSeq within a Call-ID).
- The Request-URI is the domain; To and From the address-of-record ``sip:user@domain``.
- A 401 is answered with Authorization, a 407 with Proxy-Authorization, for the topmost
  challenge whose algorithm we know (RFC 8760 §2.4), with ``qop=auth`` when offered.
"""

from __future__ import annotations

from switchboard.sip.digest import answer_challenge, pick_challenge
from switchboard.sip.headers import Header
from switchboard.sip.message import Request, Response, headers
from switchboard.sip.uri import parse_uri

_REPLACED = ("via", "cseq", "authorization", "proxy-authorization")


def register_request(
    *,
    user: str,
    domain: str,
    contact: str,
    via: str,
    call_id: str,
    from_tag: str,
    cseq: int,
    expires: int,
) -> Request:
    aor = f"sip:{user}@{domain}"
    return Request(
        "REGISTER",
        parse_uri(f"sip:{domain}"),
        headers(
            ("Via", via),
            ("Max-Forwards", "70"),
            ("From", f"<{aor}>;tag={from_tag}"),
            ("To", f"<{aor}>"),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} REGISTER"),
            ("Contact", contact),
            ("Expires", str(expires)),
        ),
    )


def answer_with_credentials(
    request: Request,
    challenge: Response,
    *,
    username: str,
    password: str,
    cnonce: str,
    via: str,
) -> Request | None:
    """``request`` again with the next CSeq, a new Via and the credentials answering
    ``challenge`` (401 or 407); None when it holds no challenge we can answer."""
    field = "WWW-Authenticate" if challenge.status == 401 else "Proxy-Authenticate"
    chosen = pick_challenge(challenge.get_all(field))
    if chosen is None:
        return None
    value = answer_challenge(
        chosen,
        method=request.method,
        uri=str(request.uri),
        username=username,
        password=password,
        cnonce=cnonce,
    )
    answer_field = "Authorization" if challenge.status == 401 else "Proxy-Authorization"
    kept = [h for h in request.headers if h.key not in _REPLACED]
    cseq = f"{request.cseq.number + 1} {request.method}"
    return request.with_headers(
        (Header("Via", via), *kept, Header("CSeq", cseq), Header(answer_field, value))
    )
