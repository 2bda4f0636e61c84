"""The call engine: owns live ``call_group`` calls and runs them (DESIGN §1).

It feeds the pure hunt with SIP outcomes and ``now``, and carries out its commands with the
user agent (legs), the media relay (anchored RTP, ringback) and the callback outbox.

A call's life:
1. ``start``: one channel UUID per terminal of each member, in hunting order (the UUID is
   the Call-ID of the INVITE to that terminal); a media session with leg ``a`` toward the
   member and ``b`` toward the destination; the hunt starts.
2. Ringing a member INVITEs every terminal of that user at once (registered contacts, then
   static ones), each with its own Call-ID and the same From tag; the first 2xx wins and
   the others are cancelled. The member sees ``calling_name`` (default: the group label)
   from the group.
3. When a member answers, the outcome is queued (callback), the member hears ringback, and
   the destination is called: a PSTN number through the domain's trunk (caller ID in From
   and P-Asserted-Identity, the trunk's digest credentials if it challenges) or a user's
   terminals, or a group (its own hunt with its own settings). A 183 with SDP replaces
   ringback by the destination's early media; a 2xx bridges the two legs.
4. Teardown: either side's BYE ends the other; the member hanging up while the destination
   rings cancels it; a destination failure sends BYE to the member; ``max_call_seconds``
   and RTP inactivity (``rtp_timeout``) end everything. Every path closes the media session
   and gives the domain's channels back.

5. When the call ends, one call record per channel is written (``pbx.records``).

Every step is published to CTI as channel events (``pbx.channels``).
"""

from __future__ import annotations

import asyncio
import logging

from switchboard.callbacks.delivery import CallbackDelivery
from switchboard.config import ServerConfig
from switchboard.cti.hub import CtiHub
from switchboard.media.relay import MediaRelay
from switchboard.pbx.call import CallGroupCall, CallGroupRequest
from switchboard.pbx.destinations import PstnTarget
from switchboard.registrar.service import RegistrarService
from switchboard.sip.useragent import UserAgent
from switchboard.store.records import CallRecordStore

log = logging.getLogger("switchboard.pbx")


class ChannelLimitError(Exception):
    """Starting the call would exceed the domain's ``channel_limit``, or its
    ``pstn_channel_limit`` of calls toward the PSTN (toll fraud caps the damage)."""


class Engine:
    def __init__(
        self,
        ua: UserAgent,
        registrar: RegistrarService,
        media: MediaRelay,
        callbacks: CallbackDelivery,
        server: ServerConfig,
        *,
        records: CallRecordStore | None = None,
        cti: CtiHub | None = None,
    ) -> None:
        self.ua = ua
        self.records = records
        self.cti = cti
        self.registrar = registrar
        self.media = media
        self.callbacks = callbacks
        self.server = server
        self.calls: set[CallGroupCall] = set()
        self.by_uuid: dict[str, CallGroupCall] = {}
        self.channels: dict[str, int] = {}
        self.pstn_legs: dict[str, int] = {}  # calls whose destination is the PSTN, by domain
        self.busy_users: set[tuple[str, str]] = set()
        self.pending_writes: set[asyncio.Task[None]] = set()

    def write_done(self, task: asyncio.Task[None]) -> None:
        self.pending_writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("writing call records failed", exc_info=task.exception())

    def channels_in_use(self, domain: str) -> int:
        return self.channels.get(domain, 0)

    async def call_group(self, request: CallGroupRequest) -> CallGroupCall:
        domain = request.domain.name
        members = request.group.members
        needed = (len(members) if request.strategy == "ring" else min(len(members), 1)) + 1
        if self.channels_in_use(domain) + needed > request.domain.channel_limit:
            raise ChannelLimitError(
                f"{self.channels_in_use(domain)} of {request.domain.channel_limit} channels "
                f"in use; this call needs {needed}"
            )
        pstn = isinstance(request.destination.target, PstnTarget)
        legs = self.pstn_legs.get(domain, 0)
        if pstn and legs >= request.domain.pstn_channel_limit:
            raise ChannelLimitError(
                f"{legs} of {request.domain.pstn_channel_limit} PSTN channels in use "
                "(pstn_channel_limit)"
            )
        self.channels[domain] = self.channels_in_use(domain) + needed
        self.pstn_legs[domain] = legs + pstn
        try:
            session = await self.media.create_session()
            try:
                call = CallGroupCall(self, request, session, needed)
            except BaseException:
                session.close()
                raise
        except BaseException:  # nothing was sent yet: give back all the call took
            self.channels[domain] -= needed
            self.pstn_legs[domain] -= pstn
            raise
        self.calls.add(call)
        for channel in call.uuids:
            self.by_uuid[channel] = call
        call.start()
        return call

    def hangup(self, domain: str, channel: str) -> bool:
        call = self.by_uuid.get(channel)
        if call is None or call.request.domain.name != domain:
            return False
        call.hang_up("api hangup")
        return True

    def finished(self, call: CallGroupCall) -> None:
        self.calls.discard(call)
        for channel in call.channel_uuids:
            self.by_uuid.pop(channel, None)
        domain = call.request.domain.name
        self.channels[domain] = max(0, self.channels_in_use(domain) - call.channels)
        if isinstance(call.request.destination.target, PstnTarget):
            self.pstn_legs[domain] = max(0, self.pstn_legs.get(domain, 0) - 1)

    def statistics(self) -> dict[str, int]:
        return {"calls": len(self.calls), "channels": sum(self.channels.values())}


__all__ = ["CallGroupCall", "CallGroupRequest", "ChannelLimitError", "Engine"]
