"""Township variants of district procedures (issue #15): make, edit, compare, publish, rebase, list.

Township staff adapt a procedure of the district library to their villages (区镇村三级联动):

* :func:`open_variant` creates (or opens) the township's variant: a draft under the variant's key
  (``B-PUR-02@SFZ``, see :mod:`engine.core.variants`) starting from the district's current version
  (or from the variant's own published version). Both editors edit that key like any draft.
* :func:`publish_variant` publishes the draft for the township's villages after lint and
  :func:`engine.core.lint.variant_problems`: no disclosure, supervision or vote step of the
  district's version dropped or bypassed, no limit loosened (steps may be added, limits tightened).
* :func:`upstream` says "上级版本已更新" when the district published after the variant's base, with the
  district's changes; :func:`rebase_variant` makes a new draft from the new district version with the
  township's changes re-applied step by step where both have a step table, else the district's new
  version with the township's former changes listed beside it.
* :func:`variants_of` is the list of a procedure's variants and their differences (the district sees
  every township's, township staff their own).

Township staff act only for their own township, district editors for every township, village cadres
never (:func:`may_act_for`). Every action is a system-chain audit event.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.bpmn.diffing import Comparison, compare
from engine.bpmn.steptable import TABLES_DIR, StepTableError, build_bpmn, load_table
from engine.core import audit, lint, procedures
from engine.core.definitions import ProcedureDefinition, content_hash
from engine.core.directory import Actor, get_org, load_actor
from engine.core.errors import Conflict, Forbidden, InvalidData, InvalidProcedure, NotFound
from engine.core.variants import key_of, split_key
from engine.core.variants import store_version
from storage.models import Organization, Procedure, ProcedureDraft, ProcedureVariant, ProcedureVersion

from . import editing

__all__ = ["may_act_for", "open_variant", "publish_variant", "rebase_variant", "withdraw_variant", "upstream", "variants_of",
           "variant_page", "merge_tables", "township_of"]


# --- who ---------------------------------------------------------------------------------------------
def may_act_for(actor: Actor, township: Organization) -> bool:
    """Township staff of that township, or district editors."""
    return editing.is_district_editor(actor) or township.id in editing.editable_org_ids(actor)


def township_of(session: Session, org_code: str) -> Organization:
    try:
        org = get_org(session, org_code)
    except NotFound:
        raise NotFound(f"没有编号为“{org_code[:40]}”的镇(街道) / no township {org_code[:40]}") from None
    if org.kind != "township":
        raise InvalidData(f"“{org.name}”不是镇(街道):变体由镇(街道)制作,适用于其下各村(社区) / "
                          f"{org.code} is not a township", {"org": org.code})
    return org


def _check(session: Session, username: str | None, township: Organization, procedure_id: str) -> None:
    if username is None:  # the command line without --as acts as the administrator
        return
    actor = load_actor(session, username)
    if not may_act_for(actor, township):
        raise Forbidden(f"无权制作或发布{township.name}的“{procedure_id}”变体:只有{township.name}的工作人员或区级管理员可以 / "
                        f"only staff of {township.code} or district staff may make its variant of {procedure_id}",
                        action="edit_variant")


def _locked(session: Session, query):
    """On PostgreSQL the row is locked for the transaction: two townships' clerks creating or publishing at
    once wait for each other instead of failing on a unique key (SQLite has one writer at a time)."""
    return query.with_for_update() if session.get_bind().dialect.name == "postgresql" else query


def _district_procedure(session: Session, procedure_id: str, *, lock: bool = True) -> Procedure:
    query = select(Procedure).where(Procedure.id == procedure_id)
    proc = session.scalar(_locked(session, query) if lock else query) if not split_key(procedure_id)[1] else None
    if proc is None or proc.current_version_id is None:
        raise NotFound(f"没有已发布的区级事项“{procedure_id[:40]}” / no published procedure {procedure_id[:40]}")
    if proc.owner_org_id is not None:
        raise InvalidData(f"“{proc.name}”是镇(街道)自己的事项,不在区级事项库中,直接编辑即可,无需变体 / "
                          f"{procedure_id} is a township's own procedure: edit it directly", {"procedure": procedure_id})
    return proc


def _variant(session: Session, procedure_id: str, township: Organization, *, lock: bool = False) -> ProcedureVariant | None:
    query = select(ProcedureVariant).where(ProcedureVariant.procedure_id == procedure_id,
                                           ProcedureVariant.org_id == township.id)
    return session.scalar(_locked(session, query) if lock else query)


def _require_variant(session: Session, procedure_id: str, township: Organization, *,
                     lock: bool = True) -> ProcedureVariant:
    variant = _variant(session, procedure_id, township, lock=lock)
    if variant is None:
        raise NotFound(f"{township.name}还没有“{procedure_id}”的变体 / {township.code} has no variant of {procedure_id}")
    return variant


# --- step tables behind versions ---------------------------------------------------------------------
def table_of_version(session: Session, procedure_id: str, version: ProcedureVersion) -> dict | None:
    """The step table that generated exactly this version: saved with the 任务单, or the library's file."""
    table = editing.saved_step_table(session, procedure_id, version.content_hash)
    if table is not None:
        return table
    base_id = split_key(procedure_id)[0]
    path = TABLES_DIR / f"{base_id}.yaml"
    if "/" in base_id or not path.is_file():
        return None
    try:
        table = load_table(path)
        return table if build_bpmn(table).decode("utf-8") == version.bpmn_xml else None
    except StepTableError:
        return None


def _loads(text: str | None) -> dict | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# --- open, publish -----------------------------------------------------------------------------------
def open_variant(session: Session, procedure_id: str, org_code: str, *, username: str | None = None,
                 actor: str = "cli") -> dict:
    """Create (or open) the township's draft variant of a district procedure."""
    township = township_of(session, org_code)
    _check(session, username, township, procedure_id)
    proc = _district_procedure(session, procedure_id)
    district = procedures.current_version(session, procedure_id)
    who = username or actor
    key = key_of(procedure_id, township.code)
    variant = _variant(session, procedure_id, township, lock=True)
    created = variant is None
    if variant is None:
        now = audit.db_time()
        if session.get(Procedure, key) is None:  # holds the variant's versions; no current version: in no list
            session.add(Procedure(id=key, name=proc.name, name_en=proc.name_en, category=proc.category,
                                  edition=proc.edition, current_version_id=None, owner_org_id=township.id))
        variant = ProcedureVariant(procedure_id=procedure_id, org_id=township.id, key=key, current_version_id=None,
                                   base_version_id=None, base_table="", created_by=who, created_at=now, updated_at=now)
        session.add(variant)
        session.flush()
        audit.append_system_event(session, "variant_created", actor=who, data={
            "procedure_id": procedure_id, "org": township.code, "key": key, "district_version": district.version})
    draft = editing.get_draft(session, key)
    started = draft is None
    if draft is None:
        if variant.current_version_id is not None:
            source_version = session.get(ProcedureVersion, variant.current_version_id)
            assert source_version is not None
            xml, base_id = source_version.bpmn_xml, variant.base_version_id
            table, source = table_of_version(session, key, source_version), f"本镇第{source_version.version}版"
        else:
            xml, base_id = district.bpmn_xml, district.id
            table, source = table_of_version(session, procedure_id, district), f"区级第{district.version}版"
            variant.base_table = json.dumps(table, ensure_ascii=False) if table else ""
        draft = editing.save_draft(session, key, xml.encode("utf-8"), username=username, actor=actor,
                                   expected_revision=0, source=source, step_table=table)
        draft.base_version_id = base_id
        session.flush()
        audit.append_system_event(session, "variant_draft_started", actor=who, data={
            "procedure_id": procedure_id, "org": township.code, "key": key, "revision": draft.revision,
            "from": source})
    return {"procedure_id": procedure_id, "org": township.code, "org_name": township.name, "key": key,
            "created": created, "draft_started": started, "revision": draft.revision,
            "district_version": district.version,
            "published_version": _number(session, variant.current_version_id)}


def _number(session: Session, version_id: int | None) -> int | None:
    version = session.get(ProcedureVersion, version_id) if version_id is not None else None
    return version.version if version is not None else None


def check_draft(session: Session, variant: ProcedureVariant, draft: ProcedureDraft) -> tuple[Any, list]:
    """(lint result, what the draft drops or loosens of the district's current version)."""
    xml = draft.bpmn_xml.encode("utf-8")
    result = lint.lint_bytes(xml, f"{variant.key} 草稿")
    gaps: list = []
    if result.definition is not None:
        district = procedures.current_version(session, variant.procedure_id)
        gaps = lint.variant_problems(editing.definition_of(district.bpmn_xml), result.definition)
    return result, gaps


def publish_variant(session: Session, procedure_id: str, org_code: str, *, username: str | None = None,
                    actor: str = "cli", note: str = "", expected_revision: int | None = None) -> dict:
    """Publish the township's draft variant for its villages (new cases there use it at once)."""
    township = township_of(session, org_code)
    _check(session, username, township, procedure_id)
    variant = _require_variant(session, procedure_id, township)
    draft = editing.get_draft(session, variant.key)
    if draft is None:
        raise NotFound(f"{township.name}的“{procedure_id}”变体没有草稿可发布 / no draft of the variant to publish")
    if expected_revision is not None and expected_revision != draft.revision:
        raise Conflict(f"草稿已被 {draft.updated_by} 更新为第{draft.revision}稿,请先查看最新内容再发布 / "
                       f"the draft changed meanwhile (revision {draft.revision})", current_revision=draft.revision)
    result, gaps = check_draft(session, variant, draft)
    district = procedures.current_version(session, procedure_id)
    refused = [*gaps, *result.errors]  # what it drops or loosens of the district's version first
    if refused or result.definition is None:
        shown = ";".join(p.zh for p in refused[:8]) + (f"等 {len(refused)} 处" if len(refused) > 8 else "")
        raise InvalidProcedure(f"变体不能发布:{shown or '草稿无法读取'}。 / the variant does not validate or drops or "
                               f"loosens checkpoints of district version {district.version}", refused)
    xml = draft.bpmn_xml.encode("utf-8")
    digest = content_hash(xml)
    previous = session.get(ProcedureVersion, variant.current_version_id) if variant.current_version_id else None
    if previous is not None and previous.content_hash == digest:
        raise Conflict(f"草稿与本镇已发布的第{previous.version}版相同,无需发布 / the draft equals the variant's version")
    against = compare(editing.definition_of(district.bpmn_xml), result.definition,
                      old_label=f"区级第{district.version}版", new_label=f"{township.name}变体")
    if against.same and digest == district.content_hash:
        raise Conflict(f"草稿与区级第{district.version}版相同,无需发布变体 / the draft equals the district version")
    summary = f"与区级第{district.version}版相比:\n" + against.summary_zh()
    who = username or actor
    version = store_version(session, variant, xml, actor=who, note=note, source=draft.source or "draft",
                            change_summary=summary)
    # A draft opened in an editor from the variant's own version carries no base: the version's base holds.
    variant.base_version_id = draft.base_version_id or variant.base_version_id or district.id
    base = session.get(ProcedureVersion, variant.base_version_id)
    audit.append_system_event(session, "variant_published", actor=who, data={
        "procedure_id": procedure_id, "org": township.code, "key": variant.key, "version": version.version,
        "content_hash": digest, "district_version": base.version if base else None, "draft_revision": draft.revision,
        "note": note, "changes": [c.to_dict() for c in against.changes]})
    session.delete(draft)
    session.flush()
    return {"procedure_id": procedure_id, "org": township.code, "org_name": township.name, "key": variant.key,
            "version": version.version, "content_hash": digest, "change_summary": summary,
            "district_version": base.version if base else None, "effective_from": None}


def withdraw_variant(session: Session, procedure_id: str, org_code: str, *, username: str | None = None,
                     actor: str = "cli") -> dict:
    """Stop using the township's variant: new cases in its villages run the district's current version
    again (running cases keep theirs; the variant's versions and draft stay, to publish again later)."""
    township = township_of(session, org_code)
    _check(session, username, township, procedure_id)
    variant = _require_variant(session, procedure_id, township)
    if variant.current_version_id is None:
        raise Conflict(f"{township.name}的“{procedure_id}”变体尚未发布,本镇各村本就按区级版本办理 / the variant is not in use")
    number = _number(session, variant.current_version_id)
    variant.current_version_id = None
    variant.updated_at = audit.db_time()
    session.flush()
    district = procedures.current_version(session, procedure_id)
    audit.append_system_event(session, "variant_withdrawn", actor=username or actor, data={
        "procedure_id": procedure_id, "org": township.code, "key": variant.key, "version": number,
        "district_version": district.version})
    return {"procedure_id": procedure_id, "org": township.code, "version": number, "district_version": district.version}


# --- the district moved on -----------------------------------------------------------------------------
def upstream(session: Session, variant: ProcedureVariant) -> dict | None:
    """"上级版本已更新": the district published after the version the variant (its draft, else its
    published version) is based on; with what the district changed. None when up to date."""
    draft = editing.get_draft(session, variant.key)
    base_id = draft.base_version_id if draft is not None and draft.base_version_id else variant.base_version_id
    district = procedures.current_version(session, variant.procedure_id)
    if base_id is None or base_id == district.id:
        return None
    old = session.get(ProcedureVersion, base_id)
    if old is None:
        return None
    comparison = compare(editing.definition_of(old.bpmn_xml), editing.definition_of(district.bpmn_xml),
                         old_label=f"区级第{old.version}版", new_label=f"区级第{district.version}版")
    return {"from_version": old.version, "to_version": district.version, "comparison": comparison,
            "old_xml": old.bpmn_xml, "new_xml": district.bpmn_xml}


TABLE_KEYS_ZH = {"name": "事项名称", "name_en": "英文名称", "description": "事项说明", "category": "类别",
                 "edition": "适用范围", "handling_subject": "办理主体", "handling_mode": "办理方式",
                 "overall_time_limit": "总时限", "requires": "必经环节", "legal_basis": "依据", "risk_points": "风险点",
                 "parameters": "本地参数", "lanes": "泳道", "ends": "结束方式"}


def merge_tables(base: dict, mine: dict, theirs: dict) -> tuple[dict, list[str], list[str]]:
    """Three-way merge of step tables: the district's old table ``base``, the township's ``mine`` and
    the district's new ``theirs``. Steps the township left as they were take the district's new
    form; steps it changed, added or removed keep the township's; table-level entries likewise.
    Returns (merged table, the township's changes kept, conflicts: both changed the same thing —
    the township's form is kept and the reader asked to check it)."""
    kept: list[str] = []
    conflicts: list[str] = []
    steps0 = {s["id"]: s for s in base.get("steps", [])}
    steps_v = {s["id"]: s for s in mine.get("steps", [])}
    steps1 = {s["id"]: s for s in theirs.get("steps", [])}
    out: list[dict] = []
    for step in theirs.get("steps", []):
        sid = step["id"]
        name = step.get("name") or sid
        if sid in steps_v:
            if sid in steps0 and steps_v[sid] != steps0[sid]:
                out.append(steps_v[sid])
                kept.append(f"保留本镇对步骤“{name}”的修改")
                if step != steps0[sid]:
                    conflicts.append(f"区级也修改了步骤“{name}”,已保留本镇的写法,请对照区级的变化核对")
            else:
                out.append(step)
        elif sid in steps0:
            kept.append(f"保留本镇删除步骤“{name}”")
            if step != steps0[sid]:
                conflicts.append(f"区级修改了本镇已删除的步骤“{name}”,请核对是否仍要删除")
        else:
            out.append(step)
    order_v = [s["id"] for s in mine.get("steps", [])]
    for index, sid in enumerate(order_v):
        if sid in steps0 or sid in steps1:
            continue
        position = 0
        for before in reversed(order_v[:index]):
            at = next((i for i, s in enumerate(out) if s["id"] == before), None)
            if at is not None:
                position = at + 1
                break
        out.insert(position, steps_v[sid])
        kept.append(f"保留本镇新增的步骤“{steps_v[sid].get('name') or sid}”")
    merged: dict = {}
    for key in dict.fromkeys([*theirs, *mine]):
        if key == "steps":
            continue
        if mine.get(key) != base.get(key):
            if key in mine:
                merged[key] = mine[key]
            label = TABLE_KEYS_ZH.get(key, "其他设置")
            kept.append(f"保留本镇对“{label}”的修改")
            if theirs.get(key) != base.get(key):
                conflicts.append(f"区级也修改了“{label}”,已保留本镇的写法,请核对")
        elif key in theirs:
            merged[key] = theirs[key]
    merged["steps"] = out
    return merged, kept, conflicts


def rebase_variant(session: Session, procedure_id: str, org_code: str, *, username: str | None = None,
                   actor: str = "cli") -> dict:
    """A new draft of the variant from the district's new version, the township's changes re-applied
    (three-way merge of step tables) where both have a step table; otherwise the district's new
    version, with the township's former changes listed to re-apply by hand (refused while an
    unpublished draft would be lost that way)."""
    township = township_of(session, org_code)
    _check(session, username, township, procedure_id)
    variant = _require_variant(session, procedure_id, township)
    flag = upstream(session, variant)
    district = procedures.current_version(session, procedure_id)
    if flag is None:
        raise Conflict(f"变体已基于区级最新的第{district.version}版,无需更新 / the variant is up to date")
    draft = editing.get_draft(session, variant.key)
    base = session.get(ProcedureVersion, draft.base_version_id if draft is not None and draft.base_version_id
                       else variant.base_version_id)
    assert base is not None
    current = session.get(ProcedureVersion, variant.current_version_id) if variant.current_version_id else None
    mine_xml = draft.bpmn_xml if draft is not None else (current.bpmn_xml if current is not None else base.bpmn_xml)
    table0 = _loads(variant.base_table) or table_of_version(session, procedure_id, base)
    if draft is not None:
        table_v = _loads(draft.step_table)
    else:
        table_v = table_of_version(session, variant.key, current) if current is not None else None
    table1 = table_of_version(session, procedure_id, district)
    former = compare(editing.definition_of(base.bpmn_xml), editing.definition_of(mine_xml),
                     old_label=f"区级第{base.version}版", new_label="本镇变体")
    merged = kept = conflicts = None
    xml = None
    if table0 and table_v and table1:
        merged, kept, conflicts = merge_tables(table0, table_v, table1)
        try:
            xml = build_bpmn(merged)
        except StepTableError:
            merged, xml = None, None
    if xml is None:
        if draft is not None and not former.same:
            raise Conflict("本镇草稿没有任务单,无法自动合并区级的更新;请先发布或删除草稿,再更新到区级新版本 / "
                           "the draft has no step table to merge; publish or delete it first")
        xml, merged = district.bpmn_xml.encode("utf-8"), table1
    saved = editing.save_draft(session, variant.key, xml, username=username, actor=actor,
                               expected_revision=draft.revision if draft is not None else 0,
                               source=f"区级第{district.version}版(更新)", step_table=merged)
    saved.base_version_id = district.id
    variant.base_table = json.dumps(table1, ensure_ascii=False) if table1 else ""
    variant.updated_at = audit.db_time()
    session.flush()
    auto = kept is not None
    redo = [c.zh for c in former.changes] if not auto else []
    who = username or actor
    audit.append_system_event(session, "variant_rebased", actor=who, data={
        "procedure_id": procedure_id, "org": township.code, "key": variant.key, "from_version": base.version,
        "to_version": district.version, "merged": auto, "kept": kept or [], "conflicts": conflicts or [],
        "to_redo": redo, "revision": saved.revision})
    return {"procedure_id": procedure_id, "org": township.code, "key": variant.key, "from_version": base.version,
            "to_version": district.version, "merged": auto, "kept": kept or [], "conflicts": conflicts or [],
            "to_redo": redo, "revision": saved.revision}


# --- what the pages show -------------------------------------------------------------------------------
def _definition(xml: str) -> ProcedureDefinition | None:
    try:
        return editing.definition_of(xml)
    except (ValueError, Exception):  # noqa: BLE001 - a broken draft shows as "cannot compare", never a 500
        return None


def variants_of(session: Session, procedure_id: str, actor: Actor) -> dict:
    """The variants of a district procedure the actor may see (district editors: every township's;
    township staff: their own), each with its state and its differences from the district's current
    version; and the townships the actor may still make one for."""
    proc = session.get(Procedure, procedure_id)
    if proc is None or proc.owner_org_id is not None or split_key(procedure_id)[1] or proc.current_version_id is None:
        return {"rows": [], "may_create": []}
    district = procedures.current_version(session, procedure_id)
    district_def = editing.definition_of(district.bpmn_xml)
    rows = []
    seen: set[int] = set()
    for variant in session.scalars(select(ProcedureVariant).where(ProcedureVariant.procedure_id == procedure_id)
                                   .order_by(ProcedureVariant.id)):
        township = session.get(Organization, variant.org_id)
        if township is None or not may_act_for(actor, township):
            continue
        seen.add(township.id)
        draft = editing.get_draft(session, variant.key)
        current = session.get(ProcedureVersion, variant.current_version_id) if variant.current_version_id else None
        shown = current.bpmn_xml if current is not None else (draft.bpmn_xml if draft is not None else None)
        mine = _definition(shown) if shown else None
        changes = compare(district_def, mine).changes if mine is not None else []
        flag = upstream(session, variant)
        rows.append({"org": township.code, "org_name": township.name, "key": variant.key,
                     "version": current.version if current is not None else None,
                     "withdrawn": current is None and bool(editing.versions_of(session, variant.key)),
                     "published_at": audit.iso(current.published_at) if current is not None else None,
                     "draft_revision": draft.revision if draft is not None else None,
                     "changes": [c.zh for c in changes], "changes_en": [c.en for c in changes],
                     "upstream": {"from_version": flag["from_version"], "to_version": flag["to_version"]} if flag else None})
    townships = sorted(editing.editable_org_ids(actor) - seen)
    may_create = [o for o in (session.get(Organization, oid) for oid in townships) if o is not None and o.kind == "township"]
    if editing.is_district_editor(actor):
        may_create = [o for o in session.scalars(select(Organization).where(Organization.kind == "township")
                                                 .order_by(Organization.code)) if o.id not in seen]
    return {"rows": rows, "may_create": [{"code": o.code, "name": o.name} for o in may_create],
            "district_version": district.version}


def variant_page(session: Session, procedure_id: str, org_code: str, actor: Actor) -> dict:
    """Everything the variant page shows (refused like the actions for other townships' staff)."""
    township = township_of(session, org_code)
    if not may_act_for(actor, township):
        raise Forbidden(f"无权查看{township.name}的变体:只有{township.name}的工作人员或区级管理员可以 / "
                        f"only staff of {township.code} or district staff see its variants", action="view_variant")
    proc = _district_procedure(session, procedure_id, lock=False)
    variant = _require_variant(session, procedure_id, township, lock=False)
    district = procedures.current_version(session, procedure_id)
    draft = editing.get_draft(session, variant.key)
    problems, gaps, against = [], [], None
    if draft is not None:
        result, gaps = check_draft(session, variant, draft)
        problems = result.problems
        mine = result.definition or _definition(draft.bpmn_xml)
    else:
        current = session.get(ProcedureVersion, variant.current_version_id) if variant.current_version_id else None
        mine = _definition(current.bpmn_xml) if current is not None else None
    if mine is not None:
        against = compare(editing.definition_of(district.bpmn_xml), mine,
                          old_label=f"区级第{district.version}版", new_label=f"{township.name}变体")
    versions = editing.versions_of(session, variant.key)
    shown = [{"version": v.version, "published_at": audit.iso(v.published_at), "published_by": v.published_by,
              "note": v.note, "change_summary": v.change_summary, "current": v.id == variant.current_version_id}
             for v in versions]
    return {"procedure_id": procedure_id, "name": proc.name, "org": township.code, "org_name": township.name,
            "key": variant.key, "problems": problems, "gaps": gaps, "against": against,
            "draft": {"revision": draft.revision, "updated_by": draft.updated_by, "source": draft.source,
                      "updated_at": audit.iso(draft.updated_at), "table": bool(draft.step_table)} if draft else None,
            "district_version": district.version, "district_xml": district.bpmn_xml, "versions": shown,
            "upstream": upstream(session, variant), "in_use": variant.current_version_id is not None,
            "mine_xml": draft.bpmn_xml if draft is not None else (versions[-1].bpmn_xml if versions else None)}


def comparison_lines(comparison: Comparison | None) -> list[str]:
    return [c.zh for c in comparison.changes] if comparison is not None else []


def library_marks(session: Session, actor: Actor) -> dict[str, list[dict]]:
    """For 流程管理's list: by procedure, the variants the actor acts for (township staff: their
    township's; district editors: all) with their state and the "上级版本已更新" flag."""
    marks: dict[str, list[dict]] = {}
    for variant in session.scalars(select(ProcedureVariant).order_by(ProcedureVariant.procedure_id, ProcedureVariant.id)):
        township = session.get(Organization, variant.org_id)
        if township is None or not may_act_for(actor, township):
            continue
        draft = editing.get_draft(session, variant.key)
        marks.setdefault(variant.procedure_id, []).append({
            "org": township.code, "org_name": township.name, "version": _number(session, variant.current_version_id),
            "draft": draft is not None, "updated": _base_of(session, variant, draft) not in
            (None, procedures.current_version(session, variant.procedure_id).id)})
    return marks


def _base_of(session: Session, variant: ProcedureVariant, draft: ProcedureDraft | None) -> int | None:
    return draft.base_version_id if draft is not None and draft.base_version_id else variant.base_version_id
