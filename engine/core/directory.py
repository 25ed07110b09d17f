"""Organizations, users and their role assignments; who may act where.

Passwords are hashed with argon2id (:mod:`engine.passwords`; older scrypt hashes still verify and
are upgraded at the next sign-in). Every administrative change is an event in the 'system' audit chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from . import audit, catalogue
from .errors import Conflict, Forbidden, InvalidData, NotFound
from storage.models import Organization, RoleAssignment, User

ORG_KINDS = ("district", "township", "village", "community")
_PARENT_KINDS = {"district": (), "township": ("district",), "village": ("township",), "community": ("township",)}
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_USERNAME = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
KIND_ZH = {"district": "区", "township": "镇(街道)", "village": "村", "community": "社区"}


def hash_password(password: str) -> str:
    """An argon2id hash (:func:`engine.passwords.hash_password`)."""
    from . import passwords

    return passwords.hash_password(password)


def check_password(password: str, stored: str) -> bool:
    from . import passwords

    return passwords.check_password(password, stored)


def upgrade_hash(session: Session, username: str, password: str) -> None:
    """Re-hash a just-verified password at the current strength (argon2id); sessions stay open."""
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    session.flush()
    audit.append_system_event(session, "password_rehashed", actor=username,
                              data={"username": username, "scheme": "argon2id"})


def validate_password(password: str) -> None:
    if len(password) < 8:
        raise InvalidData("密码至少8位 / the password needs at least 8 characters",
                          {"password": "密码至少8位 / at least 8 characters"})


def add_org(session: Session, code: str, name: str, kind: str, parent_code: str | None, *, actor: str = "system") -> Organization:
    """Create an organization under its parent; codes are stable and unique."""
    if not _CODE.match(code or ""):
        raise InvalidData(f"机构代码“{code}”无效(字母、数字、-、_) / invalid code", {"code": "invalid"})
    if kind not in ORG_KINDS:
        raise InvalidData(f"机构类型须为 {'、'.join(ORG_KINDS)} / kind must be one of {', '.join(ORG_KINDS)}",
                          {"kind": "invalid"})
    if not (name or "").strip():
        raise InvalidData("机构名称不能为空 / name is required", {"name": "required"})
    if session.scalar(select(Organization).where(Organization.code == code)) is not None:
        raise Conflict(f"机构代码“{code}”已存在 / organization {code} already exists")
    parent = None
    if _PARENT_KINDS[kind]:
        if not parent_code:
            raise InvalidData(f"{KIND_ZH[kind]}须指定上级机构(--parent) / a {kind} needs a parent", {"parent": "required"})
        parent = get_org(session, parent_code)
        if parent.kind not in _PARENT_KINDS[kind]:
            raise InvalidData(f"{KIND_ZH[kind]}的上级须为{'或'.join(KIND_ZH[k] for k in _PARENT_KINDS[kind])} / "
                              f"a {kind} belongs under a {' or '.join(_PARENT_KINDS[kind])}", {"parent": "invalid"})
    elif parent_code:
        raise InvalidData("区没有上级机构 / a district has no parent", {"parent": "invalid"})
    org = Organization(code=code, name=name.strip(), kind=kind, parent_id=parent.id if parent else None,
                       created_at=audit.db_time())
    session.add(org)
    session.flush()
    session.info.pop(_DESCENDANTS, None)  # a new organization: the walked subtrees have grown
    audit.append_system_event(session, "org_added", actor=actor,
                              data={"code": code, "name": org.name, "kind": kind, "parent": parent_code})
    return org


def get_org(session: Session, code: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.code == code))
    if org is None:
        raise NotFound(f"没有代码为“{code}”的机构 / no organization {code}")
    return org


def ancestors(session: Session, org: Organization) -> list[Organization]:
    """The organization and every organization above it, nearest first."""
    chain = [org]
    while chain[-1].parent_id is not None:
        parent = session.get(Organization, chain[-1].parent_id)
        if parent is None or parent in chain:
            break
        chain.append(parent)
    return chain


_chain_cache: dict[tuple[str, int], tuple[int, ...]] = {}


def chain_ids(session: Session, org_id: int) -> tuple[int, ...]:
    """Ids of an organization and its ancestors, nearest first (cached: parents never change)."""
    key = (str(session.get_bind().url), org_id)
    found = _chain_cache.get(key)
    if found is None:
        org = session.get(Organization, org_id)
        if org is None:
            raise NotFound(f"没有编号为 {org_id} 的机构 / no organization {org_id}")
        found = tuple(o.id for o in ancestors(session, org))
        if len(_chain_cache) > 100_000:
            _chain_cache.clear()
        _chain_cache[key] = found
    return found


_DESCENDANTS = "directory.descendants"  # session.info key: (transaction, the subtrees it walked)


def descendants(session: Session, org_ids: Iterable[int]) -> set[int]:
    """The given organizations and every organization below them: one indexed query per level down
    (parent_id), so a village's user reads one row, not the whole directory (a province: ~25,000).
    Walked once per transaction for the same roots (a page asks for the actor's scope several times);
    :func:`add_org` forgets the walks."""
    result: set[int] = set(org_ids)
    key = frozenset(result)
    held = session.info.get(_DESCENDANTS)  # walked in this transaction only: another may see a newer tree
    if held is not None and held[0] is session.get_transaction() and key in held[1]:
        return set(held[1][key])
    level = set(result)
    while level:
        found: set[int] = set()
        ordered = sorted(level)
        for i in range(0, len(ordered), 900):  # bounded IN lists
            found.update(session.scalars(select(Organization.id).where(Organization.parent_id.in_(ordered[i:i + 900]))))
        level = found - result
        result |= level
    txn = session.get_transaction()  # begun by the walk's first query, if not before
    if held is None or held[0] is not txn:
        held = session.info[_DESCENDANTS] = (txn, {})
    held[1][key] = frozenset(result)
    return result


def parse_role_spec(spec: str) -> tuple[str, str]:
    if "@" not in spec:
        raise InvalidData(f"角色须写作 ROLE@ORGCODE:{spec} / role must be ROLE@ORGCODE", {"role": spec})
    role, org = spec.split("@", 1)
    if role not in catalogue.roles():
        raise InvalidData(f"未知角色“{role}”(见 xiaowei roles list) / unknown role {role}", {"role": role})
    return role, org


def add_user(session: Session, username: str, password: str, roles: Iterable[str] = (), *,
             display_name: str = "", actor: str = "system") -> User:
    """Create a user with role assignments given as ``role@orgcode``."""
    if not _USERNAME.match(username or ""):
        raise InvalidData(f"用户名“{username}”无效(2–64位字母、数字、_.-) / invalid username", {"username": "invalid"})
    validate_password(password)
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"用户“{username}”已存在 / user {username} already exists")
    specs = [parse_role_spec(s) for s in roles]
    user = User(username=username, display_name=display_name or username, password_hash=hash_password(password),
                active=True, failed_logins=0, created_at=audit.db_time())
    session.add(user)
    session.flush()
    for role, org_code in specs:
        org = get_org(session, org_code)
        session.add(RoleAssignment(user_id=user.id, role_key=role, org_id=org.id))
    session.flush()
    audit.append_system_event(session, "user_added", actor=actor,
                              data={"username": username, "roles": [f"{r}@{o}" for r, o in specs]})
    return user


def grant(session: Session, username: str, spec: str, *, actor: str = "system") -> None:
    role, org_code = parse_role_spec(spec)
    user = get_user(session, username)
    org = get_org(session, org_code)
    exists = session.scalar(select(RoleAssignment).where(
        RoleAssignment.user_id == user.id, RoleAssignment.role_key == role, RoleAssignment.org_id == org.id))
    if exists is None:
        session.add(RoleAssignment(user_id=user.id, role_key=role, org_id=org.id))
        audit.append_system_event(session, "role_granted", actor=actor, data={"username": username, "role": spec})


def revoke(session: Session, username: str, spec: str, *, actor: str = "system") -> None:
    """Take a role assignment (``role@orgcode``) away from a user (audited); NotFound if they do not hold it."""
    role, org_code = parse_role_spec(spec)
    user = get_user(session, username)
    org = get_org(session, org_code)
    row = session.scalar(select(RoleAssignment).where(
        RoleAssignment.user_id == user.id, RoleAssignment.role_key == role, RoleAssignment.org_id == org.id))
    if row is None:
        raise NotFound(f"用户“{username}”没有角色 {spec} / user {username} does not hold {spec}")
    session.delete(row)
    session.flush()
    audit.append_system_event(session, "role_revoked", actor=actor, data={"username": username, "role": spec})


def set_active(session: Session, username: str, active: bool, *, actor: str = "system") -> None:
    """Deactivate a user (they can no longer sign in; their sessions end at once) or reactivate them."""
    user = get_user(session, username)
    if bool(user.active) == bool(active):
        return
    user.active = bool(active)
    if active:
        user.failed_logins = 0
        user.locked_until = None
    else:
        from . import sessions

        sessions.end_all(session, user.id, "deactivated")
    session.flush()
    audit.append_system_event(session, "user_reactivated" if active else "user_deactivated", actor=actor,
                              data={"username": username})


def set_password(session: Session, username: str, password: str, *, actor: str = "system") -> None:
    validate_password(password)
    user = get_user(session, username)
    user.password_hash = hash_password(password)
    user.password_changed_at = audit.db_time()
    user.failed_logins = 0
    user.locked_until = None
    from . import sessions

    ended = sessions.end_all(session, user.id, "password")  # every session of the old password ends
    audit.append_system_event(session, "password_set", actor=actor, data={"username": username,
                                                                          "sessions_ended": ended})


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"没有用户“{username}” / no user {username}")
    return user


@dataclass
class Actor:
    """A user acting now, with the roles they hold and where."""

    user_id: int
    username: str
    assignments: list[tuple[str, int]] = field(default_factory=list)

    def roles_at(self, org_chain_ids: Iterable[int]) -> set[str]:
        """Roles that apply to an organization, given it and its ancestors' ids."""
        ids = set(org_chain_ids)
        return {role for role, oid in self.assignments if oid in ids}


_ACTOR_QUERY = (select(User.id, User.active, RoleAssignment.role_key, RoleAssignment.org_id)
                .outerjoin(RoleAssignment, RoleAssignment.user_id == User.id)
                .where(User.username == bindparam("username")))


def load_actor(session: Session, username: str) -> Actor:
    """The user with their role assignments, read in one query (never cached: revocations bite at once)."""
    rows = session.connection().execute(_ACTOR_QUERY, {"username": username}).all()
    if not rows:
        raise NotFound(f"没有用户“{username}” / no user {username}")
    if not rows[0][1]:
        raise Forbidden(f"用户“{username}”已停用 / user {username} is disabled")
    return Actor(rows[0][0], username, [(role, org) for _, _, role, org in rows if role is not None])


def visible_org_ids(session: Session, actor: Actor) -> set[int]:
    """Organizations whose cases the actor may see: the subtrees of every assignment."""
    return descendants(session, {oid for _, oid in actor.assignments})


def list_users(session: Session) -> list[dict]:
    users = session.scalars(select(User).order_by(User.username)).all()
    codes = dict(session.execute(select(Organization.id, Organization.code)).all())
    return [{"username": u.username, "display_name": u.display_name, "active": u.active,
             "roles": sorted(f"{a.role_key}@{codes.get(a.org_id)}" for a in u.assignments)} for u in users]


def list_orgs(session: Session) -> list[dict]:
    orgs = session.scalars(select(Organization).order_by(Organization.id)).all()
    codes = {o.id: o.code for o in orgs}
    return [{"code": o.code, "name": o.name, "kind": o.kind, "parent": codes.get(o.parent_id)} for o in orgs]


# --- sign-in (the web app's login; throttling lives in engine.throttle) ---------------------------

def record_login_success(session: Session, username: str) -> None:
    """Clear the lock-out columns of earlier versions (sign-in is throttled, never locked now)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is not None and (user.failed_logins or user.locked_until is not None):
        user.failed_logins = 0
        user.locked_until = None
        session.flush()


def login_facts(session: Session, username: str):
    """(id, username, password_hash, active, password_changed_at) of a user, or None: what signing in checks."""
    return session.execute(select(User.id, User.username, User.password_hash, User.active, User.password_changed_at)
                           .where(User.username == username)).first()


def session_facts(session: Session, username: str):
    """(id, username, display_name, active, password_changed_at) of a user, or None: what each request of
    a signed-in user checks."""
    return session.execute(select(User.id, User.username, User.display_name, User.active, User.password_changed_at)
                           .where(User.username == username)).first()


def display_names(session: Session, usernames: Iterable[str]) -> dict[str, str]:
    """username → display name, for the users among ``usernames`` (one query)."""
    names = {u for u in usernames if u}
    if not names:
        return {}
    return dict(session.execute(select(User.username, User.display_name).where(User.username.in_(names))).all())
