"""SQLAlchemy models: one table per concern. No business rules here.

Times are stored as naive UTC datetimes (the same on SQLite and PostgreSQL).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, Numeric, String, Text, UniqueConstraint,
)
from sqlalchemy import text
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
    # The person who holds the account (people are persons; accounts act): engine/people.py.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)

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
    # The township (or district) whose staff edit and publish it; None: the district library.
    owner_org_id: Mapped[int | None] = mapped_column(Integer)


class ProcedureVariant(Base):
    """A township's variant of a district procedure (issue #15), keyed by (procedure, township).

    Its versions are ``procedure_version`` rows under the variant's own ``key`` (``B-PUR-02@SFZ``: a
    ``procedure`` row with no current version, so no library list shows it), numbered on their own;
    its draft is the ``procedure_draft`` of that key. Cases started in a village of the township use
    ``current_version_id`` once published, the district's current version otherwise."""

    __tablename__ = "procedure_variant"
    __table_args__ = (UniqueConstraint("procedure_id", "org_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[str] = mapped_column(ForeignKey("procedure.id"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    # The district version the current published version was made from ("上级版本已更新" when it moves on).
    base_version_id: Mapped[int | None] = mapped_column(Integer)
    # The step table (JSON) of that district version, when it has one: what a rebase merges against.
    base_table: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


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
    # Deferred: lists of versions (the library, the public boards) never need the XML, which is
    # 1.8 MB for the whole library; it loads on first access, inside the session.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    published_at: Mapped[datetime] = mapped_column(DateTime)
    published_by: Mapped[str] = mapped_column(String(64), default="system")
    note: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    # New cases use the highest version whose effective_from has come (None: at once).
    effective_from: Mapped[datetime | None] = mapped_column(DateTime)
    # Plain-Chinese summary of what changed against the previous version, one sentence a line.
    change_summary: Mapped[str] = mapped_column(Text, default="")


class Case(Base):
    """A running or finished process instance of one exact procedure version."""

    __tablename__ = "case_instance"
    __table_args__ = (
        Index("ix_case_org_status", "org_id", "status"),
        Index("ix_case_org_updated", "org_id", "updated_at"),
        Index("ix_case_started_by", "started_by"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[str] = mapped_column(ForeignKey("procedure.id"), index=True)
    procedure_version_id: Mapped[int] = mapped_column(ForeignKey("procedure_version.id"))
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | completed | rejected | terminated | cancelled
    tracking_code: Mapped[str] = mapped_column(String(20), unique=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on every save
    started_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)  # number of events in the chain
    audit_head: Mapped[str] = mapped_column(String(64), default="")  # hash of the last event

    # The serialized workflow lives in its own row: lists and searches read this narrow row only.
    state_row: Mapped["CaseState"] = relationship(uselist=False, cascade="all, delete-orphan", lazy="select")

    # Every save is `UPDATE … WHERE id = ? AND version = ?`: a lost update raises instead of overwriting.
    __mapper_args__ = {"version_id_col": version}

    @property
    def state(self) -> str:
        """SpiffWorkflow state without the spec (loaded on first access)."""
        return self.state_row.state if self.state_row is not None else ""

    @state.setter
    def state(self, value: str) -> None:
        if self.state_row is None:
            self.state_row = CaseState(state=value, serializer_version="")
        else:
            self.state_row.state = value

    @property
    def serializer_version(self) -> str:
        return self.state_row.serializer_version if self.state_row is not None else ""

    @serializer_version.setter
    def serializer_version(self, value: str) -> None:
        if self.state_row is None:
            self.state_row = CaseState(state="", serializer_version=value)
        else:
            self.state_row.serializer_version = value


class CaseState(Base):
    """The serialized SpiffWorkflow state of a case (large; read only to change or inspect the case)."""

    __tablename__ = "case_state"
    # PostgreSQL keeps the compressed state in the row, not in the TOAST table (migration 0018).
    __table_args__ = {"postgresql_with": {"toast_tuple_target": 8160}}
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(40))


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


class CaseField(Base):
    """Derived: the latest value of each form field of a case, written on every step (search, money,
    warnings read this; the audit events remain the record)."""

    __tablename__ = "case_field"
    __table_args__ = (
        UniqueConstraint("case_id", "name"),
        Index("ix_case_field_type_number", "type", "number_value"),
        Index("ix_case_field_type_text", "type", "text_value", "case_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"))
    name: Mapped[str] = mapped_column(String(60))
    type: Mapped[str] = mapped_column(String(20))
    step_id: Mapped[str] = mapped_column(String(100), default="")
    text_value: Mapped[str] = mapped_column(String(200), default="")
    number_value: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Submission(Base):
    """One completion of a step, kept as made (卷宗): the values exactly as entered, who, in which role,
    on whose behalf, when, the evidence files. Append-only: a later step or round never changes an
    earlier submission. Written in the same transaction as its ``step_completed`` audit event
    (``event_seq``), which remains the hashed record; gateways and later steps read the values under
    explicit names (``step.field``) derived from these rows."""

    __tablename__ = "submission"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        Index("ix_submission_case_step", "case_id", "step_id", "round"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3… in the order made within the case
    step_id: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    round: Mapped[int] = mapped_column(Integer)  # 2, 3… when the step is done again (returned, no quorum)
    task_id: Mapped[str] = mapped_column(String(36), default="")
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(40), default="")
    on_behalf_of: Mapped[str | None] = mapped_column(String(50))  # 代办: the villager acted for
    proxy_reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime)
    values: Mapped[str] = mapped_column(Text)  # canonical JSON of the values as entered
    attachments: Mapped[str] = mapped_column(Text, default="[]")  # JSON: [{sha256, name, size, type}]
    event_seq: Mapped[int] = mapped_column(Integer)  # the step_completed event in the case's chain


class AuditEvent(Base):
    """Append-only; events of one chain (a case, or 'system') are linked by hashes."""

    __tablename__ = "audit_event"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_event_actor_case", "actor", "case_id"),
        Index("ix_audit_event_case_type", "case_id", "type", "at"),
    )
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


class Blob(Base):
    """An evidence file (photo, scan, PDF), stored once by the SHA-256 of its content; audit events
    of the steps it was attached to name it by that hash."""

    __tablename__ = "blob"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(60))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class PublicSubmission(Base):
    """What the public sent without an account (objections, 码上举报), by a keyed hash of the sender's
    address: the rate limit counts these rows. No address is stored."""

    __tablename__ = "public_submission"
    __table_args__ = (Index("ix_public_submission_bucket_at", "bucket", "kind", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # objection | report
    at: Mapped[datetime] = mapped_column(DateTime, index=True)


class ProcedureDraft(Base):
    """The working copy of a procedure being edited (modeler or step table), private to its township
    until published. ``revision`` is bumped on every save: a save based on an older revision is
    refused as a conflict (optimistic locking), so two editors never overwrite each other."""

    __tablename__ = "procedure_draft"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    procedure_id: Mapped[str] = mapped_column(String(40), unique=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    bpmn_xml: Mapped[str] = mapped_column(Text)
    step_table: Mapped[str] = mapped_column(Text, default="")  # JSON of the step table, when made with it
    base_version_id: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    source: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class SupervisionWarning(Base):
    """A violation warning (预警) raised by a rule of :mod:`engine.warnings`. ``fingerprint`` is the
    rule plus the identity of the facts that triggered it: the same facts never raise twice."""

    __tablename__ = "warning"
    __table_args__ = (
        Index("ix_warning_org_status", "org_id", "status"),
        Index("ix_warning_status_severity", "status", "severity"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    rule_id: Mapped[str] = mapped_column(String(20), index=True)
    severity: Mapped[str] = mapped_column(String(10))  # red | yellow | blue
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_instance.id"), index=True)
    summary: Mapped[str] = mapped_column(String(300))
    facts: Mapped[str] = mapped_column(Text)  # JSON: what triggered it (values, dates, case ids, events)
    status: Mapped[str] = mapped_column(String(20))  # raised | acknowledged | resolved | dismissed
    raised_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    handled_by: Mapped[str] = mapped_column(String(64), default="")
    opinion: Mapped[str] = mapped_column(Text, default="")
    supervision_case_id: Mapped[int | None] = mapped_column(Integer)


class WarningSubject(Base):
    """Who a warning involves (a username or a person's name): the cadre file reads this."""

    __tablename__ = "warning_subject"
    __table_args__ = (UniqueConstraint("warning_id", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    warning_id: Mapped[int] = mapped_column(ForeignKey("warning.id"))
    subject: Mapped[str] = mapped_column(String(100), index=True)


class Kinship(Base):
    """The declared kinship / relationship register (亲属关系库): a cadre and a person related to them.
    ``degree`` 0 is the cadre themself, 1 spouse/parents/children, 2 siblings/grandparents/grandchildren,
    3 and more: wider relatives. Cadres declare, supervisors maintain (audited in the system chain)."""

    __tablename__ = "kinship"
    __table_args__ = (UniqueConstraint("org_id", "cadre", "person_name", "relation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    cadre: Mapped[str] = mapped_column(String(64))  # username of the cadre
    cadre_name: Mapped[str] = mapped_column(String(100), default="")
    person_name: Mapped[str] = mapped_column(String(100), index=True)
    relation: Mapped[str] = mapped_column(String(20))
    degree: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    declared_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class SupervisionNote(Base):
    """A supervisor's record about a cadre (廉情档案): a talk (谈话), a notice (提醒), the three lists
    (三交底: responsibilities, problems, risks) or other; recorded through :mod:`engine.supervision`
    with an event in the system chain."""

    __tablename__ = "supervision_note"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    author: Mapped[str] = mapped_column(String(64))  # the supervisor's username
    subject: Mapped[str] = mapped_column(String(64), index=True)  # the cadre's username
    kind: Mapped[str] = mapped_column(String(20))  # talk | notice | three_lists | other
    text: Mapped[str] = mapped_column(Text, default="")
    responsibilities: Mapped[str] = mapped_column(Text, default="")  # 三交底: 责任清单
    problems: Mapped[str] = mapped_column(Text, default="")  # 问题清单
    risks: Mapped[str] = mapped_column(Text, default="")  # 风险清单
    at: Mapped[datetime] = mapped_column(DateTime)


class PeriodicCase(Base):
    """A case Xiaowei started on a schedule (the monthly checklist, a grade notice): at most one per
    kind, organization and period, under a unique constraint (idempotent, safe from two processes)."""

    __tablename__ = "periodic_case"
    __table_args__ = (UniqueConstraint("kind", "org_id", "period"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # monthly_check | grade_notice
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_instance.id"))
    detail: Mapped[str] = mapped_column(Text, default="")  # JSON: e.g. the grade and score
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Household(Base):
    """A household (户) of a village or community: persons of one household are one party for the
    conflict-of-interest rules."""

    __tablename__ = "household"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))  # e.g. 张三明户, or the 户籍 number
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Person(Base):
    """A natural person (自然人) that accounts, applicants, payees, suppliers' contacts and declared
    relatives refer to. The ID number is kept encrypted (``id_cipher``, Fernet) and as a keyed hash
    (``id_hash``, HMAC-SHA256) so that the same person is found again without storing it in clear;
    the phone likewise. ``name_key`` is the normalized name for lookups."""

    __tablename__ = "person"
    __table_args__ = (Index("ix_person_org_name", "org_id", "name_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100))
    id_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    id_cipher: Mapped[str] = mapped_column(Text, default="")
    id_tail: Mapped[str] = mapped_column(String(4), default="")  # last four characters, for people to tell apart
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_cipher: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64), default="")


class PersonRelation(Base):
    """Kinship by person, with degree: ``relative_id`` is ``person_id``'s ``relation`` (degree 1:
    spouse, parents, children; 2: siblings, grandparents, grandchildren; 3+: wider)."""

    __tablename__ = "person_relation"
    __table_args__ = (UniqueConstraint("person_id", "relative_id", "relation"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    relative_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    relation: Mapped[str] = mapped_column(String(20))
    degree: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(200), default="")
    declared_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class CasePerson(Base):
    """Derived: a person a case is about — the applicant, payee, 代办 beneficiary, supplier's contact…
    — as its forms named them, resolved to the register (``matched`` by id number, name or new)."""

    __tablename__ = "case_person"
    __table_args__ = (UniqueConstraint("case_id", "step_id", "field"), Index("ix_case_person_person", "person_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"), index=True)
    step_id: Mapped[str] = mapped_column(String(100))
    field: Mapped[str] = mapped_column(String(60))
    role: Mapped[str] = mapped_column(String(30))  # applicant | payee | beneficiary | contact | party
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"))
    matched: Mapped[str] = mapped_column(String(10))  # id | name | new


class AppSecret(Base):
    """A key the application made for itself when none was configured (see engine/people.py)."""

    __tablename__ = "app_secret"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime)
# --- hardening (#13): sessions, limits, signed checkpoints ------------------------------------------

class UserSession(Base):
    """A signed-in session, valid on the server side: the cookie carries a random token, this row its
    SHA-256. Logout, a password change or an administrator's "sign out everywhere" set ``ended_at``,
    and the cookie stops working at once."""

    __tablename__ = "user_session"
    __table_args__ = (Index("ix_user_session_user_ended", "user_id", "ended_at"),)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie's token
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    end_reason: Mapped[str] = mapped_column(String(20), default="")  # logout | password | everywhere | admin


class LoginThrottle(Base):
    """Failed sign-ins of one (user name, client address) pair: the delay before its next attempt grows
    with each failure; other addresses are not affected (no lock-out by strangers). ``reported`` is how
    many of the failures the system chain already records (failures are recorded in aggregate)."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # keyed hash of (user name, address)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(16), default="")  # a keyed hash prefix of the address
    failures: Mapped[int] = mapped_column(Integer, default=0)
    reported: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    next_at: Mapped[datetime] = mapped_column(DateTime)


class RateCounter(Base):
    """An atomic counter per key and time window (``INSERT … ON CONFLICT DO UPDATE … RETURNING``):
    public submissions per sender, upload bytes per user and day, refused requests per client."""

    __tablename__ = "rate_counter"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class FormStamp(Base):
    """A public form's stamp once used: a second submission with the same stamp is refused."""

    __tablename__ = "form_stamp"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    used_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class AuditCheckpoint(Base):
    """A signed tree head: the Merkle root over the first ``tree_size`` leaves of ``checkpoint_leaf``
    (every chain head as it was at each checkpoint), signed with the district's Ed25519 key, which is
    kept outside the database. Each checkpoint extends the one before (consistency proofs)."""

    __tablename__ = "audit_checkpoint"
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(Integer)
    root_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))  # hex of the raw Ed25519 public key
    signature: Mapped[str] = mapped_column(String(128))  # hex
    frontier: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the perfect subtrees' roots, for the next one


class CheckpointLeaf(Base):
    """One leaf of the checkpoint tree: a chain's head (chain, seq, hash) when a checkpoint was made."""

    __tablename__ = "checkpoint_leaf"
    __table_args__ = (Index("ix_checkpoint_leaf_chain", "chain", "idx"),)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 0-based
    chain: Mapped[str] = mapped_column(String(40))
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    leaf_hash: Mapped[str] = mapped_column(String(64))
    checkpoint: Mapped[int] = mapped_column(Integer)


class AuditAnchor(Base):
    """The head of each chain as the latest checkpoint anchors it (derived from ``checkpoint_leaf``,
    kept so that finding the chains that moved since is one join)."""

    __tablename__ = "audit_anchor"
    chain: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[int | None] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    leaf_idx: Mapped[int] = mapped_column(Integer)


class SealedIdentity(Base):
    """Who filed something from the public — an objector's or a reporter's name and phone — kept out
    of the hashed audit trail. The event in the case's chain (``seq``) holds only a salted commitment,
    sha256 of the salt and the identity (:func:`engine.privacy.commitment`): the chain still proves
    what was filed without revealing it, and only those who handle it read this row."""

    __tablename__ = "sealed_identity"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"))
    seq: Mapped[int] = mapped_column(Integer)  # the event of the case's chain that holds the commitment
    kind: Mapped[str] = mapped_column(String(20))  # objection | report
    name: Mapped[str] = mapped_column(String(50), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    salt: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Objection(Base):
    """An objection (异议) filed during a notice period, by its ``objection_filed`` event: the receipt
    code its objector follows it by, and the notice timer it was filed under (so a notice counts its
    own objections). Legacy objections (filed before receipts existed) have no receipt code."""

    __tablename__ = "objection"
    __table_args__ = (
        UniqueConstraint("case_id", "seq"),
        Index("ix_objection_case_timer", "case_id", "timer_task_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_instance.id"))
    seq: Mapped[int] = mapped_column(Integer)  # the objection_filed event
    receipt_code: Mapped[str | None] = mapped_column(String(20), unique=True)
    step_id: Mapped[str] = mapped_column(String(100))  # the disclosure step on notice
    node_id: Mapped[str] = mapped_column(String(100))  # its notice-period timer
    timer_task_id: Mapped[str] = mapped_column(String(36), default="")
    filed_at: Mapped[datetime] = mapped_column(DateTime)


# --- background work (#12): the transactional outbox ----------------------------------------------

class OutboxEntry(Base):
    """A durable record, written in the same transaction as a change of a case, that the case changed:
    the background worker (``xiaowei worker``, or the thread of ``xiaowei serve``) evaluates the warning
    rules for it. A worker claims a row until ``claimed_until`` (wall-clock UTC); it marks ``done_at`` in
    the transaction that stores the warnings. A claim that expires (the worker died) is taken again."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "id", sqlite_where=text("done_at IS NULL"),
              postgresql_where=text("done_at IS NULL")),
        Index("ix_outbox_done_at", "done_at"),
    )
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # case_changed
    case_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    done_at: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


# --- dashboard figures cache (#12) ------------------------------------------------------------------

class DashboardVersion(Base):
    """A counter per township (or other organization holding cases directly) that moves on whenever
    something the dashboard counts changes there: the outbox worker moves it in the transaction that
    marks a changed case's outbox rows done; storing or handling a warning moves it too."""

    __tablename__ = "dashboard_version"
    org_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)


class DashboardCache(Base):
    """The computed figures of one dashboard scope (villages, months, month), with the versions of
    its townships they were computed at: valid while those versions stand (and for a few minutes
    at most, since the passing of time alone changes overdue counts)."""

    __tablename__ = "dashboard_cache"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    versions: Mapped[str] = mapped_column(Text)
    figures: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(DateTime)
