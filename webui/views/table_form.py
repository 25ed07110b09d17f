"""The step table (任务单) as a web form: rows of steps ↔ the step table of ``docs/step-tables.md``.

The form edits what township staff write by hand — each step's id, name, role, kind, time limit,
instructions, legal basis, form fields and, for a checkpoint, where the case goes when it fails —
and keeps everything else of the table (parameters, vote rules, gateways, supervision sugar, …)
untouched: table-level keys ride along in a hidden ``base`` JSON, a step's other keys in its
hidden ``extra`` JSON. :func:`table_from_rows` rebuilds a complete table; :func:`check_rows` says in
Chinese what is wrong with a row before the generator (:func:`engine.bpmn.steptable.build_bpmn`) and
lint run.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from flask import has_request_context

from engine.core import catalogue, voting
from engine.bpmn import keys
from engine.bpmn.steptable import FIELD_TYPES, ID_RE, KINDS, NAME_RE, TIME_LIMIT_RE


def N_(message: str) -> str:
    """Marks a label for translation (``make messages``); the page translates it when shown."""
    return message


def _(message: str, **variables) -> str:
    """The message in the page's language (Chinese outside a request)."""
    if has_request_context():
        from webui.i18n import gettext

        return gettext(message, **variables)
    return message % variables if variables else message


KIND_ZH = {"task": N_("一般任务"), "meeting": N_("会议"), "vote": N_("表决"), "approval": N_("审核(审批)"),
           "disclosure": N_("公开公示"), "supervision": N_("监督")}
FIELD_TYPE_ZH = {"text": N_("单行文字"), "textarea": N_("多行文字"), "integer": N_("整数"), "decimal": N_("小数"),
                 "money": N_("金额(元)"), "boolean": N_("是/否"), "date": N_("日期"), "datetime": N_("日期时间"),
                 "choice": N_("选项"), "person": N_("人名(公开时遮挡)"), "idnumber": N_("身份证号(遮挡)"),
                 "phone": N_("电话(遮挡)")}
EDITION_ZH = {"village": N_("村"), "community": N_("社区"), "both": N_("村和社区"), "township": N_("镇(街道)")}
CHECKPOINT_KINDS = ("approval", "vote", "disclosure", "supervision")
FORM_STEP_KEYS = {"id", "name", "role", "kind", "time_limit", "instructions", "basis", "fields"}
FORM_TABLE_KEYS = {"id", "name", "category", "edition", "description", "requires", "lanes", "steps", "ends"}
FIELD_FORM_KEYS = {"name", "label", "type", "required", "public", "options"}
REJECTED_END = {"id": "end_rejected", "name": "未通过·终止", "outcome": "rejected"}
DONE_END = {"id": "end_done", "name": "办结", "outcome": "completed"}
SUPERVISION_FAIL = "signed_off == False"
PROCEDURE_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$")
MAX_STEPS, MAX_FIELDS = 60, 40


def roles_for(edition: str | None) -> dict[str, str]:
    """Role key → Chinese name of the roles a procedure of ``edition`` may use (lanes)."""
    levels = {"township": {"township", "district"}}.get(edition or "village", {"village", "township"})
    return {key: role.zh for key, role in catalogue.roles().items() if role.level in levels}


@dataclass
class Row:
    """One step as the form shows it."""

    id: str = ""
    name: str = ""
    role: str = ""
    kind: str = "task"
    time_limit: str = ""
    instructions: str = ""
    basis: str = ""
    on_fail: str = ""
    notice_days: str = ""
    fields: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def extra_json(self) -> str:
        return json.dumps(self.extra, ensure_ascii=False, sort_keys=True) if self.extra else ""

    @property
    def limit_number(self) -> str:
        """The time limit's number as the form shows it (``5wd`` → ``5``; typed text kept to be corrected)."""
        return re.fullmatch(r"(.*?)(wd|d|h)?", self.time_limit or "", re.S).group(1)

    @property
    def limit_unit(self) -> str:
        return keys.split_time_limit(self.time_limit)[1]


TIME_UNITS = {"wd": N_("工作日"), "d": N_("天"), "h": N_("小时")}


@dataclass
class Sheet:
    """The whole form: header, rows, the untouched rest of the table and the draft revision."""

    id: str = ""
    name: str = ""
    category: str = "SVC"
    edition: str = "village"
    description: str = ""
    requires_disclosure: bool = True
    requires_supervision: bool = True
    rows: list[Row] = field(default_factory=list)
    base: dict = field(default_factory=dict)
    revision: int = 0

    @property
    def base_json(self) -> str:
        return json.dumps(self.base, ensure_ascii=False, sort_keys=True) if self.base else ""

    def targets(self) -> list[tuple[str, str]]:
        """(id, label) of the places a failing checkpoint may send the case."""
        out = [(r.id, _("退回“%(step)s”", step=r.name or r.id)) for r in self.rows if r.id]
        ends = [e for e in self.base.get("ends") or [] if e.get("outcome") == "rejected"] or [REJECTED_END]
        out += [(e["id"], _("结束:%(end)s", end=e["name"])) for e in ends]
        return out


def blank_field() -> dict:
    return {"name": "", "label": "", "type": "text", "required": False, "public": False, "options": ""}


def new_sheet() -> Sheet:
    return Sheet(rows=[Row(id="register", name="登记受理", role="committee", kind="task", time_limit="5wd",
                           fields=[blank_field()])])


# --------------------------------------------------------------------------------------------
# table → form


def _options_text(options: Any) -> str:
    return ";".join(f"{o.get('value')}={o.get('label')}" for o in options or [])


def sheet_from_table(table: Mapping, revision: int = 0) -> Sheet:
    table = copy.deepcopy(dict(table))
    params = {p["key"]: p for p in table.get("parameters") or []}
    requires = table.get("requires") or {}
    sheet = Sheet(id=table.get("id", ""), name=table.get("name", ""), category=table.get("category", ""),
                  edition=table.get("edition", "village"), description=str(table.get("description") or "").strip(),
                  requires_disclosure=bool(requires.get("disclosure")),
                  requires_supervision=bool(requires.get("supervision")), revision=revision)
    sheet.base = {k: v for k, v in table.items() if k not in FORM_TABLE_KEYS - {"lanes", "ends"}}
    for step in table.get("steps") or []:
        extra = {k: v for k, v in step.items() if k not in FORM_STEP_KEYS}
        fields = []
        for item in step.get("fields") or []:
            f = {k: item.get(k) for k in FIELD_FORM_KEYS}
            f["required"], f["public"] = bool(item.get("required")), bool(item.get("public"))
            f["options"] = _options_text(item.get("options"))
            rest = {k: v for k, v in item.items() if k not in FIELD_FORM_KEYS}
            if rest:
                f["extra"] = rest
            fields.append(f)
        row = Row(id=step.get("id", ""), name=step.get("name", ""), role=step.get("role", ""),
                  kind=step.get("kind", "task"), time_limit=str(step.get("time_limit") or ""),
                  instructions=str(step.get("instructions") or "").strip(), basis=str(step.get("basis") or ""),
                  fields=fields, extra=extra)
        row.on_fail = _on_fail_of(step)
        disclosure = step.get("disclosure") or {}
        if disclosure.get("min_days_param") in params:
            row.notice_days = str(params[disclosure["min_days_param"]].get("default", ""))
        sheet.rows.append(row)
    return sheet


def _on_fail_of(step: Mapping) -> str:
    kind = step.get("kind")
    if kind == "approval":
        return (step.get("approval") or {}).get("on_reject", "")
    if kind == "vote":
        return (step.get("vote") or {}).get("on_fail", "")
    if kind == "disclosure":
        return ((step.get("disclosure") or {}).get("objection") or {}).get("on_upheld", "")
    if kind == "supervision":
        for branch in step.get("gateway") or []:
            if branch.get("when") == SUPERVISION_FAIL:
                return branch.get("to", "")
    return ""


# --------------------------------------------------------------------------------------------
# request form → sheet


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def sheet_from_form(form: Mapping[str, str], getlist=None) -> Sheet:
    """Read the submitted form (``form.get``) into a sheet; unknown or missing inputs are blank."""
    get = lambda key, default="": (form.get(key) or default).strip()  # noqa: E731
    sheet = Sheet(id=get("id"), name=get("name"), category=get("category"), edition=get("edition", "village"),
                  description=get("description"), requires_disclosure=bool(form.get("requires_disclosure")),
                  requires_supervision=bool(form.get("requires_supervision")), base=_json(form.get("base")))
    try:
        sheet.revision = int(form.get("revision") or 0)
    except ValueError:
        sheet.revision = 0
    count = _int(form.get("nsteps"), MAX_STEPS)
    for i in range(count):
        p = f"s{i}."
        # the time limit: a number and a unit chosen from a list (or, from older forms, typed as 5wd)
        limit = (keys.time_limit(get(p + "tl_n"), get(p + "tl_unit", "wd")) if (p + "tl_n") in form
                 else get(p + "time_limit"))
        row = Row(id=get(p + "id"), name=get(p + "name"), role=get(p + "role"), kind=get(p + "kind", "task"),
                  time_limit=limit, instructions=get(p + "instructions"), basis=get(p + "basis"),
                  on_fail=get(p + "on_fail"), notice_days=get(p + "notice_days"), extra=_json(form.get(p + "extra")))
        for j in range(_int(form.get(p + "nfields"), MAX_FIELDS)):
            q = f"{p}f{j}."
            item = {"name": get(q + "name"), "label": get(q + "label"), "type": get(q + "type", "text"),
                    "required": bool(form.get(q + "required")), "public": bool(form.get(q + "public")),
                    "options": get(q + "options")}
            extra = _json(form.get(q + "extra"))
            if extra:
                item["extra"] = extra
            row.fields.append(item)
        for item in row.fields:  # a field without a key gets one from its Chinese label (pinyin)
            if not item["name"] and item["label"]:
                item["name"] = keys.key_from_label(item["label"], [f["name"] for f in row.fields], fallback="field")
        sheet.rows.append(row)
    for row in sheet.rows:  # the same for a step without an id, from its name
        if not row.id and row.name:
            row.id = keys.key_from_label(row.name, [r.id for r in sheet.rows] + ["start"], fallback="step")
    return sheet


def _int(text: str | None, limit: int) -> int:
    try:
        return max(0, min(int(text or 0), limit))
    except ValueError:
        return 0


def apply_action(sheet: Sheet, action: str) -> str | None:
    """Add, remove or move rows and fields (``add_step``, ``remove_step:3``, ``move_up:3``,
    ``move_down:3``, ``add_field:3``, ``remove_field:3:1``). Returns a short Chinese note, or None
    when the action is not a row action."""
    name, *args = action.split(":")
    try:
        nums = [int(a) for a in args]
    except ValueError:
        return None
    rows = sheet.rows
    if name == "add_step" and len(rows) < MAX_STEPS:
        rows.append(Row(role=rows[-1].role if rows else "committee", fields=[]))
        return _("已添加一行步骤。")
    if not nums or not 0 <= nums[0] < len(rows):
        return None
    i = nums[0]
    if name == "remove_step":
        gone = rows.pop(i)
        return _("已删除步骤“%(step)s”。", step=gone.name or gone.id or i + 1)
    if name == "move_up" and i > 0:
        rows[i - 1], rows[i] = rows[i], rows[i - 1]
        return _("已上移。")
    if name == "move_down" and i < len(rows) - 1:
        rows[i + 1], rows[i] = rows[i], rows[i + 1]
        return _("已下移。")
    if name == "add_field" and len(rows[i].fields) < MAX_FIELDS:
        rows[i].fields.append(blank_field())
        return _("已添加一个字段。")
    if name == "remove_field" and len(nums) == 2 and 0 <= nums[1] < len(rows[i].fields):
        rows[i].fields.pop(nums[1])
        return _("已删除字段。")
    return None


# --------------------------------------------------------------------------------------------
# checks in Chinese


@dataclass
class Findings:
    """Chinese problems: for the whole table, per row (index) and per field (row, field index)."""

    table: list[str] = field(default_factory=list)
    rows: dict[int, list[str]] = field(default_factory=dict)

    def row(self, index: int, message: str) -> None:
        self.rows.setdefault(index, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.table or self.rows)


def check_rows(sheet: Sheet, *, new: bool) -> Findings:
    found = Findings()
    if new and not PROCEDURE_ID_RE.match(sheet.id):
        found.table.append(_("事项编号须以英文字母开头,只含英文字母、数字、“-”和“_”,不超过40个字符(如 Z-SVC-02)。"))
    if not sheet.name:
        found.table.append(_("请填写事项名称。"))
    if sheet.category not in catalogue.categories():
        found.table.append(_("请选择事项类别。"))
    if sheet.edition not in EDITION_ZH:
        found.table.append(_("请选择适用范围。"))
    if not sheet.rows:
        found.table.append(_("任务单至少要有一个步骤。"))
    roles = roles_for(sheet.edition)
    ids = [r.id for r in sheet.rows]
    targets = {t for t, _ in sheet.targets()}
    for i, r in enumerate(sheet.rows):
        if not r.id:
            found.row(i, _("请填写步骤编号(英文字母开头,如 review)。"))
        elif not ID_RE.match(r.id) or r.id == "start" or r.id.startswith(("Lane_", "flow_")):
            found.row(i, _("步骤编号“%(id)s”须以英文字母开头,只含英文字母、数字、“-”和“_”。", id=r.id))
        elif ids.count(r.id) > 1:
            found.row(i, _("步骤编号“%(id)s”重复。", id=r.id))
        if not r.name:
            found.row(i, _("请填写步骤名称。"))
        if r.role not in roles:
            found.row(i, _("请选择办理角色。"))
        if r.kind not in KINDS:
            found.row(i, _("请选择步骤类型。"))
        if r.time_limit and not TIME_LIMIT_RE.match(r.time_limit):
            found.row(i, _("时限应为1–999的整数,再选择单位(工作日、天或小时);不设时限的留空。"))
        if r.kind == "vote" and not ((r.extra.get("vote") or {}).get("body") or voting.body_for_role(r.role)):
            found.row(i, _("表决步骤须由会议机构办理:请把办理角色选为党员大会、村(居)民代表会议、成员(代表)大会等会议机构。"))
        if r.kind in ("approval", "vote") and not r.on_fail:
            found.row(i, _("%(kind)s步骤须选择“未通过时”的去向。", kind=_(KIND_ZH[r.kind])))
        if r.on_fail and r.on_fail not in targets:
            found.row(i, _("“未通过时”的去向“%(target)s”不存在。", target=r.on_fail))
        if r.on_fail == r.id and r.kind != "vote":
            found.row(i, _("“未通过时”不能退回本步骤,请选择之前的步骤或结束。"))
        if r.kind == "disclosure" and not re.fullmatch(r"[1-9]\d{0,2}", r.notice_days or ""):
            found.row(i, _("公示步骤须填写公示最短天数(1–999)。"))
        names = [f["name"] for f in r.fields]
        for j, f in enumerate(r.fields):
            label = f["label"] or f["name"] or _("第%(n)s个", n=j + 1)
            if not f["name"]:
                found.row(i, _("字段“%(field)s”缺少字段名(英文,如 apply_date)。", field=label))
            elif not NAME_RE.match(f["name"]):
                found.row(i, _("字段名“%(name)s”须以英文字母开头,只含英文字母、数字和“_”。", name=f["name"]))
            elif names.count(f["name"]) > 1:
                found.row(i, _("字段名“%(name)s”在本步骤中重复。", name=f["name"]))
            if not f["label"]:
                found.row(i, _("字段“%(field)s”缺少显示名称。", field=f["name"] or j + 1))
            if f["type"] not in FIELD_TYPES:
                found.row(i, _("字段“%(field)s”的类型未知。", field=label))
            if f["type"] == "choice" and not _options(f["options"]):
                found.row(i, _("选项字段“%(field)s”须填写选项,如 yes=同意;no=不同意。", field=label))
    return found


def _options(text: str) -> list[dict]:
    out = []
    for part in re.split(r"[;;\n]", text or ""):
        value, sep, label = part.strip().partition("=")
        if value.strip() and not sep:  # only the Chinese label: the value is made from it (pinyin)
            out.append({"value": keys.key_from_label(value, [o["value"] for o in out], fallback="option"),
                        "label": value.strip()})
        elif value.strip():
            out.append({"value": value.strip(), "label": label.strip()})
    return out


# --------------------------------------------------------------------------------------------
# form → table


def table_from_sheet(sheet: Sheet) -> dict:
    """The complete step table the sheet describes (everything the form does not show is kept)."""
    base = copy.deepcopy(sheet.base)
    table: dict[str, Any] = {k: v for k, v in base.items() if k not in ("lanes", "ends")}
    table.update({"id": sheet.id, "name": sheet.name, "category": sheet.category, "edition": sheet.edition})
    if sheet.description:
        table["description"] = sheet.description
    table["requires"] = {"disclosure": sheet.requires_disclosure, "supervision": sheet.requires_supervision}
    parameters = [dict(p) for p in table.get("parameters") or []]
    params = {p["key"]: p for p in parameters}
    steps = []
    for r in sheet.rows:
        step: dict[str, Any] = {"id": r.id, "name": r.name, "role": r.role, "kind": r.kind}
        if r.time_limit:
            step["time_limit"] = r.time_limit
        if r.instructions:
            step["instructions"] = r.instructions
        if r.basis:
            step["basis"] = r.basis
        fields = []
        for f in r.fields:
            item = {"name": f["name"], "label": f["label"], "type": f["type"], "required": f["required"],
                    "public": f["public"], **(f.get("extra") or {})}
            if f["type"] == "choice":
                item["options"] = _options(f["options"])
            else:
                item.pop("options", None)
            fields.append(item)
        extra = copy.deepcopy(r.extra)
        for key in ("approval", "vote", "disclosure"):
            if key in extra and r.kind != key:
                del extra[key]
        if r.kind == "approval":
            extra["approval"] = {**(extra.get("approval") or {}), "on_reject": r.on_fail}
        elif r.kind == "vote":
            vote = {"quorum_param": "vote_quorum", "pass_param": "vote_pass", "on_no_quorum": r.id,
                    **(extra.get("vote") or {}), "on_fail": r.on_fail}
            vote.setdefault("body", voting.body_for_role(r.role) or "")
            law = _vote_law(vote)
            quorum_default = str(law.quorum.ratio) if law else "2/3"
            pass_default = str(law.passing.ratio) if law else "1/2"
            pass_label = "表决通过比例(应到人数)" if law and law.passing.of == "members" else "表决通过比例(到会人员)"
            for key, label, default in ((vote["quorum_param"], "表决法定到会比例", quorum_default),
                                        (vote["pass_param"], pass_label, pass_default)):
                if key not in params:
                    params[key] = {"key": key, "label": label, "type": "ratio", "default": default}
                    parameters.append(params[key])
            extra["vote"] = vote
        elif r.kind == "disclosure":
            disclosure = {"what": r.name, "where": ["村务公开栏"], "min_days_param": f"{r.id}_days",
                          **(extra.get("disclosure") or {})}
            key = disclosure["min_days_param"]
            if key not in params:
                params[key] = {"key": key, "label": f"{r.name}最短天数", "type": "days", "unit": "天"}
                parameters.append(params[key])
            if r.notice_days:
                params[key]["default"] = int(r.notice_days) if r.notice_days.isdigit() else r.notice_days
            if r.on_fail:
                objection = disclosure.get("objection") or {"role": r.role}
                disclosure["objection"] = {**objection, "on_upheld": r.on_fail}
            else:
                disclosure.pop("objection", None)
            extra["disclosure"] = disclosure
        gateway = [b for b in extra.get("gateway") or [] if b.get("when") != SUPERVISION_FAIL]
        if r.kind == "supervision" and r.on_fail:
            if not any(f["name"] == "signed_off" for f in fields):
                fields.append({"name": "signed_off", "label": "签字确认", "type": "boolean", "required": True,
                               "public": True})
            gateway.insert(0, {"when": SUPERVISION_FAIL, "to": r.on_fail, "label": "退回整改"})
        if gateway:
            extra["gateway"] = gateway
        else:
            extra.pop("gateway", None)
        if fields:
            step["fields"] = fields
        step.update(extra)
        steps.append(step)
    if parameters:
        table["parameters"] = parameters
    table["steps"] = steps
    table["lanes"] = _lanes(base.get("lanes") or [], steps)
    table["ends"] = _ends(base.get("ends") or [], steps)
    return table


def _vote_law(vote: Mapping) -> "voting.VoteRule | None":
    try:
        return voting.lawful_rule(vote.get("body") or "", vote.get("matter") or None)
    except KeyError:
        return None


def _lanes(old: list[dict], steps: list[dict]) -> list[dict]:
    used: list[str] = []
    for step in steps:
        for role in (step.get("role"), (step.get("supervision") or {}).get("role"),
                     ((step.get("disclosure") or {}).get("objection") or {}).get("role")):
            if role and role not in used:
                used.append(role)
    lanes = [dict(lane) for lane in old if lane.get("role") in used]
    known = {lane["role"] for lane in lanes}
    return lanes + [{"role": role} for role in used if role not in known]


def _referenced(steps: list[dict]) -> set[str]:
    out: set[str] = set()
    for step in steps:
        out.add(step.get("next", ""))
        out.update(b.get("to", "") for b in step.get("gateway") or [])
        out.add((step.get("approval") or {}).get("on_reject", ""))
        out.update((step.get("vote") or {}).get(k, "") for k in ("on_fail", "on_no_quorum"))
        out.add(((step.get("disclosure") or {}).get("objection") or {}).get("on_upheld", ""))
        out.add((step.get("supervision") or {}).get("on_return", ""))
    return out - {""}


def _ends(old: list[dict], steps: list[dict]) -> list[dict]:
    ends = [dict(e) for e in old] or [dict(DONE_END)]
    if not any(e.get("outcome", "completed") == "completed" for e in ends):
        ends.insert(0, dict(DONE_END))
    refs = _referenced(steps)
    if REJECTED_END["id"] in refs and not any(e["id"] == REJECTED_END["id"] for e in ends):
        ends.append(dict(REJECTED_END))
    first_done = next(e["id"] for e in ends if e.get("outcome", "completed") == "completed")
    return [e for e in ends if e["id"] == first_done or e["id"] in refs]


def row_of_element(sheet: Sheet, element: str, flows: Mapping[str, str] | None = None) -> int | None:
    """The row a lint problem's element belongs to (the step, a node generated for it, or a flow
    leaving one of those); None for the table as a whole."""
    flows = flows or {}
    element = flows.get(element, element)
    best = None
    for i, r in enumerate(sheet.rows):
        if r.id and (element == r.id or element.startswith(r.id + "_")):
            if best is None or len(r.id) > len(sheet.rows[best].id):
                best = i
    return best
