"""事项查询: the supervisor's case search (village, procedure, category, status, dates, overdue, amount,
people), paging, and clear errors for bad filters."""

from __future__ import annotations

import re

from conftest import do_step, ready_steps
from web_helpers import COLLECT, login


def listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'href="/cases/(\d+)"', html)]


def count(html: str) -> int:
    found = re.search(r'id="case-count">(\d+)<', html)
    assert found
    return int(found.group(1))


def make_cases(xw, people, frozen):
    road = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "村道硬化"})
    do_step(xw, road, ready_steps(xw, road)[0], people, overrides={**COLLECT, "amount": 380000})
    frozen.advance(days=20)
    small = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "路灯维修"})
    do_step(xw, small, ready_steps(xw, small)[0], people, overrides={**COLLECT, "amount": 1200})
    welfare = xw.start_case("B-SVC-01", "DONGAO", people["committee"], {"title": "低保申请"})
    do_step(xw, welfare, ready_steps(xw, welfare)[0], people, overrides={"applicant_name": "王小梅", "household_income": 800})
    other = xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"], {"title": "南溪水渠"})
    return road, small, welfare, other


def test_search_filters(app, xw, people, frozen):
    road, small, welfare, other = make_cases(xw, people, frozen)
    client = login(app, people["township_discipline"])
    everything = client.get("/cases?scope=all").text
    assert set(listed(everything)) == {road, small, welfare, other} and count(everything) == 4

    def found(**args) -> set[int]:
        page = client.get("/cases", query_string={"scope": "all", **args})
        assert page.status_code == 200, page.text
        return set(listed(page.text))

    assert found(org="NANXI") == {other}
    assert found(category="SVC") == {welfare}
    assert found(procedure="V-DEC-01", org="DONGAO") == {road, small}
    assert found(amount_min="100000") == {road}
    assert found(amount_min="1000", amount_max="2000") == {small}
    # The amount range with the other filters at once (a correlated EXISTS since #12: the same cases).
    assert found(amount_min="1000", overdue="1") == {road}
    assert found(amount_min="1000", amount_max="500000", org="DONGAO", procedure="V-DEC-01", category="DEC",
                 status="running") == {road, small}
    assert found(amount_min="1000", amount_max="500000", org="DONGAO", q="路灯") == {small}
    assert found(amount_min="1000", org="NANXI") == set()
    assert found(person="王小梅") == {welfare}           # a person named in a form
    assert found(person=people["committee"]) == {welfare}  # a user who acted
    assert found(q="路灯") == {small}
    # Dates are China calendar days (as shown in the list): the first case started 20 days before the others.
    days = dict(re.findall(r'href="/cases/(\d+)".*?<td data-label="发起">([\d-]+)</td>', everything, re.S))
    assert days[str(road)] < days[str(small)]
    assert found(**{"from": days[str(small)]}) == {small, welfare, other}
    assert found(to=days[str(road)]) == {road}
    assert found(**{"from": days[str(road)], "to": days[str(road)]}) == {road}
    assert found(overdue="1") == {road}  # its second step waited 20 days (limit: 10)
    frozen.advance(days=11)
    client = login(app, people["township_discipline"])  # eleven days later: the 8-hour session has ended
    assert {road, small, other} <= found(overdue="1")


def test_person_found_the_same_among_few_cases_or_over_the_scope(app, xw, people, frozen, monkeypatch):
    """A person is looked for among the cases the other filters left when they are few, else over the
    actor's whole scope: both ways find the same cases, with the same count."""
    from engine.services import reads

    road, small, welfare, other = make_cases(xw, people, frozen)
    client = login(app, people["township_discipline"])
    searches = [{"person": "王小梅"}, {"person": people["committee"]}, {"person": people["party_branch"]},
                {"person": people["party_branch"], "q": "路灯"}, {"person": "王小梅", "org": "NANXI"},
                {"person": "王"}, {"person": "无此人"}]

    def answers() -> list[tuple[set[int], int]]:
        pages = [client.get("/cases", query_string={"scope": "all", **args}) for args in searches]
        assert all(p.status_code == 200 for p in pages)
        return [(set(listed(p.text)), count(p.text)) for p in pages]

    among_few = answers()  # four cases: each search looks among them
    assert among_few == [({welfare}, 1), ({welfare}, 1), ({road, small}, 2), ({small}, 1), (set(), 0),
                         ({welfare}, 1), (set(), 0)]
    monkeypatch.setattr(reads, "PERSON_AMONG", 1)  # more cases than that: over the whole scope
    assert answers() == among_few


def test_bad_filters_are_explained_not_fatal(app, xw, people, frozen):
    make_cases(xw, people, frozen)
    client = login(app, people["township_discipline"])
    page = client.get("/cases?scope=all&amount_min=abc&from=2026-13-45&status=bogus")
    assert page.status_code == 422
    for message in ("金额应为不小于 0 的数字", "日期格式应为", "未知状态"):
        assert message in page.text
    assert count(page.text) == 4  # the bad filters are ignored, the list still shows
    page = client.get("/cases?scope=all&amount_min=500&amount_max=100")
    assert page.status_code == 422 and "最高金额不能小于最低金额" in page.text


def test_cadres_search_only_their_own_cases_and_villages(app, xw, people, frozen):
    road, small, welfare, other = make_cases(xw, people, frozen)
    cadre = login(app, people["party_branch"])
    mine = set(listed(cadre.get("/cases").text))
    assert mine == {road, small}  # started them; never saw 南溪 or the welfare case
    assert set(listed(cadre.get("/cases?scope=all").text)) == {road, small}  # scope=all is for supervisors
    assert set(listed(cadre.get("/cases?org=NANXI").text)) == set()
    nanxi = login(app, people["nanxi_all"])
    assert set(listed(nanxi.get("/cases?person=王小梅").text)) == set()


def test_paging(app, xw, people):
    ids = [xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": f"事项{i:02d}"}) for i in range(55)]
    client = login(app, people["township_discipline"])
    first = client.get("/cases?scope=all&org=DONGAO").text
    assert count(first) == 55 and len(listed(first)) == 50 and "第 1 / 2 页" in first
    assert 'href="/cases?page=2&amp;org=DONGAO&amp;scope=all"' in first or "page=2" in first
    second = client.get("/cases?scope=all&org=DONGAO&page=2").text
    assert len(listed(second)) == 5 and not set(listed(first)) & set(listed(second))
    assert set(listed(first)) | set(listed(second)) == set(ids)
    assert len(listed(client.get("/cases?scope=all&org=DONGAO&page=x").text)) == 50  # bad page → first page
    tasks = login(app, people["party_branch"]).get("/tasks").text
    assert 'id="task-count">55<' in tasks and "第 1 / 2 页" in tasks
    assert tasks.count('class="btn btn-primary"') == 50


def test_api_search_matches_the_page(app, xw, people, frozen):
    road, small, welfare, other = make_cases(xw, people, frozen)
    client = login(app, people["township_discipline"])
    body = client.get("/api/v1/cases?scope=all&amount_min=100000").get_json()
    assert body["total"] == 1 and [c["id"] for c in body["cases"]] == [road]
    assert body["cases"][0]["procedure_id"] == "V-DEC-01" and body["cases"][0]["created_at"].endswith("Z")
    bad = client.get("/api/v1/cases?scope=all&to=yesterday")
    assert bad.status_code == 422 and "to" in bad.get_json()["errors"]
    assert login(app, people["nanxi_all"]).get("/api/v1/cases?scope=all").get_json()["total"] == 1


def test_cli_and_web_list_cases_with_one_query(xw, people):
    """`xiaowei case list` and the case search of the pages and the API are one query: the same cases
    for the same filters (the command line sees every organization, newest case first)."""
    from engine.core import directory
    from engine.services import reads

    ids = [xw.start_case("V-DEC-01", org, people["party_branch"] if org == "DONGAO" else people["nanxi_all"])
           for org in ("DONGAO", "NANXI", "DONGAO")]
    xw.cancel(ids[0], people["district_admin"], "重复发起")
    with xw.db.read() as s:
        actor = directory.load_actor(s, people["district_admin"])
        for org, status in ((None, None), ("DONGAO", None), ("SFZ", None), ("DONGAO", "running"), ("NANXI", "cancelled")):
            web, total = reads.search_cases(s, actor, reads.CaseQuery(mine=False, org_code=org, status=status,
                                                                       by_id=True))
            cli = xw.list_cases(org_code=org, status=status)
            assert [c["id"] for c in cli] == [c["id"] for c in web] and total == len(cli), (org, status)
    assert [c["id"] for c in xw.list_cases(org_code="SFZ")] == sorted(ids, reverse=True)
    assert [c["id"] for c in xw.list_cases(status="cancelled")] == [ids[0]]
