"""Lint for conditions and timers that can fail at run time, where that can be told from the document.

A gateway condition or a timer duration that fails when a case reaches it leaves that case unable to
go on (the engine refuses the change, records an incident and warns the township: see
:mod:`engine.incidents`). Better to refuse the document before it is published:

* a part of an expression that reads nothing (no form field, no parameter) is computed now: when it
  fails — ``1 / 0``, ``float("nan")``, ``duration_days(99999999)`` — it would fail in every case;
* a division or remainder by a constant zero, or by a form field or parameter that may be zero (a
  warning: guard it, e.g. ``x > 0 and y / x > 2``, or give the field a minimum above zero);
* numbers compared with or computed from text (``amount > "5"``, ``title + 1``): a type error;
* a timer whose duration reads a form field without a maximum within the timer's range;
* a timer computed from the parameters' defaults that falls outside 0–3650 days.
"""

from __future__ import annotations

import ast
from decimal import Decimal
from typing import Iterable

from .expressions import (
    CONSTANTS, MAX_DURATION_DAYS, MAX_DURATION_HOURS, REASONS_ZH, ExpressionError, compile_expression,
)

NUMERIC_FIELDS = frozenset({"integer", "decimal", "money"})
TEXT_FIELDS = frozenset({"text", "textarea", "date", "datetime", "choice", "person", "idnumber", "phone"})
NUMERIC_PARAMS = frozenset({"money", "integer", "days", "ratio"})
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)


def check_runtime(d) -> Iterable:
    """Problems (:class:`engine.lint.Problem`) of conditions and timers that can fail at run time."""
    from .lint import Problem

    fields = d.fields_by_name()
    params = {k: p.default for k, p in d.parameters.items()}
    param_types = {k: p.type for k, p in d.parameters.items()}
    for flow in d.flows.values():
        if flow.condition:
            for zh, en, severity in _expression_findings(flow.condition, fields, params, param_types):
                yield Problem("runtime-condition", flow.id, f"条件“{flow.condition}”{zh}", f"condition {flow.condition!r}: {en}",
                              severity)
    for node in d.nodes.values():
        if not node.timer:
            continue
        findings = list(_expression_findings(node.timer, fields, params, param_types))
        findings += list(_timer_findings(node.timer, fields, params))
        for zh, en, severity in findings:
            yield Problem("runtime-timer", node.id, f"定时“{node.timer}”{zh}", f"timer {node.timer!r}: {en}", severity)


def _expression_findings(text: str, fields: dict, params: dict, param_types: dict):
    try:
        expr = compile_expression(text)
    except ExpressionError:
        return  # reported by the main lint
    body = expr.tree.body
    reported: set[int] = set()
    for node in ast.walk(body):
        if id(node) in reported or isinstance(node, (ast.Constant, ast.Name, ast.Load)) or _is_op(node):
            continue
        if _reads_nothing(node):
            try:
                compile_expression(ast.unparse(node)).evaluate({}, {})
            except ExpressionError as exc:
                reason = REASONS_ZH.get(exc.kind, REASONS_ZH["invalid"])
                yield (f"中的“{ast.unparse(node)}”在任何事项中都会出错:{reason}",
                       f"{ast.unparse(node)!r} fails in every case: {exc}", "error")
                reported.update(id(n) for n in ast.walk(node))
                continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            divisor = node.right
            if _reads_nothing(divisor):
                continue  # a constant divisor: computed above (with the whole division when it reads nothing)
            if _may_be_zero(divisor, fields):
                yield (f"中的除数“{ast.unparse(divisor)}”可能为零:请先判断(如 {ast.unparse(divisor)} > 0 and …)"
                       f"或给字段设大于零的最小值",
                       f"the divisor {ast.unparse(divisor)!r} may be zero", "warning")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            for op, a, b in zip(node.ops, sides, sides[1:]):
                if isinstance(op, _ORDER) and {_kind(a, fields, param_types), _kind(b, fields, param_types)} == {"num", "text"}:
                    yield (f"把数字和文字比大小(“{ast.unparse(a)}”与“{ast.unparse(b)}”),运行时会出错",
                           f"orders a number against text ({ast.unparse(a)!r}, {ast.unparse(b)!r})", "error")
        if isinstance(node, ast.BinOp) and isinstance(node.op, _ARITH):
            kinds = {_kind(node.left, fields, param_types), _kind(node.right, fields, param_types)}
            if kinds == {"num", "text"}:
                yield (f"把数字和文字一起计算(“{ast.unparse(node)}”),运行时会出错",
                       f"computes with a number and text ({ast.unparse(node)!r})", "error")


def _timer_findings(text: str, fields: dict, params: dict):
    try:
        expr = compile_expression(text)
    except ExpressionError:
        return
    for node in ast.walk(expr.tree.body):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("duration_days", "duration_hours") and node.args):
            continue
        limit = MAX_DURATION_DAYS if node.func.id == "duration_days" else MAX_DURATION_HOURS
        for name in sorted({n.id for n in ast.walk(node.args[0]) if isinstance(n, ast.Name)} - set(CONSTANTS)):
            f = fields.get(name)
            if f is not None and (f.max is None or f.max > limit):
                yield (f"读取填报字段“{f.label}”({name}),该字段须设不超过{limit}的最大值,否则过大的填报值会使定时无法计算",
                       f"reads form field {name} without a maximum of at most {limit}", "error")
    if expr.names:
        return
    try:
        expr.evaluate({}, params)
    except ExpressionError as exc:
        reason = REASONS_ZH.get(exc.kind, REASONS_ZH["invalid"])
        yield (f"按参数默认值计算时出错:{reason}", f"fails with the parameters' defaults: {exc}", "error")


def _is_op(node: ast.AST) -> bool:
    return isinstance(node, (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context))


def _reads_nothing(node: ast.AST) -> bool:
    """No form field and no parameter: the value is the same in every case."""
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and n.id not in CONSTANTS and not _is_function_name(n, node):
            return False
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "param":
            return False
    return True


def _is_function_name(name: ast.Name, root: ast.AST) -> bool:
    return any(isinstance(c, ast.Call) and c.func is name for c in ast.walk(root))


def _may_be_zero(node: ast.AST, fields: dict) -> bool:
    if isinstance(node, ast.Name):
        f = fields.get(node.id)
        if f is None or f.type not in NUMERIC_FIELDS:
            return False
        return f.min is None or Decimal(f.min) <= 0 <= (Decimal(f.max) if f.max is not None else Decimal(1))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "param":
        return True  # a parameter may be set to 0 (every kind's range starts at 0)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Mod)):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return _may_be_zero(node.left, fields) or _may_be_zero(node.right, fields)
    return False


def _kind(node: ast.AST, fields: dict, param_types: dict) -> str:
    """"num", "text" or "any" (unknown or mixed) — only what is certain."""
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or node.value is None:
            return "any"
        return "num" if isinstance(node.value, (int, float)) else "text" if isinstance(node.value, str) else "any"
    if isinstance(node, ast.Name):
        f = fields.get(node.id)
        if f is None:
            return "any"
        return "num" if f.type in NUMERIC_FIELDS else "text" if f.type in TEXT_FIELDS else "any"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name == "param" and node.args and isinstance(node.args[0], ast.Constant):
            ptype = param_types.get(node.args[0].value)
            return "num" if ptype in NUMERIC_PARAMS else "text" if ptype == "text" else "any"
        if name in ("len", "int", "float", "abs", "round"):
            return "num"
        if name in ("str", "duration_days", "duration_hours"):
            return "text"
        return "any"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _kind(node.operand, fields, param_types)
    if isinstance(node, ast.BinOp):
        left, right = _kind(node.left, fields, param_types), _kind(node.right, fields, param_types)
        return left if left == right else "any"
    return "any"


__all__ = ["check_runtime"]
