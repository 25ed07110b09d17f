"""Procedures: validate, publish as immutable versions, and keep parsed versions ready to run."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from . import audit, catalogue, spiff, voting
from .definitions import ProcedureDefinition, content_hash, parse_param_value, read_definition
from .directory import ancestors
from .errors import InvalidProcedure, NotFound
from .lint import lint_bytes
from .xmlsafe import parse_xml
from storage.models import Organization, ParameterSetting, Procedure, ProcedureVersion


@dataclass(frozen=True)
class Runtime:
    """A published version, parsed once: its definition and SpiffWorkflow spec."""

    version_id: int
    procedure_id: str
    version: int
    content_hash: str
    definition: ProcedureDefinition
    spec: Any
    subprocess_specs: Any


_parsed: dict[str, tuple[ProcedureDefinition, Any, Any]] = {}
_by_version: dict[tuple[str, int], Runtime] = {}
_lock = threading.Lock()


def _parse(xml: bytes) -> tuple[ProcedureDefinition, Any, Any]:
    digest = content_hash(xml)
    with _lock:
        cached = _parsed.get(digest)
    if cached is None:
        root = parse_xml(xml)
        definition = read_definition(root, xml)
        spec, subs = spiff.parse_process(root, definition.id, definition.id)
        spiff.order_exits_as_written(spec, {
            node.id: [(definition.flows[f].target, definition.flows[f].condition) for f in node.outgoing]
            for node in definition.nodes.values() if node.type == "exclusiveGateway"})
        cached = (definition, spec, subs)
        with _lock:
            _parsed[digest] = cached
    return cached


def runtime(session: Session, version_id: int) -> Runtime:
    """The runnable form of a published version (cached by id; versions never change)."""
    key = (str(session.get_bind().url), version_id)  # ids are per database
    with _lock:
        found = _by_version.get(key)
    if found is not None:
        return found
    row = session.get(ProcedureVersion, version_id)
    if row is None:
        raise NotFound(f"没有流程版本 {version_id} / no procedure version {version_id}")
    definition, spec, subs = _parse(row.bpmn_xml.encode("utf-8"))
    found = Runtime(row.id, row.procedure_id, row.version, row.content_hash, definition, spec, subs)
    with _lock:
        if len(_by_version) > 4096:
            _by_version.clear()
        _by_version[key] = found
    return found


def current_version(session: Session, procedure_id: str) -> ProcedureVersion:
    proc = session.get(Procedure, procedure_id)
    if proc is None or proc.current_version_id is None:
        raise NotFound(f"没有已发布的事项“{procedure_id}” / no published procedure {procedure_id}")
    version = session.get(ProcedureVersion, proc.current_version_id)
    assert version is not None
    # A later version whose effective date has come is current from then on.
    later = session.scalar(select(ProcedureVersion).where(
        ProcedureVersion.procedure_id == procedure_id, ProcedureVersion.version > version.version,
        ProcedureVersion.effective_from.is_not(None), ProcedureVersion.effective_from <= audit.db_time())
        .order_by(ProcedureVersion.version.desc()).limit(1))
    return later or version


def promote_effective(session: Session) -> list[dict]:
    """Point each procedure at its latest version whose effective date has come (lists, the handbook and
    the public side read ``current_version_id``); each move is a ``version_effective`` system event."""
    moved = []
    for proc in session.scalars(select(Procedure).where(Procedure.current_version_id.is_not(None))):
        current = session.get(ProcedureVersion, proc.current_version_id)
        latest = current_version(session, proc.id)
        if current is None or latest.id == current.id:
            continue
        proc.current_version_id = latest.id
        audit.append_system_event(session, "version_effective", actor="system", data={
            "procedure_id": proc.id, "from_version": current.version, "version": latest.version,
            "effective_from": audit.iso(latest.effective_from) if latest.effective_from else None})
        moved.append({"procedure_id": proc.id, "version": latest.version})
    return moved


def publish(session: Session, xml: bytes, *, source: str = "", actor: str = "system", note: str = "",
            effective_from: datetime | None = None, change_summary: str = "") -> tuple[ProcedureVersion, bool]:
    """Validate and publish; returns the version and whether it is new (same content → same version).
    ``effective_from`` (naive UTC): new cases use the version from then on (see :func:`current_version`)."""
    result = lint_bytes(xml, source or "<bpmn>")
    if not result.ok or result.definition is None:
        raise InvalidProcedure(f"流程未通过校验,不能发布:{source} / the procedure does not validate", result.errors)
    d = result.definition
    digest = content_hash(xml)
    existing = session.scalar(select(ProcedureVersion).where(
        ProcedureVersion.procedure_id == d.id, ProcedureVersion.content_hash == digest))
    proc = session.get(Procedure, d.id)
    if existing is not None:
        return existing, False
    if proc is None:
        proc = Procedure(id=d.id, name=d.name, name_en=d.name_en, category=d.category, edition=d.edition)
        session.add(proc)
        session.flush()
    else:
        proc.name, proc.name_en, proc.category, proc.edition = d.name, d.name_en, d.category, d.edition
    number = (session.scalar(select(func.max(ProcedureVersion.version))
                             .where(ProcedureVersion.procedure_id == d.id)) or 0) + 1
    version = ProcedureVersion(procedure_id=d.id, version=number, content_hash=digest,
                               bpmn_xml=xml.decode("utf-8"), published_at=audit.db_time(), published_by=actor,
                               note=note, source=source, effective_from=effective_from,
                               change_summary=change_summary)
    session.add(version)
    session.flush()
    if effective_from is None or effective_from <= audit.db_time():
        proc.current_version_id = version.id
    event = {"procedure_id": d.id, "version": number, "content_hash": digest, "source": source, "note": note}
    if effective_from is not None:
        event["effective_from"] = audit.iso(effective_from)
    audit.append_system_event(session, "procedure_published", actor=actor, data=event)
    return version, True


def publish_directory(session: Session, directory: Path | None = None, *, actor: str = "system") -> list[dict]:
    """Publish every ``*.bpmn`` in the library; unchanged files keep their version."""
    directory = directory or catalogue.processes_dir()
    results = []
    for path in sorted(directory.glob("*.bpmn")):
        version, created = publish(session, path.read_bytes(), source=path.name, actor=actor)
        results.append({"procedure_id": version.procedure_id, "version": version.version, "new": created})
    return results


def list_procedures(session: Session, *, edition: str | None = None, category: str | None = None) -> list[dict]:
    # Columns, not ORM objects: this runs on every board and catalogue page.
    rows = session.execute(
        select(Procedure.id, Procedure.name, Procedure.name_en, Procedure.category, Procedure.edition,
               ProcedureVersion.version, ProcedureVersion.content_hash, ProcedureVersion.published_at)
        .join(ProcedureVersion, ProcedureVersion.id == Procedure.current_version_id)
        .order_by(Procedure.id)).all()
    categories = catalogue.categories()
    order = {code: i for i, code in enumerate(categories)}
    out = []
    for r in rows:
        if edition and r.edition not in (edition, "both"):
            continue
        if category and r.category != category:
            continue
        cat = categories.get(r.category)
        out.append({
            "id": r.id, "name": r.name, "name_en": r.name_en, "category": r.category,
            "category_name": cat.zh if cat else "", "edition": r.edition, "version": r.version,
            "content_hash": r.content_hash, "published_at": audit.iso(r.published_at),
        })
    out.sort(key=lambda p: (order.get(p["category"], 99), p["id"]))
    return out


def show_procedure(session: Session, procedure_id: str) -> dict:
    version = current_version(session, procedure_id)
    rt = runtime(session, version.id)
    versions = session.scalars(select(ProcedureVersion).where(ProcedureVersion.procedure_id == procedure_id)
                               .order_by(ProcedureVersion.version)).all()
    return {
        **rt.definition.to_dict(), "version": version.version, "published_at": audit.iso(version.published_at),
        "versions": [{"version": v.version, "content_hash": v.content_hash, "published_at": audit.iso(v.published_at),
                      "note": v.note} for v in versions],
    }


def effective_params(session: Session, definition: ProcedureDefinition, org: Organization) -> dict[str, dict]:
    """Each declared parameter's value for ``org``: the nearest setting up the tree, else the default."""
    chain = ancestors(session, org)
    keys = list(definition.parameters)
    settings = session.execute(select(ParameterSetting.org_id, ParameterSetting.key, ParameterSetting.value)
                               .where(ParameterSetting.org_id.in_([o.id for o in chain]),
                                      ParameterSetting.key.in_(keys))).all() if keys else []
    by_org = {(oid, key): value for oid, key, value in settings}
    codes = {o.id: o.code for o in chain}
    result = {}
    for key, param in definition.parameters.items():
        value, source = param.default, "default"
        for o in chain:  # nearest first
            if (o.id, key) in by_org:
                try:
                    value, source = parse_param_value(param.type, by_org[(o.id, key)]), codes[o.id]
                except ValueError:
                    continue
                break
        result[key] = {"value": value, "source": source}
    _keep_votes_lawful(definition, result)
    return result


VOTE_PARAM_ATTRIBUTES = ("quorumParam", "passParam", "householdQuorumParam")


def _keep_votes_lawful(definition: ProcedureDefinition, values: dict[str, dict]) -> None:
    """A local setting that would make a vote step weaker than its body's lawful rule does not apply
    (such settings are refused when made; this guards settings made before a rule changed): the
    declared default is used instead, with source ``law``."""
    for step in definition.steps.values():
        if step.kind != "vote" or not step.vote:
            continue
        for attribute in VOTE_PARAM_ATTRIBUTES:
            key = step.vote.get(attribute)
            if not key or key not in values or values[key]["source"] in ("default", "law"):
                continue
            rule = voting.step_rule(step.vote, values, role=step.role)
            if rule is not None and voting.weaker_than_law(rule):
                values[key] = {"value": definition.parameters[key].default, "source": "law"}


def vote_steps_using(session: Session, key: str):
    """(definition, step) of every vote step of a current procedure whose rule reads parameter ``key``."""
    procs = session.scalars(select(Procedure).where(Procedure.current_version_id.is_not(None))
                            .order_by(Procedure.id)).all()
    for proc in procs:
        d = runtime(session, proc.current_version_id).definition  # type: ignore[arg-type]
        for step in d.steps.values():
            if step.kind == "vote" and step.vote and key in (step.vote.get(a) for a in VOTE_PARAM_ATTRIBUTES):
                yield d, step


def _vote_rules_with(session: Session, org: Organization, key: str, value: Any) -> list[str]:
    """The rules of the vote steps that read ``key`` if it were ``value`` at ``org``, in words;
    raises :class:`InvalidData` with the law's reason when one would be weaker than the law."""
    from .errors import InvalidData

    described = []
    for d, step in vote_steps_using(session, key):
        values = effective_params(session, d, org)
        values[key] = {"value": value, "source": org.code}
        rule = voting.step_rule(step.vote, values, role=step.role)  # type: ignore[arg-type]
        if rule is None:
            continue
        reasons = voting.weaker_than_law(rule)
        if reasons:
            label = d.parameters[key].label if key in d.parameters else key
            raise InvalidData(f"“{label}”不能设为 {value}(事项{d.id}“{step.name}”):{reasons[0]}"
                              "镇街只能设定比法定规则更严的规则。 / a local rule may be stricter than the law, "
                              "never weaker", {"value": reasons[0]})
        described.append(f"{d.id} {step.name}:{voting.describe(rule)}")
    return described


def set_param(session: Session, org: Organization, key: str, value: str, *, actor: str = "system") -> None:
    """Set a local parameter at an organization (audited); validated against every declaration of it."""
    declared = [rt_param for rt_param in _declarations(session, key)]
    if not declared:
        raise NotFound(f"没有事项声明参数“{key}” / no procedure declares parameter {key}")
    for param in declared:
        try:
            parsed = parse_param_value(param.type, value)
        except ValueError:
            from .definitions import PARAM_RANGES_ZH
            from .errors import InvalidData

            allowed = f",允许{PARAM_RANGES_ZH[param.type]}" if param.type in PARAM_RANGES_ZH else ""
            raise InvalidData(f"参数“{key}”的值“{value[:50]}”无效(类型 {param.type}{allowed}) / invalid value",
                              {"value": value[:50]}) from None
        if param.type in ("money", "integer", "days") and parsed < 0:
            from .errors import InvalidData

            raise InvalidData(f"参数“{key}”不能为负数 / parameter {key} cannot be negative", {"value": value})
    vote_rules = _vote_rules_with(session, org, key, parsed) if declared[0].type == "ratio" else []
    row = session.scalar(select(ParameterSetting).where(ParameterSetting.org_id == org.id, ParameterSetting.key == key))
    old = row.value if row else None
    if row is None:
        session.add(ParameterSetting(org_id=org.id, key=key, value=value, updated_at=audit.db_time(), updated_by=actor))
    else:
        row.value, row.updated_at, row.updated_by = value, audit.db_time(), actor
    data = {"org": org.code, "key": key, "before": old, "after": value}
    if vote_rules:
        data["vote_rules"] = vote_rules  # the stricter local rules now in force, in words
    audit.append_system_event(session, "parameter_set", actor=actor, data=data)


def reset_param(session: Session, org: Organization, key: str, *, actor: str = "system") -> bool:
    """Remove the setting of a parameter at an organization (audited): the value above it applies again.
    Returns False when nothing was set there."""
    row = session.scalar(select(ParameterSetting).where(ParameterSetting.org_id == org.id, ParameterSetting.key == key))
    if row is None:
        return False
    old = row.value
    session.delete(row)
    session.flush()
    audit.append_system_event(session, "parameter_reset", actor=actor,
                              data={"org": org.code, "key": key, "before": old})
    return True


@dataclass
class DeclaredParameter:
    """A parameter key as the current procedure versions declare it (first declaration, and who declares it)."""

    key: str
    label: str
    type: str
    unit: str
    default: Any
    source: str
    procedures: list[tuple[str, str]]  # (procedure id, name)
    defaults: set[str]


def declared_parameters(session: Session) -> dict[str, DeclaredParameter]:
    """Every parameter key declared by a current procedure version, ordered by key."""
    found: dict[str, DeclaredParameter] = {}
    procs = session.scalars(select(Procedure).where(Procedure.current_version_id.is_not(None))
                            .order_by(Procedure.id)).all()
    for proc in procs:
        rt = runtime(session, proc.current_version_id)  # type: ignore[arg-type]
        for key, p in rt.definition.parameters.items():
            entry = found.get(key)
            if entry is None:
                entry = found[key] = DeclaredParameter(key, p.label, p.type, p.unit, p.default, p.source, [], set())
            entry.procedures.append((proc.id, proc.name))
            entry.defaults.add(str(p.default))
    return dict(sorted(found.items()))


def parameter_settings(session: Session, org: Organization) -> dict[str, list[dict]]:
    """Settings that apply to ``org`` (at it and above it, nearest first), by key."""
    chain = ancestors(session, org)
    rows = session.scalars(select(ParameterSetting).where(ParameterSetting.org_id.in_([o.id for o in chain]))).all()
    order = {o.id: i for i, o in enumerate(chain)}
    by_id = {o.id: o for o in chain}
    result: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: order[r.org_id]):
        o = by_id[row.org_id]
        result.setdefault(row.key, []).append({"org": o.code, "org_name": o.name, "org_kind": o.kind,
                                               "value": row.value, "updated_at": row.updated_at,
                                               "updated_by": row.updated_by})
    return result


def _declarations(session: Session, key: str):
    procs = session.scalars(select(Procedure).where(Procedure.current_version_id.is_not(None))).all()
    for proc in procs:
        rt = runtime(session, proc.current_version_id)  # type: ignore[arg-type]
        if key in rt.definition.parameters:
            yield rt.definition.parameters[key]
    for provider in PARAM_PROVIDERS:  # the warning rules declare local parameters too
        declared = provider()
        if key in declared:
            yield declared[key]


# Declarations of local parameters outside the procedures (the warning rules' thresholds, the grade
# weights): the services register a provider here (engine.services.supervision.warnings), so the
# runtime validates those parameters like a procedure's without importing the services.
PARAM_PROVIDERS: list = []


def declare_params(provider) -> None:
    """Register a function returning ``{key: declaration}`` (with ``.type``) of extra local parameters."""
    if provider not in PARAM_PROVIDERS:
        PARAM_PROVIDERS.append(provider)


@event.listens_for(ProcedureVersion, "before_update")
def _refuse_version_update(_mapper, _connection, target: ProcedureVersion) -> None:
    """Published versions are immutable: editing one in place is refused (edit a draft instead)."""
    from .errors import Conflict

    raise Conflict(f"已发布的版本不可修改(事项 {target.procedure_id} 第{target.version}版),请编辑草稿并发布新版本 / "
                   "a published version is immutable: edit a draft and publish a new version")
