"""预警 pages and API: a supervisor sees a red warning, opens the case trail from it and resolves it with
an opinion; scope, filters and the API's same data."""

from __future__ import annotations

from test_warnings import expense
from web_helpers import login


def test_supervisor_resolves_a_red_warning_from_the_inbox(app, xw, people):
    cid = expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    client = login(app, people["supervision_committee"])
    inbox = client.get("/warnings?severity=red").text
    assert 'href="/warnings"' in inbox and "超限额未进站" in inbox and 'class="sev sev-red"' in inbox
    wid = xw.list_warnings(rule="WR-03")["warnings"][0]["id"]
    page = client.get(f"/warnings/{wid}").text
    assert f'href="/cases/{cid}/trail"' in page and "宏达建筑有限公司" in page
    assert client.get(f"/cases/{cid}/trail").status_code == 200
    refused = client.post(f"/warnings/{wid}/handle", data={"action": "resolve", "opinion": " ",
                                                            "csrf_token": client.csrf})
    assert refused.status_code == 422 and "须填写处理意见" in refused.text
    done = client.post(f"/warnings/{wid}/handle", data={"action": "resolve", "opinion": "已责令补办进站,<b>整改</b>",
                                                         "csrf_token": client.csrf})
    assert done.status_code == 302
    page = client.get(f"/warnings/{wid}").text
    assert "已办结" in page and "&lt;b&gt;整改&lt;/b&gt;" in page and "<b>整改" not in page
    trail = [e["type"] for e in xw.show_case(cid)["history"]]
    assert trail[-1] == "warning_resolved"
    api = client.get("/api/v1/warnings?rule=WR-03").json
    assert api["total"] == 1 and api["warnings"][0]["status"] == "resolved"
    assert api == {**xw.list_warnings(rule="WR-03"), "limit": 50}


def test_inbox_scope_and_no_csrf(app, xw, people):
    expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    nanxi = login(app, people["nanxi_all"])  # supervision committee of 南溪村: not 东岙村's warnings
    assert nanxi.get("/api/v1/warnings").json["total"] == 0
    assert nanxi.get("/warnings?org=DONGAO").status_code == 403
    cadre = login(app, people["handler"])
    assert cadre.get("/warnings").status_code == 403
    assert 'href="/warnings"' not in cadre.get("/tasks").text
    township = login(app, people["township_discipline"])
    wid = township.get("/api/v1/warnings").json["warnings"][0]["id"]
    assert township.post(f"/warnings/{wid}/handle", data={"action": "resolve", "opinion": "x"}).status_code == 400
