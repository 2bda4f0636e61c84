"""Blind transfer and park, the call machine's steps for them (DESIGN §6; API §4's socket
commands): the named leg is released, the party that stays becomes the call's caller and
either hears ringback while a new destination rings (``connecting`` again) or waits alone
(``parked``) until picked up by a transfer or its timeout rings the parker back. Pure, as
the rest of the machine: ``CallMachine`` takes these steps from this class."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from switchboard.pbx.channels import ChannelBook
from switchboard.pbx.legs import BridgeState, Call, Leg, Side
from switchboard.pbx.messages import (
    Command,
    Event,
    Park,
    Redirect,
    Regroup,
    SetBusy,
    SetTimer,
    StartRingback,
    Transfer,
)
from switchboard.pbx.plan import Caller, Role
from switchboard.pbx.records import build as build_records

PARK = "park"
BLIND_TRANSFER = "send_bye,BLIND_TRANSFER"


class TransferSteps:
    call: Call
    channels: ChannelBook
    _out: list[Command]

    if TYPE_CHECKING:  # the machine's own steps these use

        def _emit(self, *commands: Command) -> None: ...

        def _bye(self, leg: Leg) -> None: ...

        def _start_destination(self, now: float) -> None: ...

    def staying(self, channel: str) -> Leg | None:
        """The leg that stays if ``channel`` is transferred or parked: its bridged peer, or
        the parked leg itself; None when the channel has no answered peer now."""
        call = self.call
        if call.state is BridgeState.PARKED:
            leg = call.caller
            return leg if leg is not None and leg.live and leg.channel == channel else None
        if call.state is not BridgeState.BRIDGED:
            return None
        origin, destination = call.origin_leg(), call.destination_leg()
        if origin is None or destination is None or not (origin.live and destination.live):
            return None
        if channel == call.row_of(origin):
            return destination
        if channel in (call.row_of(destination), destination.channel):
            return origin
        return None

    def _transfer(self, event: Event, now: float) -> None:
        assert isinstance(event, Transfer)
        stays = self.staying(event.channel)
        if stays is None:  # the engine asked first; the call changed since
            return
        if self.call.state is BridgeState.BRIDGED:
            self._release_peer(stays, BLIND_TRANSFER, now)
            self._regroup(stays)
        self._redirect(event.to, now)

    def _park(self, event: Event, now: float) -> None:
        assert isinstance(event, Park)
        stays = self.staying(event.channel)
        if stays is None or self.call.state is not BridgeState.BRIDGED:
            return
        parker = self._release_peer(stays, BLIND_TRANSFER, now)
        self._regroup(stays)
        self.call.state = BridgeState.PARKED
        self.call.park_back = event.back
        self._emit(StartRingback(), SetTimer(PARK, now + event.timeout))
        self._out += self.channels.parked(now, event.timeout, parker)

    def _release_peer(self, stays: Leg, cause: str, now: float) -> str | None:
        """BYE to the leg bridged with ``stays``; its records are final now. Its user,
        if it is one."""
        call = self.call
        gone = call.destination_leg() if stays is call.origin_leg() else call.origin_leg()
        assert gone is not None
        self._bye(gone)
        row = call.row_of(gone)
        keep = call.row_of(stays)
        call.earlier_records += [
            replace(record, hangup=cause) if record.uuid == row else record
            for record in build_records(call, ended_at=now)
            if record.uuid != keep
        ]
        self._out += self.channels.released(row, cause, now)
        user = self._user_of(gone)
        if user is not None and user in call.busy:
            call.busy.remove(user)
            self._emit(SetBusy(user, False))
        return user

    def _regroup(self, stays: Leg) -> None:
        """The party that stays becomes the call's caller; the sides so far are history."""
        call = self.call
        answered_at = self._answered_at(stays)
        swapped = stays.role is Role.DESTINATION
        stays.channel = call.row_of(stays)
        stays.role = Role.ORIGIN
        call.earlier += [side for side in (call.origin, call.destination) if side is not None]
        call.earlier_channels.append(call.plan.destination_channel)
        call.origin = None
        call.caller = stays
        call.caller_answered_at = answered_at
        call.destination_offered_at = call.destination_answered_at = None
        call.destination_status = None
        self._emit(Regroup(swapped), SetTimer(Role.DESTINATION.value, None))

    def _redirect(self, to: Redirect, now: float) -> None:
        """The party that stays (the caller now) hears ringback while ``to`` rings."""
        call = self.call
        stays = call.caller
        assert stays is not None
        # the leg that stays is who it is, whatever the engine planned from
        caller = replace(to.caller, leg=stays.id, channel=stays.channel)
        call.plan = replace(
            call.plan,
            origin=caller,
            destination=to.destination,
            target=to.target,
            destination_channel=to.channel,
        )
        call.destination = Side.of(Role.DESTINATION, to.destination)
        call.state = BridgeState.CONNECTING
        call.park_back = None
        self._emit(SetTimer(PARK, None), StartRingback())
        self._start_destination(now)

    def _answered_at(self, leg: Leg) -> float | None:
        call = self.call
        if leg is call.caller:
            return call.caller_answered_at
        if leg.role is Role.DESTINATION:
            return call.destination_answered_at
        origin = call.origin
        return origin.hunt.attempts[leg.member].ended_at if origin is not None else None

    def _user_of(self, leg: Leg) -> str | None:
        call = self.call
        if leg is call.caller:
            origin = call.plan.origin
            return origin.user.name if isinstance(origin, Caller) and origin.user else None
        side = call.side_of(leg)
        return side.plan.members[leg.member].user if side is not None else None
