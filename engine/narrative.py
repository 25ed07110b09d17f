"""The trail in words: every audit event told in plain Chinese, for every place that shows it.

The trail page, the printed trail and its PDF, the administrators' system trail, `xiaowei case
show` and the JSON export all render events through :func:`describe`, so what a supervisor reads
is the same everywhere. No event codes, no raw expressions: a gateway decision reads
"到会不足法定人数:实到人数 17 人,小于 应到人数 41 人 × 党员大会到会比例(三分之二)".

A step's submission is shown in full; a "before → after" comparison exists only between rounds of
the same step (a step done again after a return), never across different steps.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping

from . import catalogue
from .definitions import ProcedureDefinition, parse_param_value
from .expressions import ExpressionError, compile_expression, qualified
from .forms import Field

# What each kind of step is called in a sentence.
KIND_ZH = {"task": "办理", "meeting": "会议", "vote": "表决", "approval": "审批", "disclosure": "公示",
           "supervision": "监督"}
STATUS_ZH = {"running": "办理中", "completed": "已办结", "rejected": "未通过", "terminated": "已终止",
             "cancelled": "已撤销"}
DENIED_ACTIONS = {"view": "查看事项", "view_trail": "查看留痕", "export_trail": "导出留痕", "complete": "办理步骤",
                  "cancel": "撤销事项", "download_file": "下载附件", "start": "发起事项", "dossier": "查阅卷宗"}
LOGIN_REASONS = {"bad_password": "密码错误", "unknown_user": "无此用户", "locked": "账户已锁定",
                 "inactive": "账户已停用", "password_change": "改密码时原密码错误"}
WARNING_STATUS = {"acknowledged": "签收", "resolved": "办结", "dismissed": "排除", "supervised": "立案督办"}
SEVERITY_ZH = {"red": "红色", "yellow": "黄色", "blue": "蓝色"}
ORG_KIND_ZH = {"district": "区", "township": "镇(街道)", "village": "村", "community": "社区"}


@dataclass
class Entry:
    """One event told for people: a title line, detail lines, the values of a submission, the
    changes against the step's previous round, and the evidence files."""

    title: str
    lines: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)  # (label, value as text)
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (label, before, after)
    attachments: list[dict] = field(default_factory=list)
    after: list[str] = field(default_factory=list)  # what happens next: steps opened, timers started
    tone: str = ""  # "denied" for refused attempts, "" otherwise

    def text(self) -> str:
        """The whole entry as plain text (command line, JSON export)."""
        out = [self.title, *self.lines]
        out += [f"{label}:{value}" for label, value in self.items]
        out += [f"改动 {label}:{before} → {after}" for label, before, after in self.changes]
        out += [f"附件:{a.get('name', '')}(SHA-256 {a.get('sha256', '')[:12]}…)" for a in self.attachments]
        return "\n".join(out + self.after)


# --- values -----------------------------------------------------------------------------------------

_DIGITS = "零一二三四五六七八九十"


def number_zh(n: int) -> str:
    """Small whole numbers in Chinese characters (fractions of a vote rule): 2 → 二, 10 → 十."""
    if 0 <= n <= 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + _DIGITS[n - 10]
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    return str(n)


def ratio_zh(value: Any) -> str:
    """A ratio as people say it: 1/2 → 半数, 2/3 → 三分之二, 0.6 → 五分之三."""
    try:
        r = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return str(value)
    if r == Fraction(1, 2):
        return "半数"
    if r == 1:
        return "全部"
    if r.denominator <= 100 and r.numerator < r.denominator:
        return f"{number_zh(r.denominator)}分之{number_zh(r.numerator)}"
    return f"{float(r) * 100:g}%"


def money_text(value: Any) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return f"{amount:,.2f} 元"


def value_text(f: Field | None, value: Any) -> str:
    """A submitted value as a person reads it."""
    if value is None or value == "":
        return "(空)"
    if isinstance(value, bool) or (f is not None and f.type == "boolean" and str(value).lower() in ("true", "false")):
        truth = value if isinstance(value, bool) else str(value).lower() == "true"
        return "是" if truth else "否"
    if isinstance(value, (list, tuple)):
        return "、".join(value_text(f, v) for v in value)
    if f is None:
        return str(value)
    if f.type == "choice":
        return next((o.label for o in f.options if o.value == str(value)), str(value))
    if f.type == "money":
        return money_text(value)
    if f.unit:
        return f"{value} {f.unit}"
    return str(value)


def param_text(ptype: str, value: Any, unit: str = "") -> str:
    if ptype == "ratio":
        return ratio_zh(value)
    if ptype == "money":
        return money_text(value)
    if ptype == "days":
        return f"{value} 天"
    return f"{value}{(' ' + unit) if unit else ''}"


# --- expressions in words ---------------------------------------------------------------------------

_OPS = {ast.Lt: "小于", ast.LtE: "不大于", ast.Gt: "大于", ast.GtE: "不小于", ast.Eq: "等于", ast.NotEq: "不等于",
        ast.In: "属于", ast.NotIn: "不属于"}
_ARITH = {ast.Add: "+", ast.Sub: "−", ast.Mult: "×", ast.Div: "÷", ast.FloorDiv: "÷", ast.Mod: "除以…的余数"}


class Words:
    """Turns a safe expression into a Chinese sentence with the values it was decided on.

    ``label(name)`` gives a field's label and Field (qualified names: the step's name too),
    ``values`` the values read, ``params`` the case's parameter values and their declarations."""

    def __init__(self, d: ProcedureDefinition | None, values: Mapping[str, Any], params: Mapping[str, Any]):
        self.d = d
        self.values = values
        self.params = params
        self.fields = d.readable_fields() if d is not None else {}

    def sentence(self, source: str) -> str:
        try:
            tree = compile_expression(source).tree.body
        except ExpressionError:
            return "(条件无法解读)"
        return self._node(_drop_guards(tree))

    def _name(self, name: str) -> str:
        f = self.fields.get(name)
        step_id = name.partition(".")[0] if "." in name else None
        label = f.label if f is not None else name.rpartition(".")[2]
        if step_id and self.d is not None and step_id in self.d.steps:
            label = f"{self.d.steps[step_id].name}·{label}"
        if name in self.values:
            return f"{label} {value_text(f, self.values[name])}"
        return label

    def _param(self, key: str) -> str:
        p = self.d.parameters.get(key) if self.d is not None else None
        label = p.label if p is not None else "本地参数"
        if key in self.params:
            return f"{label}({param_text(p.type if p else 'text', self.params[key], p.unit if p else '')})"
        return label

    def _node(self, node: ast.AST) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = ",且" if isinstance(node.op, ast.And) else ",或"
            return joiner.join(self._node(v) for v in node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"并非“{self._node(node.operand)}”"
        if isinstance(node, ast.UnaryOp):
            return f"−{self._node(node.operand)}" if isinstance(node.op, ast.USub) else self._node(node.operand)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            return self._compare(node.left, node.ops[0], node.comparators[0])
        if isinstance(node, ast.Compare):
            parts, left = [], node.left
            for op, right in zip(node.ops, node.comparators):
                parts.append(self._compare(left, op, right))
                left = right
            return ",且".join(parts)
        if isinstance(node, ast.BinOp):
            return f"{self._node(node.left)} {_ARITH.get(type(node.op), '?')} {self._node(node.right)}"
        if isinstance(node, ast.Name):
            if node.id in ("True", "False", "None"):
                return {"True": "是", "False": "否", "None": "空"}[node.id]
            return self._name(node.id)
        name = qualified(node)
        if name is not None:
            return self._name(name)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return "是" if node.value else "否"
            return f"“{node.value}”" if isinstance(node.value, str) else str(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            fn = node.func.id
            if fn == "param" and node.args and isinstance(node.args[0], ast.Constant):
                return self._param(str(node.args[0].value))
            if fn in ("float", "int", "round", "str") and node.args:
                return self._node(node.args[0])
            if fn == "abs" and node.args:
                return f"|{self._node(node.args[0])}|"
            if fn == "duration_days" and node.args:
                return f"{self._node(node.args[0])}天"
            if fn == "duration_hours" and node.args:
                return f"{self._node(node.args[0])}小时"
            if fn == "len" and node.args:
                return f"{self._node(node.args[0])}的个数"
            if fn in ("min", "max"):
                inner = "、".join(self._node(a) for a in node.args)
                return f"{inner}中{'较小' if fn == 'min' else '较大'}者"
        if isinstance(node, (ast.List, ast.Tuple)):
            return "、".join(self._node(e) for e in node.elts)
        if isinstance(node, ast.IfExp):
            return f"{self._node(node.body)}(若{self._node(node.test)}),否则{self._node(node.orelse)}"
        return "(条件)"

    def _compare(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> str:
        # `approved == False`, `is_major == True`: say the field and its answer.
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) and isinstance(right.value, bool):
            name = left.id if isinstance(left, ast.Name) else qualified(left)
            if name is not None:
                f = self.fields.get(name)
                label = f.label if f is not None else name
                answer = right.value if isinstance(op, ast.Eq) else not right.value
                return f"{label}:{'是' if answer else '否'}"
        # `method == "scrap"`: the option's label.
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) and isinstance(right.value, str):
            name = left.id if isinstance(left, ast.Name) else qualified(left)
            f = self.fields.get(name or "")
            if f is not None:
                label = value_text(f, right.value)
                return f"{f.label}{'为' if isinstance(op, ast.Eq) else '不是'}“{label}”"
        return f"{self._node(left)},{_OPS.get(type(op), '?')} {self._node(right)}"


def _drop_guards(tree: ast.AST) -> ast.AST:
    """``not (earlier) and this`` (the generator's first-match guards): only ``this`` says why."""
    if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And):
        kept = [v for v in tree.values if not (isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not))]
        if kept and len(kept) < len(tree.values):
            return kept[0] if len(kept) == 1 else ast.BoolOp(op=ast.And(), values=kept)
    return tree


# --- events ------------------------------------------------------------------------------------------

@dataclass
class Context:
    """What describing a case's events needs besides the events themselves."""

    definition: ProcedureDefinition | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # username -> display name
    params: dict[str, Any] = field(default_factory=dict)  # the case's frozen parameter values
    # The previous round of each step seen so far (values), filled while describing in order.
    rounds: dict[str, dict] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    # Parameter key -> its label (the system chain names parameters by key only).
    param_labels: Mapping[str, str] = field(default_factory=dict)
    # Whether personal data of the public (objectors, reporters) may be shown to this reader.
    show_identities: bool = False

    def who(self, username: str) -> str:
        if not username or username == "system":
            return "系统"
        if username == "public":
            return "群众(未登录)"
        if username == "cli":
            return "命令行"
        name = self.names.get(username)
        return f"{name}({username})" if name and name != username else username

    def field(self, step_id: str | None, name: str) -> Field | None:
        d = self.definition
        if d is None:
            return None
        step = d.steps.get(step_id or "")
        if step is not None:
            found = next((f for f in step.fields if f.name == name), None)
            if found is not None:
                return found
        return d.fields_by_name().get(name)


def case_params(events: Iterable[Mapping], d: ProcedureDefinition | None) -> dict[str, Any]:
    """The parameter values a case was started with (from its ``case_started`` event), typed."""
    started = next((e for e in events if e.get("type") == "case_started"), None)
    out: dict[str, Any] = {}
    if started is None:
        return out
    for key, entry in (started.get("data", {}).get("params") or {}).items():
        raw = entry.get("value") if isinstance(entry, Mapping) else entry
        p = d.parameters.get(key) if d is not None else None
        try:
            out[key] = parse_param_value(p.type, raw) if p is not None else raw
        except ValueError:
            out[key] = raw
    return out


def describe_all(events: list[Mapping], ctx: Context) -> list[Entry]:
    """Every event of a chain, in order (rounds are compared as they come)."""
    if not ctx.params:
        ctx.params = case_params(events, ctx.definition)
    return [describe(e, ctx) for e in events]


def describe(event: Mapping, ctx: Context) -> Entry:
    """One event in words. Unknown kinds still read as words (never the event code)."""
    kind = str(event.get("type") or "")
    data = event.get("data") or {}
    handler = _HANDLERS.get(kind)
    if handler is None and kind.startswith("warning_"):
        handler = _warning
    if handler is None:
        return Entry("其他记录", [f"记录人:{ctx.who(str(event.get('actor') or ''))}"])
    entry = handler(data, ctx, event)
    entry.after.extend(_opened(data, ctx))
    return entry


def _opened(data: Mapping, ctx: Context) -> list[str]:
    lines = []
    opened = data.get("opened") or []
    if opened:
        parts = []
        for o in opened:
            role = catalogue.role_zh(o.get("role"), "")
            due = f",期限 {china(o['due_at'])}" if o.get("due_at") else ""
            parts.append(f"“{o.get('name', '')}”({role}{due})" if role else f"“{o.get('name', '')}”{due}")
        lines.append("进入下一步:" + "、".join(parts))
    timers = data.get("timers") or []
    if timers:
        lines.append("开始计时:" + "、".join(f"{t.get('name', '')}至 {china(t.get('due_at'))}" for t in timers))
    return lines


def china(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An ISO UTC timestamp of the chain in Beijing time."""
    from datetime import datetime, timedelta

    if not value:
        return ""
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if at.tzinfo is not None:
        at = at.replace(tzinfo=None) - (at.utcoffset() or timedelta(0))
    return (at + timedelta(hours=8)).strftime(fmt)


def _case_started(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    entry = Entry(f"发起事项“{data.get('title', '')}”",
                  [f"{data.get('procedure_name', '')} 第{data.get('procedure_version', '')}版 · {data.get('org_name', '')}"])
    public = data.get("public")
    if public:
        entry.title = f"群众通过{public.get('channel', '公开渠道')}提交,立案“{data.get('title', '')}”"
    for name, value in (data.get("initial") or {}).items():
        f = ctx.field(None, name)
        if f is not None and f.type in ("person", "phone", "idnumber") and public and not ctx.show_identities:
            continue
        entry.items.append((f.label if f else name, value_text(f, value)))
    return entry


def _step_completed(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    step_id = str(data.get("step") or "")
    d = ctx.definition
    step = d.steps.get(step_id) if d is not None else None
    name = data.get("name") or (step.name if step else step_id)
    values = data.get("data") or {}
    previous = ctx.rounds.get(step_id)
    ctx.counts[step_id] = ctx.counts.get(step_id, 0) + 1
    ctx.rounds[step_id] = dict(values)
    kind = KIND_ZH.get(str(data.get("kind") or (step.kind if step else "task")), "办理")
    round_ = int(data.get("round") or ctx.counts[step_id])
    entry = Entry(f"{kind}“{name}”" + (f"(第{number_zh(round_)}次)" if round_ > 1 else ""))
    proxy = data.get("on_behalf_of")
    if isinstance(proxy, Mapping) and proxy.get("name"):
        entry.lines.append(f"代办:为 {proxy.get('name')} 代办,原因:{proxy.get('reason', '')}")
    fields = list(step.fields) if step is not None else []
    shown = {f.name for f in fields}
    for f in fields:
        if f.name in values:
            entry.items.append((f.label, value_text(f, values[f.name])))
    for key, value in values.items():
        if key not in shown:
            f = ctx.field(step_id, key)
            entry.items.append((f.label if f else key, value_text(f, value)))
    if previous is not None:  # only a round of the same step is compared with the one before
        for key in list(dict.fromkeys([*previous, *values])):
            if previous.get(key) != values.get(key):
                f = ctx.field(step_id, key)
                entry.changes.append((f.label if f else key, value_text(f, previous.get(key)),
                                      value_text(f, values.get(key))))
    entry.attachments = list(data.get("attachments") or [])
    return entry


def _gateway_decided(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    d = ctx.definition
    label = str(data.get("label") or "")
    name = str(data.get("name") or "流程判断").rstrip("??")
    target_id = data.get("target")
    target = d.nodes.get(str(target_id)) if d is not None and target_id else None
    target_name = str(data.get("target_name") or (target.name if target else "") or "下一步").rstrip("??")
    if target is not None and target.type == "exclusiveGateway":
        onward = f"接着判断“{target_name}”"
    elif target is not None and target.type == "endEvent":
        onward = f"流程到达“{target_name}”"
    else:
        onward = f"进入“{target_name}”"
    entry = Entry(f"{name}:{label} → {onward}" if label else f"{name} → {onward}")
    inputs = data.get("inputs") or {}
    condition = data.get("condition")
    votes = _vote_lines(d, str(data.get("gateway") or ""), inputs, ctx.params)
    if votes:
        entry.lines.extend(votes)
    elif condition and condition != "default":
        entry.lines.append("依据:" + Words(d, inputs, ctx.params).sentence(str(condition)))
    elif inputs:
        words = Words(d, inputs, ctx.params)
        entry.lines.append("依据:" + ";".join(words._name(k) for k in sorted(inputs)) + "(其他出口的条件均不成立)")
    return entry


def _vote_lines(d: ProcedureDefinition | None, gateway: str, inputs: Mapping, params: Mapping) -> list[str]:
    """A vote gateway's decision as the vote rule in words (到会人数与票数对照法定比例)."""
    if d is None or gateway not in d.nodes or "present" not in inputs:
        return []
    from .dossier import vote_checks

    for step_id in d.steps:
        if d.steps[step_id].kind == "vote" and gateway == f"{step_id}_vote_gw":
            return [c["text"] for c in vote_checks(d, step_id, inputs, params)]
    return []


def _timer_fired(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    name = data.get("name") or "时限"
    return Entry(f"时限届满:{name}")


def _steps_opened(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    return Entry("流程推进")


def _case_closed(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    return Entry(f"流程结束:{data.get('name', '')}({STATUS_ZH.get(str(data.get('status')), '已结束')})")


def _case_cancelled(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    return Entry("撤销事项", [f"原因:{data.get('reason', '')}"])


def _access_denied(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    action = DENIED_ACTIONS.get(str(data.get("action") or ""), "操作")
    step = data.get("step")
    if step and ctx.definition is not None and step in ctx.definition.steps:
        action = f"办理步骤“{ctx.definition.steps[step].name}”"
    message = str(data.get("message") or "").split(" / ", 1)[0]
    return Entry(f"拒绝越权操作:{action}", [f"{ctx.who(str(event.get('actor') or ''))}:{message}"], tone="denied")


def _objection_filed(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    step = data.get("step_name") or data.get("step") or ""
    entry = Entry(f"收到村民异议(公示:{step})" if step else "收到村民异议")
    if data.get("text"):
        entry.items.append(("异议内容", str(data["text"])))
    if ctx.show_identities and (data.get("name") or data.get("phone")):
        entry.items.append(("异议人", " ".join(str(x) for x in (data.get("name") or "未留姓名", data.get("phone") or "")
                                                if x).strip()))
    return entry


def _warning(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    kind = str(event.get("type") or "")[len("warning_"):]
    verb = WARNING_STATUS.get(kind, "处理")
    severity = SEVERITY_ZH.get(str(data.get("severity") or ""), "")
    entry = Entry(f"{verb}{severity}预警:{data.get('summary', '')}")
    if data.get("opinion"):
        entry.lines.append(f"处理意见:{data['opinion']}")
    if data.get("supervision_case_id"):
        entry.lines.append(f"督办事项 #{data['supervision_case_id']}")
    return entry


def _role_spec(spec: Any) -> str:
    role, _, org = str(spec or "").partition("@")
    return f"{catalogue.role_zh(role, role)}@{org}" if org else catalogue.role_zh(role, role)


def _system(title: Callable[[Mapping, Context], str]):
    def handler(data: Mapping, ctx: Context, event: Mapping) -> Entry:
        return Entry(title(data, ctx))
    return handler


def _param_label(key: Any, ctx: Context) -> str:
    label = ctx.param_labels.get(str(key or ""))
    return f"参数“{label}”" if label else "本地参数"


_HANDLERS: dict[str, Callable[[Mapping, Context, Mapping], Entry]] = {
    "case_started": _case_started,
    "step_completed": _step_completed,
    "gateway_decided": _gateway_decided,
    "timer_fired": _timer_fired,
    "steps_opened": _steps_opened,
    "case_closed": _case_closed,
    "case_cancelled": _case_cancelled,
    "access_denied": _access_denied,
    "objection_filed": _objection_filed,
    # The system chain (administrative actions).
    "org_added": _system(lambda d, c: f"新增机构 {d.get('name', '')}({ORG_KIND_ZH.get(str(d.get('kind')), '')},"
                                      f"代码 {d.get('code', '')})" + (f",上级 {d['parent']}" if d.get("parent") else "")),
    "user_added": _system(lambda d, c: f"新建用户 {c.who(str(d.get('username', '')))}"
                                       + (",角色 " + "、".join(_role_spec(r) for r in d.get("roles") or [])
                                          if d.get("roles") else "")),
    "role_granted": _system(lambda d, c: f"授予 {c.who(str(d.get('username', '')))} 角色 {_role_spec(d.get('role'))}"),
    "role_revoked": _system(lambda d, c: f"撤销 {c.who(str(d.get('username', '')))} 的角色 {_role_spec(d.get('role'))}"),
    "user_deactivated": _system(lambda d, c: f"停用用户 {c.who(str(d.get('username', '')))}"),
    "user_reactivated": _system(lambda d, c: f"恢复启用用户 {c.who(str(d.get('username', '')))}"),
    "password_set": _system(lambda d, c: f"设置 {c.who(str(d.get('username', '')))} 的密码"),
    "login_failed": _system(lambda d, c: f"登录失败:{d.get('username', '')}"
                                         f"({LOGIN_REASONS.get(str(d.get('reason')), '未通过验证')}"
                                         + (f",连续第 {d['failures']} 次" if d.get("failures") else "") + ")"),
    "procedure_published": _system(lambda d, c: f"发布事项 {d.get('procedure_id', '')} 第{d.get('version', '')}版"),
    "version_effective": _system(lambda d, c: f"事项 {d.get('procedure_id', '')} 第{d.get('version', '')}版生效"
                                              f"(原为第{d.get('from_version', '')}版)"),
    "parameter_set": _system(lambda d, c: f"设定 {d.get('org', '')} 的{_param_label(d.get('key'), c)}:"
                                          + (f"{d['before']} → " if d.get("before") is not None else "")
                                          + f"{d.get('after', '')}"),
    "parameter_reset": _system(lambda d, c: f"取消 {d.get('org', '')} 对{_param_label(d.get('key'), c)}的本级设定"
                                            f"(原为 {d.get('before', '')})"),
    "draft_saved": _system(lambda d, c: f"保存事项 {d.get('procedure_id', '')} 的草稿(第{d.get('revision', '')}稿)"),
    "step_table_saved": _system(lambda d, c: f"保存事项 {d.get('procedure_id', '')} 的任务单(第{d.get('revision', '')}稿)"),
    "draft_deleted": _system(lambda d, c: f"删除事项 {d.get('procedure_id', '')} 的草稿"),
    "draft_published": _system(lambda d, c: f"由草稿发布事项 {d.get('procedure_id', '')} 第{d.get('version', '')}版"
                                            + (f",{china(d['effective_from'])} 起生效" if d.get("effective_from") else "")
                                            + (f";说明:{d['note']}" if d.get("note") else "")),
    "case_migrated": _system(lambda d, c: f"事项 #{d.get('case_id', '')} 迁移到第{d.get('to_version', '')}版"
                                          f"(原为第{d.get('from_version', '')}版)"),
    "kin_declared": _system(lambda d, c: f"登记亲属关系:{c.who(str(d.get('cadre', '')))} 与 {d.get('person_name', '')}"),
    "supervision_note_recorded": _system(lambda d, c: f"记录廉情档案:关于 {c.who(str(d.get('subject', '')))}"),
}

EVENT_TYPES = frozenset(_HANDLERS) | {f"warning_{k}" for k in WARNING_STATUS}
