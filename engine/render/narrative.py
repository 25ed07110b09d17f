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
import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping

from engine.core import catalogue, voting
from engine.core.definitions import ProcedureDefinition, parse_param_value
from engine.core.expressions import ExpressionError, compile_expression, qualified
from engine.core.forms import Field

# The language of the words (Chinese first; English on an English page).
_LANG: contextvars.ContextVar[str] = contextvars.ContextVar("xiaowei_narrative_lang", default="zh")


def t(zh: str, en: str) -> str:
    """The Chinese or the English wording, by the language in force (:func:`language`)."""
    return en if _LANG.get() == "en" else zh


@contextmanager
def language(lang: str):
    """Describe in ``lang`` ("zh" or "en") inside the block."""
    token = _LANG.set("en" if lang == "en" else "zh")
    try:
        yield
    finally:
        _LANG.reset(token)


def english() -> bool:
    return _LANG.get() == "en"


def label_of(f: Any) -> str:
    """A field's (or an option's) label in the language in force: the English where the procedure has it."""
    return (getattr(f, "label_en", "") or f.label) if english() else f.label


def unit_text(unit: str) -> str:
    """A unit (元, 天, 户 …) in the language in force (the library's glossary has the English)."""
    if not english() or not unit:
        return unit
    from engine.bpmn.english import english as in_english

    return in_english(unit, kind="units") or unit


def step_name(step: Any, fallback: str = "") -> str:
    """A step's (or an end's) name in the language in force; ``fallback`` without a step."""
    if step is None:
        return fallback
    return (getattr(step, "name_en", "") or step.name) if english() else step.name


def _node_name(ctx: "Context", node_id: Any, recorded: Any) -> str:
    """The name of a step or end recorded in an event: in English from the procedure where it has one."""
    if english() and ctx.definition is not None:
        node = ctx.definition.steps.get(str(node_id or "")) or ctx.definition.nodes.get(str(node_id or ""))
        if node is not None and getattr(node, "name_en", ""):
            return node.name_en
    return str(recorded or "")


# What each kind of step is called in a sentence.
KIND_ZH = {"task": "办理", "meeting": "会议", "vote": "表决", "approval": "审批", "disclosure": "公示",
           "supervision": "监督"}
KIND_EN = {"task": "Did", "meeting": "Held", "vote": "Voted on", "approval": "Reviewed", "disclosure": "Put on notice",
           "supervision": "Supervised"}
STATUS_EN = {"running": "in progress", "completed": "completed", "rejected": "rejected", "terminated": "terminated",
             "cancelled": "cancelled"}
DENIED_EN = {"view": "view the case", "view_trail": "view the trail", "export_trail": "export the trail",
             "complete": "do a step", "cancel": "cancel the case", "download_file": "download a file",
             "start": "start a case", "dossier": "read the case file"}
LOGIN_EN = {"bad_password": "wrong password", "unknown_user": "no such user", "locked": "account locked",
            "inactive": "account deactivated", "password_change": "wrong old password when changing it"}
WARNING_EN = {"acknowledged": "Acknowledged", "resolved": "Resolved", "dismissed": "Dismissed",
              "supervised": "Opened a supervision case for"}
SEVERITY_EN = {"red": "red", "yellow": "yellow", "blue": "blue"}
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
        out += [t(f"改动 {label}:{before} → {after}", f"changed {label}: {before} → {after}")
                for label, before, after in self.changes]
        out += [t(f"附件:{a.get('name', '')}(SHA-256 {a.get('sha256', '')[:12]}…)",
                  f"file: {a.get('name', '')} (SHA-256 {a.get('sha256', '')[:12]}…)") for a in self.attachments]
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
    if english():
        return "half" if r == Fraction(1, 2) else f"{r.numerator}/{r.denominator}"
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
    return t(f"{amount:,.2f} 元", f"{amount:,.2f} yuan")


def value_text(f: Field | None, value: Any) -> str:
    """A submitted value as a person reads it."""
    if value is None or value == "":
        return t("(空)", "(empty)")
    if isinstance(value, bool) or (f is not None and f.type == "boolean" and str(value).lower() in ("true", "false")):
        truth = value if isinstance(value, bool) else str(value).lower() == "true"
        return t("是", "yes") if truth else t("否", "no")
    if isinstance(value, (list, tuple)):
        return "、".join(value_text(f, v) for v in value)
    if f is None:
        return str(value)
    if f.type == "choice":
        return next((label_of(o) for o in f.options if o.value == str(value)), str(value))
    if f.type == "money":
        return money_text(value)
    if f.unit:
        return f"{value} {unit_text(f.unit)}"
    return str(value)


def param_text(ptype: str, value: Any, unit: str = "") -> str:
    if ptype == "ratio":
        return ratio_zh(value)
    if ptype == "money":
        return money_text(value)
    if ptype == "days":
        return t(f"{value} 天", f"{value} days")
    return f"{value}{(' ' + unit) if unit else ''}"


# --- expressions in words ---------------------------------------------------------------------------

_OPS = {ast.Lt: "小于", ast.LtE: "不大于", ast.Gt: "大于", ast.GtE: "不小于", ast.Eq: "等于", ast.NotEq: "不等于",
        ast.In: "属于", ast.NotIn: "不属于"}
_OPS_EN = {ast.Lt: "is less than", ast.LtE: "is at most", ast.Gt: "is more than", ast.GtE: "is at least",
           ast.Eq: "equals", ast.NotEq: "differs from", ast.In: "is one of", ast.NotIn: "is none of"}
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
            return t("(条件无法解读)", "(a condition that cannot be read)")
        return self._node(_drop_guards(tree))

    def _name(self, name: str) -> str:
        f = self.fields.get(name)
        step_id = name.partition(".")[0] if "." in name else None
        label = label_of(f) if f is not None else name.rpartition(".")[2]
        if step_id and self.d is not None and step_id in self.d.steps:
            label = f"{step_name(self.d.steps[step_id])}·{label}"
        if name in self.values:
            return f"{label} {value_text(f, self.values[name])}"
        return label

    def _param(self, key: str) -> str:
        p = self.d.parameters.get(key) if self.d is not None else None
        label = p.label if p is not None else t("本地参数", "a local parameter")
        if key in self.params:
            return f"{label}({param_text(p.type if p else 'text', self.params[key], p.unit if p else '')})"
        return label

    def _node(self, node: ast.AST) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = t(",且", "; and ") if isinstance(node.op, ast.And) else t(",或", "; or ")
            return joiner.join(self._node(v) for v in node.values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return t(f"并非“{self._node(node.operand)}”", f"not “{self._node(node.operand)}”")
        if isinstance(node, ast.UnaryOp):
            return f"−{self._node(node.operand)}" if isinstance(node.op, ast.USub) else self._node(node.operand)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            return self._compare(node.left, node.ops[0], node.comparators[0])
        if isinstance(node, ast.Compare):
            parts, left = [], node.left
            for op, right in zip(node.ops, node.comparators):
                parts.append(self._compare(left, op, right))
                left = right
            return t(",且", "; and ").join(parts)
        if isinstance(node, ast.BinOp):
            return f"{self._node(node.left)} {_ARITH.get(type(node.op), '?')} {self._node(node.right)}"
        if isinstance(node, ast.Name):
            if node.id in ("True", "False", "None"):
                return {"True": t("是", "yes"), "False": t("否", "no"), "None": t("空", "empty")}[node.id]
            return self._name(node.id)
        name = qualified(node)
        if name is not None:
            return self._name(name)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return t("是", "yes") if node.value else t("否", "no")
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
                return t(f"{self._node(node.args[0])}天", f"{self._node(node.args[0])} days")
            if fn == "duration_hours" and node.args:
                return t(f"{self._node(node.args[0])}小时", f"{self._node(node.args[0])} hours")
            if fn == "len" and node.args:
                return t(f"{self._node(node.args[0])}的个数", f"the number of {self._node(node.args[0])}")
            if fn in ("min", "max"):
                inner = t("、", ", ").join(self._node(a) for a in node.args)
                return t(f"{inner}中{'较小' if fn == 'min' else '较大'}者",
                         f"the {'smaller' if fn == 'min' else 'larger'} of {inner}")
        if isinstance(node, (ast.List, ast.Tuple)):
            return "、".join(self._node(e) for e in node.elts)
        if isinstance(node, ast.IfExp):
            return t(f"{self._node(node.body)}(若{self._node(node.test)}),否则{self._node(node.orelse)}",
                     f"{self._node(node.body)} if {self._node(node.test)}, else {self._node(node.orelse)}")
        return t("(条件)", "(condition)")

    def _compare(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> str:
        # `approved == False`, `is_major == True`: say the field and its answer.
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) and isinstance(right.value, bool):
            name = left.id if isinstance(left, ast.Name) else qualified(left)
            if name is not None:
                f = self.fields.get(name)
                label = f.label if f is not None else name
                answer = right.value if isinstance(op, ast.Eq) else not right.value
                return f"{label}: {t('是', 'yes') if answer else t('否', 'no')}" if english() else \
                    f"{label}:{'是' if answer else '否'}"
        # `method == "scrap"`: the option's label.
        if isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Constant) and isinstance(right.value, str):
            name = left.id if isinstance(left, ast.Name) else qualified(left)
            f = self.fields.get(name or "")
            if f is not None:
                label = value_text(f, right.value)
                return t(f"{f.label}{'为' if isinstance(op, ast.Eq) else '不是'}“{label}”",
                         f"{f.label} {'is' if isinstance(op, ast.Eq) else 'is not'} “{label}”")
        if english():
            return f"{self._node(left)} {_OPS_EN.get(type(op), '?')} {self._node(right)}"
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
    # Organization code -> name.
    org_names: Mapping[str, str] = field(default_factory=dict)

    def org(self, code: Any) -> str:
        return self.org_names.get(str(code or ""), str(code or ""))
    # Whether personal data of the public (objectors, reporters) may be shown to this reader.
    show_identities: bool = False
    lang: str = "zh"  # "en": describe in English (names, labels and values entered stay as written)

    def who(self, username: str, *, account: bool = False) -> str:
        """A person as people read them: the display name (with the account with ``account``)."""
        if not username or username == "system":
            return t("系统", "the system")
        if username == "public":
            return t("群众(未登录)", "a member of the public")
        if username == "cli":
            return t("命令行", "the command line")
        name = self.names.get(username)
        if not name or name == username:
            return username
        return f"{name}({username})" if account else name

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
    with language(ctx.lang):
        return _describe(event, ctx)


def _describe(event: Mapping, ctx: Context) -> Entry:
    kind = str(event.get("type") or "")
    data = event.get("data") or {}
    handler = _HANDLERS.get(kind)
    if handler is None and kind.startswith("warning_"):
        handler = _warning
    if handler is None:
        return Entry(t("其他记录", "Other record"), [t(f"记录人:{ctx.who(str(event.get('actor') or ''))}",
                                                       f"Recorded by {ctx.who(str(event.get('actor') or ''))}")])
    entry = handler(data, ctx, event)
    entry.after.extend(_opened(data, ctx))
    return entry


def _opened(data: Mapping, ctx: Context) -> list[str]:
    lines = []
    opened = data.get("opened") or []
    if opened:
        parts = []
        for o in opened:
            role = _role_name(o.get("role"))
            due = t(f",期限 {china(o['due_at'])}", f", due {china(o['due_at'])}") if o.get("due_at") else ""
            name = _node_name(ctx, o.get("step"), o.get("name", ""))
            parts.append(f"“{name}”({role}{due})" if role else f"“{name}”{due}")
        lines.append(t("进入下一步:", "Next: ") + t("、", ", ").join(parts))
    timers = data.get("timers") or []
    if timers:
        lines.append(t("开始计时:", "Timer started: ") + t("、", ", ").join(
            t(f"{x.get('name', '')}至 {china(x.get('due_at'))}", f"{x.get('name', '')} until {china(x.get('due_at'))}")
            for x in timers))
    return lines


def _role_name(key: Any) -> str:
    role = catalogue.roles().get(str(key or ""))
    if role is None:
        return str(key or "")
    return role.en if english() and role.en else role.zh


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
    entry = Entry(t(f"发起事项“{data.get('title', '')}”", f"Started the case “{data.get('title', '')}”"),
                  [t(f"{data.get('procedure_name', '')} 第{data.get('procedure_version', '')}版 · {data.get('org_name', '')}",
                     f"{data.get('procedure_name', '')} version {data.get('procedure_version', '')} · {data.get('org_name', '')}")])
    public = data.get("public")
    if public:
        entry.title = t(f"群众通过{public.get('channel', '公开渠道')}提交,立案“{data.get('title', '')}”",
                        f"Filed by the public ({public.get('channel', '')}): “{data.get('title', '')}”")
    for name, value in (data.get("initial") or {}).items():
        f = ctx.field(None, name)
        if f is not None and f.type in ("person", "phone", "idnumber") and public and not ctx.show_identities:
            continue
        entry.items.append((label_of(f) if f else name, value_text(f, value)))
    return entry


def _step_completed(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    step_id = str(data.get("step") or "")
    d = ctx.definition
    step = d.steps.get(step_id) if d is not None else None
    name = (step_name(step) if english() and step else "") or data.get("name") or step_name(step, step_id)
    values = data.get("data") or {}
    previous = ctx.rounds.get(step_id)
    ctx.counts[step_id] = ctx.counts.get(step_id, 0) + 1
    ctx.rounds[step_id] = dict(values)
    kind_key = str(data.get("kind") or (step.kind if step else "task"))
    round_ = int(data.get("round") or ctx.counts[step_id])
    if english():
        entry = Entry(f"{KIND_EN.get(kind_key, 'Did')} “{name}”" + (f" (round {round_})" if round_ > 1 else ""))
    else:
        entry = Entry(f"{KIND_ZH.get(kind_key, '办理')}“{name}”" + (f"(第{number_zh(round_)}次)" if round_ > 1 else ""))
    proxy = data.get("on_behalf_of")
    if isinstance(proxy, Mapping) and proxy.get("name"):
        entry.lines.append(t(f"代办:为 {proxy.get('name')} 代办,原因:{proxy.get('reason', '')}",
                             f"On behalf of {proxy.get('name')}, because: {proxy.get('reason', '')}"))
    fields = list(step.fields) if step is not None else []
    shown = {f.name for f in fields}
    for f in fields:
        if f.name in values:
            entry.items.append((label_of(f), value_text(f, values[f.name])))
    for key, value in values.items():
        if key not in shown:
            f = ctx.field(step_id, key)
            entry.items.append((label_of(f) if f else key, value_text(f, value)))
    if previous is not None:  # only a round of the same step is compared with the one before
        for key in list(dict.fromkeys([*previous, *values])):
            if previous.get(key) != values.get(key):
                f = ctx.field(step_id, key)
                entry.changes.append((label_of(f) if f else key, value_text(f, previous.get(key)),
                                      value_text(f, values.get(key))))
    entry.attachments = list(data.get("attachments") or [])
    return entry


def _gateway_decided(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    d = ctx.definition
    label = str(data.get("label") or "")
    name = str(data.get("name") or t("流程判断", "Decision")).rstrip("??")
    target_id = data.get("target")
    target = d.nodes.get(str(target_id)) if d is not None and target_id else None
    target_name = str(data.get("target_name") or (target.name if target else "") or t("下一步", "the next step")).rstrip("??")
    if target is not None and target.type == "exclusiveGateway":
        onward = t(f"接着判断“{target_name}”", f"then decide “{target_name}”")
    elif target is not None and target.type == "endEvent":
        onward = t(f"流程到达“{target_name}”", f"the case reaches “{target_name}”")
    else:
        onward = t(f"进入“{target_name}”", f"on to “{target_name}”")
    entry = Entry(f"{name}:{label} → {onward}" if label else f"{name} → {onward}")
    inputs = data.get("inputs") or {}
    condition = data.get("condition")
    votes = _vote_lines(d, str(data.get("gateway") or ""), inputs, ctx.params)
    if votes:
        entry.lines.extend(votes)
    elif condition and condition != "default":
        entry.lines.append(t("依据:", "Because: ") + Words(d, inputs, ctx.params).sentence(str(condition)))
    elif inputs:
        words = Words(d, inputs, ctx.params)
        entry.lines.append(t("依据:", "Because: ") + t(";", "; ").join(words._name(k) for k in sorted(inputs))
                           + t("(其他出口的条件均不成立)", " (no other exit's condition held)"))
    return entry


def _vote_lines(d: ProcedureDefinition | None, gateway: str, inputs: Mapping, params: Mapping) -> list[str]:
    """A vote gateway's decision as the vote rule in words: the counts against the body's lawful rule
    (engine.core.voting), "到会 17 人,不足应到 41 人的二分之一(至少 21 人)"."""
    if d is None or gateway not in d.nodes or "present" not in inputs:
        return []
    for step_id, step in d.steps.items():
        if step.kind == "vote" and gateway == f"{step_id}_vote_gw" and step.vote:
            rule = voting.step_rule(step.vote, params, role=step.role)
            if rule is None:
                return []
            return [x.text for x in voting.check(rule, inputs).tests]
    return []


def _timer_fired(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    name = data.get("name") or t("时限", "time limit")
    return Entry(t(f"时限届满:{name}", f"Time is up: {name}"))


def _steps_opened(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    return Entry(t("流程推进", "The case moved on"))


def _case_closed(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    status = str(data.get("status"))
    return Entry(t(f"流程结束:{data.get('name', '')}({STATUS_ZH.get(status, '已结束')})",
                   f"The case ended: {_node_name(ctx, data.get('end'), data.get('name', ''))} ({STATUS_EN.get(status, 'ended')})"))


def _case_cancelled(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    return Entry(t("撤销事项", "Cancelled the case"), [t(f"原因:{data.get('reason', '')}", f"Reason: {data.get('reason', '')}")])


def _access_denied(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    key = str(data.get("action") or "")
    action = t(DENIED_ACTIONS.get(key, "操作"), DENIED_EN.get(key, "act"))
    step = data.get("step")
    if step and ctx.definition is not None and step in ctx.definition.steps:
        action = t(f"办理步骤“{ctx.definition.steps[step].name}”", f"do the step “{step_name(ctx.definition.steps[step])}”")
    parts = str(data.get("message") or "").split(" / ", 1)
    message = parts[1] if english() and len(parts) > 1 else parts[0]
    return Entry(t(f"拒绝越权操作:{action}", f"Refused an attempt to {action}"),
                 [t(f"{ctx.who(str(event.get('actor') or ''))}:{message}", f"{ctx.who(str(event.get('actor') or ''))}: {message}")],
                 tone="denied")


def _objection_filed(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    step = data.get("step_name") or data.get("step") or ""
    entry = Entry(t(f"收到村民异议(公示:{step})", f"Objection received (notice: {step})") if step
                  else t("收到村民异议", "Objection received"))
    if data.get("text"):
        entry.items.append((t("异议内容", "Objection"), str(data["text"])))
    if ctx.show_identities and (data.get("name") or data.get("phone")):
        entry.items.append((t("异议人", "Objector"), " ".join(
            str(x) for x in (data.get("name") or t("未留姓名", "no name given"), data.get("phone") or "") if x).strip()))
    return entry


def _warning(data: Mapping, ctx: Context, event: Mapping) -> Entry:
    kind = str(event.get("type") or "")[len("warning_"):]
    sev = str(data.get("severity") or "")
    entry = Entry(t(f"{WARNING_STATUS.get(kind, '处理')}{SEVERITY_ZH.get(sev, '')}预警:{data.get('summary', '')}",
                    f"{WARNING_EN.get(kind, 'Handled')} a {SEVERITY_EN.get(sev, '')} warning: {data.get('summary', '')}"))
    if data.get("opinion"):
        entry.lines.append(t(f"处理意见:{data['opinion']}", f"Opinion: {data['opinion']}"))
    if data.get("supervision_case_id"):
        entry.lines.append(t(f"督办事项 #{data['supervision_case_id']}", f"Supervision case #{data['supervision_case_id']}"))
    return entry


def _role_spec(spec: Any, ctx: "Context | None" = None) -> str:
    role, _, org = str(spec or "").partition("@")
    where = ctx.org(org) if ctx is not None else org
    name = _role_name(role)
    return t(f"{where}的{name}", f"{name} at {where}") if org else name


def _system(title: Callable[[Mapping, Context], str]):
    def handler(data: Mapping, ctx: Context, event: Mapping) -> Entry:
        return Entry(title(data, ctx))
    return handler


def _proc(data: Mapping, ctx: Context) -> str:
    """A procedure id as people read it: a township variant's key (``B-PUR-02@SFZ``) as the procedure
    and the township."""
    pid, _, org = str(data.get("procedure_id", "")).partition("@")
    return t(f"{pid}({ctx.org(org)}变体)", f"{pid} ({ctx.org(org)} variant)") if org else pid


def _variant(data: Mapping, ctx: Context) -> str:
    return t(f"{ctx.org(data.get('org'))}的事项 {data.get('procedure_id', '')} 变体",
             f"the {ctx.org(data.get('org'))} variant of {data.get('procedure_id', '')}")


def _case_param(ctx: Context, key: Any) -> str:
    p = ctx.definition.parameters.get(str(key or "")) if ctx.definition is not None else None
    return p.label if p is not None else _param_label(key, ctx)


def _param_label(key: Any, ctx: Context) -> str:
    label = ctx.param_labels.get(str(key or ""))
    return t(f"参数“{label}”", f"the parameter “{label}”") if label else t("本地参数", "a local parameter")


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
    "org_added": _system(lambda d, c: t(
        f"新增机构 {d.get('name', '')}({ORG_KIND_ZH.get(str(d.get('kind')), '')},代码 {d.get('code', '')})"
        + (f",上级 {c.org(d['parent'])}" if d.get("parent") else ""),
        f"Added the organization {d.get('name', '')} (code {d.get('code', '')})"
        + (f", under {c.org(d['parent'])}" if d.get("parent") else ""))),
    "user_added": _system(lambda d, c: t(
        f"新建用户 {c.who(str(d.get('username', '')))}"
        + (",角色 " + "、".join(_role_spec(r, c) for r in d.get("roles") or []) if d.get("roles") else ""),
        f"Created user {c.who(str(d.get('username', '')))}"
        + (", roles " + ", ".join(_role_spec(r, c) for r in d.get("roles") or []) if d.get("roles") else ""))),
    "role_granted": _system(lambda d, c: t(f"授予 {c.who(str(d.get('username', '')))} 角色 {_role_spec(d.get('role'), c)}",
                                           f"Granted {c.who(str(d.get('username', '')))} the role {_role_spec(d.get('role'), c)}")),
    "role_revoked": _system(lambda d, c: t(f"撤销 {c.who(str(d.get('username', '')))} 的角色 {_role_spec(d.get('role'), c)}",
                                           f"Revoked the role {_role_spec(d.get('role'), c)} from {c.who(str(d.get('username', '')))}")),
    "user_deactivated": _system(lambda d, c: t(f"停用用户 {c.who(str(d.get('username', '')))}",
                                               f"Deactivated user {c.who(str(d.get('username', '')))}")),
    "user_reactivated": _system(lambda d, c: t(f"恢复启用用户 {c.who(str(d.get('username', '')))}",
                                               f"Reactivated user {c.who(str(d.get('username', '')))}")),
    "password_set": lambda d, c, e: Entry(t("修改本人密码", "Changed their own password") if d.get("username") == e.get("actor")
                                          else t(f"重置 {c.who(str(d.get('username', '')))} 的密码",
                                                 f"Reset the password of {c.who(str(d.get('username', '')))}")),
    "login_failed": lambda d, c, e: Entry(t(
        f"登录失败:{d.get('username', '')}({LOGIN_REASONS.get(str(d.get('reason')), '未通过验证')}"
        + (f",连续第 {d['failures']} 次" if d.get("failures") else "") + ")"
        + (f",锁定至 {china(d['locked_until'])}" if d.get("locked_until") else ""),
        f"Failed sign-in: {d.get('username', '')} ({LOGIN_EN.get(str(d.get('reason')), 'not verified')}"
        + (f", {d['failures']} in a row" if d.get("failures") else "") + ")"
        + (f", locked until {china(d['locked_until'])}" if d.get("locked_until") else "")), tone="denied"),
    "procedure_published": _system(lambda d, c: t(f"发布事项 {d.get('procedure_id', '')} 第{d.get('version', '')}版",
                                                  f"Published {d.get('procedure_id', '')} version {d.get('version', '')}")),
    "version_effective": _system(lambda d, c: t(
        f"事项 {d.get('procedure_id', '')} 第{d.get('version', '')}版生效(原为第{d.get('from_version', '')}版)",
        f"{d.get('procedure_id', '')} version {d.get('version', '')} took effect (was version {d.get('from_version', '')})")),
    "parameter_set": _system(lambda d, c: t(
        f"设定{c.org(d.get('org'))}的{_param_label(d.get('key'), c)}:"
        + (f"{d['before']} → " if d.get("before") is not None else "") + f"{d.get('after', '')}",
        f"Set {_param_label(d.get('key'), c)} at {c.org(d.get('org'))}: "
        + (f"{d['before']} → " if d.get("before") is not None else "") + f"{d.get('after', '')}")),
    "parameter_reset": _system(lambda d, c: t(
        f"取消{c.org(d.get('org'))}对{_param_label(d.get('key'), c)}的本级设定(原为 {d.get('before', '')})",
        f"Removed the setting of {_param_label(d.get('key'), c)} at {c.org(d.get('org'))} (was {d.get('before', '')})")),
    "draft_saved": _system(lambda d, c: t(f"保存事项 {_proc(d, c)} 的草稿(第{d.get('revision', '')}稿)",
                                          f"Saved the draft of {_proc(d, c)} (revision {d.get('revision', '')})")),
    "step_table_saved": _system(lambda d, c: t(f"保存事项 {_proc(d, c)} 的任务单(第{d.get('revision', '')}稿)",
                                               f"Saved the step table of {_proc(d, c)} (revision {d.get('revision', '')})")),
    "draft_deleted": _system(lambda d, c: t(f"删除事项 {_proc(d, c)} 的草稿",
                                            f"Deleted the draft of {_proc(d, c)}")),
    # Township variants (engine.services.variants).
    "variant_created": _system(lambda d, c: t(f"创建{_variant(d, c)}(以区级第{d.get('district_version', '')}版为基础)",
                                              f"Created {_variant(d, c)} (from district version {d.get('district_version', '')})")),
    "variant_draft_started": _system(lambda d, c: t(f"开始编辑{_variant(d, c)}的草稿(来自{d.get('from', '')})",
                                                    f"Started a draft of {_variant(d, c)}")),
    "variant_published": _system(lambda d, c: t(
        f"发布{_variant(d, c)}第{d.get('version', '')}版(基于区级第{d.get('district_version', '')}版),本镇各村新办事项使用"
        + (f";说明:{d['note']}" if d.get("note") else ""),
        f"Published {_variant(d, c)} version {d.get('version', '')} (on district version {d.get('district_version', '')})"
        + (f"; note: {d['note']}" if d.get("note") else ""))),
    "variant_withdrawn": _system(lambda d, c: t(
        f"停用{_variant(d, c)}(原用本镇第{d.get('version', '')}版),本镇各村新办事项改按区级第{d.get('district_version', '')}版",
        f"Withdrew {_variant(d, c)} (was version {d.get('version', '')}): new cases use district version "
        f"{d.get('district_version', '')}")),
    "variant_rebased": _system(lambda d, c: t(
        f"将{_variant(d, c)}更新到区级第{d.get('to_version', '')}版(原基于第{d.get('from_version', '')}版,"
        + ("本镇修改已自动合并)" if d.get("merged") else "本镇修改需对照重做)"),
        f"Rebased {_variant(d, c)} on district version {d.get('to_version', '')} (was {d.get('from_version', '')}"
        + (", changes merged)" if d.get("merged") else ", changes to redo)"))),
    "draft_published": _system(lambda d, c: t(
        f"由草稿发布事项 {d.get('procedure_id', '')} 第{d.get('version', '')}版"
        + (f",{china(d['effective_from'])} 起生效" if d.get("effective_from") else "")
        + (f";说明:{d['note']}" if d.get("note") else ""),
        f"Published {d.get('procedure_id', '')} version {d.get('version', '')} from its draft"
        + (f", effective {china(d['effective_from'])}" if d.get("effective_from") else "")
        + (f"; note: {d['note']}" if d.get("note") else ""))),
    "case_migrated": _system(lambda d, c: t(
        f"事项 #{d.get('case_id', '')} 迁移到第{d.get('to_version', '')}版(原为第{d.get('from_version', '')}版)",
        f"Moved case #{d.get('case_id', '')} to version {d.get('to_version', '')} (was {d.get('from_version', '')})")),
    "kin_declared": _system(lambda d, c: t(f"登记亲属关系:{c.who(str(d.get('cadre', '')))} 与 {d.get('person_name', '')}",
                                           f"Declared a relative: {c.who(str(d.get('cadre', '')))} and {d.get('person_name', '')}")),
    # The person register (engine.core.people): people by name, never their ID numbers or phones.
    "person_added": _system(lambda d, c: t(f"登记人员 {d.get('name', '')}" + (f"({c.org(d['org'])})" if d.get("org") else ""),
                                           f"Registered the person {d.get('name', '')}" + (f" ({c.org(d['org'])})" if d.get("org") else ""))),
    "household_added": _system(lambda d, c: t(f"登记家庭户 {d.get('name', '')}({c.org(d.get('org'))})",
                                              f"Registered the household {d.get('name', '')} ({c.org(d.get('org'))})")),
    "person_household_set": _system(lambda d, c: t("调整人员所属家庭户", "Changed the household of a person")),
    "user_person_linked": _system(lambda d, c: t(f"将账户 {c.who(str(d.get('username', '')))} 关联到人员登记",
                                                 f"Linked the account {c.who(str(d.get('username', '')))} to its person")),
    "person_relation_declared": _system(lambda d, c: t(f"登记亲属关系({d.get('degree', '')}级)",
                                                       f"Declared a relative (degree {d.get('degree', '')})")),
    # Sign-in and requests (the hardening): what happened, with no address or token.
    "sessions_ended": _system(lambda d, c: t(f"结束 {c.who(str(d.get('username', '')))} 的 {d.get('sessions', 0)} 个登录会话",
                                             f"Ended {d.get('sessions', 0)} session(s) of {c.who(str(d.get('username', '')))}")),
    "password_rehashed": _system(lambda d, c: t(f"{c.who(str(d.get('username', '')))} 的密码改用更安全的方式保存",
                                                f"Re-hashed the password of {c.who(str(d.get('username', '')))} with argon2id")),
    "request_refused": lambda d, c, e: Entry(t(f"拒绝请求({d.get('status', '')}):{d.get('method', '')} {d.get('path', '')}",
                                               f"Refused a request ({d.get('status', '')}): {d.get('method', '')} {d.get('path', '')}"),
                                             [t(f"原因:{d.get('reason', '')};本小时第 {d.get('count_this_hour', '')} 次",
                                                f"Reason: {d.get('reason', '')}; {d.get('count_this_hour', '')} this hour")],
                                             tone="denied"),
    # A case stopped by a run-time failure, and its retry (engine.core.incidents).
    "incident": lambda d, c, e: Entry(t("运行故障:本次办理没有保存,事项保持原状", "Incident: nothing was saved, the case is as it was"),
                                      [str(d.get("message") or "").split(" / ", 1)[0 if not english() else -1]],
                                      tone="denied"),
    "case_params_updated": lambda d, c, e: Entry(t("管理员重试:事项改用现行的本地参数", "Retried by an administrator with the parameters now in force"),
                                                 [t(f"{_case_param(c, x.get('key'))}:{x.get('before', '')} → {x.get('after', '')}",
                                                    f"{_case_param(c, x.get('key'))}: {x.get('before', '')} → {x.get('after', '')}")
                                                  for x in d.get("changes") or []]),
    "supervision_note_recorded": _system(lambda d, c: t(f"记录廉情档案:关于 {c.who(str(d.get('subject', '')))}",
                                                        f"Recorded a supervision note about {c.who(str(d.get('subject', '')))}")),
}

EVENT_TYPES = frozenset(_HANDLERS) | {f"warning_{k}" for k in WARNING_STATUS}
