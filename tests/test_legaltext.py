"""Clean legal text: user-facing basis and instructions hold only verified text; authoring notes live
in the non-public review field, shown to township staff in the editor only."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from engine.core import legaltext
from engine.core.definitions import read_definition
from engine.core.lint import lint_bytes
from engine.core.xmlsafe import parse_xml
from web_helpers import login

ROOT = Path(__file__).resolve().parent.parent
# The notes the catalogue carried into user-facing text (issue #14), and their kin.
NOTES = ("具体条号与表决比例未复核", "条号未复核", "具体条款未复核", "标题文号已见", "依据:typical", "typical", "据转述",
         "占位默认值", "条款待核")


def _definitions():
    for path in sorted(ROOT.glob("processes/*.bpmn")):
        xml = path.read_bytes()
        yield read_definition(parse_xml(xml), xml)


def _visible(page: str) -> str:
    """The text a person reads on an HTML page (tags, scripts and styles removed)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _clean(text: str) -> list[str]:
    return [n for n in NOTES if n in text] + legaltext.authoring_notes(text)


@pytest.mark.parametrize("d", list(_definitions()), ids=lambda d: d.id)
def test_no_user_facing_text_of_a_procedure_holds_authoring_notes(d) -> None:
    dirty = [(element, where, text) for element, where, text in legaltext.user_facing_texts(d) if _clean(text)]
    assert dirty == []


def test_the_notes_moved_to_review_and_the_editor_lists_them() -> None:
    by_id = {d.id: d for d in _definitions()}
    notes = by_id["V-DEC-03"].review_notes()
    assert {"where": "依据《中华人民共和国农村集体经济组织法》(2025年5月1日施行)", "text": "具体条号与表决比例未复核"} in notes
    assert any("条号未复核" in n["text"] for n in by_id["V-AST-01"].review_notes())
    assert any(n["where"] == "参数“低保初审公示期”" for n in by_id["B-SVC-01"].review_notes())


def test_articles_are_cited_only_when_read() -> None:
    by_id = {d.id: d for d in _definitions()}
    cited = {b["source"]: b["article"] for b in by_id["V-AST-02"].cited_basis()}
    assert cited["《中华人民共和国农村土地承包法》"] == ""  # status recalled: the source, not the article
    confirmed = {b["source"] + b["article"] for b in by_id["V-DEC-01"].cited_basis()}
    assert "《中华人民共和国村民委员会组织法》第二十六条" in confirmed


def test_lint_refuses_an_authoring_note_in_user_facing_text() -> None:
    xml = (ROOT / "processes" / "V-DEC-01.bpmn").read_bytes()
    tampered = xml.replace("召开党员大会审议方案。".encode(), "召开党员大会审议方案(条号未复核)。".encode())
    assert tampered != xml
    problems = [p for p in lint_bytes(tampered, "V-DEC-01.bpmn").errors if p.code == "authoring-note"]
    assert len(problems) == 1 and problems[0].element == "party_review"
    assert "办理要求中有编写备注“未复核”" in problems[0].zh
    tampered = xml.replace("须走五议两公开的金额起点".encode(), "须走五议两公开的金额起点 typical".encode())
    assert [p.code for p in lint_bytes(tampered, "V-DEC-01.bpmn").errors] == ["authoring-note"]


def test_pages_hold_no_authoring_notes(app, xw, people) -> None:
    from engine.render.handbook import collect_entries, render_handbook_html
    from conftest import add_user

    cadre = login(app, people["committee"])
    pages = {"start": cadre.get("/start?org=DONGAO").text}
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    pages["step"] = login(app, people["party_branch"]).get(f"/cases/{case_id}").text
    for procedure in ("B-FIN-01", "V-DEC-03", "V-AST-01", "B-SVC-01", "C-SVC-01", "V-FIN-02"):
        found = app.test_client().get(f"/public/DONGAO/procedures/{procedure}")
        if found.status_code == 404:  # a community procedure
            found = app.test_client().get(f"/public/HEPING/procedures/{procedure}")
        assert found.status_code == 200, procedure
        pages[f"public {procedure}"] = found.text
    staff = add_user(xw, "text_staff", "township_staff@SFZ")
    pages["params"] = login(app, staff).get("/admin/params?org=DONGAO").text
    for edition in ("village", "community"):
        pages[f"handbook {edition}"] = render_handbook_html(collect_entries(xw, edition), edition=edition)
    dirty = {name: _clean(_visible(page)) for name, page in pages.items()}
    assert {name: found for name, found in dirty.items() if found} == {}
    assert "《中华人民共和国村民委员会组织法》第二十六条" in _visible(pages["start"])


def test_township_staff_see_the_notes_in_the_editor(app, xw, people) -> None:
    from conftest import add_user

    staff = add_user(xw, "review_staff", "district_admin@SFQ")
    page = _visible(login(app, staff).get("/procedures/V-DEC-03").text)
    assert "编写备注(仅镇街工作人员可见)" in page and "具体条号与表决比例未复核" in page
    cadre = _visible(login(app, people["committee"]).get("/start?org=DONGAO").text)
    assert "具体条号与表决比例未复核" not in cadre
