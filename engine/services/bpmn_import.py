"""Importing BPMN 2.0 files from other modelers: never a crash, rarely a refusal, never lost work.

What other tools write and Xiaowei accepts (issue #15):

* several pools or processes: the process with content is chosen (an executable one first, else the
  one with most flow nodes); the others are kept in the file and listed, and the user may choose
  another (``process_id``); a process without a name takes its pool's name (never the id twice);
* ids are checked for duplicates only among BPMN elements, not inside other tools' extension elements;
* a process id that is too long or not a plain identifier (ADONIS, ARIS: ``process_<uuid>``) is mapped to a
  short procedure id; the original is kept in ``<xw:imported originalId=…>``;
* layout references written with a namespace prefix (``bpmnElement="bpmn2:_id"``) are resolved, so the
  original layout is kept;
* a file whose process id is already a draft never replaces that draft unless the user says so
  (``replace=True``): it is imported under a new id, and the report says so.

:func:`analyze_import` reads and reports without touching the database; :func:`import_bpmn` stores the draft.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.definitions import BPMN, BPMNDI, DC, DI, FLOW_NODE_TAGS, XW, read_definition
from engine.core.lint import lint_bytes
from engine.core.xmlsafe import MAX_BYTES, UnsafeXml, parse_xml
from storage.models import Procedure, ProcedureDraft

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
MAX_ID = 40
STANDARD_NAMESPACES = {BPMN, BPMNDI, DC, DI}
# attributes whose value is a QName reference (a prefix there is legal and must be resolved)
QNAME_REFS = ("bpmnElement", "sourceElement", "targetElement", "processRef", "calledElement", "messageRef",
              "dataStoreRef", "categoryValueRef", "signalRef", "errorRef", "escalationRef", "operationRef")


@dataclass
class Candidate:
    """One process of a file, as the user chooses among them."""

    id: str
    name: str  # the process's name, else its pool's, else ""
    pool: str
    nodes: int
    executable: bool

    def title(self) -> str:
        return self.name or self.pool or self.id

    def to_dict(self) -> dict:
        return {"id": self.id, "name": self.title(), "pool": self.pool, "nodes": self.nodes,
                "executable": self.executable}


# --------------------------------------------------------------------------------------------
# What is read from the file


def bpmn_duplicate_ids(root: etree._Element) -> list[str]:
    """Ids used twice among BPMN (and BPMN DI) elements. Other tools' extension elements carry ids
    of their own (Signavio, Camunda forms…), which are not BPMN ids and may repeat."""
    seen: dict[str, int] = {}
    for el in root.iter():
        if not isinstance(el.tag, str) or etree.QName(el.tag).namespace not in STANDARD_NAMESPACES:
            continue
        if _in_extension(el):
            continue
        ident = el.get("id")
        if ident:
            seen[ident] = seen.get(ident, 0) + 1
    return sorted(k for k, n in seen.items() if n > 1)


def _in_extension(el: etree._Element) -> bool:
    parent = el.getparent()
    while parent is not None:
        if isinstance(parent.tag, str) and etree.QName(parent.tag).localname == "extensionElements":
            return True
        parent = parent.getparent()
    return False


def resolve_prefixed_refs(root: etree._Element) -> int:
    """Strip a namespace prefix from QName references (``bpmn2:_id`` → ``_id``) when the prefix is
    declared; the number of references changed."""
    changed = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for attr in QNAME_REFS:
            value = el.get(attr)
            if value and ":" in value:
                prefix, _, local = value.partition(":")
                if prefix in (el.nsmap or {}) and local:
                    el.set(attr, local)
                    changed += 1
    return changed


NEEDS_ID = set(FLOW_NODE_TAGS) | {"sequenceFlow", "lane", "laneSet", "participant", "collaboration", "messageFlow"}


def give_ids(root: etree._Element) -> int:
    """Give an id to the flow elements that have none (optional in BPMN: Flowable tests, hand-written
    files); Xiaowei refers to every flow and step by its id. The number of ids given."""
    taken = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    count = 0
    for el in root.iter(f"{{{BPMN}}}*"):
        local = etree.QName(el.tag).localname
        if local in NEEDS_ID and not el.get("id") and not _in_extension(el):
            base = {"sequenceFlow": "Flow", "messageFlow": "MessageFlow"}.get(local, local[0].upper() + local[1:])
            n = 1
            while f"{base}_{n}" in taken:
                n += 1
            el.set("id", f"{base}_{n}")
            taken.add(f"{base}_{n}")
            count += 1
    return count


def _pools(root: etree._Element) -> dict[str, str]:
    """process id → its pool's (participant's) name."""
    out: dict[str, str] = {}
    for p in root.iter(f"{{{BPMN}}}participant"):
        ref = p.get("processRef")
        if ref and p.get("name") and ref not in out:
            out[ref] = p.get("name", "").strip()
    return out


def candidates(root: etree._Element) -> list[Candidate]:
    pools = _pools(root)
    out = []
    for p in root.findall(f"{{{BPMN}}}process"):
        nodes = sum(1 for el in p if isinstance(el.tag, str) and etree.QName(el.tag).localname in FLOW_NODE_TAGS)
        pid = p.get("id", "")
        out.append(Candidate(pid, (p.get("name") or "").strip(), pools.get(pid, ""), nodes,
                             (p.get("isExecutable") or "").lower() == "true"))
    return out


def choose(found: list[Candidate], process_id: str | None = None) -> Candidate | None:
    """The process to import: the one asked for, else the executable one with content, else the one
    with most flow nodes (the first of equals)."""
    if process_id:
        return next((c for c in found if c.id == process_id), None)
    with_content = [c for c in found if c.nodes]
    if not with_content:
        return found[0] if found else None
    executable = [c for c in with_content if c.executable]
    pool = executable or with_content
    return max(pool, key=lambda c: (c.nodes, -found.index(c)))


UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def short_id(original: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A procedure id for a process id that is too long, not a plain identifier or a UUID
    (``PROCESS_055e9200-3bda-…`` → ``PROCESS_055e9200``, ``sid-a3607ae4-…`` → ``sid_a3607ae4``)."""
    uuid = UUID_RE.search(original)
    if ID_RE.match(original) and len(original) <= MAX_ID and original not in taken and not uuid:
        return original
    if uuid:
        head, tail = original[: uuid.start()], uuid.group(0)[:8].lower()
    else:
        head, tail = original, hashlib.sha1(original.encode("utf-8")).hexdigest()[:8]
    head = re.sub(r"[^A-Za-z0-9_]+", "_", head).strip("_")[:24].strip("_")
    if not head or not re.match(r"[A-Za-z_]", head):
        head = "Process"
    base = f"{head}_{tail}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def rename_process(root: etree._Element, old: str, new: str) -> None:
    """Give process ``old`` the id ``new`` everywhere it is referenced."""
    if old == new:
        return
    for el in root.iter():
        if not isinstance(el.tag, str) or etree.QName(el.tag).namespace not in STANDARD_NAMESPACES:
            continue
        if el.get("id") == old and etree.QName(el.tag).localname == "process":
            el.set("id", new)
        for attr in ("processRef", "bpmnElement", "calledElement"):
            if el.get(attr) == old:
                el.set(attr, new)


def _ensure_ext(process: etree._Element) -> etree._Element:
    ext = process.find(f"{{{BPMN}}}extensionElements")
    if ext is None:
        ext = etree.Element(f"{{{BPMN}}}extensionElements")
        doc = process.find(f"{{{BPMN}}}documentation")
        index = list(process).index(doc) + 1 if doc is not None else 0
        process.insert(index, ext)
    return ext


def mark_imported(process: etree._Element, original_id: str, filename: str, vendor: str) -> None:
    """Keep where the procedure came from (the original id above all) in ``<xw:imported>``."""
    ext = _ensure_ext(process)
    for old in ext.findall(f"{{{XW}}}imported"):
        ext.remove(old)
    etree.SubElement(ext, f"{{{XW}}}imported", {"originalId": original_id, "file": filename[:200],
                                                 "tool": vendor[:100]}, nsmap={"xw": XW})


def original_id(process: etree._Element | None) -> str:
    if process is None:
        return ""
    el = process.find(f"{{{BPMN}}}extensionElements/{{{XW}}}imported")
    return el.get("originalId", "") if el is not None else ""


def make_first(root: etree._Element, process: etree._Element) -> None:
    """Make ``process`` the one every reader takes: the first process, the only executable one (the
    others stay in the file, marked not executable, so their pools still show)."""
    processes = root.findall(f"{{{BPMN}}}process")
    for p in processes:
        if p is not process and (p.get("isExecutable") or "").lower() == "true":
            p.set("isExecutable", "false")
    if processes and processes[0] is not process:
        processes[0].addprevious(process)


# --------------------------------------------------------------------------------------------
# Analyze and import


def analyze_import(xml: bytes, filename: str = "<bpmn>", *, process_id: str | None = None,
                   procedure_id: str | None = None):
    """Read, check and (when needed) lay out a BPMN file; never raises on bad input."""
    from . import editing

    report = editing.ImportReport(filename)
    try:
        return _analyze(report, xml, filename, process_id, procedure_id)
    except Exception as exc:  # noqa: BLE001 — the last net: a message, never a traceback (the bench counts these)
        zh, _, en = str(getattr(exc, "message", exc) or type(exc).__name__).partition(" / ")
        report.problems = [p for p in report.problems if p.get("severity") != "error"]
        return _refuse(report, f"文件无法读取:{zh}", en or zh, "internal")


def _refuse(report, zh: str, en: str, code: str = "xml"):
    report.status = "refused"
    report.message = f"未导入:{zh} / not imported: {en}"
    report.problems.append({"code": code, "element": "", "zh": zh, "en": en, "severity": "error"})
    return report


def _analyze(report, xml: bytes, filename: str, process_id: str | None, procedure_id: str | None):
    from . import editing

    limit = editing.IMPORT_MAX_BYTES
    if len(xml) > limit:
        return _refuse(report, f"文件过大(超过 {limit // 1024} KB)", f"file larger than {limit // 1024} KB", "size")
    try:
        root = parse_xml(xml, max_bytes=limit)
    except UnsafeXml as exc:
        zh, _, en = str(exc).partition(" / ")
        return _refuse(report, zh, en or zh)
    q = etree.QName(root.tag)
    if q.namespace != BPMN or q.localname != "definitions":
        if q.localname == "definitions" and q.namespace and "BPMN" in q.namespace.upper():
            return _refuse(report, f"不是 BPMN 2.0 文件(命名空间“{q.namespace}”不是 BPMN 2.0 的)",
                           f"not a BPMN 2.0 document (namespace {q.namespace})", "not-bpmn")
        return _refuse(report, "不是 BPMN 2.0 文件(根元素须为 bpmn:definitions)",
                       "not a BPMN 2.0 document (root must be bpmn:definitions)", "not-bpmn")
    report.vendor = editing._vendor(root)
    dups = bpmn_duplicate_ids(root)
    if dups:
        return _refuse(report, f"元素编号重复:{'、'.join(dups[:10])}", f"duplicate ids: {', '.join(dups[:10])}",
                       "duplicate-id")
    found = candidates(root)
    if not found:  # only a diagram (or a collaboration): an empty process to draw in, named after the file
        pid = _empty_process(root, filename)
        report.notes.append(f"文件中没有流程(只有图形或说明),已建立空流程“{pid}”,可在流程图编辑器中绘制 / the file had "
                            f"no process: an empty process {pid} was created")
        found = candidates(root)
    chosen = choose(found, process_id)
    if chosen is None:
        names = "、".join(f"{c.id}({c.title()})" for c in found)
        return _refuse(report, f"文件中没有编号为“{process_id}”的流程;可选:{names}",
                       f"no process {process_id}; choose one of {', '.join(c.id for c in found)}", "process")
    report.candidates = [c.to_dict() for c in found]
    report.chosen_process = chosen.id
    named = give_ids(root)
    if named:
        report.notes.append(f"{named} 个元素没有编号(BPMN 允许),已补上编号 / {named} elements without an id were given one")
    fixed = resolve_prefixed_refs(root)
    if fixed:
        report.notes.append(f"已解析 {fixed} 处带命名空间前缀的图形引用,保留原有布局 / resolved {fixed} prefixed "
                            "diagram references; the original layout is kept")
    process = next(p for p in root.findall(f"{{{BPMN}}}process") if p.get("id") == chosen.id)
    make_first(root, process)
    if not (process.get("name") or "").strip():
        title = chosen.pool or _stem(filename)
        process.set("name", title)
        report.notes.append(f"流程没有名称,已采用{'泳池' if chosen.pool else '文件'}名称“{title}” / the process "
                            f"had no name: took its {'pool' if chosen.pool else 'file'} name")
    target = procedure_id or short_id(chosen.id)
    if procedure_id and (not ID_RE.match(procedure_id) or len(procedure_id) > MAX_ID):
        return _refuse(report, f"事项编号“{procedure_id}”无效:须以字母开头,只含字母、数字、_ 和 -,不超过{MAX_ID}个字符",
                       f"invalid procedure id {procedure_id}", "process-id")
    if target != chosen.id:
        rename_process(root, chosen.id, target)
        if not procedure_id:
            report.notes.append(f"原流程编号“{chosen.id}”过长或含特殊字符,已改为“{target}”(原编号已保留) / the process "
                                f"id {chosen.id} was mapped to {target} (the original is kept)")
    report.original_id = chosen.id
    mark_imported(process, chosen.id, filename, report.vendor)
    others = [c for c in found if c.id != chosen.id]
    if others:
        listed = "、".join(f"“{c.title()}”({c.id},{c.nodes} 个元素)" for c in others)
        report.problems.append({"code": "other-process", "element": target, "severity": "warning",
                                "zh": f"文件含多个流程,导入了“{chosen.title()}”;其余保留在图中但不执行:{listed}。"
                                      "如需导入其他流程,可在导入结果页选择(命令行:--process 流程编号)",
                                "en": f"several processes: {chosen.id} is imported; others kept, not run: "
                                      f"{', '.join(c.id for c in others)}"})
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    d = read_definition(root, xml)
    report.procedure_id, report.name = d.id, d.name
    report.ignored = editing._foreign(root)
    if not d.lanes:
        report.problems.append({"code": "no-lanes", "element": d.id, "severity": "error",
                                "zh": "流程没有泳道:小微按泳道的角色(xw:role)分派每个步骤;导入助手可以加一条泳道",
                                "en": "no lanes: Xiaowei assigns each step by the role (xw:role) of its lane"})
    if not editing.has_di(root, d):
        xml = editing.auto_layout(root, d)
        report.laid_out = True
        try:
            root = parse_xml(xml, max_bytes=min(limit, MAX_BYTES))
        except UnsafeXml:
            kb = min(limit, MAX_BYTES) // 1024
            return _refuse(report, f"自动排版后的流程图超过 {kb} KB,请减少步骤或分成几个流程后再导入",
                           f"the laid-out diagram is larger than {kb} KB", "size")
    result = lint_bytes(xml, filename)
    report.problems.extend(p.to_dict() for p in result.problems)
    report.element_names = {**{k: f.name for k, f in d.flows.items() if f.name},
                            **{k: n.name for k, n in d.nodes.items() if n.name},
                            **{k: lane.name for k, lane in d.lanes.items() if lane.name}, d.id: d.name}
    report.executable = result.ok
    report.xml = xml
    report.status = "imported"
    if report.executable:
        report.message = f"已导入为草稿:{d.id} {d.name},可以执行 / imported as a draft; it can be executed"
    else:
        n = len(result.errors)
        report.message = (f"已导入为草稿:{d.id} {d.name};有 {n} 处需要补充或修改才能发布(可用导入助手) / imported "
                          f"as a draft; {n} problem(s) must be fixed before it can be published (try the assistant)")
    return report


def _empty_process(root: etree._Element, filename: str) -> str:
    """Add an empty process (the id the diagram's plane refers to when that is free) and return its id."""
    taken = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    plane = next(root.iter(f"{{{BPMNDI}}}BPMNPlane"), None)
    wanted = plane.get("bpmnElement", "") if plane is not None else ""
    pid = wanted if wanted and ID_RE.match(wanted) and len(wanted) <= MAX_ID and wanted not in taken else "Process_1"
    n = 1
    while pid in taken:
        n += 1
        pid = f"Process_{n}"
    process = etree.Element(f"{{{BPMN}}}process", {"id": pid, "name": _stem(filename), "isExecutable": "false"})
    diagram = next(root.iter(f"{{{BPMNDI}}}BPMNDiagram"), None)
    if diagram is not None:
        diagram.addprevious(process)
    else:
        root.append(process)
    return pid


def _stem(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".bpmn20.xml", ".bpmn2", ".bpmn", ".xml"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return name.strip()[:100] or "导入的流程"


def taken_ids(session: Session) -> set[str]:
    ids = set(session.scalars(select(Procedure.id)))
    ids |= set(session.scalars(select(ProcedureDraft.procedure_id)))
    return ids


def free_id(base: str, taken: set[str]) -> str:
    stem = base[: MAX_ID - 3]
    n = 2
    while f"{stem}_{n}" in taken:
        n += 1
    return f"{stem}_{n}"


def import_bpmn(session: Session, xml: bytes, filename: str = "<bpmn>", *, username: str | None = None,
                actor: str = "cli", expected_revision: int | None = None, process_id: str | None = None,
                procedure_id: str | None = None, replace: bool = False):
    """Import a file as a draft; the report says what happened. An unreadable or hostile file is
    refused and nothing is stored. An existing draft is replaced only with ``replace=True`` (else the
    file becomes a new draft under a free id, and the report says so)."""
    from . import editing

    report = analyze_import(xml, filename, process_id=process_id, procedure_id=procedure_id)
    if report.status != "imported" or report.xml is None:
        return report
    wanted = report.procedure_id
    draft = editing.get_draft(session, wanted)
    exists, owner = editing.owner_of(session, wanted)
    allowed = True
    if exists and username is not None:
        allowed = editing.may_edit(session, editing.load_actor(session, username), owner)
    clash = ""
    if draft is not None and not replace:
        clash = (f"已有编号为“{wanted}”的草稿({draft.updated_by} 保存的第{draft.revision}稿),没有覆盖", 
                 f"a draft {wanted} exists (revision {draft.revision} by {draft.updated_by}); it was not replaced")
    elif exists and not allowed and not replace:  # asked to replace what one may not edit: refused below
        clash = (f"已有编号为“{wanted}”的事项,您无权修改它", f"procedure {wanted} exists and you may not edit it")
    if clash:
        new_id = free_id(wanted, taken_ids(session))
        root = parse_xml(report.xml, max_bytes=MAX_BYTES)
        rename_process(root, wanted, new_id)
        report.xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        report.proposed_from = wanted
        report.procedure_id = new_id
        zh, en = clash
        report.notes.append(f"{zh};本文件已导入为新草稿“{new_id}”。如确要替换原草稿,请重新导入并选择“替换同编号草稿”"
                            f"(命令行:--replace) / {en}; imported as the new draft {new_id} (use --replace to replace it)")
        report.message = report.message.replace(f"草稿:{wanted} ", f"新草稿:{new_id} ", 1).replace(
            "imported as a draft", f"imported as the new draft {new_id}", 1)
        draft = None
    elif draft is not None:
        report.notes.append(f"已按您的选择替换草稿“{wanted}”(原第{draft.revision}稿,{draft.updated_by} 保存;原内容仍在审计记录中) / "
                            f"replaced draft {wanted} as asked")
    elif exists:
        report.notes.append(f"已作为已发布事项“{wanted}”的新版本草稿导入;发布前不影响正在使用的版本 / imported as a draft of the "
                            f"published procedure {wanted}")
    draft_row = editing.save_draft(session, report.procedure_id, report.xml, username=username, actor=actor,
                                   expected_revision=draft.revision if draft is not None and expected_revision is None
                                   else (expected_revision if draft is not None else 0),
                                   source=f"import:{filename}"[:200])
    report.draft_revision = draft_row.revision
    return report


def choose_other_process(session: Session, procedure_id: str, process_id: str, *, username: str | None = None,
                         actor: str = "cli"):
    """The user chose another pool of the file just imported as ``procedure_id``: import that process
    (from the draft, which keeps every pool of the file) as a draft of its own; the first draft is
    dropped when it is still exactly what the import made (revision 1, by this user)."""
    from . import editing

    draft = editing.get_draft(session, procedure_id)
    if draft is None:
        raise editing.NotFound(f"事项“{procedure_id}”没有草稿 / no draft of {procedure_id}")
    editing._check_may_edit(session, username, procedure_id, draft.org_id)
    filename = draft.source.removeprefix("import:") if draft.source.startswith("import:") else f"{procedure_id}.bpmn"
    untouched = draft.revision == 1 and draft.source.startswith("import:") and draft.updated_by == (username or actor)
    report = import_bpmn(session, draft.bpmn_xml.encode("utf-8"), filename, username=username, actor=actor,
                         process_id=process_id)
    if report.status == "imported" and untouched and report.procedure_id != procedure_id:
        editing.delete_draft(session, procedure_id, username=username, actor=actor)
        report.notes.append(f"已改为导入“{report.name}”;先前导入的草稿“{procedure_id}”未经修改,已删除 / the first draft "
                            f"{procedure_id} (unchanged) was deleted")
    return report


__all__ = ["choose_other_process", "analyze_import", "import_bpmn", "bpmn_duplicate_ids", "resolve_prefixed_refs", "candidates", "choose",
           "short_id", "Candidate", "original_id"]
