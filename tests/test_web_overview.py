"""镇街总览 (/overview): cases of a township's villages by procedure and status, overdue first."""

from __future__ import annotations

import re

from conftest import add_user
from engine.core import directory
from web_helpers import login


def row_of(html: str, org: str, procedure: str) -> str:
    found = re.search(rf'<tr[^>]*data-org="{org}" data-procedure="{procedure}">(.*?)</tr>', html, re.S)
    assert found, f"no row for {org}/{procedure}"
    return found.group(1)


def cell(row: str, name: str) -> str:
    found = re.search(rf'class="num-{name}">(.*?)</td>', row, re.S)
    assert found
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_township_overview_counts_by_village_procedure_and_status(app, xw, people, frozen):
    late = [xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": f"东岙村道路{i}"}) for i in range(2)]
    frozen.advance(days=11)  # past V-DEC-01's 10-day limit for its first step
    fresh = xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"])
    cancelled = xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"])
    xw.cancel(cancelled, people["township_staff"], "重复发起")
    svc = xw.start_case("B-SVC-01", "DONGAO", people["committee"])
    client = login(app, people["township_staff"])
    page = client.get("/overview")
    assert page.status_code == 200
    html = page.text
    for text in ("镇街总览", "东岙村", "南溪村", "村级重大决策事项(五议两公开)", "超期", "办理中", "已撤销 1"):
        assert text in html
    assert 'id="case-total">5<' in html and 'id="overdue-total">2<' in html and 'id="running-total">4<' in html
    dongao = row_of(html, "DONGAO", "V-DEC-01")
    assert cell(dongao, "overdue") == "2 件超期" and cell(dongao, "running") == "2" and cell(dongao, "total") == "2"
    nanxi = row_of(html, "NANXI", "V-DEC-01")
    assert cell(nanxi, "overdue") == "0" and cell(nanxi, "running") == "1" and cell(nanxi, "total") == "2"
    assert cell(row_of(html, "DONGAO", "B-SVC-01"), "running") == "1"
    # Overdue first, then the most running cases.
    order = re.findall(r'data-org="(\w+)" data-procedure="([\w-]+)"', html)
    assert order[0] == ("DONGAO", "V-DEC-01") and len(order) == 3
    assert 'class="is-overdue"' in html.split('data-org="DONGAO" data-procedure="V-DEC-01"')[0].rsplit("<tr", 1)[1]
    # Links into the case search, which township staff may use.
    from urllib.parse import parse_qs, urlsplit

    overdue_link = re.search(r'class="num-overdue"><a class="due overdue" href="([^"]+)"', dongao).group(1)
    link = overdue_link.replace("&amp;", "&")
    assert urlsplit(link).path == "/cases" and parse_qs(urlsplit(link).query) == {
        "scope": ["all"], "org": ["DONGAO"], "procedure": ["V-DEC-01"], "status": ["running"]}
    listed = client.get(link).text
    assert all(f"/cases/{c}" in listed for c in late) and f"/cases/{fresh}" not in listed and f"/cases/{svc}" not in listed


def test_overview_is_for_township_and_district_staff_in_the_nav(app, xw, people):
    add_user(xw, "gov", "township_government@SFZ")
    for user in (people["township_staff"], "gov", people["district_admin"]):
        client = login(app, user)
        tasks = client.get("/tasks").text
        assert 'href="/overview"' in tasks and "镇街总览" in tasks
        page = client.get("/overview")
        assert page.status_code == 200 and "辖区内还没有事项" in page.text
        assert 'aria-current="page">镇街总览' in page.text
    for key in ("party_branch", "supervision_committee", "township_discipline", "nanxi_all"):
        client = login(app, people[key])
        assert 'href="/overview"' not in client.get("/tasks").text
        assert client.get("/overview").status_code == 403
    anonymous = app.test_client().get("/overview")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/login")


def test_overview_covers_only_the_users_own_township(app, xw, people):
    with xw.db.write() as s:
        directory.add_org(s, "BEIZ", "北镇", "township", "SFQ")
        directory.add_org(s, "BEICUN", "北村", "village", "BEIZ")
    bei = add_user(xw, "bei_staff", "township_staff@BEIZ")
    add_user(xw, "bei_party", "party_branch@BEICUN")
    xw.start_case("V-DEC-01", "BEICUN", "bei_party")
    xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    own = login(app, bei).get("/overview").text
    assert "北村" in own and "东岙村" not in own and 'data-org="DONGAO"' not in own
    sfz = login(app, people["township_staff"]).get("/overview").text
    assert "东岙村" in sfz and 'data-org="BEICUN"' not in sfz
    district = login(app, people["district_admin"]).get("/overview").text
    assert 'data-org="BEICUN"' in district and 'data-org="DONGAO"' in district


def test_overview_reads_only_the_tables(app, xw, people, monkeypatch):
    xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    client = login(app, people["township_staff"])
    from engine.core import procedures, spiff

    def refuse(*args, **kwargs):
        raise AssertionError("the overview must not deserialize a case")

    monkeypatch.setattr(spiff, "load_state", refuse)
    monkeypatch.setattr(procedures, "runtime", refuse)
    page = client.get("/overview")
    assert page.status_code == 200 and 'data-org="DONGAO"' in page.text
