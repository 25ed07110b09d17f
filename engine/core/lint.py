"""Validation of procedure BPMN documents: the BPMN XSD plus Xiaowei's conventions.

Every problem names the element and says what is wrong in Chinese and English. Errors make a
document unpublishable; warnings are advice.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Iterable

from lxml import etree

from . import catalogue, legaltext, spiff, voting
from .definitions import (
    BPMN, BPMNDI, NS, OUTCOMES, PARAM_TYPES, STEP_KINDS, ProcedureDefinition, parse_param_value,
    read_definition,
)
from .expressions import ExpressionError, compile_expression
from .forms import check_field_definition
from .xmlsafe import UnsafeXml, parse_xml

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
UNSUPPORTED = {
    "scriptTask": "脚本任务", "serviceTask": "服务任务", "businessRuleTask": "业务规则任务",
    "sendTask": "发送任务", "receiveTask": "接收任务", "callActivity": "调用活动",
    "subProcess": "子流程", "inclusiveGateway": "包容网关", "eventBasedGateway": "事件网关",
    "complexGateway": "复杂网关", "boundaryEvent": "边界事件", "intermediateThrowEvent": "中间抛出事件",
    "task": "无类型任务", "manualTask": "手工任务",
}
ALLOWED_EVENT_DEFINITIONS = {"timerEventDefinition", "terminateEventDefinition"}


@dataclass(frozen=True)
class Problem:
    """One finding of the linter."""

    code: str
    element: str
    zh: str
    en: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"[{self.element}] " if self.element else ""
        return f"{self.severity}: {where}{self.zh} / {self.en} ({self.code})"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "element": self.element, "zh": self.zh, "en": self.en, "severity": self.severity}


@dataclass
class LintResult:
    definition: ProcedureDefinition | None
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


_cache: dict[tuple[str, bool], LintResult] = {}


def lint_bytes(xml: bytes, filename: str = "<bpmn>", *, require_di: bool = True) -> LintResult:
    """Parse safely, validate against the XSD and Xiaowei's rules; never raises on bad input.

    Results are cached by content hash (documents are immutable once written).
    """
    key = (hashlib.sha256(xml).hexdigest(), require_di)
    cached = _cache.get(key)
    if cached is None:
        cached = _lint_uncached(xml, filename, require_di=require_di)
        if len(_cache) > 512:
            _cache.clear()
        _cache[key] = cached
    return cached


def _lint_uncached(xml: bytes, filename: str, *, require_di: bool) -> LintResult:
    try:
        root = parse_xml(xml)
    except UnsafeXml as exc:
        return LintResult(None, [Problem("xml", "", str(exc).split(" / ")[0], _en(str(exc)))])
    try:
        spiff.validate_xsd(root, filename)
    except Exception as exc:  # SpiffWorkflow raises ValidationException with the XSD's message
        return LintResult(None, [Problem("xsd", "", f"不符合 BPMN 2.0 XSD:{_first_line(exc)}",
                                         f"not valid against the BPMN 2.0 XSD: {_first_line(exc)}")])
    try:
        d = read_definition(root, xml)
    except ValueError as exc:
        return LintResult(None, [Problem("process", "", str(exc).split(" / ")[0], _en(str(exc)))])
    problems = list(check_definition(d, require_di=require_di))
    if not any(p.severity == "error" for p in problems):
        try:
            spiff.parse_process(root, d.id, filename)
        except Exception as exc:
            problems.append(Problem("spiff", d.id, f"流程引擎无法解析:{_first_line(exc)}",
                                    f"the engine cannot parse it: {_first_line(exc)}"))
    return LintResult(d, problems)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _en(message: str) -> str:
    parts = message.split(" / ", 1)
    return parts[1] if len(parts) == 2 else message


def check_definition(d: ProcedureDefinition, *, require_di: bool = True) -> Iterable[Problem]:
    """All convention checks over a read definition."""
    yield from _check_process(d)
    yield from _check_unsupported(d)
    yield from _check_lanes_and_steps(d)
    yield from _check_parameters(d)
    yield from _check_flows_and_expressions(d)
    yield from _check_gateways(d)
    yield from _check_ambiguous_names(d)
    from .lint_runtime import check_runtime  # conditions and timers that can fail at run time (#13)

    yield from check_runtime(d)
    yield from _check_graph(d)
    yield from _check_checkpoints(d)
    yield from _check_votes(d)
    yield from _check_user_facing_text(d)
    if require_di:
        yield from _check_di(d)


def _check_process(d: ProcedureDefinition) -> Iterable[Problem]:
    process = d.process_element
    if process is None or (process.get("isExecutable") or "").lower() != "true":
        yield Problem("executable", d.id, "流程须标记为可执行(isExecutable=\"true\")", "process must be isExecutable=\"true\"")
    if process is not None and process.find("bpmn:extensionElements/xw:procedure", NS) is None:
        yield Problem("procedure-meta", d.id, "缺少事项信息(xw:procedure)", "missing xw:procedure metadata", "warning")
    elif d.category and d.category not in catalogue.categories():
        yield Problem("category", d.id, f"类别“{d.category}”不在九大类中", f"unknown category {d.category}")
    if d.edition and d.edition not in ("village", "community", "both", "township"):
        yield Problem("edition", d.id, f"版本“{d.edition}”须为 village、community、both 或 township",
                      f"unknown edition {d.edition}")
    if len(d.start_ids) != 1:
        yield Problem("start", d.id, f"须有且只有一个开始事件(现有{len(d.start_ids)}个)",
                      f"exactly one start event required (found {len(d.start_ids)})")


def _check_unsupported(d: ProcedureDefinition) -> Iterable[Problem]:
    for node in d.nodes.values():
        if node.type in UNSUPPORTED:
            yield Problem("unsupported", node.id, f"{UNSUPPORTED[node.type]}({node.type})无法在小微中执行",
                          f"{node.type} cannot be executed by Xiaowei")
    assert d.process_element is not None
    for el in d.process_element.iter():
        if not isinstance(el.tag, str):
            continue
        q = etree.QName(el.tag)
        if q.namespace == SPIFF_NS and q.localname in ("preScript", "postScript", "script", "serviceTaskOperator"):
            owner = _owner_id(el)
            yield Problem("script", owner, "不允许在流程中写脚本", f"scripts are not allowed (spiffworkflow:{q.localname})")
        if q.namespace == BPMN and q.localname.endswith("EventDefinition") and q.localname not in ALLOWED_EVENT_DEFINITIONS:
            yield Problem("unsupported-event", _owner_id(el), f"不支持的事件类型 {q.localname}",
                          f"unsupported event definition {q.localname}")


def _owner_id(el: etree._Element) -> str:
    while el is not None and el.get("id") is None:
        el = el.getparent()
    return el.get("id", "") if el is not None else ""


def _check_lanes_and_steps(d: ProcedureDefinition) -> Iterable[Problem]:
    known = catalogue.roles()
    for lane in d.lanes.values():
        if not lane.role:
            yield Problem("lane-role", lane.id, f"泳道“{lane.name}”未指定角色(xw:role)", "lane without xw:role key")
        elif lane.role not in known:
            yield Problem("lane-role", lane.id, f"泳道“{lane.name}”的角色“{lane.role}”未定义", f"unknown role {lane.role}")
    all_fields = d.readable_fields()
    for step in d.steps.values():
        if step.lane is None:
            yield Problem("no-lane", step.id, f"任务“{step.name}”不在任何泳道中", "user task outside any lane")
        if step.kind not in STEP_KINDS:
            yield Problem("step-kind", step.id, f"任务“{step.name}”的类型“{step.kind}”未知", f"unknown step kind {step.kind}")
        if step.time_limit_text and step.time_limit is None:
            yield Problem("time-limit", step.id, f"时限“{step.time_limit_text}”格式错误(如 3d、5wd、48h)",
                          "time limit must look like 3d, 5wd or 48h")
        if not step.name:
            yield Problem("step-name", step.id, "任务没有名称", "user task without a name")
        names = [f.name for f in step.fields]
        for dup in {n for n in names if names.count(n) > 1}:
            yield Problem("field-dup", step.id, f"字段“{dup}”重复", f"duplicate field {dup}")
        for f in step.fields:
            for message in check_field_definition(f):
                yield Problem("field", step.id, message.split(" / ")[0], _en(message))
        for c in step.constraints:
            try:
                expr = compile_expression(c.test)
            except ExpressionError as exc:
                yield Problem("unsafe-expression", step.id, f"校验规则“{c.test}”不安全或有误:{exc.zh}",
                              f"constraint {c.test!r} rejected: {exc}")
                continue
            for name in expr.names - set(all_fields):
                yield Problem("unknown-field", step.id, f"校验规则引用了不存在的字段“{name}”", f"constraint reads unknown field {name}")
            for key in expr.params - set(d.parameters):
                yield Problem("unknown-param", step.id, f"未声明的参数“{key}”", f"undeclared parameter {key}")
        if step.disclosure is not None:
            key = step.disclosure.get("minDaysParam")
            if key and key not in d.parameters:
                yield Problem("unknown-param", step.id, f"未声明的参数“{key}”", f"undeclared parameter {key}")


def _check_parameters(d: ProcedureDefinition) -> Iterable[Problem]:
    assert d.process_element is not None
    for el in d.process_element.findall("bpmn:extensionElements/xw:parameter", NS):
        key, ptype = el.get("key", ""), el.get("type", "text")
        if ptype not in PARAM_TYPES:
            yield Problem("param-type", d.id, f"参数“{key}”的类型“{ptype}”未知", f"unknown parameter type {ptype}")
            continue
        try:
            parse_param_value(ptype, el.get("default"))
        except ValueError:
            yield Problem("param-default", d.id, f"参数“{key}”的默认值“{el.get('default')}”无效",
                          f"invalid default for parameter {key}")


def _check_flows_and_expressions(d: ProcedureDefinition) -> Iterable[Problem]:
    fields = d.readable_fields()
    for flow in d.flows.values():
        for end in (flow.source, flow.target):
            if end not in d.nodes:
                yield Problem("flow-ref", flow.id, f"连线指向不存在的元素“{end}”", f"flow refers to unknown element {end}")
        if flow.condition is None:
            continue
        source = d.nodes.get(flow.source)
        if source is not None and source.type != "exclusiveGateway":
            yield Problem("condition-placement", flow.id, "条件只能写在排他网关的出口连线上",
                          "conditions belong on flows leaving an exclusive gateway")
        yield from _check_expression(d, flow.id, flow.condition, fields)
    for node in d.nodes.values():
        if node.timer is not None:
            if not node.timer:
                yield Problem("timer", node.id, "定时事件缺少时长表达式", "timer without an expression")
            else:
                yield from _check_expression(d, node.id, node.timer, fields)
        if node.type == "endEvent" and node.outcome not in OUTCOMES:
            yield Problem("outcome", node.id, f"结束事件的结果“{node.outcome}”须为 completed、rejected 或 terminated",
                          f"unknown end outcome {node.outcome}")


def _check_expression(d: ProcedureDefinition, element: str, text: str, fields: dict) -> Iterable[Problem]:
    try:
        expr = compile_expression(text)
    except ExpressionError as exc:
        foreign = "${" in text or "#{" in text or "&&" in text or "||" in text  # Camunda/Flowable JUEL
        hint = ";这是其他流程引擎的写法,导入助手可以自动转换" if foreign else ""
        yield Problem("unsafe-expression", element, f"表达式“{text}”不安全或有误:{exc.zh}{hint}",
                      f"expression {text!r} rejected: {exc}")
        return
    for name in sorted(expr.names - set(fields)):
        yield Problem("unknown-field", element, f"表达式“{text}”引用了不存在的表单字段“{name}”",
                      f"expression {text!r} reads unknown form field {name}")
    for key in sorted(expr.params - set(d.parameters)):
        yield Problem("unknown-param", element, f"表达式引用了未声明的参数“{key}”", f"undeclared parameter {key}")


def _check_ambiguous_names(d: ProcedureDefinition) -> Iterable[Problem]:
    """A plain field name reads the latest submission that had the field. Where two different steps
    may have been that latest one (two meetings both have 会议日期), the name must say which:
    ``resolve.meeting_date``. A step's own fields in its constraints are its own values."""
    reads: list[tuple[str, str, str]] = []  # (element, node the value is read at, expression)
    for flow in d.flows.values():
        if flow.condition and flow.source in d.nodes:
            reads.append((flow.id, flow.source, flow.condition))
    for step in d.steps.values():
        reads.extend((step.id, step.id, c.test) for c in step.constraints)
    for element, at, text in reads:
        try:
            expr = compile_expression(text)
        except ExpressionError:
            continue  # reported elsewhere
        own = {f.name for f in d.steps[at].fields} if at in d.steps else set()
        for name in sorted(n for n in expr.names if "." not in n and n not in own):
            writers = d.writers_before(at, name)
            if len(writers) > 1:
                names = "、".join(f"“{d.steps[w].name}”" for w in sorted(writers))
                example = f"{sorted(writers)[0]}.{name}"
                yield Problem("ambiguous-field", element,
                              f"表达式“{text}”中的字段“{name}”可能来自{names},请写明步骤,如 {example}",
                              f"field {name} may come from steps {', '.join(sorted(writers))}: write e.g. {example}")


def _check_gateways(d: ProcedureDefinition) -> Iterable[Problem]:
    fields = d.readable_fields()
    params = {k: p.default for k, p in d.parameters.items()}
    for node in d.nodes.values():
        if node.type != "exclusiveGateway" or len(node.outgoing) < 2:
            continue
        if node.default_flow:
            if node.default_flow not in node.outgoing:
                yield Problem("gateway-default", node.id, "默认出口不是本网关的出口连线", "default flow is not an outgoing flow")
            continue
        conditions = [d.flows[f].condition for f in node.outgoing if f in d.flows]
        if any(c is None for c in conditions):
            yield Problem("gateway-condition", node.id, f"网关“{node.name or node.id}”有出口既无条件也非默认",
                          "a gateway exit has neither a condition nor is the default")
            continue
        gap = _find_uncovered(conditions, fields, params)  # type: ignore[arg-type]
        if gap is not None:
            shown = ", ".join(f"{k}={v}" for k, v in gap.items())
            yield Problem("gateway-incomplete", node.id,
                          f"网关“{node.name or node.id}”没有默认出口,且条件未覆盖所有情况(例如 {shown})",
                          f"no default flow and the conditions miss a case (e.g. {shown})")


def _find_uncovered(conditions: list[str], fields: dict, params: dict) -> dict[str, Any] | None:
    """Sample boundary values of the fields the conditions read; return a case none matches."""
    try:
        exprs = [compile_expression(c) for c in conditions]
    except ExpressionError:
        return None  # reported elsewhere
    names = sorted(set().union(*(e.names for e in exprs)))
    candidates = {n: sample_values(fields.get(n), conditions, params) for n in names}
    space = 1
    for values in candidates.values():
        space *= len(values)
    if space > 200_000:
        return None
    for combo in itertools.product(*(candidates[n] for n in names)):
        scope = dict(zip(names, combo))
        if not any(_true(e, scope, params) for e in exprs):
            return scope
    return None


def _true(expr, scope, params) -> bool:
    try:
        return bool(expr.evaluate(scope, params))
    except ExpressionError:
        return False


def sample_values(field, conditions: list[str], params: dict) -> list[Any]:
    """Representative values of a field for coverage checks and scenario steering."""
    if field is None:
        return [None]
    if field.type == "boolean":
        return [True, False]
    if field.type == "choice":
        return [o.value for o in field.options]
    if field.type in ("integer", "decimal", "money"):
        points: set[Fraction] = {Fraction(0), Fraction(1), Fraction(2), Fraction(3), Fraction(10), Fraction(100)}
        for value in params.values():
            if isinstance(value, (int, Decimal, Fraction)) and not isinstance(value, bool):
                v = Fraction(value)
                points.update({v, v - 1, v + 1, v * 100})
        for text in conditions:
            for node in _numeric_constants(text):
                points.update({node, node - 1, node + 1})
        as_type = int if field.type == "integer" else (lambda x: Decimal(x.numerator) / Decimal(x.denominator))
        values = sorted({as_type(p) if field.type != "integer" else int(p) for p in points if p >= 0})
        return values[:40]
    return ["", "x"]


def _numeric_constants(text: str) -> list[Fraction]:
    import ast

    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return []
    return [Fraction(n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)]


def _check_graph(d: ProcedureDefinition) -> Iterable[Problem]:
    if len(d.start_ids) != 1:
        return
    succ = _successors(d)
    reached = _reach(d.start_ids[0], succ)
    for node in d.nodes.values():
        if node.id not in reached:
            yield Problem("unreachable", node.id, f"“{node.name or node.id}”从开始事件无法到达", "not reachable from the start")
    ends = {n.id for n in d.nodes.values() if n.type == "endEvent"}
    if not any(d.nodes[e].outcome == "completed" for e in ends):
        yield Problem("no-completed-end", d.id, "没有“办结”(completed)结束事件", "no end event with outcome completed")
    pred: dict[str, list[str]] = {n: [] for n in d.nodes}
    for src, targets in succ.items():
        for t in targets:
            pred.setdefault(t, []).append(src)
    can_end: set[str] = set()
    for e in ends:
        can_end |= _reach(e, pred)
    for node in d.nodes.values():
        if node.id in reached and node.id not in can_end:
            yield Problem("dead-end", node.id, f"“{node.name or node.id}”之后无法到达任何结束事件", "no end event can be reached from here")
        if node.type != "endEvent" and not node.outgoing and node.id in d.nodes:
            yield Problem("no-outgoing", node.id, f"“{node.name or node.id}”没有出口连线", "flow node without outgoing flow")


def _successors(d: ProcedureDefinition) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = {n: [] for n in d.nodes}
    for flow in d.flows.values():
        if flow.source in succ and flow.target in d.nodes:
            succ[flow.source].append(flow.target)
    return succ


def _reach(start: str, edges: dict[str, list[str]], blocked: set[str] = frozenset()) -> set[str]:  # type: ignore[assignment]
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges.get(queue.popleft(), []):
            if nxt not in seen and nxt not in blocked:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def bypass_path(d: ProcedureDefinition, kind: str) -> list[str] | None:
    """A path from the start to a completed end that passes no step of ``kind``, if one exists."""
    if len(d.start_ids) != 1:
        return None
    blocked = {s.id for s in d.steps.values() if s.kind == kind}
    succ = _successors(d)
    start = d.start_ids[0]
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        node = d.nodes[current]
        if node.type == "endEvent" and node.outcome == "completed":
            path = []
            at: str | None = current
            while at is not None:
                path.append(at)
                at = parent[at]
            return list(reversed(path))
        for nxt in succ.get(current, []):
            if nxt not in parent and nxt not in blocked:
                parent[nxt] = current
                queue.append(nxt)
    return None


def _check_checkpoints(d: ProcedureDefinition) -> Iterable[Problem]:
    labels = {"disclosure": ("公开公示", "disclosure"), "supervision": ("监督", "supervision")}
    for kind, required in d.requires.items():
        if not required:
            continue
        path = bypass_path(d, kind)
        if path is not None:
            zh, en = labels[kind]
            names = " → ".join(d.nodes[n].name or n for n in path)
            yield Problem("checkpoint-bypass", path[-1],
                          f"存在绕过{zh}环节直达办结的路径:{names}",
                          f"a path reaches a completed end without a {en} checkpoint: {' -> '.join(path)}")


def _check_user_facing_text(d: ProcedureDefinition) -> Iterable[Problem]:
    """User-facing text holds only verified text: authoring notes go to the review field."""
    for element, where, text in legaltext.user_facing_texts(d):
        found = legaltext.authoring_notes(text)
        if found:
            yield Problem("authoring-note", element,
                          f"{where}中有编写备注“{found[0]}”:公开的依据和办理要求只写核实过的内容,"
                          "备注请写在“编写备注”(review)中,仅镇街工作人员在编辑器中可见",
                          f"user-facing text ({where}) holds the authoring note {found[0]!r}: move it to review")


def _vote_gateway(d: ProcedureDefinition, step_id: str) -> Any:
    """The exclusive gateway that decides a vote step: the first one after it (past its own
    supervision task and gateway) whose exits read the vote's counts."""
    queue, seen = deque([step_id]), {step_id}
    while queue:
        node = d.nodes[queue.popleft()]
        for flow_id in node.outgoing:
            flow = d.flows.get(flow_id)
            target = d.nodes.get(flow.target) if flow else None
            if target is None or target.id in seen:
                continue
            seen.add(target.id)
            if target.type == "exclusiveGateway":
                conditions = [d.flows[f].condition or "" for f in target.outgoing if f in d.flows]
                if any("in_favour" in c or "present" in c for c in conditions):
                    return target
                queue.append(target.id)
            elif target.type == "userTask" and d.steps.get(target.id) and d.steps[target.id].kind == "supervision":
                queue.append(target.id)
    return None


def _evaluate_condition(condition: str, counts: dict, params: dict) -> bool:
    """A gateway condition over sample counts; names qualified by a step (``resolve.present``) read
    the field of that name."""
    try:
        expr = compile_expression(condition)
        scope = {name: counts.get(name.rsplit(".", 1)[-1]) for name in expr.names}
        return bool(expr.evaluate(scope, params))
    except (ExpressionError, TypeError, ZeroDivisionError):
        return False


def _passing_exit(flow: Any, gateway: Any) -> bool:
    """The exit a vote takes when it passes: the default flow, or one named “通过”."""
    name = flow.name or ""
    return flow.id == gateway.default_flow or ("通过" in name and not any(w in name for w in ("未", "不", "否")))


def _check_votes(d: ProcedureDefinition) -> Iterable[Problem]:
    """Every vote step names a known meeting body and applies at least its lawful rule: by what the
    step declares (``xw:vote``) and by what its gateway actually does at the law's boundaries."""
    params = {k: p.default for k, p in d.parameters.items()}
    for step in d.steps.values():
        if step.kind != "vote" or step.vote is None:
            continue
        rule = voting.step_rule(step.vote, params, role=step.role)
        if rule is None:
            yield Problem("vote-body", step.id,
                          f"表决步骤“{step.name}”未指明会议机构,或会议机构“{step.vote.get('body', '')}”不在会议机构表中"
                          "(processes/bodies.yaml)",
                          f"vote step names no known meeting body ({step.vote.get('body', '')!r})")
            continue
        for reason in voting.weaker_than_law(rule):
            yield Problem("vote-rule", step.id, f"表决步骤“{step.name}”的规则弱于法定规则:{reason}",
                          f"the vote rule of step {step.id} is weaker than the law")
        gateway = _vote_gateway(d, step.id)
        if gateway is None:
            yield Problem("vote-gateway", step.id, f"表决步骤“{step.name}”之后没有按票数分流的网关",
                          f"vote step {step.id} is not followed by a gateway over its counts")
            continue
        exits = [(d.flows[f].condition, _passing_exit(d.flows[f], gateway)) for f in gateway.outgoing if f in d.flows]
        law = voting.lawful_rule(rule.body, rule.matter or None)
        found = voting.gateway_violations(law, rule, exits, params, _evaluate_condition)
        if found:
            sample = found[0]
            yield Problem("vote-gateway", gateway.id,
                          f"表决步骤“{step.name}”的出口条件在{voting.counts_words(sample.counts, rule)}时判为通过,"
                          f"但依{law.cited or law.name}不能通过:"
                          + ";".join(t.text for t in sample.law.tests if not t.ok),
                          f"the gateway after vote step {step.id} passes counts the law does not pass")


def _check_di(d: ProcedureDefinition) -> Iterable[Problem]:
    plane_refs = {el.get("bpmnElement") for el in d.root.iter(f"{{{BPMNDI}}}BPMNShape")}
    edge_refs = {el.get("bpmnElement") for el in d.root.iter(f"{{{BPMNDI}}}BPMNEdge")}
    for node in d.nodes.values():
        if node.id not in plane_refs:
            yield Problem("di-shape", node.id, f"“{node.name or node.id}”没有图形(BPMNShape)", "flow node without a diagram shape")
    for flow in d.flows.values():
        if flow.id not in edge_refs:
            yield Problem("di-edge", flow.id, "连线没有图形(BPMNEdge)", "sequence flow without a diagram edge")
    for lane in d.lanes.values():
        if lane.id not in plane_refs:
            yield Problem("di-lane", lane.id, f"泳道“{lane.name}”没有图形", "lane without a diagram shape")


# --- township variants (issue #15): what a variant must keep of the district's version -------------
VARIANT_CHECKPOINT_KINDS = {"disclosure": ("公开公示", "disclosure"), "supervision": ("监督", "supervision"),
                            "vote": ("表决", "vote")}
_HOURS = {"h": Fraction(1), "d": Fraction(24), "wd": Fraction(24 * 7, 5)}  # a working day is longer than a day


def _limit_hours(limit: Any) -> Fraction | None:
    return None if limit is None else limit.amount * _HOURS.get(limit.unit, Fraction(24))


def _min_days(d: ProcedureDefinition, step: Any) -> int | None:
    """The minimum notice period (days) of a disclosure step: its own days, or its parameter's default."""
    attrs = step.disclosure or {}
    key = attrs.get("minDaysParam")
    raw = d.parameters[key].default if key and key in d.parameters else attrs.get("minDays")
    try:
        return int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _threshold_key(t: Any) -> tuple:
    return (t.ratio, t.of == "members", t.rule == "more_than")


def _matching_step(base_step: Any, variant: ProcedureDefinition) -> Any:
    """The variant's step for a step of the district's version: the same id, else the same kind and name."""
    found = variant.steps.get(base_step.id)
    if found is not None and found.kind == base_step.kind:
        return found
    return next((s for s in variant.steps.values() if s.kind == base_step.kind and s.name == base_step.name), None)


def _reaches_end_avoiding(d: ProcedureDefinition, blocked: set[str]) -> bool:
    if len(d.start_ids) != 1:
        return False
    succ = _successors(d)
    for nid in _reach(d.start_ids[0], succ, blocked):
        node = d.nodes[nid]
        if node.type == "endEvent" and node.outcome == "completed":
            return True
    return False


def variant_problems(base: ProcedureDefinition, variant: ProcedureDefinition) -> list[Problem]:
    """What a township variant drops or loosens of the district's version ``base``: every disclosure,
    supervision and vote step stays (by id, or kind and name), no path avoids it that the district's
    version does not have, and no time limit, notice period, vote threshold or data check is looser.
    Adding steps and tightening limits is allowed. Messages name the steps by their names."""
    problems: list[Problem] = []

    def add(code: str, element: str, zh: str, en: str) -> None:
        problems.append(Problem(code, element, zh, en))

    for kind, required in base.requires.items():
        if required and not variant.requires.get(kind):
            zh, en = VARIANT_CHECKPOINT_KINDS.get(kind, (kind, kind))
            add("variant-requires", variant.id, f"区级版本要求{zh}环节,变体不能取消这项要求",
                f"the district version requires a {en} checkpoint; a variant cannot drop it")
    for step in base.steps.values():
        label = f"“{step.name or step.id}”"
        mine = _matching_step(step, variant)
        if step.kind in VARIANT_CHECKPOINT_KINDS:
            zh, en = VARIANT_CHECKPOINT_KINDS[step.kind]
            if mine is None:
                add("variant-checkpoint", step.id, f"缺少区级版本中的{zh}环节{label}:变体可以增加步骤,不能删除{zh}环节",
                    f"the {en} step {step.id} of the district version is missing")
                continue
            if not _reaches_end_avoiding(base, {step.id}) and _reaches_end_avoiding(variant, {mine.id}):
                add("variant-bypass", mine.id, f"{zh}环节{label}可以被绕过直达办结,区级版本中不能绕过",
                    f"a path to a completed end avoids the {en} step {mine.id}")
        if mine is None:
            continue
        base_hours, mine_hours = _limit_hours(step.time_limit), _limit_hours(mine.time_limit)
        if base_hours is not None and (mine_hours is None or mine_hours > base_hours):
            now = mine.time_limit.zh() if mine.time_limit else "不限时"
            add("variant-time-limit", mine.id, f"步骤{label}的时限放宽了:区级为{step.time_limit.zh()},变体为{now}",
                f"the time limit of {mine.id} is looser than the district's ({step.time_limit} -> {mine.time_limit})")
        if step.kind == "disclosure" and mine.kind == "disclosure":
            base_days, mine_days = _min_days(base, step), _min_days(variant, mine)
            if base_days is not None and (mine_days is None or mine_days < base_days):
                add("variant-notice", mine.id, f"公开环节{label}的公示期缩短了:区级不少于{base_days}天,"
                    f"变体为{'未规定' if mine_days is None else f'{mine_days}天'}",
                    f"the notice period of {mine.id} is shorter than the district's {base_days} days")
        if step.kind == "vote" and mine.kind == "vote" and step.vote and mine.vote:
            params_b = {k: p.default for k, p in base.parameters.items()}
            params_v = {k: p.default for k, p in variant.parameters.items()}
            rule_b = voting.step_rule(step.vote, params_b, role=step.role)
            rule_v = voting.step_rule(mine.vote, params_v, role=mine.role)
            if rule_b is not None and (rule_v is None or rule_v.body != rule_b.body
                                       or _threshold_key(rule_v.quorum) < _threshold_key(rule_b.quorum)
                                       or _threshold_key(rule_v.passing) < _threshold_key(rule_b.passing)):
                add("variant-vote", mine.id, f"表决环节{label}的规则放宽了:区级为{voting.describe(rule_b)}"
                    + (f",变体为{voting.describe(rule_v)}" if rule_v is not None else ",变体未指明会议机构"),
                    f"the vote rule of {mine.id} is looser than the district's")
        kept = {c.test for c in mine.constraints}
        for c in step.constraints:
            if c.test not in kept:
                add("variant-constraint", mine.id, f"步骤{label}删除了区级版本的核验规则“{c.message}”",
                    f"step {mine.id} drops a data check of the district version")
    return problems


def lint_file(path) -> LintResult:
    """Lint one file on disk."""
    with open(path, "rb") as fh:
        data = fh.read()
    return lint_bytes(data, str(path))


__all__ = ["Problem", "LintResult", "lint_bytes", "lint_file", "check_definition", "bypass_path", "sample_values"]
