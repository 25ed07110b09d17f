"""Privacy is a hard rule: no private field's value ever reaches a public page, its HTML source,
its SVG or its JSON.

Every procedure in processes/ is run through the engine with a unique marker value in every
private text-like field (text, textarea, person, idnumber, phone) — plus a marker objection (text,
name, phone) during each notice period and a marker proxy name — and then every public page of its
organization and of the case is fetched and searched for every marker. Private fields of other
types (numbers, dates, choices, yes/no) cannot carry a unique marker without changing the route a
case takes; for them the test asserts that their label never appears among a case page's fields.
Masking (张*明, 3302**********1234, 138****5678) is tested at the end.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import case_context, staff_at
from engine.core import forms
from engine.services import public as rules
from engine.core.lint import lint_file
from engine.services.scenarios import plan_step_data, sample_evidence
from web_helpers import make_app
from engine.services.public import first_steps as _first_steps

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
DEFINITIONS = {p.stem: lint_file(p).definition for p in sorted(PROCESSES.glob("*.bpmn"))}
TEXTLIKE = ("text", "textarea", "person", "idnumber", "phone")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(n: int) -> str:
    body = f"330212{19500101 + (n % 28):08d}{n % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11]


def marker(f: forms.Field, n: int) -> str:
    if f.type == "person":
        return f"隐私{n:04d}名"
    if f.type == "idnumber":
        return id_number(n)
    if f.type == "phone":
        return f"139{n:08d}"
    return f"PRIV{n:05d}秘"[: f.max_length or 99]


def org_for(d) -> str:
    return {"community": "HEPING", "township": "SFZ"}.get(d.edition, "DONGAO")


class Markers:
    def __init__(self):
        self.n = 1000
        self.values: dict[str, str] = {}  # marker → where it came from

    def new(self, f: forms.Field, where: str) -> str:
        self.n += 1
        value = marker(f, self.n)
        self.values[value] = where
        return value


def drive(xw, case_id, d, users, frozen, marks: Markers, filed: set) -> None:
    objection_field = forms.Field("x", "异议", "text")
    for _ in range(80):
        info = xw.show_case(case_id)
        if info["status"] != "running":
            return
        if not info["current_steps"]:
            if not info["timers"]:
                return
            for t in info["timers"]:
                node = d.nodes.get(t["node"])
                if node is not None and node.notice_for and case_id not in filed:
                    xw.file_objection(info["tracking_code"], marks.new(objection_field, f"{d.id} objection text"),
                                      marks.new(forms.Field("n", "姓名", "person"), f"{d.id} objection name"),
                                      marks.new(forms.Field("p", "电话", "phone"), f"{d.id} objection phone"))
                    filed.add(case_id)
            frozen.advance(days=40)
            xw.tick()
            continue
        step_id = info["current_steps"][0]["step_id"]
        _, params, data = case_context(xw, case_id)
        step = d.steps[step_id]
        own = {f.name: marks.new(f, f"{d.id}/{step_id}/{f.name}") for f in step.fields
               if not f.public and f.type in TEXTLIKE and data.get(f.name) is None}
        try:
            payload = plan_step_data(d, step_id, params, data, overrides=own)
            payload.update(own)
        except ValueError:
            payload = plan_step_data(d, step_id, params, data)
        if step_id.endswith("_objections") and case_id in filed:
            payload["objection_count"] = max(int(payload.get("objection_count") or 0), 1)
        kwargs = {}
        user = users.get(step.role or "")
        if user is None and step.proxy:
            user = users["committee"]
            kwargs = {"on_behalf_of": marks.new(forms.Field("o", "被代办人", "person"), f"{d.id} proxy name"),
                      "proxy_reason": marks.new(objection_field, f"{d.id} proxy reason")}
        if step.evidence_required:
            kwargs["attachments"] = sample_evidence(xw, step, user)
        try:
            xw.complete(case_id, step_id, user, payload, **kwargs)
        except Exception:  # noqa: BLE001 - a marker a constraint refuses: plain planned data instead
            xw.complete(case_id, step_id, user, plan_step_data(d, step_id, params, data), **kwargs)


def public_pages(client, org_codes, codes, procedure_ids) -> dict[str, str]:
    pages = {}
    for org in org_codes:
        for suffix in ("", "/money", "/subsidies", "/report"):
            r = client.get(f"/public/{org}{suffix}")
            assert r.status_code == 200, (org, suffix)
            pages[f"/public/{org}{suffix}"] = r.get_data(as_text=True)
        for pid in procedure_ids:
            r = client.get(f"/public/{org}/procedures/{pid}")
            if r.status_code == 200:
                pages[f"/public/{org}/procedures/{pid}"] = r.get_data(as_text=True)
    for code in codes:
        for suffix in ("", "/data.json", "/receipt", "/objection"):
            r = client.get(f"/public/case/{code}{suffix}")
            assert r.status_code in (200, 409), (code, suffix)
            body = r.get_data(as_text=True)
            if suffix == "/data.json":
                body += json.dumps(r.json, ensure_ascii=False)  # decoded as well as escaped
            pages[f"/public/case/{code}{suffix}"] = body
    return pages


def leaks_on(client, marks: Markers, org_codes, codes, procedure_ids) -> tuple[dict, list]:
    pages = public_pages(client, org_codes, codes, procedure_ids)
    return pages, [(value, where, url) for url, body in pages.items() for value, where in marks.values.items()
                   if value in body]


def private_textlike(d) -> set[str]:
    return {f"{d.id}/{f.name}" for f in d.fields_by_name().values() if not f.public and f.type in TEXTLIKE}


@pytest.mark.parametrize("pid", sorted(DEFINITIONS))
def test_no_private_value_on_any_public_page(xw, people, frozen, pid):
    """One procedure at a time (the sweep spreads over the workers): its case, run with markers, and
    every public page of its organization and of the case."""
    d = DEFINITIONS[pid]
    users = {"DONGAO": people, "HEPING": staff_at(xw, "HEPING", people), "SFZ": people}
    marks = Markers()
    filed: set[int] = set()
    org = org_for(d)
    starter_role = [s for s in d.steps.values() if s.id in _first_steps(d)][0]
    starter = users[org].get(starter_role.role) if not starter_role.proxy else users[org]["committee"]
    case_id = xw.start_case(pid, org, starter)
    drive(xw, case_id, d, users[org], frozen, marks, filed)
    code = xw.show_case(case_id)["tracking_code"]
    covered = {w.rsplit("/", 1)[0].split("/")[0] + "/" + w.rsplit("/", 1)[1] for w in marks.values.values()
               if w.count("/") == 2}
    every = private_textlike(d)
    print(f"{pid}: private text-like fields given a marker: {len(covered & every)} of {len(every)}")
    if any(n.notice_for for n in d.nodes.values()):
        assert filed, f"{pid}: its notice period was not objected to"

    client = make_app(xw).test_client()
    boards = [org] if org != "SFZ" else ["DONGAO", "NANXI", "HEPING"]  # a township has no board
    pages, leaks = leaks_on(client, marks, boards, [code], [pid])
    assert len(pages) >= 9
    assert leaks == [], leaks[:10]

    # Private fields of the other types: their labels never appear among a case page's fields.
    data = client.get(f"/public/case/{code}/data.json").json
    shown = {f["label"] for s in data["steps"] for f in s["fields"]}
    private_labels = {f.label for f in d.fields_by_name().values() if not f.public}
    public_labels = {f.label for f in d.fields_by_name().values() if f.public}
    assert not (shown & (private_labels - public_labels)), (d.id, shown & private_labels)


def test_markers_cover_the_private_fields_of_the_library():
    """Most private text-like fields sit on steps every route passes: the sweep above reaches them."""
    every = set().union(*(private_textlike(d) for d in DEFINITIONS.values()))
    on_steps = {f"{d.id}/{f.name}" for d in DEFINITIONS.values() for s in d.steps.values() for f in s.fields
                if not f.public and f.type in TEXTLIKE}
    assert len(every) >= 50 and len(on_steps & every) >= 0.8 * len(every)


def test_no_private_value_of_a_report_on_any_public_page(xw, people, frozen):
    """码上举报 through the public form's engine path: text, name and phone stay private."""
    marks = Markers()
    report = xw.report("DONGAO", marks.new(forms.Field("t", "举报", "textarea"), "report text") + "的举报内容",
                       topic="funds", name=marks.new(forms.Field("n", "姓名", "person"), "report name"),
                       phone=marks.new(forms.Field("p", "电话", "phone"), "report phone"))
    client = make_app(xw).test_client()
    pages, leaks = leaks_on(client, marks, ["DONGAO"], [report["tracking_code"]], [])
    assert len(pages) >= 8
    assert leaks == [], leaks[:10]


@pytest.mark.parametrize("field_type, value, shown", [
    ("person", "张三明", "张*明"), ("person", "李四", "李*"), ("person", "欧阳娜娜", "欧**娜"), ("person", "王", "王"),
    ("idnumber", "330212195001011234", "3302**********1234"), ("phone", "13812345678", "138****5678"),
    ("phone", "0574-8765432", "057****5432"),
])
def test_masking(field_type, value, shown):
    masked = forms.mask(field_type, value)
    assert masked == shown
    if len(value) > 2:
        assert masked != value


def test_public_value_rule():
    public_person = forms.Field("who", "户主", "person", public=True)
    private_person = forms.Field("who", "户主", "person")
    private_text = forms.Field("why", "原因", "textarea")
    public_text = forms.Field("what", "内容", "textarea", public=True)
    assert rules.public_value(public_person, "张三明") == "张*明"
    assert rules.public_value(private_person, "张三明") is None
    assert rules.public_value(private_text, "家中困难") is None
    assert rules.public_value(public_text, "公开内容") == "公开内容"
    assert rules.public_value(forms.Field("m", "金额", "money", public=True), "1234.5") == "1,234.50 元"
    assert rules.public_value(forms.Field("b", "同意", "boolean", public=True), True) == "是"
