"""English all the way: every user-facing name of procedure content in the library — procedure, step,
lane, field, option and end names — has an English form in the generated BPMN (from the step table or
the glossary processes/english.yaml), the English has no Chinese left in it, and an English page shows
a case's step, its form and its trail in English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from engine.bpmn import english as glossary
from engine.core.definitions import read_definition
from web_helpers import login

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
CJK = re.compile(r"[\u3400-\u9fff\uff08\uff09\u3001\u3002\uff0c\uff1b\uff1a\u201c\u201d]")


def _definitions():
    for path in sorted(PROCESSES.glob("*.bpmn")):
        xml = path.read_bytes()
        yield path.stem, read_definition(etree.fromstring(xml), xml)


@pytest.mark.nodb
def test_every_name_of_procedure_content_has_english():
    missing: list[str] = []
    chinese: list[str] = []

    def check(where: str, zh: str, en: str) -> None:
        if not en:
            missing.append(f"{where}: {zh}")
        elif CJK.search(en.replace("“个人”", "")):
            chinese.append(f"{where}: {en}")

    count = 0
    for pid, d in _definitions():
        check(f"{pid} name", d.name, d.name_en)
        for lane in d.lanes.values():
            check(f"{pid} lane", lane.name, lane.name_en)
        for step in d.steps.values():
            check(f"{pid} step {step.id}", step.name, step.name_en)
            for f in step.fields:
                check(f"{pid} {step.id}.{f.name}", f.label, f.label_en)
                for o in f.options:
                    check(f"{pid} {step.id}.{f.name}={o.value}", o.label, o.label_en)
                count += 1
        for node in d.nodes.values():
            if node.type == "endEvent":
                check(f"{pid} end {node.id}", node.name, node.name_en)
    assert count > 500
    assert not missing, f"{len(missing)} names without English, e.g. {missing[:10]}"
    assert not chinese, f"English with Chinese left in it: {chinese[:10]}"


@pytest.mark.nodb
def test_the_glossary_by_kind_of_name():
    # one Chinese name, two kinds: the step reads as an action, the field as a label
    assert glossary.english("被审计人说明", kind="steps") == "Audited person explains"
    assert glossary.english("被审计人说明", kind="fields") == "Explanation by the person audited"
    assert glossary.english("审核用途·监督", kind="steps") == "Check the purpose — supervision"
    assert glossary.english("元", kind="units") == "yuan"
    assert glossary.english("不在词表中的名称") is None and glossary.english("任何", explicit="Own") == "Own"


def test_an_english_page_shows_the_procedure_content_in_english(app, xw, people):
    cid = xw.start_case("B-FIN-01", "DONGAO", people["handler"])
    client = login(app, people["handler"])
    client.get("/lang/en?next=/tasks")
    page = re.sub(r"<svg.*?</svg>", "", client.get(f"/cases/{cid}").text, flags=re.S)  # the chart: its own helper
    assert "Handler obtains a valid invoice and signs" in page  # the step
    assert "Expense claim number" in page and "Purpose of the expense" in page  # field labels
    assert ">Works and repairs</option>" in page  # a choice's options
    assert "经手人取得合法凭证并签字" not in page and "报销单号" not in page
    chinese = client.get("/lang/zh?next=/tasks") and client.get(f"/cases/{cid}").text
    assert "经手人取得合法凭证并签字" in chinese and "Expense claim number" not in chinese


def test_the_trail_tells_procedure_content_in_english(app, xw, people):
    from supervision_helpers import do

    cid = xw.start_case("B-FIN-01", "DONGAO", people["handler"])
    do(xw, cid, "submit", people, overrides={"payee": "宏达建筑有限公司", "amount": 800, "expense_date": "2026-03-02",
                                             "expense_category": "project", "days_since_expense": 0})
    client = login(app, people["supervision_committee"])
    client.get("/lang/en?next=/tasks")
    trail = re.sub(r"<svg.*?</svg>", "", client.get(f"/cases/{cid}/trail").text, flags=re.S)
    assert "Handler obtains a valid invoice and signs" in trail
    assert "Expense category" in trail and "Works and repairs" in trail and "800.00 yuan" in trail
    assert "支出类别" not in trail and "工程及维修" not in trail
