"""SQLAlchemy models: one table per concern. No business rules here.

Times are stored as naive UTC datetimes (the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Organization(Base):
    """District → township (镇/街道) → village (村) or community (社区)."""

    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # district | township | village | community
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    parent: Mapped["Organization | None"] = relationship(remote_side=[id])


class User(Base):
    __tablename__ = "user_account"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    assignments: Mapped[list["RoleAssignment"]] = relationship(back_populates="user", cascade="all, delete-orphan")


class RoleAssignment(Base):
    """A user holds a role at an organization (and so in every organization below it)."""

    __tablename__ = "role_assignment"
    __table_args__ = (UniqueConstraint("user_id", "role_key", "org_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    role_key: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)

    user: Mapped[User] = relationship(back_populates="assignments")
    org: Mapped[Organization] = relationship()


class Procedure(Base):
    __tablename__ = "procedure"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # e.g. V-DEC-01
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(300), default="")
    category: Mapped[str] = mapped_column(String(10), default="")
    edition: Mapped[str] = mapped_column(String(20), default="")
    current_version_id: Mapped[int | None] = mapped_column(Integer)


class ProcedureVersion(Base):
    """An immutable published version of a procedure's BPMN document."""

    __tablename__ = "procedure_version"
    __table_args__ = (
        UniqueConstraint("procedure_id", "version"),
        UniqueConstraint("procedure_id", "content_hash"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[str] = mapped_column(ForeignKey("procedure.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(DateTime)
    published_by: Mapped[str] = mapped_column(String(64), default="system")
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")


class Case(Base):
    """A running or finished process instance of one exact procedure version."""

    __tablename__ = "case_instance"
    __table_args__ = (Index("ix_case_org_status", "org_id", "status"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[str] = mapped_column(ForeignKey("procedure.id"), index=True)
    procedure_version_id: Mapped[int] = mapped_column(ForeignKey("procedure_version.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | completed | rejected | terminated | cancelled
    tracking_code: Mapped[str] = mapped_column(String(20), unique=True)
    state: Mapped[str] = mapped_column(Text)  # SpiffWorkflow state without the spec
    serializer_version: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every save
    started_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)  # number of events in the chain
    audit_head: Mapped[str] = mapped_column(String(64), default="")  # hash of the last event

    # Every save is `UPDATE … WHERE id = ? AND version = ?`: a lost update raises instead of overwriting.
    __mapper_args__ = {"version_id_col": version}


class WorkItem(Base):
    """Derived: one row per open user task, rebuilt on every save; task lists read only this."""

    __tablename__ = "work_item"
    __table_args__ = (
        UniqueConstraint("case_id", "task_id"),
        Index("ix_work_item_org_role", "org_id", "role_key"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    step_id: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    role_key: Mapped[str] = mapped_column(String(40))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    procedure_id: Mapped[str] = mapped_column(String(40))
    ready_at: Mapped[datetime] = mapped_column(DateTime)
    due_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class TimerDue(Base):
    """Derived: one row per waiting timer with its deadline; `xiaowei tick` reads only this."""

    __tablename__ = "timer_due"
    __table_args__ = (UniqueConstraint("case_id", "task_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    node_id: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class AuditEvent(Base):
    """Append-only; events of one chain (a case, or 'system') are linked by hashes."""

    __tablename__ = "audit_event"
    __table_args__ = (UniqueConstraint("chain", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain: Mapped[str] = mapped_column(String(40))  # "case:<id>" or "system"
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_instance.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(40), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64), default="")
    role: Mapped[str] = mapped_column(String(40), default="")
    data: Mapped[str] = mapped_column(Text)  # canonical JSON, exactly as hashed
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The head of chains that have no case row (the 'system' chain)."""

    __tablename__ = "audit_head"
    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64), default="")


class ParameterSetting(Base):
    """A local parameter set at an organization; the nearest one up the tree wins."""

    __tablename__ = "parameter_setting"
    __table_args__ = (UniqueConstraint("org_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    key: Mapped[str] = mapped_column(String(60))
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
