"""Plans and a driver for call-machine tests: a small domain, call plans of each kind, and
a recorder of the commands the machine returns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TypeVar

from switchboard.config import DomainConfig, load_config
from switchboard.pbx import messages as m
from switchboard.pbx.destinations import resolve
from switchboard.pbx.hunt import Availability
from switchboard.pbx.machine import CallMachine
from switchboard.pbx.plan import Caller, CallPlan, HuntPlan, Kind, MemberPlan, Role

DOMAIN: DomainConfig = load_config(None).domains[0]
USER_IDS = {user.name: user.id for user in DOMAIN.users}
EPOCH = 1_800_000_000.0
C = TypeVar("C", bound=m.Command)


def members(*users: str, unavailable: dict[str, Availability] | None = None) -> HuntPlan:
    """call_group's members: one planned channel per user, named after it (``alice-1``)."""
    unavailable = unavailable or {}
    plans = tuple(
        MemberPlan(user, unavailable[user], channel=f"{user}-0")
        if user in unavailable
        else MemberPlan(user, planned={f"sip:{user}@phone": f"{user}-1"})
        for user in users
    )
    return HuntPlan(plans, "hunt", 15, 60)


def call_group(
    destination: str = "0312341234",
    *,
    origin: HuntPlan | None = None,
    callback: bool = True,
    max_call_seconds: float = 3600,
) -> CallPlan:
    target = resolve(destination, DOMAIN)
    return CallPlan(
        domain=DOMAIN.name,
        kind=Kind.CALL_GROUP,
        origin=origin or members("alice", "bob"),
        destination=destination_plan(destination),
        target=target,
        destination_channel="far",
        max_call_seconds=max_call_seconds,
        user_ids=USER_IDS,
        calling_number=DOMAIN.calling_number,
        group=DOMAIN.groups[0],
        callback=callback,
        epoch=EPOCH,
    )


def destination_plan(destination: str) -> HuntPlan:
    target = resolve(destination, DOMAIN).target
    group = getattr(target, "group", None)
    if group is not None:
        plans = tuple(MemberPlan(user, channel=f"{user}-d") for user in group.members)
        return HuntPlan(plans, group.strategy, group.member_answer_timeout, group.answer_timeout)
    user = getattr(getattr(target, "user", None), "name", None)
    return HuntPlan((MemberPlan(user, channel="far"),), "ring", 3600, 3600)


def from_phone(destination: str, *, kind: Kind = Kind.PHONE, user: str = "alice") -> CallPlan:
    caller_user = next(u for u in DOMAIN.users if u.name == user) if kind is Kind.PHONE else None
    caller = Caller(
        "caller", "caller-ch", "101" if caller_user else "0312345678", "Alice", caller_user
    )
    return CallPlan(
        domain=DOMAIN.name,
        kind=kind,
        origin=caller,
        destination=destination_plan(destination),
        target=resolve(destination, DOMAIN),
        destination_channel="far",
        max_call_seconds=3600,
        user_ids=USER_IDS,
        calling_number=DOMAIN.calling_number,
        epoch=EPOCH,
    )


@dataclass
class Driver:
    """Feeds a machine and answers ``RingMember`` as an engine would: one leg per member,
    named ``<role>-<member>``, unless ``terminals`` says otherwise."""

    machine: CallMachine
    now: float = 0.0
    commands: list[m.Command] = field(default_factory=list)
    terminals: dict[tuple[Role, int], int] = field(default_factory=dict)
    timers: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, plan: CallPlan, **kwargs: object) -> Driver:
        driver = cls(CallMachine(plan, 0.0), **kwargs)  # type: ignore[arg-type]
        driver._run(driver.machine.start(0.0))
        return driver

    def feed(self, event: m.Event, at: float | None = None) -> list[m.Command]:
        if at is not None:
            self.now = at
        start = len(self.commands)
        self._run(self.machine.handle(event, self.now))
        return self.commands[start:]

    def advance(self, to: float) -> list[m.Command]:
        """Fire every timer due by ``to``, in order."""
        start = len(self.commands)
        while True:
            due = sorted((at, name) for name, at in self.timers.items() if at <= to)
            if not due:
                break
            at, name = due[0]
            del self.timers[name]
            self.feed(m.Timer(name), at)
        self.now = to
        return self.commands[start:]

    def _run(self, commands: list[m.Command]) -> None:
        pending: list[m.Event] = []
        for command in commands:
            self.commands.append(command)
            if isinstance(command, m.SetTimer):
                self.timers.pop(command.name, None)
                if command.at is not None:
                    self.timers[command.name] = command.at
            elif isinstance(command, m.RingMember):
                count = self.terminals.get((command.role, command.member), 1)
                legs = tuple(
                    (self._fresh(leg_id(command.role, command.member, n)), _channel(command, n))
                    for n in range(count)
                )
                pending.append(m.MemberRung(command.role, command.member, legs))
        for event in pending:
            self._run(self.machine.handle(event, self.now))

    def _fresh(self, name: str) -> str:
        """Leg ids are unique per call: after a transfer the new destination's legs are
        ``destination-0~1``, ``destination-0~2`` …"""
        taken, fresh, n = self.machine.call.legs, name, 0
        while fresh in taken:
            n += 1
            fresh = f"{name}~{n}"
        return fresh

    def of(self, kind: type[C]) -> list[C]:
        return [c for c in self.commands if isinstance(c, kind)]

    def published(self, uuid: str) -> list[tuple[str, str | None]]:
        return [
            (c.event, c.channel.last_event_data)
            for c in self.commands
            if isinstance(c, m.Publish) and c.channel.uuid == uuid
        ]


def redirect(
    to: str, *, stays: str = "destination-0", row: str = "far", channel: str = "next"
) -> m.Redirect:
    """Where a transfer (or a park's timeout) sends the leg ``stays``, shown on ``row``:
    to ``to`` (a user, a group or a PSTN number of the test domain), as channel ``channel``."""
    plan = destination_plan(to)
    members = tuple(
        replace(member, channel=channel) if member.channel == "far" else member
        for member in plan.members
    )
    caller = Caller(stays, row, "0312341234", None, None)
    return m.Redirect(caller, replace(plan, members=members), resolve(to, DOMAIN), channel)


def leg_id(role: Role, member: int, terminal: int = 0) -> str:
    suffix = f".{terminal}" if terminal else ""
    return f"{role.value}-{member}{suffix}"


def _channel(command: m.RingMember, n: int) -> str:
    planned = list(command.planned.values())
    if n < len(planned):
        return planned[n]
    return command.channel or f"{command.user}-new-{n}"


def call_user(destination: str = "0312341234", *, auto_answer: bool = True) -> CallPlan:
    """call_user for alice (one terminal), in the support group's context."""
    plan = call_group(destination, origin=members("alice"))
    origin = replace(plan.origin, strategy="ring", member_timeout=180, answer_timeout=180)  # type: ignore[arg-type]
    return replace(plan, kind=Kind.CALL_USER, origin=origin, auto_answer=auto_answer)
