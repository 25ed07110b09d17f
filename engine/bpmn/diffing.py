"""Semantic comparison of two versions of a procedure, in plain Chinese.

Not a text diff: it compares what the engine reads (:mod:`engine.definitions`): steps added,
removed or renamed; roles of lanes and steps; time limits; notice periods; checkpoints
(disclosure, supervision, vote, approval steps and the ``xw:requires`` rules); form fields;
gateway conditions and local-parameter defaults (thresholds, days, ratios); ends.

:func:`compare` returns a :class:`Comparison` with one :class:`Change` per difference (a kind, the
element, a Chinese and an English sentence), the ids to mark on each side's diagram, and
:meth:`Comparison.summary_zh` for notices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from engine.core import catalogue
from engine.core.definitions import ProcedureDefinition, Step, TimeLimit

CHECKPOINT_KINDS = ("disclosure", "supervision", "vote", "approval")
KIND_ZH = {"task": "办理", "meeting": "会议", "vote": "表决", "approval": "审批", "disclosure": "公示",
           "supervision": "监督"}
FIELD_TYPE_ZH = {"text": "文本", "textarea": "多行文本", "integer": "整数", "decimal": "数字", "money": "金额",
                 "boolean": "是/否", "date": "日期", "datetime": "日期时间", "choice": "选项", "person": "姓名",
                 "idnumber": "身份证号", "phone": "电话"}
OUTCOME_ZH = {"completed": "办结", "rejected": "未通过", "terminated": "终止"}


@dataclass(frozen=True)
class Change:
    """One semantic difference. ``kind`` is a stable code (e.g. ``step_added``, ``time_limit``)."""

    kind: str
    element: str
    zh: str
    en: str
    side: str = "both"  # old (removed), new (added) or both (changed)

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "element": self.element, "zh": self.zh, "en": self.en, "side": self.side}


@dataclass
class Comparison:
    old_label: str
    new_label: str
    changes: list[Change] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not self.changes

    def marked_old(self) -> set[str]:
        """Element ids to mark on the old diagram (removed or changed there)."""
        return {c.element for c in self.changes if c.side in ("old", "both") and c.element}

    def marked_new(self) -> set[str]:
        return {c.element for c in self.changes if c.side in ("new", "both") and c.element}

    def summary_zh(self) -> str:
        if not self.changes:
            return "流程内容没有变化。"
        return "\n".join(c.zh for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old_label, "new": self.new_label, "same": self.same,
                "changes": [c.to_dict() for c in self.changes], "summary_zh": self.summary_zh()}


def _role_zh(key: str | None) -> str:
    return catalogue.role_zh(key, "(未指定角色)")


def _limit_zh(step: Step) -> str:
    if step.time_limit is not None:
        return step.time_limit.zh()
    return step.time_limit_text or "不限"


def _days_zh(limit: TimeLimit | None) -> str:
    return limit.zh() if limit else "不限"


def _q(text: str) -> str:
    return f"“{text}”"


def _checkpoint_of(step: Step) -> str | None:
    return step.kind if step.kind in CHECKPOINT_KINDS else None


def compare(old: ProcedureDefinition, new: ProcedureDefinition, *, old_label: str = "旧版本",
            new_label: str = "新版本") -> Comparison:
    """What changed from ``old`` to ``new``, in the order a reader expects."""
    result = Comparison(old_label, new_label)
    add = result.changes.append
    if old.name != new.name:
        add(Change("name", new.id, f"事项名称由{_q(old.name)}改为{_q(new.name)}。",
                   f"name changed from {old.name!r} to {new.name!r}", "both"))
    _compare_steps(old, new, add)
    _compare_lanes(old, new, add)
    _compare_requires(old, new, add)
    _compare_params(old, new, add)
    _compare_timers(old, new, add)
    _compare_gateways(old, new, add)
    _compare_ends(old, new, add)
    _compare_basis(old, new, add)
    return result


def _compare_steps(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    for sid, step in new.steps.items():
        if sid not in old.steps:
            where = f"由{_role_zh(step.role)}办理"
            limit = f",时限{_limit_zh(step)}" if step.time_limit_text else ""
            add(Change("step_added", sid, f"新增步骤{_q(step.name)}({where}{limit})。",
                       f"step added: {step.name} ({sid})", "new"))
            if _checkpoint_of(step):
                add(Change("checkpoint_added", sid,
                           f"新增{KIND_ZH[step.kind]}检查点{_q(step.name)}。",
                           f"{step.kind} checkpoint added: {sid}", "new"))
    for sid, step in old.steps.items():
        if sid not in new.steps:
            add(Change("step_removed", sid, f"删除步骤{_q(step.name)}(原由{_role_zh(step.role)}办理)。",
                       f"step removed: {step.name} ({sid})", "old"))
            if _checkpoint_of(step):
                add(Change("checkpoint_removed", sid,
                           f"删除{KIND_ZH[step.kind]}检查点{_q(step.name)}。",
                           f"{step.kind} checkpoint removed: {sid}", "old"))
    for sid, before in old.steps.items():
        after = new.steps.get(sid)
        if after is None:
            continue
        label = _q(after.name)
        if before.name != after.name:
            add(Change("step_renamed", sid, f"步骤{_q(before.name)}更名为{label}。",
                       f"step {sid} renamed from {before.name!r} to {after.name!r}"))
        if before.role != after.role:
            add(Change("step_role", sid, f"步骤{label}的办理角色由{_role_zh(before.role)}改为{_role_zh(after.role)}。",
                       f"step {sid}: role {before.role} -> {after.role}"))
        if before.kind != after.kind:
            add(Change("step_kind", sid,
                       f"步骤{label}的类型由“{KIND_ZH.get(before.kind, before.kind)}”改为“{KIND_ZH.get(after.kind, after.kind)}”。",
                       f"step {sid}: kind {before.kind} -> {after.kind}"))
            if _checkpoint_of(before) and not _checkpoint_of(after):
                add(Change("checkpoint_removed", sid, f"步骤{label}不再是{KIND_ZH[before.kind]}检查点。",
                           f"{before.kind} checkpoint removed: {sid}"))
            elif _checkpoint_of(after) and not _checkpoint_of(before):
                add(Change("checkpoint_added", sid, f"步骤{label}成为{KIND_ZH[after.kind]}检查点。",
                           f"{after.kind} checkpoint added: {sid}"))
        if (before.time_limit_text or "") != (after.time_limit_text or ""):
            add(Change("time_limit", sid, f"步骤{label}的时限由{_limit_zh(before)}改为{_limit_zh(after)}。",
                       f"step {sid}: time limit {before.time_limit_text or '-'} -> {after.time_limit_text or '-'}"))
        _compare_fields(before, after, label, add)
        if [(c.test, c.message) for c in before.constraints] != [(c.test, c.message) for c in after.constraints]:
            add(Change("constraints", sid, f"步骤{label}的校验规则有变化。", f"step {sid}: constraints changed"))
        if before.disclosure != after.disclosure:
            b, a = before.disclosure or {}, after.disclosure or {}
            if b.get("minDaysParam") != a.get("minDaysParam"):
                add(Change("notice_period", sid,
                           f"步骤{label}的公示期参数由“{b.get('minDaysParam') or '无'}”改为“{a.get('minDaysParam') or '无'}”。",
                           f"step {sid}: notice period parameter changed"))
            if (b.get("what"), b.get("where")) != (a.get("what"), a.get("where")):
                add(Change("disclosure", sid, f"步骤{label}的公示内容或公示地点有变化。",
                           f"step {sid}: what or where is disclosed changed"))
        if before.vote != after.vote:
            add(Change("vote_rule", sid, f"步骤{label}的表决规则(法定人数或通过比例参数)有变化。",
                       f"step {sid}: vote rules changed"))
        if before.supervision != after.supervision:
            add(Change("supervision", sid, f"步骤{label}的监督要求有变化。", f"step {sid}: supervision changed"))
        if before.instructions != after.instructions:
            add(Change("instructions", sid, f"步骤{label}的办理说明有修改。", f"step {sid}: instructions changed"))
        if before.basis != after.basis:
            add(Change("step_basis", sid, f"步骤{label}的依据有修改。", f"step {sid}: basis changed"))
        if before.evidence != after.evidence:
            add(Change("evidence", sid, f"步骤{label}须留存的材料由“{before.evidence or '无'}”改为“{after.evidence or '无'}”。",
                       f"step {sid}: evidence changed"))


def _compare_fields(before: Step, after: Step, label: str, add) -> None:
    old_fields = {f.name: f for f in before.fields}
    new_fields = {f.name: f for f in after.fields}
    sid = after.id
    for name, f in new_fields.items():
        if name not in old_fields:
            extra = ",必填" if f.required else ""
            extra += ",公开" if f.public else ""
            add(Change("field_added", sid,
                       f"步骤{label}新增表单字段{_q(f.label)}({FIELD_TYPE_ZH.get(f.type, f.type)}{extra})。",
                       f"step {sid}: field added {name}"))
    for name, f in old_fields.items():
        if name not in new_fields:
            add(Change("field_removed", sid, f"步骤{label}删除表单字段{_q(f.label)}。", f"step {sid}: field removed {name}"))
    for name, a in new_fields.items():
        b = old_fields.get(name)
        if b is None:
            continue
        parts = []
        if b.label != a.label:
            parts.append(f"名称由{_q(b.label)}改为{_q(a.label)}")
        if b.type != a.type:
            parts.append(f"类型由“{FIELD_TYPE_ZH.get(b.type, b.type)}”改为“{FIELD_TYPE_ZH.get(a.type, a.type)}”")
        if b.required != a.required:
            parts.append("改为必填" if a.required else "改为选填")
        if b.public != a.public:
            parts.append("改为公开" if a.public else "改为不公开")
        if (b.min, b.max, b.max_length, b.options, b.unit) != (a.min, a.max, a.max_length, a.options, a.unit):
            parts.append("取值范围或选项有变化")
        if parts:
            add(Change("field_changed", sid, f"步骤{label}的字段{_q(b.label)}:{'、'.join(parts)}。",
                       f"step {sid}: field {name} changed"))
    if [f.name for f in before.fields if f.name in new_fields] != [f.name for f in after.fields if f.name in old_fields]:
        add(Change("field_order", sid, f"步骤{label}的表单字段顺序有调整。", f"step {sid}: fields reordered"))


def _compare_lanes(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    old_roles, new_roles = set(old.roles()), set(new.roles())
    for role in sorted(new_roles - old_roles):
        lane = next(lane for lane in new.lanes.values() if lane.role == role)
        add(Change("role_added", lane.id, f"新增参与角色:{_role_zh(role)}。", f"role added: {role}", "new"))
    for role in sorted(old_roles - new_roles):
        lane = next(lane for lane in old.lanes.values() if lane.role == role)
        add(Change("role_removed", lane.id, f"不再由{_role_zh(role)}参与。", f"role removed: {role}", "old"))


def _compare_requires(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    names = {"disclosure": "公开公示", "supervision": "监督"}
    for key, zh in names.items():
        b, a = bool(old.requires.get(key)), bool(new.requires.get(key))
        if b != a:
            add(Change("checkpoint_rule", new.id,
                       f"{'新增要求:每条办结路径都须经过' if a else '取消要求:办结路径不再必须经过'}{zh}环节。",
                       f"requirement {key}: {b} -> {a}", "both"))


def _param_value(value: Any, unit: str, ptype: str) -> str:
    if ptype == "ratio":
        try:
            from fractions import Fraction

            frac = Fraction(str(value))
            return f"{frac.numerator}/{frac.denominator}" if frac.denominator != 1 else str(frac.numerator)
        except (ValueError, ZeroDivisionError):
            return str(value)
    if ptype == "days":
        return f"{value}天"
    return f"{value}{unit}"


def _compare_params(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    for key, p in new.parameters.items():
        b = old.parameters.get(key)
        if b is None:
            add(Change("param_added", new.id, f"新增本地参数{_q(p.label)},默认值{_param_value(p.default, p.unit, p.type)}。",
                       f"parameter added: {key}", "both"))
        elif str(b.default) != str(p.default) or b.type != p.type:
            what = "公示天数" if p.type == "days" else ("比例" if p.type == "ratio" else "门槛")
            add(Change("param_default", new.id,
                       f"{what}{_q(p.label)}的默认值由{_param_value(b.default, b.unit, b.type)}改为"
                       f"{_param_value(p.default, p.unit, p.type)}。",
                       f"parameter {key}: default {b.default} -> {p.default}", "both"))
    for key, p in old.parameters.items():
        if key not in new.parameters:
            add(Change("param_removed", old.id, f"删除本地参数{_q(p.label)}。", f"parameter removed: {key}", "both"))


def _compare_timers(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    old_timers = {n.id: n for n in old.nodes.values() if n.timer is not None}
    new_timers = {n.id: n for n in new.nodes.values() if n.timer is not None}
    for nid, node in new_timers.items():
        b = old_timers.get(nid)
        if b is None:
            add(Change("timer_added", nid, f"新增等待期{_q(node.name or nid)}({node.timer})。", f"timer added: {nid}", "new"))
        elif b.timer != node.timer:
            add(Change("notice_period", nid, f"{_q(node.name or nid)}的期限由“{b.timer}”改为“{node.timer}”。",
                       f"timer {nid}: {b.timer} -> {node.timer}"))
    for nid, node in old_timers.items():
        if nid not in new_timers:
            add(Change("timer_removed", nid, f"删除等待期{_q(node.name or nid)}。", f"timer removed: {nid}", "old"))


def _exits(d: ProcedureDefinition, node_id: str) -> list[tuple[str, str, str, bool]]:
    node = d.nodes[node_id]
    out = []
    for fid in node.outgoing:
        flow = d.flows.get(fid)
        if flow is not None:
            out.append((flow.target, flow.condition or "", flow.name, fid == node.default_flow))
    return out


def _target_name(d: ProcedureDefinition, node_id: str) -> str:
    node = d.nodes.get(node_id)
    return (node.name if node and node.name else node_id)


def _compare_gateways(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    old_gw = [n for n in old.nodes.values() if n.type.endswith("Gateway")]
    new_gw = {n.id for n in new.nodes.values() if n.type.endswith("Gateway")}
    for node in new.nodes.values():
        if node.type.endswith("Gateway") and node.id not in {g.id for g in old_gw}:
            exits = "、".join(f"{label or _target_name(new, t)}" for t, _, label, _ in _exits(new, node.id))
            add(Change("gateway_added", node.id, f"新增判断{_q(node.name or node.id)}(出口:{exits})。",
                       f"gateway added: {node.id}", "new"))
    for node in old_gw:
        if node.id not in new_gw:
            add(Change("gateway_removed", node.id, f"删除判断{_q(node.name or node.id)}。", f"gateway removed: {node.id}", "old"))
            continue
        before, after = _exits(old, node.id), _exits(new, node.id)
        if sorted(before) == sorted(after):
            continue
        b_by_target = {t: (c, label, dflt) for t, c, label, dflt in before}
        a_by_target = {t: (c, label, dflt) for t, c, label, dflt in after}
        name = _q(node.name or node.id)
        for target, (cond, label, dflt) in a_by_target.items():
            was = b_by_target.get(target)
            shown = label or _target_name(new, target)
            if was is None:
                add(Change("condition_added", node.id,
                           f"判断{name}新增出口“{shown}”→{_q(_target_name(new, target))}"
                           f"(条件:{cond or '默认'})。", f"gateway {node.id}: exit to {target} added"))
            elif was[0] != cond or was[2] != dflt:
                add(Change("condition_changed", node.id,
                           f"判断{name}的出口“{shown}”条件由“{was[0] or '默认'}”改为“{cond or '默认'}”。",
                           f"gateway {node.id}: condition to {target}: {was[0] or 'default'} -> {cond or 'default'}"))
            elif was[1] != label:
                add(Change("condition_label", node.id, f"判断{name}的出口名称由“{was[1]}”改为“{label}”。",
                           f"gateway {node.id}: label {was[1]!r} -> {label!r}"))
        for target, (cond, label, _) in b_by_target.items():
            if target not in a_by_target:
                shown = label or _target_name(old, target)
                add(Change("condition_removed", node.id,
                           f"判断{name}删除出口“{shown}”→{_q(_target_name(old, target))}。",
                           f"gateway {node.id}: exit to {target} removed"))


def _compare_ends(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    old_ends = {n.id: n for n in old.nodes.values() if n.type == "endEvent"}
    new_ends = {n.id: n for n in new.nodes.values() if n.type == "endEvent"}
    for nid, node in new_ends.items():
        b = old_ends.get(nid)
        if b is None:
            add(Change("end_added", nid, f"新增结束{_q(node.name or nid)}({OUTCOME_ZH.get(node.outcome or '', node.outcome)})。",
                       f"end added: {nid}", "new"))
        elif b.outcome != node.outcome or b.name != node.name:
            add(Change("end_changed", nid, f"结束{_q(b.name or nid)}改为{_q(node.name or nid)}"
                                           f"({OUTCOME_ZH.get(node.outcome or '', node.outcome)})。",
                       f"end {nid} changed"))
    for nid, node in old_ends.items():
        if nid not in new_ends:
            add(Change("end_removed", nid, f"删除结束{_q(node.name or nid)}。", f"end removed: {nid}", "old"))


def _compare_basis(old: ProcedureDefinition, new: ProcedureDefinition, add) -> None:
    def key(items: Iterable[dict]) -> list[tuple]:
        return [(b.get("source"), b.get("article"), b.get("status")) for b in items]

    if key(old.legal_basis) != key(new.legal_basis):
        add(Change("legal_basis", new.id, "法律政策依据有修改。", "legal basis changed", "both"))
    if old.description != new.description:
        add(Change("description", new.id, "事项说明有修改。", "description changed", "both"))


__all__ = ["Change", "Comparison", "compare"]
