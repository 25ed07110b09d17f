"""Read a procedure's BPMN document into a plain definition: steps, roles, forms, checkpoints.

SpiffWorkflow executes the process; this module reads what Xiaowei adds in the `xw:`
extension namespace (see docs/bpmn-extensions.md) and the flow graph, for validation, task
lists, forms, diagrams and the handbook.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from lxml import etree

from .forms import Constraint, Field, Option

# The XML namespaces of a procedure file: the one copy (the generator, the renderer and lint use it).
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XW = "urn:xiaowei:bpmn:1"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "xw": XW}

STEP_KINDS = ("task", "meeting", "vote", "approval", "disclosure", "supervision")
OUTCOMES = ("completed", "rejected", "terminated")
PARAM_TYPES = ("money", "integer", "days", "ratio", "text")
FLOW_NODE_TAGS = (
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "userTask", "task", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
    "businessRuleTask", "callActivity", "subProcess", "exclusiveGateway", "parallelGateway",
    "inclusiveGateway", "eventBasedGateway", "complexGateway",
)
CHINA_OFFSET = timedelta(hours=8)
_TIME_LIMIT = re.compile(r"^(\d{1,4})(d|wd|h)$")


@dataclass(frozen=True)
class TimeLimit:
    amount: int
    unit: str  # d | wd | h

    @classmethod
    def parse(cls, text: str | None) -> "TimeLimit | None":
        if not text:
            return None
        m = _TIME_LIMIT.match(text.strip())
        if not m:
            raise ValueError(text)
        return cls(int(m.group(1)), m.group(2))

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def zh(self) -> str:
        return {"d": f"{self.amount}天", "wd": f"{self.amount}个工作日", "h": f"{self.amount}小时"}[self.unit]

    def due_from(self, start: datetime) -> datetime:
        """The due time of a step that became ready at ``start`` (naive UTC).

        Hours count from ``start``. Days end at the close of the office day in Beijing time
        (engine/workdays.py: 17:30 unless ``XIAOWEI_OFFICE_CLOSE`` says otherwise): working days
        with the holiday calendar (weekends, public holidays, 调休), calendar days moved to the next
        working day when the last one is a day off (民法典第二百零三条).
        """
        if self.unit == "h":
            return start + timedelta(hours=self.amount)
        from .workdays import due_calendar_days, due_working_days

        if self.unit == "d":
            return due_calendar_days(start, self.amount)
        return due_working_days(start, self.amount)


@dataclass(frozen=True)
class Parameter:
    key: str
    label: str
    type: str
    default: Any
    unit: str = ""
    source: str = ""
    review: str = ""  # authoring note for township staff (the editor), never on public pages

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "type": self.type, "default": format_param(self.default),
                "unit": self.unit, "source": self.source}


@dataclass(frozen=True)
class Lane:
    id: str
    name: str
    role: str | None
    name_en: str = ""  # the English of the lane's label (xw:role labelEn)


@dataclass
class Node:
    """A flow node; user tasks have a :class:`Step`."""

    id: str
    type: str
    name: str
    lane: str | None = None
    outcome: str | None = None  # end events
    name_en: str = ""  # end events: the English of the name (xw:end nameEn)
    timer: str | None = None  # timer expression
    notice_for: str | None = None  # timer that is the notice period of a disclosure step
    default_flow: str | None = None  # gateways
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Flow:
    id: str
    source: str
    target: str
    name: str
    condition: str | None


@dataclass
class Step:
    """A user task with everything a person needs to do it."""

    id: str
    name: str
    kind: str
    lane: str | None
    role: str | None
    instructions: str = ""
    basis: str = ""
    evidence: str = ""
    proxy: bool = False
    evidence_required: bool = False  # the evidence named must be attached (a disclosure's notice photo)
    time_limit: TimeLimit | None = None
    time_limit_text: str | None = None
    fields: tuple[Field, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    disclosure: dict[str, str] | None = None
    vote: dict[str, str] | None = None
    supervision: dict[str, str] | None = None
    supervision_notes: tuple[dict[str, str], ...] = ()
    review: str = ""  # authoring note for township staff (the editor), never on public pages
    name_en: str = ""  # the English of the name and the instructions (xw:step nameEn, instructionsEn)
    instructions_en: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "role": self.role,
            "instructions": self.instructions, "basis": self.basis, "evidence": self.evidence,
            "proxy": self.proxy, "evidence_required": self.evidence_required,
            "time_limit": str(self.time_limit) if self.time_limit else None,
            "fields": [f.to_dict() for f in self.fields],
            "constraints": [{"test": c.test, "message": c.message} for c in self.constraints],
            "disclosure": self.disclosure, "vote": self.vote, "supervision": self.supervision,
        }


@dataclass
class ProcedureDefinition:
    """Everything Xiaowei reads from one BPMN document."""

    id: str
    name: str
    root: etree._Element
    content_hash: str
    name_en: str = ""
    category: str = ""
    edition: str = ""
    description: str = ""
    handling_subject: str = ""
    handling_mode: str = ""
    overall_time_limit: str = ""
    legal_basis: list[dict[str, str]] = field(default_factory=list)
    risk_points: list[str] = field(default_factory=list)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    requires: dict[str, bool] = field(default_factory=dict)
    lanes: dict[str, Lane] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    steps: dict[str, Step] = field(default_factory=dict)
    process_element: etree._Element | None = None
    review: str = ""  # authoring note on the whole procedure (editor only)

    @property
    def start_ids(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.type == "startEvent"]

    def fields_by_name(self) -> dict[str, Field]:
        out: dict[str, Field] = {}
        for step in self.steps.values():
            for f in step.fields:
                out.setdefault(f.name, f)
        return out

    def cited_basis(self) -> list[dict[str, str]]:
        """The legal basis as user-facing pages cite it: an article only where its text was read
        (status ``confirmed``); authoring notes are never part of it."""
        return [{"source": b["source"], "article": b["article"] if b.get("status") == "confirmed" else "",
                 "note": b["note"], "status": b.get("status", "")} for b in self.legal_basis]

    def review_notes(self) -> list[dict[str, str]]:
        """Authoring notes for township staff (shown in the editor, never in public): where and what."""
        notes = [{"where": "事项", "text": self.review}] if self.review else []
        notes += [{"where": f"依据{b['source']}{b.get('article', '')}", "text": b["review"]}
                  for b in self.legal_basis if b.get("review")]
        notes += [{"where": f"参数“{p.label}”", "text": p.review} for p in self.parameters.values() if p.review]
        notes += [{"where": f"步骤“{s.name}”", "text": s.review} for s in self.steps.values() if s.review]
        return notes

    def readable_fields(self) -> dict[str, Field]:
        """Every name an expression may read, with its field: each field by its name (the latest
        submission that had it) and qualified by its step (``resolve.present``)."""
        out = self.fields_by_name()
        for step in self.steps.values():
            for f in step.fields:
                out[f"{step.id}.{f.name}"] = f
        return out

    def writers_before(self, node_id: str, name: str) -> set[str]:
        """The steps whose submission of field ``name`` may be the latest one when ``node_id`` is
        reached: walking back along the flows, the first step on each path that has the field."""
        found: set[str] = set()
        seen: set[str] = set()
        stack = [self.flows[f].source for f in self.nodes[node_id].incoming if f in self.flows] \
            if node_id in self.nodes else []
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            step = self.steps.get(current)
            if step is not None and any(f.name == name for f in step.fields):
                found.add(current)
                continue
            node = self.nodes.get(current)
            if node is not None:
                stack.extend(self.flows[f].source for f in node.incoming if f in self.flows)
        return found

    def roles(self) -> list[str]:
        return [lane.role for lane in self.lanes.values() if lane.role]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "name_en": self.name_en, "category": self.category,
            "edition": self.edition,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "description": self.description, "handling_subject": self.handling_subject,
            "handling_mode": self.handling_mode, "overall_time_limit": self.overall_time_limit,
            "legal_basis": [{k: v for k, v in b.items() if k != "review"} for b in self.legal_basis],
            "risk_points": self.risk_points,
            "parameters": [p.to_dict() for p in self.parameters.values()],
            "requires": self.requires,
            "lanes": [{"id": lane.id, "name": lane.name, "role": lane.role} for lane in self.lanes.values()],
            "steps": [s.to_dict() for s in self.steps.values()],
            "content_hash": self.content_hash,
        }


def content_hash(xml: bytes) -> str:
    return hashlib.sha256(xml).hexdigest()


# Local parameters are bounded where they enter (``params set``, the admin page, BPMN defaults): a
# notice period of 99,999,999 days or a NaN threshold would otherwise fail only when a case reaches
# the timer or the gateway that reads it.
PARAM_LIMITS = {"days": 3650, "integer": 10**9, "money": Decimal(10**12)}
PARAM_RANGES_ZH = {"days": "0至3650天", "integer": "0至10亿", "money": "0至1万亿元,最多两位小数", "ratio": "0至1"}


def parse_param_value(ptype: str, text: Any) -> Any:
    """A parameter value from text: money → Decimal, integer/days → int, ratio → Fraction."""
    if text is None:
        raise ValueError("missing value")
    raw = str(text).strip()
    if len(raw) > 200:
        raise ValueError("the value is too long")
    try:
        if ptype == "money":
            money = Decimal(raw)
            if not money.is_finite() or abs(money) > PARAM_LIMITS["money"] or money != money.quantize(Decimal("0.01")):
                raise ValueError(raw)
            return money
        if ptype in ("integer", "days"):
            if len(raw) > 20:
                raise ValueError(raw)
            number = int(raw)
            if abs(number) > PARAM_LIMITS[ptype]:
                raise ValueError(raw)
            return number
        if ptype == "ratio":
            value = Fraction(raw)
            if not 0 <= value <= 1:
                raise ValueError(raw)
            return value
    except (InvalidOperation, ValueError, ZeroDivisionError):
        raise ValueError(f"“{raw}” is not a valid {ptype}") from None
    return raw


def format_param(value: Any) -> str:
    return str(value)


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _ext(el: etree._Element, name: str) -> list[etree._Element]:
    return el.findall(f"bpmn:extensionElements/xw:{name}", NS)


def _ext1(el: etree._Element, name: str) -> etree._Element | None:
    found = _ext(el, name)
    return found[0] if found else None


def _text(el: etree._Element | None) -> str:
    return (el.text or "").strip() if el is not None else ""


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _decimal(value: str | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a number: {value}") from None


def executable_processes(root: etree._Element) -> list[etree._Element]:
    return [p for p in root.findall("bpmn:process", NS)]


def read_definition(root: etree._Element, xml: bytes, process_id: str | None = None) -> ProcedureDefinition:
    """Read the procedure from a parsed BPMN document (no validation beyond what reading needs)."""
    processes = executable_processes(root)
    if not processes:
        raise ValueError("没有流程(bpmn:process) / no process in the document")
    process = next((p for p in processes if p.get("id") == process_id), None) if process_id else None
    if process is None:
        executable = [p for p in processes if _bool(p.get("isExecutable"))] or processes
        process = executable[0]
    meta = _ext1(process, "procedure")
    d = ProcedureDefinition(
        id=process.get("id", ""), name=process.get("name") or process.get("id", ""), root=root,
        content_hash=content_hash(xml), process_element=process,
    )
    if meta is not None:
        d.name_en = meta.get("nameEn", "")
        d.category = meta.get("category", "")
        d.edition = meta.get("edition", "")
        d.handling_subject = meta.get("handlingSubject", "")
        d.handling_mode = meta.get("handlingMode", "")
        d.overall_time_limit = meta.get("overallTimeLimit", "")
    d.description = _text(_ext1(process, "description"))
    d.legal_basis = [
        {"source": e.get("source", ""), "article": e.get("article", ""), "status": e.get("status", ""),
         "note": _text(e), "review": e.get("review", "")}
        for e in _ext(process, "legalBasis")
    ]
    d.review = _text(_ext1(process, "review"))
    d.risk_points = [_text(e) for e in _ext(process, "riskPoint")]
    for e in _ext(process, "parameter"):
        key, ptype = e.get("key", ""), e.get("type", "text")
        try:
            default = parse_param_value(ptype, e.get("default"))
        except ValueError:
            default = e.get("default")
        d.parameters[key] = Parameter(key, e.get("label", key), ptype, default, e.get("unit", ""), e.get("source", ""),
                                      e.get("review", ""))
    req = _ext1(process, "requires")
    d.requires = {
        "disclosure": _bool(req.get("disclosure")) if req is not None else False,
        "supervision": _bool(req.get("supervision")) if req is not None else False,
    }
    _read_lanes(process, d)
    _read_nodes(process, d)
    return d


def _read_lanes(process: etree._Element, d: ProcedureDefinition) -> None:
    for lane in process.iter(f"{{{BPMN}}}lane"):
        role_el = _ext1(lane, "role")
        d.lanes[lane.get("id", "")] = Lane(lane.get("id", ""), lane.get("name", ""),
                                            role_el.get("key") if role_el is not None else None,
                                            role_el.get("labelEn", "") if role_el is not None else "")


def lane_of(process: etree._Element) -> dict[str, str]:
    """Map flow node id → lane id (innermost lane)."""
    result: dict[str, str] = {}
    for lane in process.iter(f"{{{BPMN}}}lane"):
        for ref in lane.findall("bpmn:flowNodeRef", NS):
            if ref.text:
                result[ref.text.strip()] = lane.get("id", "")
    return result


def _read_nodes(process: etree._Element, d: ProcedureDefinition) -> None:
    lanes = lane_of(process)
    for el in process:
        tag = _local(el.tag)
        if tag in FLOW_NODE_TAGS:
            node = Node(el.get("id", ""), tag, el.get("name", "") or "", lane=lanes.get(el.get("id", "")))
            node.default_flow = el.get("default")
            if tag == "endEvent":
                end = _ext1(el, "end")
                node.outcome = end.get("outcome", "completed") if end is not None else "completed"
                node.name_en = end.get("nameEn", "") if end is not None else ""
            timer = el.find("bpmn:timerEventDefinition", NS)
            if timer is not None:
                expr = None
                for child in timer:
                    if _local(child.tag) in ("timeDuration", "timeDate", "timeCycle"):
                        expr = (child.text or "").strip()
                node.timer = expr or ""
                notice = _ext1(el, "noticePeriod")
                node.notice_for = notice.get("for") if notice is not None else None
            d.nodes[node.id] = node
            if tag == "userTask":
                d.steps[node.id] = _read_step(el, node, d)
        elif tag == "sequenceFlow":
            cond = el.find("bpmn:conditionExpression", NS)
            flow = Flow(el.get("id", ""), el.get("sourceRef", ""), el.get("targetRef", ""), el.get("name", "") or "",
                        (cond.text or "").strip() if cond is not None and (cond.text or "").strip() else None)
            d.flows[flow.id] = flow
    for flow in d.flows.values():
        if flow.source in d.nodes:
            d.nodes[flow.source].outgoing.append(flow.id)
        if flow.target in d.nodes:
            d.nodes[flow.target].incoming.append(flow.id)


def _read_step(el: etree._Element, node: Node, d: ProcedureDefinition) -> Step:
    meta = _ext1(el, "step")
    lane = d.lanes.get(node.lane or "")
    time_text = meta.get("timeLimit") if meta is not None else None
    try:
        limit = TimeLimit.parse(time_text)
    except ValueError:
        limit = None
    step = Step(
        id=node.id, name=node.name, kind=(meta.get("kind", "task") if meta is not None else "task"),
        lane=node.lane, role=lane.role if lane else None,
        instructions=_text(el.find("bpmn:documentation", NS)),
        basis=_text(_ext1(el, "basis")),
        review=_text(_ext1(el, "review")),
        evidence=meta.get("evidence", "") if meta is not None else "",
        proxy=_bool(meta.get("proxy")) if meta is not None else False,
        evidence_required=_bool(meta.get("evidenceRequired")) if meta is not None else False,
        time_limit=limit, time_limit_text=time_text,
        name_en=meta.get("nameEn", "") if meta is not None else "",
        instructions_en=meta.get("instructionsEn", "") if meta is not None else "",
    )
    step.fields = tuple(_read_field(f) for f in _ext(el, "field"))
    step.constraints = tuple(Constraint(c.get("test", ""), c.get("message", "") or "数据不一致")
                             for c in _ext(el, "constraint"))
    for name in ("disclosure", "vote", "supervision"):
        found = _ext1(el, name)
        if found is not None:
            setattr(step, name, dict(found.attrib))
    step.supervision_notes = tuple(dict(e.attrib) for e in _ext(el, "supervisionNote"))
    return step


def _read_field(el: etree._Element) -> Field:
    max_length = el.get("maxLength")
    return Field(
        name=el.get("name", ""), label=el.get("label", "") or el.get("name", ""), type=el.get("type", "text"),
        required=_bool(el.get("required")), public=_bool(el.get("public")), unit=el.get("unit", ""),
        help=el.get("help", ""), min=_decimal(el.get("min")), max=_decimal(el.get("max")),
        max_length=int(max_length) if max_length and max_length.isdigit() else None,
        default=el.get("default"),
        options=tuple(Option(o.get("value", ""), o.get("label", "") or o.get("value", ""), o.get("labelEn", ""))
                      for o in el.findall("xw:option", NS)),
        label_en=el.get("labelEn", ""),
        date_rule=el.get("dateRule") if el.get("dateRule") in ("planned", "record", "observed") else "act",
    )
