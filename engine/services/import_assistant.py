"""The import assistant: from an imported diagram to a procedure Xiaowei can run (issue #15).

It lists what stands between an imported draft and publishing and fixes what it can:

* marks the process executable;
* turns other tools' task types (task, manualTask, serviceTask, scriptTask, sendTask, receiveTask,
  businessRuleTask) into Xiaowei steps (``userTask`` with ``<xw:step kind=…>``, the kind suggested by
  the task's name); scripts are dropped, never run;
* maps each lane to a role of ``processes/roles.yaml`` (suggested by the lane's name; the user may
  choose), and gives a process without lanes one lane;
* translates gateway conditions written for Camunda/Flowable (JUEL ``${…}``/``#{…}``: ``&&``, ``||``,
  ``!``, ``eq``, ``ne``, ``gt``…, ``true``/``false``) and SpiffWorkflow (Python) into Xiaowei's
  expression language where they are comparisons and boolean logic, and adds the form fields they
  read to the step before the gateway; flags the rest in Chinese;
* makes the one exit of a gateway without a condition its default exit.

:func:`assist_xml` works on the document alone; :func:`assist` on a draft, and saves the result
(``--apply``) as a new revision through :func:`engine.services.editing.save_draft` (audited).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy.orm import Session

from engine.core import catalogue
from engine.core.definitions import BPMN, BPMNDI, DC, STEP_KINDS, XW, read_definition
from engine.core.errors import InvalidProcedure, NotFound
from engine.core.expressions import ExpressionError, compile_expression
from engine.core.lint import lint_bytes
from engine.core.xmlsafe import parse_xml

FOREIGN_TASKS = ("task", "manualTask", "serviceTask", "scriptTask", "sendTask", "receiveTask", "businessRuleTask")
TASK_ZH = {"task": "无类型任务", "manualTask": "手工任务", "serviceTask": "服务任务", "scriptTask": "脚本任务",
           "sendTask": "发送任务", "receiveTask": "接收任务", "businessRuleTask": "业务规则任务"}
KIND_ZH = {"task": "办理", "meeting": "会议", "vote": "表决", "approval": "审核审批", "disclosure": "公开公示",
           "supervision": "监督"}
# attributes a userTask may not carry (they belong to the other task types)
NOT_ON_USER_TASK = ("scriptFormat", "messageRef", "operationRef", "instantiate")
KIND_WORDS = (("approval", ("审批", "审核", "批准", "核准", "同意", "approve", "approval", "review", "check")),
              ("meeting", ("会议", "开会", "研究", "商议", "议定", "meeting")),
              ("supervision", ("监督", "supervis")))
# lane names other tools use, and the role each most likely is
ROLE_WORDS = (
    ("applicant", ("申请人", "村民", "居民", "群众", "申请", "applicant", "customer", "citizen", "requester", "requestor",
                   "initiator",
                   "employee", "user", "client")),
    ("director", ("主任", "负责人", "领导", "manager", "director", "head", "boss", "approver")),
    ("bookkeeper", ("会计", "报账", "财务", "出纳", "finance", "account", "bookkeep", "cashier")),
    ("supervision_committee", ("监督", "监委", "supervis", "audit")),
    ("party_branch", ("党支部", "党组织", "书记", "party")),
    ("committee", ("村委", "居委", "委员会", "committee")),
    ("handler", ("经办", "办事", "窗口", "clerk", "handler", "staff", "officer", "office", "agent", "service desk")),
    ("township_government", ("镇政府", "街道办", "township", "government")),
)
FIELD_LABELS = {"approved": "是否同意", "approve": "是否同意", "accepted": "是否接受", "amount": "金额", "total": "合计金额",
                "price": "价格", "days": "天数", "count": "数量", "reason": "理由", "type": "类型", "category": "类别",
                "valid": "是否符合要求", "complete": "材料是否齐全", "completed": "是否完成", "result": "结果",
                "decision": "决定", "score": "得分", "level": "级别", "status": "状态", "agree": "是否同意",
                "passed": "是否通过", "rejected": "是否驳回"}


@dataclass
class AssistResult:
    xml: bytes
    fixed: list[dict] = field(default_factory=list)  # {"code", "element", "zh", "en"}
    todo: list[dict] = field(default_factory=list)  # what a person must still decide or fix
    lanes: list[dict] = field(default_factory=list)  # {"id", "name", "role", "suggested": [(key, zh)]}
    tasks: list[dict] = field(default_factory=list)  # {"id", "name", "kind"}
    publishable: bool = False
    table: str = ""  # whether a 任务单 can be rebuilt: "" (yes) or the reason

    def to_dict(self) -> dict:
        return {"fixed": self.fixed, "todo": self.todo, "lanes": self.lanes, "tasks": self.tasks,
                "publishable": self.publishable, "step_table": self.table or None}


def _q(tag: str) -> str:
    return f"{{{BPMN}}}{tag}"


def _local(el) -> str:
    return etree.QName(el.tag).localname if isinstance(el.tag, str) else ""


def _ext(el: etree._Element) -> etree._Element:
    ext = el.find(_q("extensionElements"))
    if ext is None:
        ext = etree.Element(_q("extensionElements"))
        docs = el.findall(_q("documentation"))
        el.insert(list(el).index(docs[-1]) + 1 if docs else 0, ext)
    return ext


# --------------------------------------------------------------------------------------------
# Suggestions


def _norm(text: str) -> str:
    return re.sub(r"[\s()()\[\]【】·・,.,、/\\_\-]+", "", (text or "").lower())


def _bigrams(text: str) -> set[str]:
    return {text[i:i + 2] for i in range(len(text) - 1)} or ({text} if text else set())


def suggest_roles(name: str, limit: int = 3) -> list[tuple[str, float]]:
    """Roles of the registry that a lane called ``name`` most likely is, best first (key, score)."""
    roles = catalogue.roles()
    lowered = (name or "").lower()
    scores: dict[str, float] = {}
    for key, words in ROLE_WORDS:
        if key in roles and any(w in lowered for w in words):
            scores[key] = max(scores.get(key, 0), 0.8)
    n = _norm(name)
    for key, role in roles.items():
        variants = {_norm(role.zh), _norm(role.en), _norm(key), _norm(re.sub(r"[((][^))]*[))]", "", role.zh))}
        if n and n in variants:
            scores[key] = 1.0
            continue
        a = _bigrams(n)
        best = 0.0
        for v in variants:
            b = _bigrams(v)
            if a and b:
                best = max(best, 2 * len(a & b) / (len(a) + len(b)))
        if best >= 0.4:
            scores[key] = max(scores.get(key, 0), best)
    return sorted(scores.items(), key=lambda kv: -kv[1])[:limit]


def suggest_kind(name: str) -> str:
    lowered = (name or "").lower()
    for kind, words in KIND_WORDS:
        if any(w in lowered for w in words):
            return kind
    return "task"


# --------------------------------------------------------------------------------------------
# Conditions


_STRING = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_JUEL_WORDS = ((r"&&", " and "), (r"\|\|", " or "), (r"!(?!=)", " not "), (r"\beq\b", "=="), (r"\bne\b", "!="),
               (r"\bgt\b", ">"), (r"\blt\b", "<"), (r"\bge\b", ">="), (r"\ble\b", "<="), (r"\btrue\b", "True"),
               (r"\bfalse\b", "False"), (r"\bnull\b", "None"), (r"===", "=="), (r"!==", "!="))


def _snake(name: str) -> str:
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    out = re.sub(r"[^a-z0-9_]", "_", out)
    return out if re.match(r"[a-z]", out) else f"f_{out}"


def translate_condition(text: str) -> tuple[str | None, str]:
    """(Xiaowei expression, "") or (None, why in Chinese) for a condition written for another engine."""
    source = (text or "").strip()
    if not source:
        return None, "条件为空"
    wrapped = re.fullmatch(r"[$#]\{(.*)\}", source, flags=re.S)
    body = wrapped.group(1).strip() if wrapped else source
    if re.search(r"[$#]\{", body):
        return None, "条件由多段 ${…} 拼接,无法自动转换"
    parts = _STRING.split(body)
    for i in range(0, len(parts), 2):  # outside string literals only
        chunk = parts[i]
        chunk = re.sub(r"\.equals\(\s*", " == (", chunk)
        for pattern, repl in _JUEL_WORDS:
            chunk = re.sub(pattern, repl, chunk)
        parts[i] = chunk
    candidate = re.sub(r"\s+", " ", "".join(parts)).strip()
    if re.search(r"\bempty\b", candidate):
        return None, "“empty”(是否为空)无法自动转换,请改写为具体的比较"
    try:
        tree = ast.parse(candidate, mode="eval")
    except SyntaxError:
        return None, "写法无法识别(只能自动转换比较和与或非)"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) or isinstance(node, ast.Attribute):
            return None, "条件中调用了方法或读取了对象属性(如 execution.getVariable),无法自动转换"
        if isinstance(node, ast.Name):
            if node.id not in ("True", "False", "None"):
                node.id = _snake(node.id)
    result = ast.unparse(tree)
    try:
        compile_expression(result)
    except ExpressionError as exc:
        return None, exc.zh
    return result, ""


def _field_types(expr_text: str) -> dict[str, tuple[str, list]]:
    """name → (field type, choice values) inferred from how a translated condition uses each name."""
    tree = ast.parse(expr_text, mode="eval")
    found: dict[str, tuple[str, list]] = {}

    def note(name: str, kind: str, value=None) -> None:
        old_kind, values = found.get(name, ("", []))
        if kind == "choice" and value is not None and value not in values:
            values = values + [value]
        if old_kind in ("", "boolean") or kind == old_kind:
            found[name] = (kind, values)

    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            items = [node.left, *node.comparators]
            names = [n.id for n in items if isinstance(n, ast.Name) and n.id not in ("True", "False", "None")]
            consts = [n.value for n in items if isinstance(n, ast.Constant)]
            lists = [n for n in items if isinstance(n, (ast.List, ast.Tuple))]
            for name in names:
                if any(isinstance(c, bool) for c in consts):
                    note(name, "boolean")
                elif any(isinstance(c, (int, float)) for c in consts):
                    note(name, "decimal")
                elif any(isinstance(c, str) for c in consts):
                    for c in consts:
                        if isinstance(c, str):
                            note(name, "choice", c)
                elif lists:
                    for lst in lists:
                        for elt in lst.elts:
                            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                                note(name, "choice", elt.value)
                else:
                    note(name, "decimal")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in found and node.id not in ("True", "False", "None"):
            found[node.id] = ("boolean", [])
    return found


# --------------------------------------------------------------------------------------------
# The assistant


def assist_xml(xml: bytes, *, roles: dict[str, str] | None = None, kinds: dict[str, str] | None = None) -> AssistResult:
    """Fix what can be fixed in an imported document; ``roles`` (lane id or name → role key) and
    ``kinds`` (task id or name → step kind) are the user's choices."""
    roles, kinds = dict(roles or {}), dict(kinds or {})
    root = parse_xml(xml)
    d = read_definition(root, xml)
    process = d.process_element
    assert process is not None
    out = AssistResult(xml)

    def fixed(code: str, element: str, zh: str, en: str) -> None:
        out.fixed.append({"code": code, "element": element, "zh": zh, "en": en})

    def todo(code: str, element: str, zh: str, en: str) -> None:
        out.todo.append({"code": code, "element": element, "zh": zh, "en": en, "severity": "error"})

    if (process.get("isExecutable") or "").lower() != "true":
        process.set("isExecutable", "true")
        fixed("executable", d.id, "已将流程标记为可执行", "marked the process executable")

    for el in process:
        if _local(el) == "endEvent" and not (el.get("name") or "").strip():
            el.set("name", "办结")
            fixed("end-name", el.get("id", ""), "没有名称的结束事件命名为“办结”", "unnamed end event named 办结")

    # other engines' scripts are dropped (never run); SpiffArena's instructions become the step's
    spiff = "http://spiffworkflow.org/bpmn/schema/1.0/core"
    for el in list(process.iter(f"{{{spiff}}}*")):
        local = etree.QName(el.tag).localname
        owner = el.getparent().getparent() if el.getparent() is not None else None
        if local in ("preScript", "postScript", "script", "serviceTaskOperator"):
            el.getparent().remove(el)
            if (el.text or "").strip():
                fixed("script", owner.get("id", "") if owner is not None else "",
                      f"删除了“{owner.get('name') or owner.get('id')}”中的脚本(小微不执行脚本)" if owner is not None
                      else "删除了流程中的脚本(小微不执行脚本)", f"dropped spiffworkflow:{local}")
        elif local == "instructionsForEndUser" and owner is not None and (el.text or "").strip() \
                and owner.find(_q("documentation")) is None:
            doc = etree.Element(_q("documentation"))
            doc.text = el.text.strip()
            owner.insert(0, doc)
            fixed("instructions", owner.get("id", ""), f"“{owner.get('name') or owner.get('id')}”的办理说明取自原文件",
                  "instructions taken from spiffworkflow:instructionsForEndUser")

    # tasks → steps
    for el in list(process):
        tag = _local(el)
        if tag not in FOREIGN_TASKS and tag != "userTask":
            continue
        name = el.get("name", "") or el.get("id", "")
        if tag != "userTask":
            el.tag = _q("userTask")
            for attr in NOT_ON_USER_TASK:
                el.attrib.pop(attr, None)
            for script in el.findall(_q("script")):
                el.remove(script)
            fixed("task-type", el.get("id", ""), f"“{name}”由{TASK_ZH[tag]}改为小微的办理步骤"
                  + ("(原脚本不会执行)" if tag == "scriptTask" else ""), f"{tag} {el.get('id')} became a Xiaowei step")
        ext = _ext(el)
        step = ext.find(f"{{{XW}}}step")
        wanted = kinds.get(el.get("id", "")) or kinds.get(name)
        if step is None:
            kind = wanted if wanted in STEP_KINDS else suggest_kind(name)
            etree.SubElement(ext, f"{{{XW}}}step", {"kind": kind}, nsmap={"xw": XW})
            fixed("step-kind", el.get("id", ""), f"“{name}”的步骤类型定为“{KIND_ZH[kind]}”",
                  f"step kind of {el.get('id')} set to {kind}")
        elif wanted in STEP_KINDS and step.get("kind") != wanted:
            step.set("kind", wanted)
            fixed("step-kind", el.get("id", ""), f"“{name}”的步骤类型改为“{KIND_ZH[wanted]}”", f"step kind set to {wanted}")
        out.tasks.append({"id": el.get("id", ""), "name": name, "kind": (ext.find(f"{{{XW}}}step").get("kind"))})

    # lanes → roles
    lanes = list(process.iter(_q("lane")))
    if not lanes:
        _add_single_lane(root, process, d)
        lanes = list(process.iter(_q("lane")))
        fixed("lane-added", lanes[0].get("id", ""), f"流程没有泳道,已加一条泳道“{lanes[0].get('name')}”包含全部步骤",
              "the process had no lanes: one lane now holds every step")
    known = catalogue.roles()
    for lane in lanes:
        if lane.find(_q("childLaneSet")) is not None:
            continue
        ext = _ext(lane)
        role_el = ext.find(f"{{{XW}}}role")
        current = role_el.get("key") if role_el is not None else None
        name = lane.get("name", "") or lane.get("id", "")
        wanted = roles.get(lane.get("id", "")) or roles.get(name) or roles.get("*")
        suggestions = suggest_roles(name)
        choice = wanted if wanted in known else None
        if choice is None and current not in known and suggestions and suggestions[0][1] >= 0.6:
            choice = suggestions[0][0]
        if choice and choice != current:
            if role_el is None:
                role_el = etree.SubElement(ext, f"{{{XW}}}role", nsmap={"xw": XW})
            role_el.set("key", choice)
            current = choice
            fixed("lane-role", lane.get("id", ""), f"泳道“{name}”的角色定为“{known[choice].zh}”"
                  + ("" if wanted else "(按名称推荐,可修改)"), f"lane {lane.get('id')} mapped to role {choice}")
        if wanted and wanted not in known:
            todo("lane-role", lane.get("id", ""), f"角色“{wanted}”不在角色表中", f"unknown role {wanted}")
        out.lanes.append({"id": lane.get("id", ""), "name": name, "role": current if current in known else None,
                          "suggested": [{"key": k, "zh": known[k].zh} for k, _ in suggestions]})
        if current not in known:
            hint = "、".join(f"{known[k].zh}({k})" for k, _ in suggestions) or "见角色表"
            todo("lane-role", lane.get("id", ""), f"泳道“{name}”还没有对应的角色,请选择(建议:{hint})",
                 f"lane {lane.get('id')} needs a role")

    # conditions
    xml_now = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    d = read_definition(root, xml_now)
    fields = d.readable_fields()
    nodes_by_id = {el.get("id"): el for el in process if isinstance(el.tag, str)}
    added: set[str] = set()
    translated_flows: list[tuple[str, str, str, str]] = []
    for flow_el in process.findall(_q("sequenceFlow")):
        cond = flow_el.find(_q("conditionExpression"))
        if cond is None or not (cond.text or "").strip():
            continue
        text = cond.text.strip()
        try:
            compile_expression(text)
            translated, why = text, ""
        except ExpressionError:
            translated, why = translate_condition(text)
        exit_name = _exit_name(flow_el, nodes_by_id)
        if translated is None:
            todo("condition", flow_el.get("id", ""), f"出口“{exit_name}”的条件无法自动转换:{why}。请在流程图编辑器中"
                 "选中这条连线,改写为小微的条件", f"condition {text!r} cannot be translated")
            continue
        if translated != text:
            cond.text = translated
            for attr in ("language",):
                cond.attrib.pop(attr, None)
            translated_flows.append((flow_el.get("id", ""), exit_name, text, translated))
        expr = compile_expression(translated)
        missing = [n for n in sorted(expr.names) if n not in fields and n not in added and "." not in n]
        if not missing:
            continue
        step_el = _step_before(process, nodes_by_id, flow_el.get("sourceRef", ""))
        if step_el is None:
            todo("condition-field", flow_el.get("id", ""), f"条件读取的数据({'、'.join(missing)})前面没有可以填写它的步骤",
                 "no step before the gateway can collect the data the condition reads")
            continue
        types = _field_types(translated)
        ext = _ext(step_el)
        for name in missing:
            ftype, values = types.get(name, ("text", []))
            attrs = {"name": name, "label": FIELD_LABELS.get(name, name), "type": ftype, "required": "true"}
            fel = etree.SubElement(ext, f"{{{XW}}}field", attrs, nsmap={"xw": XW})
            for v in values:
                etree.SubElement(fel, f"{{{XW}}}option", {"value": str(v), "label": str(v)})
            added.add(name)
            fixed("condition-field", step_el.get("id", ""), f"为条件所需的数据在“{step_el.get('name') or step_el.get('id')}”"
                  f"中加了填写项“{attrs['label']}”", f"added field {name} to {step_el.get('id')}")
            if name not in FIELD_LABELS:
                out.todo.append({"code": "field-label", "element": step_el.get("id", ""), "severity": "warning",
                                 "zh": f"请为填写项“{name}”取一个中文名称", "en": f"give field {name} a Chinese label"})

    # gateways: one exit without a condition is the default
    for gw in process:
        if _local(gw) != "exclusiveGateway" or gw.get("default"):
            continue
        exits = [f for f in process.findall(_q("sequenceFlow")) if f.get("sourceRef") == gw.get("id")]
        bare = [f for f in exits if f.find(_q("conditionExpression")) is None]
        if len(exits) > 1 and len(bare) == 1:
            gw.set("default", bare[0].get("id", ""))
            fixed("gateway-default", gw.get("id", ""), f"网关“{gw.get('name') or gw.get('id')}”没有条件的出口设为默认出口",
                  "the exit without a condition became the default")

    xml_out = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    d2 = read_definition(parse_xml(xml_out), xml_out)
    from engine.render.narrative import Words

    words = Words(d2, {}, {})
    for flow_id, exit_name, text, translated in translated_flows:  # said in words, not as code
        fixed("condition", flow_id, f"出口“{exit_name}”的条件已转换为小微的条件:{words.sentence(translated)}",
              f"condition {text!r} translated to {translated!r}")
    from . import editing

    if not editing.has_di(d2.root, d2):
        xml_out = editing.auto_layout(d2.root, d2)
        fixed("layout", d2.id, "图形信息不完整,已重新生成泳道布局", "the diagram was laid out again")
    out.xml = xml_out
    result = lint_bytes(xml_out, "导入助手")
    seen = {(t["code"], t["element"]) for t in out.todo}
    for p in result.errors:
        if p.code in ("lane-role",) and (p.code, p.element) in seen:
            continue
        if p.code == "unsafe-expression" and any(t["element"] == p.element for t in out.todo):
            continue
        out.todo.append(p.to_dict())
    out.publishable = result.ok
    from engine.bpmn.reverse import table_from_bpmn

    table, why = table_from_bpmn(xml_out)
    out.table = "" if table is not None else why
    return out


def _exit_name(flow_el, nodes_by_id: dict) -> str:
    """How a person names an exit: the flow's label, else where it leads."""
    if (flow_el.get("name") or "").strip():
        return flow_el.get("name").strip()
    target = nodes_by_id.get(flow_el.get("targetRef", ""))
    return (target.get("name") or "").strip() if target is not None and target.get("name") else "(未命名)"


def _step_before(process, nodes_by_id: dict, node_id: str):
    """The nearest user task before ``node_id`` (itself if it is one), walking flows backwards."""
    incoming: dict[str, list[str]] = {}
    for f in process.findall(_q("sequenceFlow")):
        incoming.setdefault(f.get("targetRef", ""), []).append(f.get("sourceRef", ""))
    queue, seen = [node_id], set()
    while queue:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        el = nodes_by_id.get(current)
        if el is not None and _local(el) == "userTask":
            return el
        queue.extend(incoming.get(current, []))
    return None


def _add_single_lane(root, process, d) -> None:
    laneset = process.find(_q("laneSet"))
    if laneset is None:
        laneset = etree.Element(_q("laneSet"), {"id": "LaneSet_imported"})
        first_flow = next((el for el in process if _local(el) not in ("documentation", "extensionElements", "auditing",
                                                                     "monitoring", "property")), None)
        if first_flow is not None:
            first_flow.addprevious(laneset)
        else:
            process.append(laneset)
    taken = {el.get("id") for el in root.iter() if isinstance(el.tag, str)}
    lane_id = "Lane_imported" if "Lane_imported" not in taken else "Lane_imported_2"
    pool = next((p.get("name") for p in root.iter(_q("participant")) if p.get("processRef") == d.id and p.get("name")), "")
    # the pool's name when it names a role (村委会), else 经办人: a pool is usually named after the process
    named = pool if pool and any(score >= 0.6 for _, score in suggest_roles(pool)) else "经办人"
    lane = etree.SubElement(laneset, _q("lane"), {"id": lane_id, "name": named})
    for el in process:
        if _local(el) in ("startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
                          "userTask", "task", "manualTask", "scriptTask", "serviceTask", "sendTask", "receiveTask",
                          "businessRuleTask", "callActivity", "subProcess", "exclusiveGateway", "parallelGateway",
                          "inclusiveGateway", "eventBasedGateway", "complexGateway"):
            ref = etree.SubElement(lane, _q("flowNodeRef"))
            ref.text = el.get("id")
    # a lane shape over the process's shapes, so the original layout stays
    shapes = {s.get("bpmnElement"): s for s in root.iter(f"{{{BPMNDI}}}BPMNShape")}
    boxes = []
    for el in process:
        s = shapes.get(el.get("id"))
        b = s.find(f"{{{DC}}}Bounds") if s is not None else None
        if b is not None:
            boxes.append(tuple(float(b.get(k, "0")) for k in ("x", "y", "width", "height")))
    if not boxes:
        return
    participant = next((p for p in root.iter(_q("participant")) if p.get("processRef") == d.id), None)
    pshape = shapes.get(participant.get("id")) if participant is not None else None
    pb = pshape.find(f"{{{DC}}}Bounds") if pshape is not None else None
    if pb is not None:
        x, y, w, h = (float(pb.get(k, "0")) for k in ("x", "y", "width", "height"))
        x, w = x + 30, w - 30
    else:
        x = min(b[0] for b in boxes) - 40
        y = min(b[1] for b in boxes) - 40
        w = max(b[0] + b[2] for b in boxes) - x + 40
        h = max(b[1] + b[3] for b in boxes) - y + 40
    plane = next(iter(shapes.values())).getparent()
    lane_shape = etree.Element(f"{{{BPMNDI}}}BPMNShape", {"id": f"{lane_id}_di", "bpmnElement": lane_id,
                                                           "isHorizontal": "true"})
    etree.SubElement(lane_shape, f"{{{DC}}}Bounds", {"x": f"{x:g}", "y": f"{y:g}", "width": f"{w:g}", "height": f"{h:g}"})
    plane.insert(0, lane_shape)


def assist(session: Session, procedure_id: str, *, username: str | None = None, actor: str = "cli",
           apply: bool = False, roles: dict[str, str] | None = None, kinds: dict[str, str] | None = None,
           expected_revision: int | None = None) -> dict:
    """What stands between the draft of ``procedure_id`` and publishing, and (``apply``) the draft
    saved with what could be fixed."""
    from . import editing

    draft = editing.get_draft(session, procedure_id)
    if draft is None:
        raise NotFound(f"事项“{procedure_id}”没有草稿:先导入流程图 / no draft of {procedure_id}")
    editing._check_may_edit(session, username, procedure_id, draft.org_id)
    try:
        result = assist_xml(draft.bpmn_xml.encode("utf-8"), roles=roles, kinds=kinds)
    except ValueError as exc:
        raise InvalidProcedure(f"草稿无法读取:{exc} / the draft cannot be read") from None
    revision = draft.revision
    saved = False
    if apply and result.fixed:
        row = editing.save_draft(session, procedure_id, result.xml, username=username, actor=actor,
                                 expected_revision=expected_revision if expected_revision is not None else draft.revision,
                                 source="导入助手")
        revision, saved = row.revision, True
    return {"procedure_id": procedure_id, "revision": revision, "saved": saved, **result.to_dict()}


__all__ = ["assist", "assist_xml", "translate_condition", "suggest_roles", "suggest_kind", "AssistResult"]
