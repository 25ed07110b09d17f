"""Administration by township and district administrators, always within the organizations they
administer (the subtrees of their administrator role assignments).

Every change goes through :mod:`engine.directory` / :mod:`engine.procedures`, which append it to the
'system' audit chain with the administrator as the actor. The rules:

* an administrator manages only users whose every role lies within their area (a user who also holds
  a role elsewhere belongs to another administrator too, and is refused);
* an administrator never changes their own account or roles here;
* a role is granted only at an organization of the matching level (village roles at a village or
  community, township roles at a township, district roles at the district).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, directory, procedures
from engine.core.directory import Actor
from engine.core.errors import Forbidden, InvalidData, NotFound
from storage.models import AuditEvent, AuditHead, Organization, RoleAssignment, User

# Which organization kinds a role of each level may be held at.
LEVEL_KINDS = {"village": ("village", "community"), "township": ("township",), "district": ("district",)}
PER_PAGE = 50


def is_admin(actor: Actor | None) -> bool:
    return actor is not None and any(role in catalogue.ADMIN_ROLES for role, _ in actor.assignments)


def scope(session: Session, actor: Actor) -> set[int]:
    """Ids of the organizations the actor administers: their administrator orgs and everything below."""
    return directory.descendants(session, {oid for role, oid in actor.assignments if role in catalogue.ADMIN_ROLES})


def require_admin(actor: Actor | None) -> None:
    if not is_admin(actor):
        raise Forbidden("只有镇(街道)或区级管理员可以使用管理功能 / "
                        "only township and district administrators may use the administration pages")


def scope_orgs(session: Session, actor: Actor) -> list[Organization]:
    """The organizations in the actor's area, tree order (each followed by its children)."""
    ids = scope(session, actor)
    orgs = session.scalars(select(Organization).where(Organization.id.in_(ids))).all() if ids else []
    by_parent: dict[int | None, list[Organization]] = {}
    for o in orgs:
        by_parent.setdefault(o.parent_id if o.parent_id in ids else None, []).append(o)
    ordered: list[Organization] = []

    def walk(parent: int | None) -> None:
        for o in sorted(by_parent.get(parent, []), key=lambda o: o.code):
            ordered.append(o)
            walk(o.id)

    walk(None)
    return ordered


def role_fits(role_key: str, org_kind: str) -> bool:
    role = catalogue.roles().get(role_key)
    return role is not None and org_kind in LEVEL_KINDS.get(role.level, ())


def roles_for(org_kind: str) -> list[catalogue.Role]:
    return [r for r in catalogue.roles().values() if org_kind in LEVEL_KINDS.get(r.level, ())]


def org_in_scope(session: Session, actor: Actor, org_code: str) -> Organization:
    """The organization if the actor administers it (404 unknown, 403 outside the area)."""
    org = directory.get_org(session, org_code)
    if org.id not in scope(session, actor):
        raise Forbidden(f"机构“{org.name}”({org.code})不在您的管辖范围内 / "
                        f"organization {org.name} ({org.code}) is outside your area")
    return org


# --- users ----------------------------------------------------------------------------------------

@dataclass
class UserRow:
    username: str
    display_name: str
    active: bool
    locked_until: object
    roles: list[dict]          # {role, role_zh, org, org_name, in_scope}
    manageable: bool


def _rows(session: Session, users: list[User], ids: set[int]) -> list[UserRow]:
    if not users:
        return []
    orgs = {o.id: o for o in session.scalars(select(Organization))}
    assignments = session.execute(select(RoleAssignment.user_id, RoleAssignment.role_key, RoleAssignment.org_id)
                                  .where(RoleAssignment.user_id.in_([u.id for u in users]))).all()
    by_user: dict[int, list[dict]] = {}
    for uid, role, oid in assignments:
        org = orgs.get(oid)
        r = catalogue.roles().get(role)
        by_user.setdefault(uid, []).append({"role": role, "role_zh": r.zh if r else role,
                                            "org": org.code if org else "?", "org_name": org.name if org else "?",
                                            "in_scope": oid in ids})
    out = []
    for u in users:
        roles = sorted(by_user.get(u.id, []), key=lambda a: (a["org"], a["role"]))
        out.append(UserRow(u.username, u.display_name, bool(u.active), u.locked_until, roles,
                           bool(roles) and all(a["in_scope"] for a in roles)))
    return out


def list_users(session: Session, actor: Actor, *, text: str = "", page: int = 1,
               per_page: int = PER_PAGE) -> tuple[list[UserRow], int]:
    """Users holding a role within the actor's area (optionally matching ``text``), one page, and the total."""
    ids = scope(session, actor)
    if not ids:
        return [], 0
    held = select(RoleAssignment.user_id).where(RoleAssignment.org_id.in_(ids))
    query = select(User).where(User.id.in_(held))
    text = (text or "").strip()
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(User.username.ilike(pattern, escape="\\"),
                                User.display_name.ilike(pattern, escape="\\")))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    users = session.scalars(query.order_by(User.username).offset((page - 1) * per_page).limit(per_page)).all()
    return _rows(session, list(users), ids), total


def user_in_scope(session: Session, actor: Actor, username: str) -> UserRow:
    """A user the actor may see (holds a role in the area): 404 unknown, 403 otherwise."""
    user = directory.get_user(session, username)
    ids = scope(session, actor)
    row = _rows(session, [user], ids)[0]
    if not any(a["in_scope"] for a in row.roles):
        raise Forbidden(f"用户“{username}”不在您的管辖范围内 / user {username} is outside your area")
    return row


def manageable_user(session: Session, actor: Actor, username: str) -> UserRow:
    """A user the actor may change: in the area, every role within it, and not the actor."""
    row = user_in_scope(session, actor, username)
    if username == actor.username:
        raise Forbidden("不能在管理页面修改自己的账户或角色,请由上级管理员办理 / "
                        "you cannot change your own account or roles here; ask a higher-level administrator")
    if not row.manageable:
        outside = "、".join(f"{a['role_zh']}@{a['org_name']}" for a in row.roles if not a["in_scope"])
        outside_en = ", ".join(f"{a['role']}@{a['org']}" for a in row.roles if not a["in_scope"])
        raise Forbidden(f"用户“{username}”还在您的管辖范围外任职({outside}),只能由共同的上级管理员修改 / "
                        f"user {username} also holds roles outside your area ({outside_en}); "
                        "only an administrator over both areas may change it")
    return row


def _grantable(session: Session, actor: Actor, role: str, org_code: str) -> Organization:
    if role not in catalogue.roles():
        raise InvalidData(f"未知角色“{role}” / unknown role {role}", {"role": "unknown"})
    if not org_code:
        raise InvalidData("请选择机构 / choose an organization", {"org": "required"})
    org = org_in_scope(session, actor, org_code)
    if not role_fits(role, org.kind):
        r = catalogue.roles()[role]
        raise InvalidData(f"角色“{r.zh}”不能设在{directory.KIND_ZH.get(org.kind, org.kind)}“{org.name}” / "
                          f"the role {r.en or role} cannot be held at a {org.kind} ({org.name})", {"role": "level"})
    return org


def create_user(session: Session, actor: Actor, username: str, display_name: str, password: str,
                role: str, org_code: str) -> User:
    """Create a user with a first role in the area (audited as the actor)."""
    username = (username or "").strip()
    if not role:
        raise InvalidData("请选择第一个角色 / choose the first role", {"role": "required"})
    org = _grantable(session, actor, role, org_code)
    return directory.add_user(session, username, password, [f"{role}@{org.code}"],
                              display_name=(display_name or "").strip()[:100], actor=actor.username)


def grant_role(session: Session, actor: Actor, username: str, role: str, org_code: str) -> None:
    manageable_user(session, actor, username)
    org = _grantable(session, actor, role, org_code)
    directory.grant(session, username, f"{role}@{org.code}", actor=actor.username)


def revoke_role(session: Session, actor: Actor, username: str, role: str, org_code: str) -> None:
    row = manageable_user(session, actor, username)
    if not role or not org_code:
        raise InvalidData("请选择要撤销的角色 / choose the role to revoke", {"role": "required"})
    org_in_scope(session, actor, org_code)
    if not any(a["role"] == role and a["org"] == org_code for a in row.roles):
        raise NotFound(f"用户“{username}”没有该角色 / user {username} does not hold {role}@{org_code}")
    if len(row.roles) == 1:
        raise InvalidData("这是该用户唯一的角色;不再使用的账户请停用 / "
                          "this is the user's only role: deactivate the account instead", {"role": "last"})
    directory.revoke(session, username, f"{role}@{org_code}", actor=actor.username)


def reset_password(session: Session, actor: Actor, username: str, password: str) -> None:
    manageable_user(session, actor, username)
    directory.set_password(session, username, password, actor=actor.username)


def sign_out_everywhere(session: Session, actor: Actor, username: str) -> int:
    """End every session of a user in the area (audited); how many were open."""
    from engine.core import sessions

    manageable_user(session, actor, username)
    return sessions.sign_out_everywhere(session, username, actor=actor.username, reason="admin")


def set_active(session: Session, actor: Actor, username: str, active: bool) -> None:
    manageable_user(session, actor, username)
    directory.set_active(session, username, active, actor=actor.username)


# --- parameters -------------------------------------------------------------------------------------

def parameter_rows(session: Session, org: Organization) -> list[dict]:
    """Every declared parameter with its effective value at ``org`` and where that value comes from."""
    from engine.core.definitions import parse_param_value

    settings = procedures.parameter_settings(session, org)
    rows = []
    for key, p in procedures.declared_parameters(session).items():
        value, source, here = p.default, None, None
        for s in settings.get(key, []):  # nearest first
            try:
                value = parse_param_value(p.type, s["value"])
            except ValueError:
                continue
            source = s
            break
        for s in settings.get(key, []):
            if s["org"] == org.code:
                here = s
        rows.append({"key": key, "param": p, "value": value, "source": source, "here": here,
                     "overridden": [s for s in settings.get(key, []) if s is not source]})
    return rows


def _key_required(key: str) -> None:
    if not key:
        raise InvalidData("请选择参数 / choose a parameter", {"key": "required"})


def set_parameter(session: Session, actor: Actor, org_code: str, key: str, value: str) -> None:
    _key_required(key)
    org = org_in_scope(session, actor, org_code)
    if key not in procedures.declared_parameters(session):
        raise NotFound(f"没有事项声明参数“{key}” / no procedure declares parameter {key}")
    value = (value or "").strip()
    if not value:
        raise InvalidData("请填写参数值 / a value is required", {"value": "required"})
    procedures.set_param(session, org, key, value[:200], actor=actor.username)


def reset_parameter(session: Session, actor: Actor, org_code: str, key: str) -> bool:
    _key_required(key)
    org = org_in_scope(session, actor, org_code)
    if key not in procedures.declared_parameters(session):
        raise NotFound(f"没有事项声明参数“{key}” / no procedure declares parameter {key}")
    return procedures.reset_param(session, org, key, actor=actor.username)


def user_facts(session: Session, username: str):
    """When the account was made and its password changed, and its failed logins (the user page)."""
    return session.execute(select(User.id, User.created_at, User.password_changed_at, User.failed_logins)
                           .where(User.username == username)).first()


def sign_in_state(session: Session, user_id: int, username: str) -> tuple[int, list[dict]]:
    """(open sessions, the addresses that must wait before signing in again) of a user (the user page)."""
    from engine.core import sessions, throttle

    return sessions.open_count(session, user_id), [w for w in throttle.waiting(session, username) if w["waiting"]]


def system_chain_page(session: Session, page: int, per_page: int):
    """One page of the system chain, newest first: (total, events, verification report, chain head,
    display names of the actors)."""
    total = session.scalar(select(func.count()).select_from(AuditEvent)
                           .where(AuditEvent.chain == audit.SYSTEM_CHAIN)) or 0
    events = [audit.event_dict(e) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.chain == audit.SYSTEM_CHAIN)
        .order_by(AuditEvent.seq.desc()).offset((page - 1) * per_page).limit(per_page))]
    report = audit.verify_system(session)
    head = session.get(AuditHead, audit.SYSTEM_CHAIN)
    actors = {e["actor"] for e in events if e["actor"]}
    names = dict(session.execute(select(User.username, User.display_name).where(User.username.in_(actors))).all()) \
        if actors else {}
    return total, events, report, head, names


def system_chain_words(session: Session, events: list[dict], lang: str = "zh") -> list:
    """The system chain's events told in words (engine.render.narrative): people by name, parameters by
    label, organizations by name — never a key or a code."""
    from engine.render import narrative

    people = {e["actor"] for e in events if e["actor"]} | {
        str(e["data"].get(k) or "") for e in events for k in ("username", "cadre", "subject")}
    ctx = narrative.Context(names=directory.display_names(session, people),
                            param_labels={k: p.label for k, p in procedures.declared_parameters(session).items()},
                            org_names=dict(session.execute(select(Organization.code, Organization.name)).all()),
                            lang=lang)
    return [narrative.describe(e, ctx) for e in events]
