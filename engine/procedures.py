"""Procedures: validate, publish as immutable versions, and keep parsed versions ready to run."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, catalogue, spiff
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
    return version


def publish(session: Session, xml: bytes, *, source: str = "", actor: str = "system", note: str = "") -> tuple[ProcedureVersion, bool]:
    """Validate and publish; returns the version and whether it is new (same content → same version)."""
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
                               note=note, source=source)
    session.add(version)
    session.flush()
    proc.current_version_id = version.id
    audit.append_system_event(session, "procedure_published", actor=actor, data={
        "procedure_id": d.id, "version": number, "content_hash": digest, "source": source, "note": note})
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
    rows = session.execute(
        select(Procedure, ProcedureVersion).join(ProcedureVersion, ProcedureVersion.id == Procedure.current_version_id)
        .order_by(Procedure.id)).all()
    order = list(catalogue.categories())
    out = []
    for proc, version in rows:
        if edition and proc.edition not in (edition, "both"):
            continue
        if category and proc.category != category:
            continue
        cat = catalogue.categories().get(proc.category)
        out.append({
            "id": proc.id, "name": proc.name, "name_en": proc.name_en, "category": proc.category,
            "category_name": cat.zh if cat else "", "edition": proc.edition, "version": version.version,
            "content_hash": version.content_hash, "published_at": audit.iso(version.published_at),
        })
    out.sort(key=lambda p: (order.index(p["category"]) if p["category"] in order else 99, p["id"]))
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
    return result


def set_param(session: Session, org: Organization, key: str, value: str, *, actor: str = "system") -> None:
    """Set a local parameter at an organization (audited); validated against every declaration of it."""
    declared = [rt_param for rt_param in _declarations(session, key)]
    if not declared:
        raise NotFound(f"没有事项声明参数“{key}” / no procedure declares parameter {key}")
    for param in declared:
        try:
            parse_param_value(param.type, value)
        except ValueError:
            from .errors import InvalidData

            raise InvalidData(f"参数“{key}”的值“{value}”无效(类型 {param.type}) / invalid value", {"value": value}) from None
    row = session.scalar(select(ParameterSetting).where(ParameterSetting.org_id == org.id, ParameterSetting.key == key))
    old = row.value if row else None
    if row is None:
        session.add(ParameterSetting(org_id=org.id, key=key, value=value, updated_at=audit.db_time(), updated_by=actor))
    else:
        row.value, row.updated_at, row.updated_by = value, audit.db_time(), actor
    audit.append_system_event(session, "parameter_set", actor=actor,
                              data={"org": org.code, "key": key, "before": old, "after": value})


def _declarations(session: Session, key: str):
    procs = session.scalars(select(Procedure).where(Procedure.current_version_id.is_not(None))).all()
    for proc in procs:
        rt = runtime(session, proc.current_version_id)  # type: ignore[arg-type]
        if key in rt.definition.parameters:
            yield rt.definition.parameters[key]
