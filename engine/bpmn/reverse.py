"""Diagram → step table (还原为任务单): the reverse of :mod:`engine.bpmn.steptable`, whenever the
diagram's structure allows it.

A diagram can be written as a step table when it is a sequence of steps in lanes (one lane per role),
with exclusive gateways right after a step and end events: one start event, every step a user task of
kind 办理, 会议 or 监督 in a lane with a role, each step leaving by one flow (to a step, an end or its
own gateway), each gateway leading to steps or ends. The table is then generated back with
:func:`engine.bpmn.steptable.build_bpmn` and compared with the diagram (:func:`engine.bpmn.diffing.compare`):
only when nothing a person reads differs is the table offered. Otherwise the reason says, in Chinese,
what stands in the way — the modeler shows it before a save that would make the table impossible.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from engine.core.definitions import ProcedureDefinition, read_definition
from engine.core.xmlsafe import UnsafeXml, parse_xml

from .diffing import compare
from .steptable import ID_RE, KINDS, SUGAR_KINDS, StepTableError, build_bpmn

PLAIN_KINDS = tuple(k for k in KINDS if k not in SUGAR_KINDS)  # task, meeting, supervision


class NotATable(ValueError):
    """Why a diagram cannot be written as a step table (Chinese)."""


def table_from_bpmn(xml: bytes) -> tuple[dict | None, str]:
    """(table, "") when the diagram can be rebuilt as a step table, else (None, the reason in Chinese)."""
    try:
        d = read_definition(parse_xml(xml), xml)
    except (UnsafeXml, ValueError) as exc:
        return None, f"流程图无法读取:{str(exc).split(' / ')[0]}"
    try:
        table = table_from_definition(d)
    except NotATable as exc:
        return None, str(exc)
    try:
        rebuilt_xml = build_bpmn(table)
    except StepTableError as exc:
        return None, f"任务单无法生成同样的流程:{str(exc).split(': ', 1)[-1]}"
    # the table names a step's gateway "<step>_gw": give it back the diagram's id before comparing
    for step in table["steps"]:
        if "gateway" in step:
            original = d.flows[d.nodes[step["id"]].outgoing[0]].target
            rebuilt_xml = re.sub(rf'([">]){re.escape(step["id"])}_gw(["<])', rf"\g<1>{original}\g<2>", rebuilt_xml.decode("utf-8")).encode("utf-8")
    rebuilt = read_definition(parse_xml(rebuilt_xml), rebuilt_xml)
    comparison = compare(d, rebuilt)
    if not comparison.same:
        first = comparison.changes[0].zh.rstrip("。")
        return None, f"流程图中有任务单表达不了的结构({first})"
    return table, ""


def _field(f) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "label": f.label, "type": f.type}
    if f.required:
        out["required"] = True
    if f.public:
        out["public"] = True
    for key, value in (("unit", f.unit), ("help", f.help), ("default", f.default)):
        if value:
            out[key] = value
    for key, value in (("min", f.min), ("max", f.max)):
        if value is not None:
            out[key] = int(value) if isinstance(value, Decimal) and value == value.to_integral_value() else float(value)
    if f.max_length is not None:
        out["maxLength"] = f.max_length
    if f.options:
        out["options"] = [{"value": o.value, "label": o.label} for o in f.options]
    if f.date_rule and f.date_rule != "act":
        out["date_rule"] = f.date_rule
    return out


def table_from_definition(d: ProcedureDefinition) -> dict:
    """The step table of a diagram, or :class:`NotATable` with the reason."""
    allowed = {"startEvent", "endEvent", "userTask", "exclusiveGateway"}
    odd = [n for n in d.nodes.values() if n.type not in allowed]
    if odd:
        names = "、".join(f"“{n.name or n.id}”" for n in odd[:3])
        raise NotATable(f"任务单只有步骤、分支和结束;流程图中的{names}等元素在任务单中无法表达")
    if len(d.start_ids) != 1:
        raise NotATable("任务单须有且只有一个开始")
    if not d.steps:
        raise NotATable("流程图中还没有步骤")
    lanes: list[dict] = []
    role_of_lane: dict[str, str] = {}
    for lane in d.lanes.values():
        if not lane.role:
            raise NotATable(f"泳道“{lane.name or lane.id}”还没有角色")
        if lane.role in role_of_lane.values():
            raise NotATable(f"两条泳道用了同一个角色“{lane.role}”,任务单每个角色只有一条泳道")
        role_of_lane[lane.id] = lane.role
        entry = {"role": lane.role}
        if lane.name:
            entry["label"] = lane.name
        lanes.append(entry)
    flows_out = {nid: [d.flows[f] for f in n.outgoing if f in d.flows] for nid, n in d.nodes.items()}
    start = d.start_ids[0]
    if len(flows_out[start]) != 1 or flows_out[start][0].target not in d.steps:
        raise NotATable("开始之后须直接是一个步骤")
    for nid in d.nodes:
        if nid == "start" and d.nodes[nid].type != "startEvent" or nid.startswith(("Lane_", "flow_")):
            raise NotATable(f"编号“{nid}”是任务单保留的编号")
        if not ID_RE.match(nid):
            raise NotATable(f"编号“{nid}”含有任务单不允许的字符")
    ends = [{"id": n.id, "name": n.name or "办结", "outcome": n.outcome or "completed"}
            for n in d.nodes.values() if n.type == "endEvent"]
    ends.sort(key=lambda e: e["outcome"] != "completed")
    if not ends or ends[0]["outcome"] != "completed":
        raise NotATable("没有“办结”的结束")
    # order: depth-first from the start, the main line (default exits) first
    order: list[str] = []
    stack = [flows_out[start][0].target]
    while stack:
        nid = stack.pop()
        if nid in order or nid not in d.steps:
            continue
        order.append(nid)
        nexts = []
        for flow in flows_out[nid]:
            target = d.nodes.get(flow.target)
            if target is not None and target.type == "exclusiveGateway":
                default = target.default_flow
                exits = sorted(flows_out[target.id], key=lambda f: f.id != default)
                nexts += [f.target for f in exits]
            else:
                nexts.append(flow.target)
        stack.extend(reversed(nexts))
    missing = [s for s in d.steps if s not in order]
    if missing:
        raise NotATable(f"步骤“{d.steps[missing[0]].name or missing[0]}”从开始无法到达")
    steps: list[dict] = []
    for index, sid in enumerate(order):
        step = d.steps[sid]
        if step.kind not in PLAIN_KINDS:
            raise NotATable(f"步骤“{step.name}”是{'表决' if step.kind == 'vote' else '审批' if step.kind == 'approval' else '公示'}"
                            "类步骤,须在任务单中按其规则填写,无法从流程图还原")
        if step.lane not in role_of_lane:
            raise NotATable(f"步骤“{step.name}”不在有角色的泳道中")
        if step.disclosure or step.vote or step.supervision:
            raise NotATable(f"步骤“{step.name}”带有公示、表决或监督设置,无法从流程图还原")
        row: dict[str, Any] = {"id": sid, "name": step.name or sid, "role": role_of_lane[step.lane], "kind": step.kind}
        if step.time_limit_text:
            row["time_limit"] = step.time_limit_text
        for key in ("instructions", "basis", "evidence", "review"):
            if getattr(step, key):
                row[key] = getattr(step, key)
        if step.proxy:
            row["proxy"] = True
        if step.evidence_required:
            row["evidence_required"] = True
        if step.supervision_notes:
            row["supervision_note"] = dict(step.supervision_notes[0])
        if step.fields:
            row["fields"] = [_field(f) for f in step.fields]
        if step.constraints:
            row["constraints"] = [{"test": c.test, "message": c.message} for c in step.constraints]
        outs = flows_out[sid]
        if len(outs) != 1:
            raise NotATable(f"步骤“{step.name}”有{len(outs)}条出口;任务单中一个步骤只有一条出口,分支须经过网关")
        target = d.nodes.get(outs[0].target)
        if target is None:
            raise NotATable(f"步骤“{step.name}”的出口没有连到任何元素")
        nxt = target.id
        if target.type == "exclusiveGateway":
            if len(target.incoming) != 1:
                raise NotATable(f"网关“{target.name or target.id}”汇合了多条连线,任务单中的分支只跟在一个步骤之后")
            branches, default_to = [], None
            for flow in flows_out[target.id]:
                dest = d.nodes.get(flow.target)
                if dest is None or dest.type not in ("userTask", "endEvent"):
                    raise NotATable(f"网关“{target.name or target.id}”之后须直接是步骤或结束")
                if flow.id == target.default_flow or flow.condition is None:
                    if default_to is not None:
                        raise NotATable(f"网关“{target.name or target.id}”有多个没有条件的出口")
                    default_to = dest.id
                else:
                    entry = {"when": flow.condition, "to": dest.id}
                    if flow.name:
                        entry["label"] = flow.name
                    branches.append(entry)
            if default_to is None:
                raise NotATable(f"网关“{target.name or target.id}”没有默认出口,任务单的分支须有一个“否则”")
            row["gateway"] = branches
            nxt = default_to
        following = order[index + 1] if index + 1 < len(order) else None
        if nxt != following and not (following is None and nxt == ends[0]["id"]):
            row["next"] = nxt
        steps.append(row)
    table: dict[str, Any] = {"id": d.id, "name": d.name or d.id}
    for key in ("name_en", "category", "edition", "handling_subject", "handling_mode", "overall_time_limit",
                "description"):
        if getattr(d, key):
            table[key] = getattr(d, key)
    if any(d.requires.values()):
        table["requires"] = {k: v for k, v in d.requires.items() if v}
    if d.legal_basis:
        table["legal_basis"] = [{k: v for k, v in b.items() if v} for b in d.legal_basis]
    if d.risk_points:
        table["risk_points"] = list(d.risk_points)
    if d.parameters:
        table["parameters"] = [{k: v for k, v in (("key", p.key), ("label", p.label), ("type", p.type),
                                                   ("unit", p.unit), ("default", p.default), ("source", p.source))
                                if v not in ("", None)} for p in d.parameters.values()]
    table["lanes"] = lanes
    table["steps"] = steps
    table["ends"] = ends
    return table


__all__ = ["table_from_bpmn", "table_from_definition", "NotATable"]
