"""Editing procedures: drafts, import with a report, export, comparison, publishing with an
effective date and a change summary, and migrating running cases to a new version.

* A draft is the working copy of one procedure (``procedure_draft``), private to the township
  that edits it until published. Every save bumps ``revision``; a save based on an older revision
  is refused (:class:`~engine.errors.Conflict`) and changes nothing, so two editors never
  overwrite each other.
* Published versions are immutable: an ORM guard refuses any UPDATE of a ``procedure_version``.
* Import reads BPMN 2.0 from any modeler safely (:mod:`engine.xmlsafe`), lays out a diagram
  when it has none, and reports what Xiaowei cannot execute instead of failing.
* Migration moves a running case to another version only when every step it already completed is
  unchanged there (and the path it took still exists); otherwise it says why, case by case.

Every save, publish and migration appends an audit event (``system`` chain; migrations also in
the case's chain).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core import audit, directory, procedures, spiff
from engine.core.definitions import BPMN, BPMNDI, DC, DI, XSI, XW, ProcedureDefinition, content_hash, read_definition
from engine.bpmn.diffing import Comparison, compare
from engine.core.directory import Actor, ancestors, load_actor
from engine.core.errors import Conflict, Forbidden, InvalidProcedure, NotFound
from engine.core.lint import lint_bytes
from engine.core.xmlsafe import MAX_BYTES, UnsafeXml, parse_xml
from storage.models import AuditEvent, Case, Organization, ParameterSetting, Procedure, ProcedureDraft, ProcedureVersion

KNOWN_NAMESPACES = {BPMN, BPMNDI, DC, DI, XW, XSI}
IMPORT_MAX_BYTES = 2 * 1024 * 1024  # a procedure is a few dozen KB; other tools' exports rarely pass 1 MB
EDITOR_ROLES_TOWNSHIP = frozenset({"township_staff", "township_government"})
EDITOR_ROLES_DISTRICT = frozenset({"district_admin"})
VENDORS = (
    ("camunda", "Camunda Modeler"), ("signavio", "SAP Signavio"), ("bizagi", "Bizagi Modeler"),
    ("boc-group", "ADONIS"), ("adonis", "ADONIS"), ("visio", "Microsoft Visio"), ("microsoft", "Microsoft Visio"),
    ("bpmn.io", "bpmn.io"), ("bpmn-js", "bpmn.io"), ("xiaowei", "小微 Xiaowei"), ("spiffworkflow", "SpiffArena"),
)


# --------------------------------------------------------------------------------------------
# Who may edit


def _org_by_id(session: Session, org_id: int | None) -> Organization | None:
    return session.get(Organization, org_id) if org_id is not None else None


def is_district_editor(actor: Actor) -> bool:
    return any(role in EDITOR_ROLES_DISTRICT for role, _ in actor.assignments)


def editable_org_ids(actor: Actor) -> set[int]:
    """Townships whose procedures the actor edits (district editors: see :func:`is_district_editor`)."""
    return {org for role, org in actor.assignments if role in EDITOR_ROLES_TOWNSHIP}


def may_edit(session: Session, actor: Actor, owner_org_id: int | None) -> bool:
    """Township staff edit their township's procedures; district staff edit every procedure,
    including the district library (owner None)."""
    if is_district_editor(actor):
        return True
    if owner_org_id is None:
        return False
    owner = _org_by_id(session, owner_org_id)
    return owner is not None and owner.kind == "township" and owner_org_id in editable_org_ids(actor)


def is_editor(actor: Actor) -> bool:
    return is_district_editor(actor) or bool(editable_org_ids(actor))


def _check_may_edit(session: Session, username: str | None, procedure_id: str, owner_org_id: int | None) -> None:
    if username is None:  # the command line acts as the administrator
        return
    actor = load_actor(session, username)
    if not may_edit(session, actor, owner_org_id):
        if owner_org_id is None and editable_org_ids(actor):  # township staff on a district procedure
            raise Forbidden(f"事项“{procedure_id}”属于区级事项库,由区级管理员维护;镇(街道)工作人员可以在该事项页"
                            f"创建本镇变体,修改后发布给本镇各村使用 / {procedure_id} belongs to the district library: "
                            "township staff make a township variant of it", action="edit_procedure")
        raise Forbidden(f"无权编辑或发布事项“{procedure_id}”:只有所属镇(街道)工作人员或区级管理员可以 / "
                        f"only staff of the owning township or district staff may edit {procedure_id}",
                        action="edit_procedure")


def owner_of(session: Session, procedure_id: str) -> tuple[bool, int | None]:
    """(exists, owner org id) of a procedure (published or only drafted)."""
    proc = session.get(Procedure, procedure_id)
    if proc is not None:
        return True, proc.owner_org_id
    draft = session.scalar(select(ProcedureDraft).where(ProcedureDraft.procedure_id == procedure_id))
    if draft is not None:
        return True, draft.org_id
    return False, None


def _default_org_for(session: Session, username: str | None) -> int | None:
    """The township a new procedure of this user belongs to (None: the district library)."""
    if username is None:
        return None
    actor = load_actor(session, username)
    townships = sorted(editable_org_ids(actor))
    for oid in townships:
        org = session.get(Organization, oid)
        if org is not None and org.kind == "township":
            return oid
    if is_district_editor(actor):
        return None
    raise Forbidden("只有镇(街道)工作人员或区级管理员可以编辑流程 / only township or district staff edit procedures",
                    action="edit_procedure")


# --------------------------------------------------------------------------------------------
# Reading BPMN safely


def read_bpmn(xml: bytes, *, max_bytes: int = MAX_BYTES) -> ProcedureDefinition:
    root = parse_xml(xml, max_bytes=max_bytes)
    try:
        return read_definition(root, xml)
    except ValueError as exc:
        raise InvalidProcedure(str(exc)) from None


def duplicate_ids(root: etree._Element) -> list[str]:
    """Ids used twice among BPMN elements (other tools' extension elements have ids of their own)."""
    from .bpmn_import import bpmn_duplicate_ids

    return bpmn_duplicate_ids(root)


# --------------------------------------------------------------------------------------------
# Automatic layout for documents without diagram interchange


def has_di(root: etree._Element, d: ProcedureDefinition) -> bool:
    shapes = {el.get("bpmnElement") for el in root.iter(f"{{{BPMNDI}}}BPMNShape")}
    edges = {el.get("bpmnElement") for el in root.iter(f"{{{BPMNDI}}}BPMNEdge")}
    return (bool(d.nodes) and all(n in shapes for n in d.nodes) and all(lane in shapes for lane in d.lanes)
            and all(f in edges for f in d.flows))


def auto_layout(root: etree._Element, d: ProcedureDefinition) -> bytes:
    """Replace the document's diagrams by a swimlane layout (lanes as columns, top to bottom)."""
    from engine.bpmn import steptable as st

    for diagram in root.findall(f"{{{BPMNDI}}}BPMNDiagram"):
        root.remove(diagram)
    lanes = list(d.lanes) or ["_pool"]
    first_lane = lanes[0]
    if not d.nodes:  # an empty process: a diagram plane and nothing on it
        plane_ref = next((p.getparent().get("id") for p in root.iter(f"{{{BPMN}}}participant")
                          if p.get("processRef") == d.id), d.id)
        diagram = etree.SubElement(root, f"{{{BPMNDI}}}BPMNDiagram", {"id": "Diagram_auto"})
        plane = etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", {"id": "Plane_auto", "bpmnElement": plane_ref})
        for row, lid in enumerate(d.lanes):  # empty lanes, one row each
            lane_shape = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape", {"id": f"{lid}_di", "bpmnElement": lid,
                                                                             "isHorizontal": "true"})
            etree.SubElement(lane_shape, f"{{{DC}}}Bounds", {"x": "30", "y": str(120 * row), "width": "600", "height": "120"})
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    order: dict[str, int] = {}
    succ: dict[str, list[str]] = {n: [] for n in d.nodes}
    for flow in d.flows.values():
        if flow.source in succ and flow.target in d.nodes:
            succ[flow.source].append(flow.target)
    stack = list(reversed(d.start_ids)) or list(d.nodes)[:1]
    while stack:  # depth-first from the start: columns follow the flow
        nid = stack.pop()
        if nid in order:
            continue
        order[nid] = len(order)
        stack.extend(reversed([t for t in succ[nid] if t not in order]))
    for nid in d.nodes:
        order.setdefault(nid, len(order))
    kinds = {"startEvent": "start", "endEvent": "end"}
    nodes: dict[str, st.Node] = {}
    for nid in sorted(d.nodes, key=order.__getitem__):
        node = d.nodes[nid]
        kind = kinds.get(node.type) or ("gateway" if node.type.endswith("Gateway") else
                                        "timer" if node.type.endswith("Event") else "task")
        nodes[nid] = st.Node(nid, kind, node.name or None, node.lane if node.lane in d.lanes else first_lane, order[nid])
    flows = [st.Flow(f.id, f.source, f.target, f.name or None, f.condition)
             for f in d.flows.values() if f.source in nodes and f.target in nodes]
    for f in flows:
        nodes[f.source].outgoing.append(f.id)
        nodes[f.target].incoming.append(f.id)
    labels = {lid: (d.lanes[lid].name if lid in d.lanes else d.name) or lid for lid in lanes}
    geometry = st._Layouter(st.Graph(nodes, flows), lanes, labels).run()
    process = d.process_element
    participant = None
    for p in root.iter(f"{{{BPMN}}}participant"):
        if p.get("processRef") == d.id:
            participant = p
    plane_ref = participant.getparent().get("id") if participant is not None else d.id
    taken = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}

    def new_id(base: str) -> str:
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        return candidate

    diagram = etree.SubElement(root, f"{{{BPMNDI}}}BPMNDiagram", {"id": new_id("Diagram_auto")})
    plane = etree.SubElement(diagram, f"{{{BPMNDI}}}BPMNPlane", {"id": new_id("Plane_auto"), "bpmnElement": plane_ref})

    def shape(element_id: str, box, label=None, **attrs: str) -> None:
        el = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNShape",
                              {"id": new_id(f"{element_id}_di"), "bpmnElement": element_id, **attrs})
        etree.SubElement(el, f"{{{DC}}}Bounds", {k: str(v) for k, v in
                                                 (("x", box.x), ("y", box.y), ("width", box.w), ("height", box.h))})
        if label is not None:
            lab = etree.SubElement(el, f"{{{BPMNDI}}}BPMNLabel")
            etree.SubElement(lab, f"{{{DC}}}Bounds", {k: str(v) for k, v in
                                                      (("x", label.x), ("y", label.y), ("width", label.w), ("height", label.h))})

    horizontal = "true" if geometry.horizontal else "false"
    if participant is not None:
        shape(participant.get("id"), geometry.pool, isHorizontal=horizontal)
    for lid in d.lanes:
        shape(lid, geometry.lanes[lid], isHorizontal=horizontal)
    for nid in nodes:
        shape(nid, geometry.shapes[nid], geometry.labels.get(nid))
    for f in flows:
        edge = etree.SubElement(plane, f"{{{BPMNDI}}}BPMNEdge", {"id": new_id(f"{f.id}_di"), "bpmnElement": f.id})
        for x, y in geometry.edges[f.id]:
            etree.SubElement(edge, f"{{{DI}}}waypoint", {"x": str(x), "y": str(y)})
    del process
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# --------------------------------------------------------------------------------------------
# Import


@dataclass
class ImportReport:
    """What an imported file is and what of it Xiaowei can execute."""

    filename: str
    status: str = "refused"  # refused | imported
    executable: bool = False
    procedure_id: str = ""
    name: str = ""
    vendor: str = ""
    laid_out: bool = False
    draft_revision: int | None = None
    message: str = ""
    problems: list[dict] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    xml: bytes | None = None
    notes: list[str] = field(default_factory=list)  # what the import changed ("中文 / English")
    candidates: list[dict] = field(default_factory=list)  # the file's processes, to choose another
    chosen_process: str = ""
    original_id: str = ""
    proposed_from: str = ""  # the id a clash with an existing draft moved this import away from
    element_names: dict[str, str] = field(default_factory=dict)  # element id → the name people read

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "status": self.status, "executable": self.executable,
                "procedure_id": self.procedure_id, "name": self.name, "vendor": self.vendor,
                "laid_out": self.laid_out, "draft_revision": self.draft_revision, "message": self.message,
                "problems": self.problems, "ignored": self.ignored, "notes": self.notes,
                "candidates": self.candidates, "chosen_process": self.chosen_process,
                "original_id": self.original_id, "proposed_from": self.proposed_from}

    def lines(self) -> list[str]:
        out = [self.message]
        if self.vendor:
            out.append(f"  来源 / made with: {self.vendor}")
        if self.laid_out:
            out.append("  原文件没有图形信息,已自动生成泳道布局 / no diagram interchange: laid out automatically")
        for note in self.notes:
            out.append(f"  {note}")
        for p in self.problems:
            where = f"[{p['element']}] " if p.get("element") else ""
            out.append(f"  {'错误' if p['severity'] == 'error' else '提示'} {where}{p['zh']} / {p['en']}")
        if self.ignored:
            out.append(f"  将被忽略的其他工具扩展 / other tools' extensions, ignored: {'、'.join(self.ignored[:12])}"
                       + (" …" if len(self.ignored) > 12 else ""))
        return out


def _vendor(root: etree._Element) -> str:
    text = " ".join([root.get("exporter", ""), root.get("exporterVersion", ""),
                     *[ns or "" for ns in root.nsmap.values()]]).lower()
    for needle, name in VENDORS:
        if needle in text:
            version = root.get("exporterVersion", "")
            return f"{name} {version}".strip() if name != "小微 Xiaowei" else name
    return root.get("exporter", "") or ""


def _foreign(root: etree._Element) -> list[str]:
    found: set[str] = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        q = etree.QName(el.tag)
        if q.namespace and q.namespace not in KNOWN_NAMESPACES:
            found.add(f"{_prefix(root, q.namespace)}:{q.localname}")
        for name in el.attrib:
            qa = etree.QName(name)
            if qa.namespace and qa.namespace not in KNOWN_NAMESPACES:
                found.add(f"{_prefix(root, qa.namespace)}:{qa.localname}")
    return sorted(found)


def _prefix(root: etree._Element, namespace: str) -> str:
    for prefix, ns in root.nsmap.items():
        if ns == namespace and prefix:
            return prefix
    return namespace


def analyze_import(xml: bytes, filename: str = "<bpmn>", *, process_id: str | None = None,
                   procedure_id: str | None = None) -> ImportReport:
    """Read, check and (when needed) lay out a BPMN file; never raises on bad input
    (:mod:`engine.services.bpmn_import`)."""
    from .bpmn_import import analyze_import as analyze

    return analyze(xml, filename, process_id=process_id, procedure_id=procedure_id)


def import_bpmn(session: Session, xml: bytes, filename: str = "<bpmn>", *, username: str | None = None,
                actor: str = "cli", expected_revision: int | None = None, process_id: str | None = None,
                procedure_id: str | None = None, replace: bool = False) -> ImportReport:
    """Import a file as a draft; an existing draft is replaced only with ``replace=True``
    (:mod:`engine.services.bpmn_import`)."""
    from .bpmn_import import import_bpmn as do_import

    return do_import(session, xml, filename, username=username, actor=actor, expected_revision=expected_revision,
                     process_id=process_id, procedure_id=procedure_id, replace=replace)


# --------------------------------------------------------------------------------------------
# Drafts


def get_draft(session: Session, procedure_id: str) -> ProcedureDraft | None:
    return session.scalar(select(ProcedureDraft).where(ProcedureDraft.procedure_id == procedure_id))


def save_draft(session: Session, procedure_id: str, xml: bytes, *, username: str | None = None, actor: str = "cli",
               expected_revision: int | None = None, source: str = "", step_table: dict | None = None) -> ProcedureDraft:
    """Save the draft of ``procedure_id`` (any time, valid or not: lint says what to fix).

    ``expected_revision``: the revision the editor started from (0 or None for a new draft). When
    someone saved in between, :class:`Conflict` says who and when, and nothing is changed.
    """
    root = parse_xml(xml)  # hostile or oversized XML is refused here
    dups = duplicate_ids(root)
    if dups:
        raise InvalidProcedure(f"元素编号重复:{'、'.join(dups[:10])} / duplicate ids")
    try:
        d = read_definition(root, xml)
    except ValueError as exc:
        raise InvalidProcedure(str(exc)) from None
    if d.id != procedure_id.partition("@")[0]:  # a township variant (B-PUR-02@SFZ) keeps the process id
        raise InvalidProcedure(f"流程编号“{d.id}”与事项编号“{procedure_id}”不一致 / the process id must be {procedure_id}")
    exists, owner = owner_of(session, procedure_id)
    if exists:
        _check_may_edit(session, username, procedure_id, owner)
    else:
        owner = _default_org_for(session, username)
    draft = session.scalar(select(ProcedureDraft).where(ProcedureDraft.procedure_id == procedure_id)
                           .with_for_update() if session.get_bind().dialect.name == "postgresql" else
                           select(ProcedureDraft).where(ProcedureDraft.procedure_id == procedure_id))
    now = audit.db_time()
    who = username or actor
    if draft is None:
        if expected_revision not in (None, 0):
            raise Conflict(f"草稿已被发布或删除(您编辑的是第{expected_revision}稿),请重新打开 / "
                           "the draft was published or deleted meanwhile; reopen it", current_revision=0)
        proc = session.get(Procedure, procedure_id)
        draft = ProcedureDraft(procedure_id=procedure_id, org_id=owner, bpmn_xml=xml.decode("utf-8"),
                               step_table=json.dumps(step_table, ensure_ascii=False) if step_table else "",
                               base_version_id=proc.current_version_id if proc else None, revision=1,
                               source=source, created_by=who, created_at=now, updated_by=who, updated_at=now)
        session.add(draft)
    else:
        if expected_revision is not None and expected_revision != draft.revision:
            raise Conflict(f"保存冲突:{draft.updated_by} 已于 {audit.iso(draft.updated_at)[:16].replace('T', ' ')} (UTC) "
                           f"保存了第{draft.revision}稿,您的修改基于第{expected_revision}稿,未保存。请另存您的内容后重新打开草稿合并 / "
                           f"conflict: {draft.updated_by} saved revision {draft.revision} meanwhile; your changes (based on "
                           f"revision {expected_revision}) were not saved", current_revision=draft.revision,
                           updated_by=draft.updated_by)
        draft.bpmn_xml = xml.decode("utf-8")
        draft.step_table = json.dumps(step_table, ensure_ascii=False) if step_table else ""
        draft.revision += 1
        draft.source = source or draft.source
        draft.updated_by, draft.updated_at = who, now
    session.flush()
    audit.append_system_event(session, "draft_saved", actor=who, data={
        "procedure_id": procedure_id, "revision": draft.revision, "content_hash": content_hash(xml),
        "source": source})
    return draft


def delete_draft(session: Session, procedure_id: str, *, username: str | None = None, actor: str = "cli") -> None:
    draft = get_draft(session, procedure_id)
    if draft is None:
        raise NotFound(f"事项“{procedure_id}”没有草稿 / no draft of {procedure_id}")
    _check_may_edit(session, username, procedure_id, draft.org_id)
    session.delete(draft)
    session.flush()
    audit.append_system_event(session, "draft_deleted", actor=username or actor,
                              data={"procedure_id": procedure_id, "revision": draft.revision})


def new_draft_from_version(session: Session, procedure_id: str, *, username: str | None = None,
                           actor: str = "cli") -> ProcedureDraft:
    """Start a draft from the procedure's latest version (or return the draft already open)."""
    if "@" in procedure_id:  # a township variant starts from the district's version: engine.services.variants
        from engine.services import variants

        base_id, _, org_code = procedure_id.partition("@")
        variants.open_variant(session, base_id, org_code, username=username, actor=actor)
        return get_draft(session, procedure_id)  # type: ignore[return-value]
    draft = get_draft(session, procedure_id)
    if draft is not None:
        return draft
    version = latest_version(session, procedure_id)
    return save_draft(session, procedure_id, version.bpmn_xml.encode("utf-8"), username=username, actor=actor,
                      expected_revision=0, source=f"v{version.version}")


# --------------------------------------------------------------------------------------------
# Versions, export and comparison


def latest_version(session: Session, procedure_id: str) -> ProcedureVersion:
    version = session.scalar(select(ProcedureVersion).where(ProcedureVersion.procedure_id == procedure_id)
                             .order_by(ProcedureVersion.version.desc()).limit(1))
    if version is None:
        raise NotFound(f"事项“{procedure_id}”没有已发布的版本 / no published version of {procedure_id}")
    return version


def get_version(session: Session, procedure_id: str, number: int | None = None) -> ProcedureVersion:
    if number is None:
        return latest_version(session, procedure_id)
    version = session.scalar(select(ProcedureVersion).where(ProcedureVersion.procedure_id == procedure_id,
                                                            ProcedureVersion.version == number))
    if version is None:
        raise NotFound(f"事项“{procedure_id}”没有第{number}版 / {procedure_id} has no version {number}")
    return version


def export_version(session: Session, procedure_id: str, number: int | None = None) -> bytes:
    """The exact published BPMN 2.0 document (standard BPMN + DI; Xiaowei data in ``xw:``)."""
    return get_version(session, procedure_id, number).bpmn_xml.encode("utf-8")


def definition_of(xml: str | bytes) -> ProcedureDefinition:
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    return read_definition(parse_xml(data), data)


def diff_versions(session: Session, procedure_id: str, v1: int, v2: int) -> Comparison:
    a, b = get_version(session, procedure_id, v1), get_version(session, procedure_id, v2)
    return compare(definition_of(a.bpmn_xml), definition_of(b.bpmn_xml), old_label=f"第{v1}版", new_label=f"第{v2}版")


def diff_draft(session: Session, procedure_id: str) -> Comparison:
    draft = get_draft(session, procedure_id)
    if draft is None:
        raise NotFound(f"事项“{procedure_id}”没有草稿 / no draft of {procedure_id}")
    try:
        base = latest_version(session, procedure_id)
    except NotFound:
        return Comparison("(无)", "草稿", [])
    return compare(definition_of(base.bpmn_xml), definition_of(draft.bpmn_xml),
                   old_label=f"第{base.version}版", new_label="草稿")


# --------------------------------------------------------------------------------------------
# Publishing


def publish_draft(session: Session, procedure_id: str, *, username: str | None = None, actor: str = "cli",
                  note: str = "", effective_from: datetime | None = None,
                  expected_revision: int | None = None) -> dict:
    """Validate the draft and publish it as a new immutable version (new cases use it from
    ``effective_from``, default now); running cases stay on their version. The Chinese change
    summary against the previous version is stored with the version."""
    if "@" in procedure_id:  # a township variant: published for its villages, checked against the district's
        from engine.services import variants

        base_id, _, org_code = procedure_id.partition("@")
        if effective_from is not None:
            raise InvalidProcedure("镇(街道)变体发布即生效,不能指定生效日期 / a township variant applies when published")
        return variants.publish_variant(session, base_id, org_code, username=username, actor=actor, note=note,
                                        expected_revision=expected_revision)
    draft = get_draft(session, procedure_id)
    if draft is None:
        raise NotFound(f"事项“{procedure_id}”没有草稿可发布 / no draft of {procedure_id} to publish")
    _check_may_edit(session, username, procedure_id, draft.org_id)
    if expected_revision is not None and expected_revision != draft.revision:
        raise Conflict(f"草稿已被 {draft.updated_by} 更新为第{draft.revision}稿,请先查看最新内容再发布 / "
                       f"the draft changed meanwhile (revision {draft.revision})", current_revision=draft.revision)
    xml = draft.bpmn_xml.encode("utf-8")
    result = lint_bytes(xml, f"{procedure_id} 草稿")
    if not result.ok or result.definition is None:
        raise InvalidProcedure("草稿未通过校验,不能发布 / the draft does not validate", result.errors)
    try:
        previous = latest_version(session, procedure_id)
    except NotFound:
        previous = None
    if previous is not None:
        comparison = compare(definition_of(previous.bpmn_xml), result.definition,
                             old_label=f"第{previous.version}版", new_label="新版本")
        if comparison.same and content_hash(xml) == previous.content_hash:
            raise Conflict(f"草稿与第{previous.version}版相同,无需发布 / the draft equals version {previous.version}")
        summary = comparison.summary_zh()
        changes = [c.to_dict() for c in comparison.changes]
    else:
        summary, changes = "首次发布。", []
    when = audit.db_time(effective_from) if effective_from is not None else None
    if when is not None and when <= audit.db_time():
        when = None
    version, created = procedures.publish(session, xml, source=draft.source or "draft", actor=username or actor,
                                          note=note, effective_from=when, change_summary=summary)
    if not created:
        raise Conflict(f"草稿与已发布的第{version.version}版相同 / the draft equals version {version.version}")
    proc = session.get(Procedure, procedure_id)
    if proc is not None and proc.owner_org_id is None and previous is None:
        owner = _org_by_id(session, draft.org_id)
        proc.owner_org_id = owner.id if owner is not None and owner.kind == "township" else None
    audit.append_system_event(session, "draft_published", actor=username or actor, data={
        "procedure_id": procedure_id, "version": version.version, "draft_revision": draft.revision,
        "effective_from": audit.iso(when) if when else None, "note": note, "changes": changes})
    session.delete(draft)
    session.flush()
    return {"procedure_id": procedure_id, "version": version.version, "content_hash": version.content_hash,
            "effective_from": audit.iso(when) if when else None, "note": note, "change_summary": summary}


def version_notices(session: Session, procedure_ids: Iterable[str] | None = None, limit: int = 50) -> list[dict]:
    """Published versions after the first, newest first, with note and stored Chinese change
    summary: the "what changed" notices of the public side."""
    query = (select(ProcedureVersion, Procedure.name).join(Procedure, Procedure.id == ProcedureVersion.procedure_id)
             .where(ProcedureVersion.version > 1, ~ProcedureVersion.procedure_id.contains("@")))  # no variants
    if procedure_ids is not None:
        query = query.where(ProcedureVersion.procedure_id.in_(list(procedure_ids)))
    rows = session.execute(query.order_by(ProcedureVersion.published_at.desc(), ProcedureVersion.id.desc())
                           .limit(limit)).all()
    return [{"procedure_id": v.procedure_id, "procedure_name": name, "version": v.version, "note": v.note,
             "change_summary": v.change_summary, "published_at": audit.iso(v.published_at),
             "effective_from": audit.iso(v.effective_from) if v.effective_from else None} for v, name in rows]


# --------------------------------------------------------------------------------------------
# Migrating running cases


def _exits(d: ProcedureDefinition, node_id: str) -> set[tuple[str, str, bool]]:
    node = d.nodes[node_id]
    return {(d.flows[f].target, d.flows[f].condition or "", f == node.default_flow)
            for f in node.outgoing if f in d.flows}


def _step_signature(d: ProcedureDefinition, step_id: str) -> dict:
    data = d.steps[step_id].to_dict()
    data.pop("instructions", None)
    return data


def migration_problems(old: ProcedureDefinition, new: ProcedureDefinition, completed: list[str],
                       open_nodes: list[str]) -> list[str]:
    """Why a case that completed ``completed`` and stands at ``open_nodes`` cannot move from
    ``old`` to ``new`` (empty: it can)."""
    reasons: list[str] = []
    for nid in dict.fromkeys(completed):
        node = old.nodes.get(nid)
        if node is None:
            continue
        label = f"“{node.name or nid}”"
        if nid not in new.nodes or new.nodes[nid].type != node.type:
            reasons.append(f"已办步骤{label}在新版本中已删除或改变类型 / completed element {nid} is gone in the new version")
            continue
        if nid in old.steps and _step_signature(old, nid) != _step_signature(new, nid):
            changes = compare(_only(old, nid), _only(new, nid)).changes
            detail = ";".join(c.zh.rstrip("。") for c in changes) or "步骤内容有变化"
            reasons.append(f"已办步骤{label}在新版本中有变化({detail}) / completed step {nid} changed")
        elif node.timer is not None and node.timer != new.nodes[nid].timer:
            reasons.append(f"已过的期限{label}在新版本中有变化 / elapsed timer {nid} changed")
        elif _exits(old, nid) != _exits(new, nid):
            reasons.append(f"已办环节{label}之后的走向在新版本中有变化 / the flow after completed element {nid} changed")
    for nid in dict.fromkeys(open_nodes):
        if nid not in new.nodes:
            node = old.nodes.get(nid)
            reasons.append(f"当前步骤“{node.name if node else nid}”在新版本中不存在 / current element {nid} is gone")
    return reasons


def _only(d: ProcedureDefinition, step_id: str) -> ProcedureDefinition:
    """A definition holding one step (to phrase what changed in it)."""
    return ProcedureDefinition(id=d.id, name=d.name, root=d.root, content_hash="", steps={step_id: d.steps[step_id]})


def migrate_case(session: Session, case_id: int, to_version: int, *, username: str | None = None,
                 actor: str = "cli") -> dict:
    """Move a running case to version ``to_version`` of its procedure when it is safe; raise
    :class:`Conflict` with the reasons otherwise. Audited in the case's chain and the system chain."""
    from engine.core import cases

    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
    proc = session.get(Procedure, case.procedure_id)
    if username is not None:
        actor_obj = load_actor(session, username)
        org = session.get(Organization, case.org_id)
        townships = {o.id for o in ancestors(session, org)} if org is not None else set()
        allowed = is_district_editor(actor_obj) or bool(editable_org_ids(actor_obj) & townships)
        if not allowed or not may_edit(session, actor_obj, proc.owner_org_id if proc else None):
            raise Forbidden(f"无权迁移事项 #{case_id} / you may not migrate case {case_id}", action="migrate_case")
    ctx = cases.open_for_update(session, case_id)
    assert ctx is not None
    case = ctx.case
    target = get_version(session, case.procedure_id, to_version)
    old_rt = ctx.rt
    if case.status != cases.RUNNING:
        raise Conflict(f"事项 #{case_id} 已结束({cases.STATUS_ZH.get(case.status, case.status)}),无需迁移 / case {case_id} is closed",
                       reasons=["事项已结束 / the case is closed"])
    if target.id == case.procedure_version_id:
        raise Conflict(f"事项 #{case_id} 已在第{to_version}版上 / case {case_id} already runs version {to_version}",
                       reasons=["已是该版本 / already on that version"])
    new_rt = procedures.runtime(session, target.id)
    workflow = ctx.workflow
    completed = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=spiff.TaskState.COMPLETED)
                 if getattr(t.task_spec, "bpmn_id", None)]
    open_nodes = [t.task_spec.bpmn_id for t in workflow.get_tasks(state=spiff.TaskState.READY | spiff.TaskState.WAITING)
                  if getattr(t.task_spec, "bpmn_id", None)]
    reasons = migration_problems(old_rt.definition, new_rt.definition, completed, open_nodes)
    if not reasons:
        top_diff, sub_diffs = spiff.migration_diff(workflow, new_rt.spec, new_rt.subprocess_specs)
        gone = [t.task_spec.bpmn_id for t in top_diff.removed
                if t.state == spiff.TaskState.COMPLETED and getattr(t.task_spec, "bpmn_id", None)]
        if gone or any(v is None for v in sub_diffs.values()):
            reasons.append(f"流程引擎无法对应已办环节:{'、'.join(sorted(set(gone))) or '子流程'} / the engine cannot align "
                           "completed tasks")
    if reasons:
        raise Conflict(f"事项 #{case_id} 不能迁移到第{to_version}版:{';'.join(r.split(' / ')[0] for r in reasons)} / "
                       f"case {case_id} cannot move to version {to_version}", reasons=reasons)
    spiff.migrate(top_diff, workflow, new_rt.spec)
    params = workflow.data.setdefault(spiff.PARAMS_KEY, {})
    org = session.get(Organization, case.org_id)
    added = {}
    for key, value in procedures.effective_params(session, new_rt.definition, org).items():
        if key not in params:
            params[key] = value["value"]
            added[key] = str(value["value"])
    from_version = old_rt.version
    ctx.rt = new_rt
    ctx.run_engine("migrate")
    case.procedure_version_id = target.id
    who = username or actor
    data = {"from_version": from_version, "to_version": target.version, "definition_hash": target.content_hash,
            "completed": sorted(set(completed) & set(old_rt.definition.steps)), "new_params": added}
    cases.save_case(ctx, ("case_migrated", who, "", data))
    audit.append_system_event(session, "case_migrated", actor=who, data={
        "case_id": case_id, "procedure_id": case.procedure_id, **data})
    return {"case_id": case_id, "migrated": True, "from_version": from_version, "to_version": target.version,
            "reasons": []}


def running_cases(session: Session, procedure_id: str) -> list[dict]:
    rows = session.execute(select(Case, ProcedureVersion.version)
                           .join(ProcedureVersion, ProcedureVersion.id == Case.procedure_version_id)
                           .where(Case.procedure_id == procedure_id, Case.status == "running",
                                  ProcedureVersion.procedure_id == procedure_id)  # not the townships' variants
                           .order_by(Case.id)).all()
    return [{"case_id": c.id, "title": c.title, "version": v, "org_id": c.org_id} for c, v in rows]


def version_counts(session: Session, procedure_id: str) -> dict[int, int]:
    """Running cases per version number."""
    rows = session.execute(select(ProcedureVersion.version, func.count(Case.id))
                           .join(Case, Case.procedure_version_id == ProcedureVersion.id)
                           .where(Case.procedure_id == procedure_id, Case.status == "running",
                                  ProcedureVersion.procedure_id == procedure_id)
                           .group_by(ProcedureVersion.version)).all()
    return {v: n for v, n in rows}


__all__ = [
    "ImportReport", "analyze_import", "import_bpmn", "save_draft", "get_draft", "delete_draft",
    "new_draft_from_version", "publish_draft", "export_version", "diff_versions", "diff_draft", "migrate_case",
    "migration_problems", "version_notices", "may_edit", "is_editor", "auto_layout", "read_bpmn",
]


# --- what the procedure pages show ----------------------------------------------------------------
def library_rows(session: Session, actor: Actor) -> tuple[list[dict], list[ProcedureDraft]]:
    """The procedure library for 流程管理: one row per procedure (latest version, owner organization's
    name or None for the district library, whether ``actor`` may edit it, its draft), and the drafts of
    new procedures the actor may edit."""
    procs = [p for p in session.scalars(select(Procedure).order_by(Procedure.id)) if "@" not in p.id]  # no variants
    latest = {}
    for v in session.scalars(select(ProcedureVersion).order_by(ProcedureVersion.version)):
        latest[v.procedure_id] = v
    drafts = {d.procedure_id: d for d in session.scalars(select(ProcedureDraft))}
    orgs = {o.id: o.name for o in session.scalars(select(Organization))}
    rows = [{"id": p.id, "name": p.name, "category": p.category,
             "version": latest[p.id].version if p.id in latest else None,
             "owner": orgs.get(p.owner_org_id), "editable": may_edit(session, actor, p.owner_org_id),
             "draft": drafts.get(p.id)} for p in procs]
    new_drafts = [d for pid, d in drafts.items() if "@" not in pid and session.get(Procedure, pid) is None
                  and may_edit(session, actor, d.org_id)]
    return rows, new_drafts


def versions_of(session: Session, procedure_id: str) -> list[ProcedureVersion]:
    return list(session.scalars(select(ProcedureVersion).where(ProcedureVersion.procedure_id == procedure_id)
                                .order_by(ProcedureVersion.version)))


def get_procedure(session: Session, procedure_id: str) -> Procedure | None:
    return session.get(Procedure, procedure_id)


def local_parameters(s: Session, actor: Actor, proc: Procedure | None) -> list[dict]:
    """The procedure's local parameters: default, and the values set in the user's organizations
    (district → township → village; the nearest one wins for a village)."""
    if proc is None or proc.current_version_id is None:
        return []
    d = procedures.runtime(s, proc.current_version_id).definition
    if not d.parameters:
        return []
    visible = directory.visible_org_ids(s, actor)
    orgs = {o.id: o for o in s.scalars(select(Organization).where(Organization.id.in_(visible)))}
    settings = s.scalars(select(ParameterSetting).where(ParameterSetting.key.in_(list(d.parameters)),
                                                        ParameterSetting.org_id.in_(list(orgs)))).all()
    rank = {"district": 0, "township": 1, "village": 2, "community": 2}
    rows = []
    for key, p in d.parameters.items():
        found = sorted((x for x in settings if x.key == key),
                       key=lambda x: (rank.get(orgs[x.org_id].kind, 3), orgs[x.org_id].code))
        rows.append({"key": key, "label": p.label, "unit": p.unit, "default": str(p.default),
                     "settings": [{"org": orgs[x.org_id].code, "org_name": orgs[x.org_id].name, "value": x.value}
                                  for x in found]})
    return rows


# --- the step-table editor (任务单) -----------------------------------------------------------------
STEP_TABLE_EVENT = "step_table_saved"  # system chain: the table behind a draft, to reopen it after publishing


def save_step_table_draft(session: Session, procedure_id: str, xml: bytes, table: dict, *, username: str,
                          expected_revision: int | None) -> int:
    """Save the BPMN generated from a step table as the draft, and the table itself in the system chain
    (to reopen it after publishing); the draft's new revision."""
    draft = save_draft(session, procedure_id, xml, username=username, expected_revision=expected_revision,
                       source="任务单", step_table=table)
    audit.append_system_event(session, STEP_TABLE_EVENT, actor=username, data={
        "procedure_id": procedure_id, "revision": draft.revision, "content_hash": content_hash(xml), "table": table})
    return draft.revision


def saved_step_table(session: Session, procedure_id: str, content_hash: str) -> dict | None:
    """The step table saved (audited as ``step_table_saved``) that generated exactly this content."""
    rows = session.scalars(select(AuditEvent.data).where(
        AuditEvent.chain == audit.SYSTEM_CHAIN, AuditEvent.type == STEP_TABLE_EVENT,
        AuditEvent.data.contains(content_hash)).order_by(AuditEvent.seq.desc()).limit(20))
    for text in rows:
        data = json.loads(text)
        if data.get("procedure_id") == procedure_id and data.get("content_hash") == content_hash:
            return data.get("table")
    return None


def review_notes(s: Session, proc, draft) -> list[dict]:
    """Authoring notes (``review``) of the draft, else of the current version, and the legal bases
    cited without their article (not yet read in the source): for township staff only."""
    definition = None
    if draft is not None:
        try:
            root = parse_xml(draft.bpmn_xml.encode("utf-8"))
            definition = read_definition(root, draft.bpmn_xml.encode("utf-8"))
        except (ValueError, UnsafeXml):
            definition = None
    if definition is None and proc is not None and proc.current_version_id:
        definition = procedures.runtime(s, proc.current_version_id).definition
    if definition is None:
        return []
    notes = definition.review_notes()
    notes += [{"where": f"依据{b['source']}{b['article']}", "text": "", "unverified": True}
              for b in definition.legal_basis if b.get("article") and b.get("status") != "confirmed"]
    return notes
