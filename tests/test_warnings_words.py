"""The supervisors' inbox in words: a warning names people by display name and role, the case by
title, village and procedure, its facts as labelled values (no keys, no role keys, no login names,
no JSON), links to the exact submissions of the case file; 立案督办 fills in the supervision case
from the warning; the township's discipline office lands on its inbox."""

from __future__ import annotations

import re

from sqlalchemy import update

from engine.core import catalogue
from storage.models import User
from test_warnings import expense, raised
from web_helpers import login

RAW = ("actor", "pair", "roles", "[&#34;", '["', "handler", "joint_meeting", "事项 ")


def _name(xw, username: str, display: str) -> None:
    with xw.db.write() as s:
        s.execute(update(User).where(User.username == username).values(display_name=display))


def _main(html: str) -> str:
    return html[html.index("<main"):html.index("</main>")] if "<main" in html else html


def test_separation_of_duties_warning_reads_in_words(app, xw, people):
    nanxi = {**people, **{k: people["nanxi_all"] for k in ("handler", "director", "joint_meeting", "party_branch",
                                                            "bookkeeper", "supervision_committee", "committee")}}
    cid = expense(xw, nanxi, org="NANXI", amount=800, until="compile")
    _name(xw, people["nanxi_all"], "李建国")
    [w] = raised(xw, "XW-02")
    client = login(app, people["township_discipline"])
    page = _main(client.get(f"/warnings/{w['id']}").text)
    people_line = page[page.index('id="warning-people"'):].split("</dd>")[0]
    assert "李建国" in people_line
    roles = {catalogue.role_zh(r) for r in w["facts"]["roles"]}
    assert all(name in people_line for name in roles)
    case_line = page[page.index('id="warning-case"'):].split("</dd>")[0]
    title = xw.show_case(cid)["title"]
    assert title in case_line and "南溪村" in case_line and "财务支出报销审批" in case_line
    for raw in RAW:
        assert raw not in page, raw
    assert people["nanxi_all"] not in page  # the login name: never on the page, the person is named
    # the submissions it rests on: the actor's own, each a link to its anchor on the case page
    links = re.findall(rf'href="/cases/{cid}#sub-(\d+)"', page)
    assert links
    case_page = client.get(f"/cases/{cid}").text
    assert all(f'id="sub-{n}"' in case_page for n in links)
    # the list says the same in short
    inbox = _main(client.get("/warnings").text)
    row = inbox[inbox.index(f'data-id="{w["id"]}"'):].split("</tr>")[0]
    assert "李建国" in row and title in row and "南溪村" in row
    assert people["nanxi_all"] not in row and "事项 " not in row


def test_payment_warning_facts_in_words_and_english(app, xw, people):
    cid = expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    [w] = raised(xw, "WR-03")
    client = login(app, people["supervision_committee"])
    page = _main(client.get(f"/warnings/{w['id']}").text)
    facts = page[page.index('id="facts"'):].split("</dl>")[0]
    assert "60,000.00 元" in facts and "宏达建筑有限公司" in facts and "工程及维修" in facts
    assert "project" not in facts and "threshold" not in facts
    [link] = set(re.findall(rf'href="/cases/{cid}#sub-(\d+)"', page))
    assert 'id="sub-' + link + '"' in client.get(f"/cases/{cid}").text
    client.get("/lang/en?next=/tasks")
    english = _main(client.get(f"/warnings/{w['id']}").text)
    facts = english[english.index('id="facts"'):].split("</dl>")[0]
    assert "Amount" in facts and "60,000.00 yuan" in facts and "Payee" in facts and "金额" not in facts
    assert "A purchase, works or service payment at or above the platform threshold" in english
    assert "采购、工程或服务类单笔支出" not in english


def test_supervise_fills_in_the_supervision_case(app, xw, people):
    cid = expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    [w] = raised(xw, "WR-03")
    client = login(app, people["township_discipline"])
    done = client.post(f"/warnings/{w['id']}/handle", data={"action": "supervise", "opinion": "立案核查",
                                                              "csrf_token": client.csrf})
    assert done.status_code == 302
    sup = xw.show_warning(w["id"])["supervision_case_id"]
    started = next(e for e in xw.show_case(sup)["history"] if e["type"] == "case_started")
    initial = started["data"]["initial"]
    assert "宏达建筑有限公司" in initial["report_text"] and "60,000.00 元" in initial["report_text"]
    assert xw.show_case(cid)["title"] in initial["report_text"]
    assert initial["about_org"] == "东岙村" and initial["topic"] == "funds"
    form = client.get(f"/cases/{sup}").text  # the step form shows it filled in
    assert "宏达建筑有限公司" in form and 'value="东岙村"' in form


def test_discipline_office_lands_on_its_inbox(app, xw, people):
    client = login(app, people["township_discipline"])
    assert client.get("/").headers["Location"].endswith("/warnings")
    cadre = login(app, people["party_branch"])
    assert cadre.get("/").headers["Location"].endswith("/tasks")


def test_every_rule_says_what_it_inspects_in_both_languages():
    from engine.render.narrative import language
    from engine.services.supervision import rule_words, warnings

    for rule_id in warnings.RULES:
        zh = rule_words.inspects(rule_id) + rule_words.condition(rule_id)
        assert zh and not re.search(r"[a-z]+_[a-z]+\.", zh), (rule_id, zh)  # no table or column names
        with language("en"):
            en = rule_words.inspects(rule_id) + rule_words.condition(rule_id)
        assert en and not re.search(r"[\u4e00-\u9fff]", en.replace("“", "")), (rule_id, en)


def test_newer_fact_shapes_read_in_words():
    """Facts as the person-based rules write them (several accounts of one person, internal person
    keys, grouped views): names, never keys."""
    from engine.services.supervision.explain import _Words

    words = _Words({"li.a": "李建国", "li.b": "李建国(备用)"}, {}, {})
    rows = words.rows("XW-02", {"actor": "li.a、li.b", "accounts": ["li.a", "li.b"], "roles": ["handler", "director"],
                                "pair": "经办人与审批人", "person_id": "p-4711"})
    text = " ".join(f"{r['label']} {r['text']}" for r in rows)
    assert "李建国" in text and "li.a" not in text and "p-4711" not in text and "person_id" not in text
    rows = words.rows("WR-01", {"views": [{"by": "supplier", "value": "永兴五金店"}], "cadre_person_id": "p-1"})
    assert [r["text"] for r in rows] == ["同一供应商“永兴五金店”"]
