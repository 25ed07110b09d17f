"""The safe expression language of gateway conditions, form constraints and timer durations.

BPMN files are data that township staff edit; nothing in them may run arbitrary Python.
Expressions are parsed with :mod:`ast` and evaluated by walking a whitelist of node types:
names, literals, comparisons, boolean logic, arithmetic, conditional expressions, list and
tuple literals, and calls of a few named functions. Anything else is rejected when a BPMN
file is validated (:func:`check`) and again, defensively, when evaluated.

A name is either a field (``present``: the value of the latest submission that had it) or a
field qualified by the step that submitted it (``party_review.present``): the party meeting's
counts and the representatives' counts are different facts. A qualified name is looked up as the
key ``"party_review.present"`` of the case data; no Python attribute is ever read.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable, Mapping

MAX_LENGTH = 500
MAX_NODES = 200


class ExpressionError(ValueError):
    """An expression that is not part of the safe language, or that failed to evaluate. ``kind`` says
    why in a word the engine turns into Chinese for people (see :data:`REASONS_ZH`)."""

    def __init__(self, message: str, kind: str = "invalid", zh: str | None = None):
        super().__init__(message)
        self.kind = kind
        self._zh = zh

    @property
    def zh(self) -> str:
        """Why, in Chinese (the message itself stays English for logs and tests)."""
        return self._zh or why_zh(str(self))

    def bilingual(self) -> str:
        """“中文 / English”, as the pages' :func:`lang_part` expects."""
        return f"{self.zh} / {self}"


_NODE_ZH = {"Lambda": "匿名函数", "Subscript": "下标或切片", "ListComp": "列表推导", "DictComp": "字典推导",
            "SetComp": "集合推导", "GeneratorExp": "生成器", "Dict": "字典", "Set": "集合", "Starred": "星号展开",
            "NamedExpr": "赋值表达式(:=)", "Await": "await", "Yield": "yield", "JoinedStr": "格式化字符串(f\"…\")",
            "BitAnd": "按位与(&)", "BitOr": "按位或(|)", "BitXor": "按位异或(^)", "Invert": "按位取反(~)",
            "LShift": "移位(<<)", "RShift": "移位(>>)", "Pow": "乘方(**)", "MatMult": "矩阵乘(@)", "Is": "is 比较",
            "IsNot": "is not 比较", "Attribute": "属性"}
_SYNTAX_ZH = (("was never closed", "括号没有闭合"), ("unmatched", "括号不成对"), ("unterminated string", "引号没有闭合"),
              ("EOF", "表达式不完整"), ("invalid decimal literal", "数字写法有误(数字后紧跟了字母)"),
              ("Maybe you meant '==' ", "比较相等要写“==”,不是“=”"), ("cannot assign", "比较相等要写“==”,不是“=”"),
              ("invalid character", "含有不允许的字符(如全角符号“(”“”“”)"), ("invalid syntax", "写法有误"),
              ("unexpected indent", "开头不能有空格或缩进"))


def why_zh(message: str) -> str:
    """The Chinese of an :class:`ExpressionError` message raised by :func:`compile_expression`."""
    import re

    if message.startswith("syntax error"):
        detail = message.partition(":")[2]
        return "语法错误:" + next((zh for needle, zh in _SYNTAX_ZH if needle in detail), "写法有误")
    fixed = {"empty expression": "表达式为空", "expression too complex": "表达式过于复杂(请拆分)",
             "only step.field names may use a dot": "只有“步骤.字段”的写法可以使用点号",
             "keyword arguments not allowed": "函数不接受“名称=值”形式的参数",
             'param() takes one quoted key, e.g. param("major_amount")':
                 '参数须写成 param("参数名"),只有一个带引号的参数名',
             "scripts are not allowed": "不允许脚本", "service calls are not allowed": "不允许调用外部服务"}
    if message in fixed:
        return fixed[message]
    found = re.match(r"(not allowed|call not allowed|name not allowed|literal not allowed|unknown name|"
                     r"unknown parameter|expression longer than): ?(.*)$", message)
    if found:
        what, arg = found.groups()
        return {"not allowed": f"不允许的写法:{_NODE_ZH.get(arg, arg)}",
                "call not allowed": f"不允许调用函数“{arg}”",
                "name not allowed": f"不允许的名称“{arg}”(不能以下划线开头)",
                "literal not allowed": f"不允许的常量 {arg}",
                "unknown name": f"缺少条件要读取的填报数据“{arg}”",
                "unknown parameter": f"缺少条件要读取的本地参数“{arg}”",
                "expression longer than": f"表达式超过 {arg.split()[0]} 个字符"}[what]
    if message.startswith("expression longer than"):
        return f"表达式超过 {MAX_LENGTH} 个字符"
    return REASONS_ZH.get("invalid", "表达式无法计算")


# Why an evaluation failed, for the people who see it (engine.incidents builds the message).
REASONS_ZH = {
    "zero": "出现了除以零", "range": "数值或时长超出允许范围", "nan": "出现了无效的数(非数字或无穷大)",
    "type": "数据类型不相符(如把文字和数字相比)", "name": "缺少条件要读取的填报数据",
    "param": "缺少条件要读取的本地参数", "size": "文字或列表过长", "invalid": "表达式无法计算",
}
REASONS_EN = {
    "zero": "a division by zero", "range": "a number or duration out of the allowed range",
    "nan": "an invalid number (not a number, or infinite)", "type": "data of the wrong type (e.g. text compared with a number)",
    "name": "form data the condition reads is missing", "param": "a local parameter the condition reads is missing",
    "size": "a text or list that is too long", "invalid": "the expression cannot be computed",
}
# Bounds of what an evaluation may produce: a result outside them fails at once with a clear reason
# (instead of a date overflow in the engine, an endless big-number computation or a NaN that
# compares false everywhere).
MAX_MAGNITUDE = 10**18
MAX_TEXT = 10_000
MAX_ITEMS = 1_000
MAX_DURATION_DAYS = 3650
MAX_DURATION_HOURS = MAX_DURATION_DAYS * 24
MAX_ROUND_DIGITS = 10


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type, Callable[[Any], Any]] = {
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Not: operator.not_,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def duration_days(n: Any) -> str:
    """An ISO 8601 duration of ``n`` whole days, as timers expect (``"P7D"``); 0 to 3650 days."""
    days = _whole(n)
    if not 0 <= days <= MAX_DURATION_DAYS:
        raise ExpressionError(f"时长须在0到{MAX_DURATION_DAYS}天之间,而不是{n} / duration of {n} days out of range",
                              "range")
    return f"P{days}D"


def duration_hours(n: Any) -> str:
    """An ISO 8601 duration of ``n`` whole hours (``"PT48H"``); 0 to 87,600 hours."""
    hours = _whole(n)
    if not 0 <= hours <= MAX_DURATION_HOURS:
        raise ExpressionError(f"时长须在0到{MAX_DURATION_HOURS}小时之间,而不是{n} / duration of {n} hours out of range",
                              "range")
    return f"PT{hours}H"


def _whole(n: Any) -> int:
    value = _number(n)
    if isinstance(value, float) and not math.isfinite(value) or isinstance(value, Decimal) and not value.is_finite():
        raise ExpressionError(f"not a finite number: {n!r}", "nan")
    if abs(value) > MAX_MAGNITUDE:
        raise ExpressionError(f"number out of range: {n!r}", "range")
    return int(value)


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, Fraction)):
        raise ExpressionError(f"not a number: {value!r}", "type")
    return value


_SAFE_LEN_TYPES = (str, list, tuple)


def _safe_len(value: Any) -> int:
    if not isinstance(value, _SAFE_LEN_TYPES):
        raise ExpressionError("len() takes text or a list", "type")
    return len(value)


def _float(value: Any = 0.0) -> float:
    if isinstance(value, str) and len(value) > 100:
        raise ExpressionError("float() of a long text", "size")
    result = float(value)
    if not math.isfinite(result):
        raise ExpressionError(f"float() gave a non-finite number: {value!r}", "nan")
    return result


def _int(value: Any = 0) -> int:
    if isinstance(value, str) and len(value) > 40:
        raise ExpressionError("int() of a long text", "size")
    return int(value)


def _round(value: Any, digits: Any = None) -> Any:
    if digits is None:
        return round(value)
    if isinstance(digits, bool) or not isinstance(digits, int) or not 0 <= digits <= MAX_ROUND_DIGITS:
        raise ExpressionError(f"round() takes 0 to {MAX_ROUND_DIGITS} digits", "range")
    return round(value, digits)


def check_result(value: Any) -> Any:
    """Refuse a value outside the bounds (non-finite or huge numbers, long text, long lists)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError("the result is not a finite number", "nan")
        if abs(value) > MAX_MAGNITUDE:
            raise ExpressionError("the result is out of range", "range")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ExpressionError("the result is not a finite number", "nan")
        if abs(value) > MAX_MAGNITUDE:
            raise ExpressionError("the result is out of range", "range")
    elif isinstance(value, (int, Fraction)):
        if abs(value) > MAX_MAGNITUDE:
            raise ExpressionError("the result is out of range", "range")
    elif isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ExpressionError("the text is too long", "size")
    elif isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise ExpressionError("the list is too long", "size")
    return value


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "duration_days": duration_days,
    "duration_hours": duration_hours,
    "len": _safe_len,
    "abs": abs,
    "min": min,
    "max": max,
    "round": _round,
    "int": _int,
    "float": _float,
    "str": str,
}
# `param` is resolved per evaluation from the case's local parameters.
FUNCTION_NAMES = frozenset(FUNCTIONS) | {"param"}
CONSTANTS = {"True": True, "False": False, "None": None}

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.UnaryOp, ast.Compare,
    ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple, ast.Attribute,
    *_BINARY, *_UNARY, *_COMPARE,
)


def qualified(node: ast.AST) -> str | None:
    """``step.field`` for a qualified name (an attribute of a plain name), else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def split_name(name: str) -> tuple[str | None, str]:
    """(step, field) of a name read by an expression: ``("resolve", "present")`` or ``(None, "present")``."""
    step, dot, field = name.partition(".")
    return (step, field) if dot else (None, name)


@dataclass(frozen=True)
class Expression:
    """A checked expression: its source text, parsed tree and the names it reads."""

    source: str
    tree: ast.Expression
    names: frozenset[str]
    params: frozenset[str]

    def evaluate(self, variables: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> Any:
        """Evaluate with ``variables`` (form data) and ``params`` (local parameters). Any failure is an
        :class:`ExpressionError` (never another exception): the engine turns it into a clear message."""
        try:
            return _Evaluator(variables, params or {}).visit(self.tree.body)
        except ExpressionError:
            raise
        except ZeroDivisionError as exc:
            raise ExpressionError(str(exc) or "division by zero", "zero") from None
        except (OverflowError, RecursionError, MemoryError) as exc:
            raise ExpressionError(str(exc) or type(exc).__name__, "range") from None
        except (ArithmeticError, ValueError) as exc:
            raise ExpressionError(str(exc) or type(exc).__name__, _kind(exc)) from None
        except TypeError as exc:
            raise ExpressionError(str(exc), "type") from None


def _kind(exc: BaseException) -> str:
    from decimal import DivisionByZero, DivisionUndefined

    if isinstance(exc, (DivisionByZero, DivisionUndefined, ZeroDivisionError)):
        return "zero"
    text = str(exc).lower()
    if "nan" in text or "infinit" in text:
        return "nan"
    if "limit" in text or "range" in text or "overflow" in text:
        return "range"
    return "invalid"


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Parse and check ``source``; raise :class:`ExpressionError` naming what is not allowed."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error: {exc.msg}") from None
    names: set[str] = set()
    params: set[str] = set()
    bases = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    count = 0
    for node in ast.walk(tree):
        count += 1
        if count > MAX_NODES:
            raise ExpressionError("expression too complex")
        if not isinstance(node, _ALLOWED_NODES):
            raise ExpressionError(f"not allowed: {type(node).__name__}")
        if isinstance(node, ast.Call):
            _check_call(node, params)
        elif isinstance(node, ast.Attribute):
            name = qualified(node)
            if name is None or node.value.id in CONSTANTS or node.value.id in FUNCTION_NAMES:  # type: ignore[attr-defined]
                raise ExpressionError("only step.field names may use a dot")
            if node.attr.startswith("_") or node.value.id.startswith("_"):  # type: ignore[attr-defined]
                raise ExpressionError(f"name not allowed: {name}")
            names.add(name)
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ExpressionError(f"name not allowed: {node.id}")
            if node.id not in CONSTANTS and node.id not in FUNCTION_NAMES and id(node) not in bases:
                names.add(node.id)
        elif isinstance(node, ast.Constant) and not isinstance(
            node.value, (int, float, str, bool, type(None))
        ):
            raise ExpressionError(f"literal not allowed: {node.value!r}")
    return Expression(source, tree, frozenset(names), frozenset(params))


def _check_call(node: ast.Call, params: set[str]) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTION_NAMES:
        raise ExpressionError(f"call not allowed: {ast.unparse(node.func)}")
    if node.keywords:
        raise ExpressionError("keyword arguments not allowed")
    if node.func.id == "param":
        if len(node.args) != 1 or not (
            isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            raise ExpressionError('param() takes one quoted key, e.g. param("major_amount")')
        params.add(node.args[0].value)


def check(source: str) -> Expression:
    """Alias of :func:`compile_expression` for validators."""
    return compile_expression(source)


def evaluate(source: str, variables: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> Any:
    """Check and evaluate ``source`` in one call."""
    return compile_expression(source).evaluate(variables, params)


class _Evaluator:
    def __init__(self, variables: Mapping[str, Any], params: Mapping[str, Any]):
        self.variables = variables
        self.params = params

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(f"not allowed: {type(node).__name__}")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        if node.id not in self.variables:
            raise ExpressionError(f"unknown name: {node.id}", "name")
        return self.variables[node.id]

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        name = qualified(node)
        if name is None:
            raise ExpressionError("only step.field names may use a dot")
        if name not in self.variables:
            raise ExpressionError(f"unknown name: {name}")
        return self.variables[name]

    def visit_List(self, node: ast.List) -> list:
        return check_result([self.visit(e) for e in node.elts])

    def visit_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.visit(e) for e in node.elts)

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        is_and = isinstance(node.op, ast.And)
        value: Any = is_and
        for operand in node.values:
            value = self.visit(operand)
            if bool(value) != is_and:
                return value
        return value

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        try:
            return check_result(_UNARY[type(node.op)](self.visit(node.operand)))
        except TypeError as exc:
            raise ExpressionError(str(exc), "type") from None

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Mult) and (isinstance(left, (str, list, tuple)) or
                                              isinstance(right, (str, list, tuple))):
            raise ExpressionError("repetition of text or lists is not allowed", "type")
        try:
            left, right = _align(left, right)
            return check_result(_BINARY[type(node.op)](left, right))
        except ExpressionError:
            raise
        except TypeError as exc:
            raise ExpressionError(str(exc), "type") from None
        except (ZeroDivisionError, ArithmeticError, ValueError) as exc:
            raise ExpressionError(str(exc) or "division by zero", _kind(exc)) from None

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            right = self.visit(comparator)
            try:
                for side in (left, right):
                    if isinstance(side, float) and math.isnan(side) or isinstance(side, Decimal) and side.is_nan():
                        raise ExpressionError("comparison with a NaN", "nan")
                a, b = _align(left, right)
                if not _COMPARE[type(op)](a, b):
                    return False
            except ExpressionError:
                raise
            except TypeError as exc:
                raise ExpressionError(str(exc), "type") from None
            except (ArithmeticError, ValueError) as exc:
                raise ExpressionError(str(exc), _kind(exc)) from None
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> Any:
        name = node.func.id  # type: ignore[attr-defined]  # checked at compile time
        args = [self.visit(a) for a in node.args]
        if name == "param":
            key = args[0]
            if key not in self.params:
                raise ExpressionError(f"unknown parameter: {key}", "param")
            return check_result(self.params[key])
        try:
            return check_result(FUNCTIONS[name](*args))
        except ExpressionError:
            raise
        except TypeError as exc:
            raise ExpressionError(f"{name}(): {exc}", "type") from None
        except (ValueError, ArithmeticError) as exc:
            raise ExpressionError(f"{name}(): {exc}", _kind(exc)) from None


def _align(a: Any, b: Any) -> tuple[Any, Any]:
    """Let Decimal money, Fraction ratios, ints and floats meet in exact arithmetic."""
    if isinstance(a, Decimal) and isinstance(b, (Fraction, float)) and not isinstance(b, bool):
        return Fraction(a), Fraction(b)
    if isinstance(b, Decimal) and isinstance(a, (Fraction, float)) and not isinstance(a, bool):
        return Fraction(a), Fraction(b)
    return a, b
