"""A user agent whose peer screens each new INVITE before it is taken.

``UserAgent.screen_invite`` runs before the INVITE's server transaction exists, so before
its 100 Trying leaves (RFC 3261 §17.2.1): the one moment a scripted peer can still decide
to stay silent, or to refuse statelessly (a 407 challenge, §8.2.7).
"""

from __future__ import annotations

from collections.abc import Callable

from switchboard.sip.endpoint import SipEndpoint
from switchboard.sip.message import Request, Response
from switchboard.sip.transaction.base import Peer
from switchboard.sip.useragent import IncomingCall, UserAgent

Screen = Callable[[Request, Peer], Response | None]


class ScreeningUserAgent(UserAgent):
    def __init__(
        self,
        endpoint: SipEndpoint,
        *,
        on_invite: Callable[[IncomingCall], None],
        screen: Screen,
    ) -> None:
        super().__init__(endpoint, on_invite=on_invite)
        self.screen = screen

    def screen_invite(self, request: Request, peer: Peer) -> Response | None:
        """The user agent's own refusals first; then ``screen`` for a dialog-creating one
        (None takes it, a response refuses it)."""
        refusal = super().screen_invite(request, peer)
        if refusal is None and request.to.tag is None:
            return self.screen(request, peer)
        return refusal
