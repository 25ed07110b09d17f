"""People, not accounts: the person register and the questions the conflict rules ask of it.

Accounts act; persons apply, receive, supply and are related. A :class:`~storage.models.Person` has a
name, an ID number (kept encrypted with Fernet and as a keyed HMAC-SHA256 hash, so the same person is
found again without the number in clear), a phone (likewise), a village and a household. Users
(``User.person_id``), the persons a case names (applicant, payee, 代办 beneficiary, supplier's contact:
:class:`~storage.models.CasePerson`, resolved when a step is completed) and declared relatives
(:class:`~storage.models.PersonRelation`, kinship by person with degree) all point at persons.

Keys: ``XIAOWEI_PERSON_KEY`` (any long random text; read only here, in :func:`_master_key`) derives
the encryption and hashing keys. Without it the application makes a key once and keeps it in the
database (``app_secret``) — fine for a demo; in production set the variable so that the key does not
live beside the data it protects.

The query functions the separation-of-duties and conflict-of-interest rules use:
:func:`person_of_user`, :func:`is_self`, :func:`same_person`, :func:`declared_relation`, :func:`same_household`,
:func:`conflict_of` (all three at once, in Chinese) and :func:`case_persons`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from . import audit
from .errors import Conflict, InvalidData, NotFound
from .forms import valid_id_number
from storage.models import AppSecret, CasePerson, Household, Organization, Person, PersonRelation, User

KEY_ENV = "XIAOWEI_PERSON_KEY"
log = logging.getLogger("xiaowei.people")

# relation → (Chinese, degree); the same relations as the name-based register (engine.warnings).
RELATIONS = {
    "self": ("本人", 0), "spouse": ("配偶", 1), "parent": ("父母", 1), "child": ("子女", 1),
    "child_in_law": ("子女配偶", 1), "sibling": ("兄弟姐妹", 2), "grandparent": ("祖父母、外祖父母", 2),
    "grandchild": ("孙子女、外孙子女", 2), "sibling_in_law": ("兄弟姐妹配偶", 2), "parent_in_law": ("配偶父母", 2),
    "cousin": ("堂表兄弟姐妹", 3), "uncle_aunt": ("伯叔姑舅姨", 3), "nephew_niece": ("侄子女、外甥子女", 3),
    "partner": ("投资合伙关系人", 1), "other": ("其他特定关系人", 3),
    "in_law": ("配偶的父母、子女的配偶", 2),  # the name-based register's word (``xiaowei kin add``)
}
# Form fields whose person the case is about, by what the field name says (first match wins).
FIELD_ROLES = (("contact", "contact"), ("payee", "payee"), ("applicant", "applicant"), ("recipient", "recipient"),
               ("candidate", "candidate"), ("household", "applicant"), ("contractor", "contractor"),
               ("lessee", "contractor"), ("transferee", "contractor"))


# --------------------------------------------------------------------------------------------
# Keys, hashes and encryption


def name_key(name: str | None) -> str:
    """The form of a name lookups compare: full-width folded (NFKC), no spaces, lower case."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(name or ""))).lower()


def normalize_id_number(value: str | None) -> str:
    return re.sub(r"\s+", "", str(value or "")).upper()


def normalize_phone(value: str | None) -> str:
    return re.sub(r"[\s\-]", "", str(value or ""))


_keys: dict[str, tuple[bytes, bytes]] = {}


def _master_key(session: Session) -> str:
    """``XIAOWEI_PERSON_KEY``, else the key this database made for itself (made once)."""
    from engine import settings

    configured = (settings.current().person_key or "").strip()
    if configured:
        return configured
    row = session.get(AppSecret, "person_key")
    if row is None:
        row = AppSecret(name="person_key", value=secrets.token_urlsafe(32), created_at=audit.db_time())
        session.add(row)
        session.flush()
        log.warning("%s is not set: the person register's key is kept in the database (set it in production)",
                    KEY_ENV)
    return row.value


def _derived(session: Session) -> tuple[bytes, bytes]:
    """(HMAC key, Fernet key) derived from the master key with HKDF-SHA256."""
    master = _master_key(session)
    found = _keys.get(master)
    if found is None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        def derive(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"xiaowei person register",
                        info=info).derive(master.encode("utf-8"))

        found = (derive(b"lookup hash"), base64.urlsafe_b64encode(derive(b"encryption")))
        _keys[master] = found
    return found


def keyed_hash(session: Session, kind: str, value: str) -> str:
    """HMAC-SHA256 of a normalized ID number or phone (hex): equal values, equal hashes."""
    key, _ = _derived(session)
    return hmac.new(key, f"{kind}:{value}".encode("utf-8"), hashlib.sha256).hexdigest()


def _encrypt(session: Session, value: str) -> str:
    from cryptography.fernet import Fernet

    return Fernet(_derived(session)[1]).encrypt(value.encode("utf-8")).decode("ascii") if value else ""


def reveal_id_number(session: Session, person: Person) -> str:
    """The ID number in clear (for those who handle the case; never on public pages)."""
    from cryptography.fernet import Fernet

    return Fernet(_derived(session)[1]).decrypt(person.id_cipher.encode()).decode() if person.id_cipher else ""


# --------------------------------------------------------------------------------------------
# The register


@dataclass(frozen=True)
class Found:
    """A person found (or made) for what a form said, and how: ``id`` | ``name`` | ``new``."""

    person: Person
    matched: str


def find_or_add(session: Session, name: str, *, org: Organization | None, id_number: str | None = None,
                phone: str | None = None, household: Household | None = None, actor: str = "system") -> Found:
    """The person a form names. An ID number decides (the same number is the same person, whatever the
    name says); without one, the only person of that name in the village, if there is exactly one and
    it has no other number; else a new person. New persons are recorded in the system chain."""
    name = str(name or "").strip()
    if not name:
        raise InvalidData("须填写姓名 / a name is required", {"name": "required"})
    number = normalize_id_number(id_number)
    if number and not valid_id_number(number):
        raise InvalidData("身份证号码无效 / not a valid ID number", {"id_number": "invalid"})
    id_hash = keyed_hash(session, "id", number) if number else None
    if id_hash:
        found = session.scalar(select(Person).where(Person.id_hash == id_hash))
        if found is not None:
            _complete(session, found, phone=phone, household=household)
            return Found(found, "id")
    if org is not None:
        same = session.scalars(select(Person).where(Person.org_id == org.id, Person.name_key == name_key(name))
                               .limit(2)).all()
        if len(same) == 1 and (same[0].id_hash is None or id_hash is None):
            person = same[0]
            if id_hash and person.id_hash is None:
                _set_id(session, person, number, id_hash)
            _complete(session, person, phone=phone, household=household)
            return Found(person, "name")
    person = Person(org_id=org.id if org else None, household_id=household.id if household else None, name=name[:100],
                    name_key=name_key(name)[:100], id_cipher="", id_tail="", phone_cipher="",
                    created_at=audit.db_time(), created_by=actor)
    if number:
        _set_id(session, person, number, id_hash)
    session.add(person)
    _complete(session, person, phone=phone, household=None)
    session.flush()
    audit.append_system_event(session, "person_added", actor=actor, data={
        "person_id": person.id, "org": org.code if org else None, "name": person.name,
        "id_tail": person.id_tail, "household_id": person.household_id})
    return Found(person, "new")


def _set_id(session: Session, person: Person, number: str, id_hash: str | None) -> None:
    person.id_hash = id_hash
    person.id_cipher = _encrypt(session, number)
    person.id_tail = number[-4:]


def _complete(session: Session, person: Person, *, phone: str | None, household: Household | None) -> None:
    """Add what was not known yet (a phone, a household); what is known is not overwritten here."""
    number = normalize_phone(phone)
    if number and not person.phone_hash:
        person.phone_hash = keyed_hash(session, "phone", number)
        person.phone_cipher = _encrypt(session, number)
    if household is not None and person.household_id is None:
        person.household_id = household.id


def add_household(session: Session, org: Organization, name: str, *, actor: str = "system") -> Household:
    row = Household(org_id=org.id, name=str(name).strip()[:100], created_at=audit.db_time())
    session.add(row)
    session.flush()
    audit.append_system_event(session, "household_added", actor=actor,
                              data={"household_id": row.id, "org": org.code, "name": row.name})
    return row


def set_household(session: Session, person: Person, household: Household | None, *, actor: str) -> None:
    """Move a person into a household (or out of it), audited."""
    before = person.household_id
    person.household_id = household.id if household else None
    session.flush()
    audit.append_system_event(session, "person_household_set", actor=actor, data={
        "person_id": person.id, "before": before, "after": person.household_id})


def link_user(session: Session, username: str, person: Person, *, actor: str) -> None:
    """The account ``username`` is held by ``person`` (audited)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"没有用户 {username} / no such user")
    before = user.person_id
    user.person_id = person.id
    session.flush()
    audit.append_system_event(session, "user_person_linked", actor=actor,
                              data={"username": username, "person_id": person.id, "before": before})


def person_for_user(session: Session, username: str, *, id_number: str | None = None,
                    actor: str = "system") -> Person:
    """The person holding an account, made from its name (and ID number) and linked when missing."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"没有用户 {username} / no such user")
    if user.person_id is not None:
        person = session.get(Person, user.person_id)
        if id_number and person.id_hash is None:
            number = normalize_id_number(id_number)
            _set_id(session, person, number, keyed_hash(session, "id", number))
        return person
    org = _home_org(session, user)
    found = find_or_add(session, user.display_name or username, org=org, id_number=id_number, actor=actor)
    link_user(session, username, found.person, actor=actor)
    return found.person


def _home_org(session: Session, user: User) -> Organization | None:
    for assignment in user.assignments:
        if assignment.org.kind in ("village", "community"):
            return assignment.org
    return user.assignments[0].org if user.assignments else None


def declare_relative(session: Session, person: Person, relative: Person, relation: str, *, actor: str,
                     degree: int | None = None, note: str = "") -> PersonRelation:
    """Kinship by person: ``relative`` is ``person``'s ``relation`` (degree from :data:`RELATIONS`
    unless given); audited in the system chain."""
    if relation not in RELATIONS:
        raise InvalidData(f"未知亲属关系 {relation} / unknown relation", {"relation": ", ".join(RELATIONS)})
    exists = session.scalar(select(PersonRelation.id).where(
        PersonRelation.person_id == person.id, PersonRelation.relative_id == relative.id,
        PersonRelation.relation == relation))
    if exists:
        raise Conflict("已登记过这一关系 / already declared")
    row = PersonRelation(person_id=person.id, relative_id=relative.id, relation=relation,
                         degree=RELATIONS[relation][1] if degree is None else int(degree), note=(note or "")[:200],
                         declared_by=actor, created_at=audit.db_time())
    session.add(row)
    session.flush()
    audit.append_system_event(session, "person_relation_declared", actor=actor, data={
        "id": row.id, "person_id": person.id, "relative_id": relative.id, "relation": relation,
        "degree": row.degree})
    return row


# --------------------------------------------------------------------------------------------
# The persons a case names


def _role_of(field_name: str) -> str:
    for part, role in FIELD_ROLES:
        if part in field_name:
            return role
    return "party"


def person_fields(fields: Iterable[Any]) -> list[tuple[str, str | None, str | None]]:
    """(name field, ID number field, phone field) of a step's form: each ``person`` field with the
    ``idnumber`` / ``phone`` field that belongs to it (the only one, or the one with its prefix), and
    a ``payee`` text field."""
    fields = list(fields)
    names = [f.name for f in fields if f.type == "person" or (f.type == "text" and f.name == "payee")]
    ids = [f.name for f in fields if f.type == "idnumber"]
    phones = [f.name for f in fields if f.type == "phone"]

    def partner(name: str, candidates: list[str]) -> str | None:
        if len(candidates) == 1 and len(names) == 1:
            return candidates[0]
        prefix = name.split("_")[0]
        return next((c for c in candidates if c.split("_")[0] == prefix), None)

    return [(name, partner(name, ids), partner(name, phones)) for name in names]


def resolve_step(session: Session, case_id: int, org: Organization, step: Any, values: Mapping[str, Any], *,
                 actor: str, on_behalf_of: str | None = None) -> list[CasePerson]:
    """Resolve the persons a completed step names to the register (``case_person`` rows, replaced when
    the step is done again). The 代办 beneficiary is the applicant the cadre acted for."""
    rows = []
    for name_field, id_field, phone_field in person_fields(step.fields):
        name = values.get(name_field)
        if not name:
            continue
        found = find_or_add(session, str(name), org=org, id_number=values.get(id_field) if id_field else None,
                            phone=values.get(phone_field) if phone_field else None, actor=actor)
        rows.append(_case_person(session, case_id, step.id, name_field, _role_of(name_field), found))
    if on_behalf_of:
        found = find_or_add(session, on_behalf_of, org=org, actor=actor)
        rows.append(_case_person(session, case_id, step.id, "on_behalf_of", "beneficiary", found))
    return rows


def _case_person(session: Session, case_id: int, step_id: str, field: str, role: str, found: Found) -> CasePerson:
    row = session.scalar(select(CasePerson).where(CasePerson.case_id == case_id, CasePerson.step_id == step_id,
                                                  CasePerson.field == field))
    if row is None:
        row = CasePerson(case_id=case_id, step_id=step_id, field=field)
        session.add(row)
    row.role, row.person_id, row.matched = role, found.person.id, found.matched
    session.flush()
    return row


def case_persons(session: Session, case_id: int, roles: Iterable[str] | None = None) -> list[CasePerson]:
    """The persons a case names (optionally only some roles), in the order they were resolved."""
    query = select(CasePerson).where(CasePerson.case_id == case_id).order_by(CasePerson.id)
    if roles is not None:
        query = query.where(CasePerson.role.in_(list(roles)))
    return list(session.scalars(query))


# --------------------------------------------------------------------------------------------
# The questions of separation of duties and conflicts of interest


def person_of_user(session: Session, username: str) -> Person | None:
    """The person holding the account, if it is linked (None: an account not yet linked to anyone)."""
    person_id = session.scalar(select(User.person_id).where(User.username == username))
    return session.get(Person, person_id) if person_id else None


def is_self(session: Session, username: str, person_id: int) -> bool:
    """Whether the person is the account holder themself."""
    person = person_of_user(session, username)
    return person is not None and person.id == person_id


def declared_relation(session: Session, username: str, person_id: int, max_degree: int) -> PersonRelation | None:
    """A declared relation (either direction) between the account holder and the person within
    ``max_degree`` (1: spouse, parents, children; 2: also siblings, grandparents…), closest first."""
    person = person_of_user(session, username)
    if person is None:
        return None
    return session.scalars(select(PersonRelation).where(
        or_((PersonRelation.person_id == person.id) & (PersonRelation.relative_id == person_id),
            (PersonRelation.person_id == person_id) & (PersonRelation.relative_id == person.id)),
        PersonRelation.degree <= max_degree).order_by(PersonRelation.degree)).first()


def same_person(session: Session, username: str, other_username: str) -> bool:
    """Whether two accounts are held by the same person (a keeper approving their own use of the
    seal under another account, a cadre with two accounts)."""
    mine, theirs = person_of_user(session, username), person_of_user(session, other_username)
    return mine is not None and theirs is not None and mine.id == theirs.id


def same_household(session: Session, username: str, person_id: int) -> bool:
    """Whether the person lives in the account holder's household."""
    person = person_of_user(session, username)
    other = session.get(Person, person_id)
    return (person is not None and other is not None and person.household_id is not None
            and person.household_id == other.household_id)


@dataclass(frozen=True)
class ConflictFound:
    """Why an account holder must not handle a case that names a person."""

    kind: str  # self | relative | household
    person_id: int
    relation: str = ""
    degree: int = 0

    def zh(self, person_name: str, cadre_name: str) -> str:
        if self.kind == "self":
            return f"{cadre_name}本人就是“{person_name}”"
        if self.kind == "household":
            return f"“{person_name}”与{cadre_name}同户"
        return f"“{person_name}”是{cadre_name}申报的{RELATIONS.get(self.relation, (self.relation,))[0]}({self.degree}级)"


def conflict_of(session: Session, username: str, person_id: int, max_degree: int = 2) -> ConflictFound | None:
    """Self, a declared relative within ``max_degree``, or the same household — the first that holds."""
    if is_self(session, username, person_id):
        return ConflictFound("self", person_id)
    relation = declared_relation(session, username, person_id, max_degree)
    if relation is not None:
        return ConflictFound("relative", person_id, relation.relation, relation.degree)
    if same_household(session, username, person_id):
        return ConflictFound("household", person_id)
    return None
