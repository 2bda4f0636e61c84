"""The engine's control of a live call (API §4's socket commands, and REST): a blind
transfer and a park, checked before anything moves, planned here (the new destination's
hunt, the party that stays as it is shown there) and carried out by the call machine."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from switchboard.cluster.state import Reservations
from switchboard.cluster.values import ChannelLimits
from switchboard.config import DomainConfig
from switchboard.pbx import messages as m
from switchboard.pbx.destinations import Destination, PstnTarget, resolve
from switchboard.pbx.hunt import Availability
from switchboard.pbx.legs import BridgeState, Leg
from switchboard.pbx.live import CallServices, LiveCall, Presentation
from switchboard.pbx.plan import Caller, HuntPlan, MemberPlan


class ChannelLimitError(Exception):
    """Starting the call would exceed the domain's ``channel_limit``, or its
    ``pstn_channel_limit`` of calls toward the PSTN (toll fraud caps the damage)."""


class NotBridgedError(Exception):
    """A transfer or a park names a channel with no answered peer (ringing, or over)."""


class CallControl:
    services: CallServices
    taken: dict[LiveCall, tuple[str, int, bool]]
    pstn_legs: dict[str, int]
    by_uuid: dict[str, LiveCall]
    reservations: Reservations | None

    if TYPE_CHECKING:  # the engine's own planning

        def _destination_plan(
            self,
            domain: DomainConfig,
            destination: Destination,
            channel: str,
            caller: str | None = None,
        ) -> HuntPlan: ...

        def _give_back(self, domain: str, needed: int, pstn: bool) -> None: ...

    def transfer(self, call: LiveCall, channel: str, destination: Destination) -> None:
        """Blind transfer (API §4): ``channel``'s peer is connected to ``destination`` and
        ``channel`` released; a parked channel is itself connected (picked up). Checked
        before anything moves: the call is left as it was when this raises."""
        stays = call.machine.staying(channel)
        if stays is None:
            raise NotBridgedError(f"channel {channel} has no answered peer to transfer")
        if isinstance(destination.target, PstnTarget):
            self._take_pstn(call)  # a transfer to the PSTN counts as the PSTN calls do
        redirect, shown = self._redirect(call, stays, destination)
        released = call.machine.state is BridgeState.BRIDGED
        call.redirect(m.Transfer(channel, redirect), shown)
        if released:
            self._forget(channel, call)

    def park(self, call: LiveCall, channel: str, timeout: float) -> None:
        """``channel``'s peer waits alone, hearing a tone; ``channel`` is released. After
        ``timeout`` s the parker (a user) is rung again, or the call ends."""
        stays = call.machine.staying(channel)
        if stays is None or call.machine.state is not BridgeState.BRIDGED:
            raise NotBridgedError(f"channel {channel} has no answered peer to park")
        parker = call.machine.channels.party(channel)[2]
        user = next((u for u in call.domain.users if u.id == parker), None)
        back, shown = None, None
        if user is not None:
            back, shown = self._redirect(call, stays, resolve(user.name, call.domain), back=True)
        call.redirect(m.Park(channel, timeout, back), shown)
        self._forget(channel, call)

    def _redirect(
        self, call: LiveCall, stays: Leg, destination: Destination, *, back: bool = False
    ) -> tuple[m.Redirect, Presentation]:
        """The new destination's hunt, and the party that stays as it is shown there
        (``back``: the parker, rung back although this call still counts it busy)."""
        domain = call.domain
        row = call.machine.call.row_of(stays)
        number, name, user_id = call.machine.channels.party(row)
        user = next((u for u in domain.users if u.id == user_id), None)
        if user is not None:
            number, name = user.extension or user.name, name or user.label or user.name
        caller = Caller(stays.id, row, number, name, user)
        channel = self.services.ids()
        plan = self._destination_plan(
            domain, destination, channel, user.name if user is not None else None
        )
        if back:
            plan = replace(
                plan, members=tuple(replace(m, availability=_available(m)) for m in plan.members)
            )
        shown = Presentation(f"sip:{number or 'anonymous'}@{domain.name}", name)
        return m.Redirect(caller, plan, destination, channel), shown

    async def reserve_transfer(
        self, call: LiveCall, channel: str, destination: Destination
    ) -> bool:
        """In a cluster, a transfer to the PSTN takes its PSTN leg from the cluster's
        counters before ``transfer`` (which then finds it taken); alone, ``transfer`` takes
        it from this node's."""
        domain, needed, pstn = self.taken.get(call, (call.domain.name, 0, True))
        if self.reservations is None or pstn or not isinstance(destination.target, PstnTarget):
            return False
        if call.machine.staying(channel) is None:
            raise NotBridgedError(f"channel {channel} has no answered peer to transfer")
        limits = ChannelLimits(call.domain.channel_limit, call.domain.pstn_channel_limit)
        taken = await self.reservations.try_take(domain, 0, 1, limits)
        if not taken:
            raise ChannelLimitError(
                f"{taken.before.pstn} of {call.domain.pstn_channel_limit} PSTN channels in use"
                " in the cluster (pstn_channel_limit)"
            )
        if call not in self.taken:  # released while Redis answered: give it straight back
            await self.reservations.give_back(domain, 0, 1)
            return False
        self.pstn_legs[domain] = self.pstn_legs.get(domain, 0) + 1
        self.taken[call] = (domain, needed, True)
        return True

    def unreserve_transfer(self, call: LiveCall) -> None:
        """The transfer ``reserve_transfer`` took a PSTN leg for was refused."""
        taken = self.taken.get(call)
        if taken is not None and taken[2]:
            self.taken[call] = (taken[0], taken[1], False)
            self._give_back(taken[0], 0, True)

    def _take_pstn(self, call: LiveCall) -> None:
        domain, needed, pstn = self.taken[call]
        if pstn:
            return
        legs = self.pstn_legs.get(domain, 0)
        if legs >= call.domain.pstn_channel_limit:
            raise ChannelLimitError(
                f"{legs} of {call.domain.pstn_channel_limit} PSTN channels in use"
                " (pstn_channel_limit)"
            )
        self.pstn_legs[domain] = legs + 1
        self.taken[call] = (domain, needed, True)

    def _forget(self, channel: str, call: LiveCall) -> None:
        """A released channel names the call no more: a hangup of it is not found."""
        if self.by_uuid.get(channel) is call:
            del self.by_uuid[channel]


def _available(member: MemberPlan) -> Availability:
    """Busy only because it is on this very call: it may be rung back."""
    if member.availability is Availability.BUSY:
        return Availability.AVAILABLE
    return member.availability
