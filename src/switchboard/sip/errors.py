"""The SIP core's exception tree.

::

    SipError
    ├── ParseError          the peer broke the grammar; ``status`` says how to answer it
    │   └── FramingError    (framing.py) a TCP stream cannot be cut into messages
    └── LocalProtocolError  we asked the core to do something the RFC forbids

A SIP failure *response* is never an exception inside the core: transactions report it as
an event. Exceptions are for bytes that are not SIP, and for programming mistakes.
"""


class SipError(Exception):
    """Base of every error the SIP core raises."""


class ParseError(SipError):
    """The bytes are not a valid SIP message.

    ``reason`` is short enough to be a Reason-Phrase; ``status`` is the response a UAS
    should send when the request can be answered at all (400, or 505 for a bad version).
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        # The request as far as it could be read, when it can still be answered (§8.2).
        self.partial: object | None = None


class LocalProtocolError(SipError):
    """The caller of the core broke a rule (e.g. responding twice with a final response)."""
