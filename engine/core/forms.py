"""Form fields of a step: definitions, server-side validation and coercion.

Values are kept in task data in types the safe expression language compares exactly:
`int`, `Decimal` (decimal and money), `bool`, ISO `str` (dates), `str`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from .errors import InvalidData
from .expressions import ExpressionError, compile_expression

FIELD_TYPES = (
    "text", "textarea", "integer", "decimal", "money", "boolean", "date", "datetime",
    "choice", "person", "idnumber", "phone",
)
# Types whose values are personal data: masked wherever they may appear in public.
PERSONAL_TYPES = frozenset({"person", "idnumber", "phone"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
_ID18 = re.compile(r"^\d{17}[\dX]$")
# Numbers are bounded where they enter: what a case stores, compares and sums stays exact and fits the
# database's NUMERIC(18, 2) (a larger value would fail at run time, in a later step or a warning rule).
NUMBER_LIMIT = 10**15
_OUT_OF_RANGE = "“{label}”超出允许范围(绝对值不能超过1000万亿) / out of range (at most 10^15 in absolute value)"
_TRUE = {"true", "1", "yes", "on", "是", "同意", "y"}
_FALSE = {"false", "0", "no", "off", "否", "不同意", "n"}


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    label_en: str = ""  # the English of the label (xw:option labelEn), "" without one


@dataclass(frozen=True)
class Field:
    """One field of a step's form (``xw:field``)."""

    name: str
    label: str
    type: str = "text"
    required: bool = False
    public: bool = False
    unit: str = ""
    help: str = ""
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int | None = None
    options: tuple[Option, ...] = ()
    # The value taken when the field is left blank (e.g. 0 members excluded from 应到); shown prefilled.
    default: str | None = None
    date_rule: str = "act"  # date fields: act | planned | record (engine/clerk.py)
    label_en: str = ""  # the English of the label (xw:field labelEn), "" without one

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "label": self.label, "type": self.type,
            "required": self.required, "public": self.public,
        }
        for key in ("unit", "help", "default"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.min is not None:
            out["min"] = str(self.min)
        if self.max is not None:
            out["max"] = str(self.max)
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.options:
            out["options"] = [{"value": o.value, "label": o.label} for o in self.options]
        if self.type in ("date", "datetime") and self.date_rule != "act":
            out["date_rule"] = self.date_rule
        return out


@dataclass(frozen=True)
class Constraint:
    """A cross-field check (``xw:constraint``)."""

    test: str
    message: str


@dataclass
class FormResult:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def check_field_definition(f: Field) -> list[str]:
    """Problems with a field definition itself (for lint)."""
    problems = []
    if not _NAME.match(f.name):
        problems.append(f"字段名“{f.name}”须为小写英文标识符 / field name must be a lowercase identifier")
    if f.type not in FIELD_TYPES:
        problems.append(f"字段“{f.name}”的类型“{f.type}”未知 / unknown field type")
    if f.type == "choice" and not f.options:
        problems.append(f"选择字段“{f.name}”没有选项 / choice field without options")
    if not f.label:
        problems.append(f"字段“{f.name}”缺少中文标签 / field without label")
    if f.default is not None:
        try:
            coerce(f, f.default)
        except ValueError:
            problems.append(f"字段“{f.name}”的默认值“{f.default}”无效 / invalid default value")
    return problems


def validate(fields: tuple[Field, ...], constraints: tuple[Constraint, ...], raw: Mapping[str, Any],
             context: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``raw`` input against ``fields``; return clean values or raise :class:`InvalidData`.

    ``context`` is the case data the constraints may also read (values from earlier steps) and
    ``params`` the case's local parameters (for ``param("key")`` in constraints).
    """
    if not isinstance(raw, Mapping):
        raise InvalidData("表单数据必须是对象 / form data must be an object", {})
    by_name = {f.name: f for f in fields}
    result = FormResult()
    for name in raw:
        if name not in by_name:
            result.errors[str(name)] = f"未知字段 / unknown field: {name}"
    for f in fields:
        value = raw.get(f.name)
        if _is_blank(value) and f.default is not None:
            value = f.default
        if _is_blank(value):
            if f.required:
                result.errors[f.name] = f"请填写“{f.label}” / {f.label} is required"
            continue
        try:
            result.values[f.name] = coerce(f, value)
        except ValueError as exc:
            result.errors[f.name] = str(exc)
    # Cross-field rules over the fields that are valid: every failing rule is reported, next to the
    # first field of this form it reads (so the message stands where the fix is).
    scope = {**(context or {}), **result.values}
    for c in constraints:
        expr = compile_expression(c.test)
        if expr.names & set(result.errors) or expr.names - set(scope):
            continue  # over a field that is wrong anyway, or an optional field left empty
        try:
            ok = expr.evaluate(scope, params or {})
        except ExpressionError:
            ok = False
        if not ok:
            key = next((f.name for f in fields if f.name in expr.names), FORM_KEY)
            result.errors[key] = f"{result.errors[key]};{c.message}" if key in result.errors else c.message
    if result.errors:
        raise InvalidData("表单有误,请检查 / the form has errors", result.errors)
    return result.values


FORM_KEY = "form"  # errors about the form as a whole


def valid_part(fields: tuple[Field, ...], raw: Mapping[str, Any]) -> dict[str, Any]:
    """The values of ``raw`` that are valid on their own (for further checks after some failed)."""
    out: dict[str, Any] = {}
    for f in fields:
        value = raw.get(f.name) if isinstance(raw, Mapping) else None
        if _is_blank(value):
            continue
        try:
            out[f.name] = coerce(f, value)
        except ValueError:
            continue
    return out


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def coerce(f: Field, value: Any) -> Any:
    """Convert one input value to the field's type; ``ValueError`` carries a Chinese message."""
    label = f.label
    t = f.type
    if t in ("text", "textarea", "person"):
        text = _text(value, label)
        limit = f.max_length or (50 if t == "person" else 200 if t == "text" else 5000)
        if len(text) > limit:
            raise ValueError(f"“{label}”不能超过{limit}个字 / at most {limit} characters")
        return text
    if t == "integer":
        if isinstance(value, bool):
            raise ValueError(f"“{label}”须为整数 / must be a whole number")
        text = str(value).strip()
        if len(text) > 40:
            raise ValueError(_OUT_OF_RANGE.format(label=label))
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"“{label}”须为整数 / must be a whole number") from None
        if abs(number) > NUMBER_LIMIT:
            raise ValueError(_OUT_OF_RANGE.format(label=label))
        _range(f, Decimal(number))
        return number
    if t in ("decimal", "money"):
        if isinstance(value, bool):
            raise ValueError(f"“{label}”须为数字 / must be a number")
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise ValueError(f"“{label}”须为数字 / must be a number") from None
        if not number.is_finite():
            raise ValueError(f"“{label}”须为数字 / must be a number")
        if abs(number) > NUMBER_LIMIT or (number != 0 and number.adjusted() < -12):
            raise ValueError(_OUT_OF_RANGE.format(label=label))
        if t == "money":
            if f.min is None and number < 0:
                raise ValueError(f"“{label}”不能为负数 / must not be negative")
            if number != number.quantize(Decimal("0.01")):
                raise ValueError(f"“{label}”最多两位小数 / at most two decimals")
            number = number.quantize(Decimal("0.01"))
        _range(f, number)
        return number
    if t == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"“{label}”须为是或否 / must be yes or no")
    if t == "date":
        try:
            return date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(f"“{label}”须为日期,如 2026-03-01 / must be a date like 2026-03-01") from None
    if t == "datetime":
        try:
            return datetime.fromisoformat(str(value).strip()).isoformat(timespec="minutes")
        except ValueError:
            raise ValueError(f"“{label}”须为日期时间 / must be a date and time") from None
    if t == "choice":
        text = str(value).strip()
        if text not in {o.value for o in f.options}:
            allowed = "、".join(o.label for o in f.options)
            raise ValueError(f"“{label}”须为以下之一:{allowed} / not one of the options")
        return text
    if t == "idnumber":
        text = _text(value, label).upper()
        if not valid_id_number(text):
            raise ValueError(f"“{label}”不是有效的身份证号码 / not a valid ID number")
        return text
    if t == "phone":
        text = _text(value, label).replace(" ", "")
        if not _PHONE.match(text):
            raise ValueError(f"“{label}”不是有效的电话号码 / not a valid phone number")
        return text
    raise ValueError(f"“{label}”类型未知 / unknown type {t}")


def _text(value: Any, label: str) -> str:
    if not isinstance(value, (str, int, float, Decimal)) or isinstance(value, bool):
        raise ValueError(f"“{label}”须为文字 / must be text")
    text = str(value).strip()
    if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
        raise ValueError(f"“{label}”含有控制字符 / contains control characters")
    return text


def _range(f: Field, number: Decimal) -> None:
    if f.min is not None and number < f.min:
        raise ValueError(f"“{f.label}”不能小于{f.min} / must be at least {f.min}")
    if f.max is not None and number > f.max:
        raise ValueError(f"“{f.label}”不能大于{f.max} / must be at most {f.max}")


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def valid_id_number(text: str) -> bool:
    """A mainland resident ID number (18 characters with a valid check digit)."""
    if not _ID18.match(text):
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == text[17]


def mask(field_type: str, value: Any) -> str:
    """Mask personal data for public pages: 张*明, 3302**********1234, 138****5678."""
    text = "" if value is None else str(value)
    if field_type == "person":
        if len(text) <= 1:
            return text
        if len(text) == 2:
            return text[0] + "*"
        return text[0] + "*" * (len(text) - 2) + text[-1]
    if field_type == "idnumber":
        return text[:4] + "*" * max(len(text) - 8, 0) + text[-4:] if len(text) > 8 else "*" * len(text)
    if field_type == "phone":
        return text[:3] + "****" + text[-4:] if len(text) >= 11 else "*" * len(text)
    return text
