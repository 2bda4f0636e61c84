"""Tables (SQLAlchemy 2 declarative). Changing one means writing an Alembic migration."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class DomainRow(Base):
    __tablename__ = "domains"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(253), unique=True)
    channel_limit: Mapped[int] = mapped_column(Integer)
    calling_number: Mapped[str | None] = mapped_column(String(32))
    pstn_prefixes: Mapped[str] = mapped_column(Text)  # comma-separated digits


class UserRow(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("domain_pk", "name"),
        UniqueConstraint("domain_pk", "user_id"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain_pk: Mapped[int] = mapped_column(ForeignKey("domains.pk", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(255))
    extension: Mapped[str | None] = mapped_column(String(32))
    did: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(255))
    static_contacts: Mapped[str] = mapped_column(Text)  # newline-separated SIP URIs


class GroupRow(Base):
    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("domain_pk", "name"),
        UniqueConstraint("domain_pk", "group_id"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain_pk: Mapped[int] = mapped_column(ForeignKey("domains.pk", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(255))
    extension: Mapped[str | None] = mapped_column(String(32))
    did: Mapped[str | None] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(8))
    answer_timeout: Mapped[int] = mapped_column(Integer)
    member_answer_timeout: Mapped[int] = mapped_column(Integer)
    members: Mapped[str] = mapped_column(Text)  # user names in hunting order, comma-separated


class TrunkRow(Base):
    __tablename__ = "trunks"
    __table_args__ = (UniqueConstraint("domain_pk", "name"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain_pk: Mapped[int] = mapped_column(ForeignKey("domains.pk", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(300))
    transport: Mapped[str] = mapped_column(String(8))
    username: Mapped[str] = mapped_column(String(255))


class DirectoryStateRow(Base):
    """The directory as provisioned (one row): the source of truth at run time."""

    __tablename__ = "directory_state"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[str] = mapped_column(Text)  # JSON: the TOML file's [[domains]] tables
    source_hash: Mapped[str | None] = mapped_column(String(64))  # of the file last applied
    version: Mapped[int] = mapped_column(Integer)  # +1 per change
    updated_at: Mapped[float] = mapped_column(Float)


class RegistrationRow(Base):
    """One binding of an address-of-record (user@domain) to a contact (RFC 3261 §10.3)."""

    __tablename__ = "registrations"
    __table_args__ = (UniqueConstraint("domain", "user", "contact"),)

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)
    user: Mapped[str] = mapped_column(String(64))
    contact: Mapped[str] = mapped_column(Text)
    q: Mapped[str | None] = mapped_column(String(8))
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    call_id: Mapped[str] = mapped_column(String(255))
    cseq: Mapped[int] = mapped_column(Integer)
    received: Mapped[str] = mapped_column(String(300))  # transport:host:port it came from
    user_agent: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text, default="")  # RFC 3327 Path URIs, one per line


class CallbackRow(Base):
    """A callback waiting to be delivered, or delivered (API §3): the durable outbox."""

    __tablename__ = "callbacks"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(64), unique=True)
    domain: Mapped[str] = mapped_column(String(253))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)  # the exact JSON that is signed and sent
    created_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[float | None] = mapped_column(Float)
    given_up_at: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str] = mapped_column(String(64), default="", server_default="")  # node


class CallRecordRow(Base):
    """One row per channel of a finished call (API §4 dispositions)."""

    __tablename__ = "call_records"

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(64), unique=True)  # the leg's Call-ID
    domain: Mapped[str] = mapped_column(String(253), index=True)
    role: Mapped[str] = mapped_column(String(16))  # member | caller | destination
    party: Mapped[str] = mapped_column(String(255))  # user name or number
    group_id: Mapped[int | None] = mapped_column(Integer)  # none: a call to a user or number
    other_uuid: Mapped[str | None] = mapped_column(String(64))
    offered_at: Mapped[float | None] = mapped_column(Float)
    answered_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    disposition: Mapped[str] = mapped_column(String(32))
    hangup: Mapped[str] = mapped_column(String(64))  # e.g. "send_cancel,NO_ANSWER"
    end_user: Mapped[str | None] = mapped_column(Text)  # JSON
