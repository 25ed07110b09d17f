"""监督分析 and 廉情档案 in the web app: SVG charts with data, CSV downloads Excel can open, the heat
map of a procedure, scope by role and village, the cadre file and its note form."""

from __future__ import annotations

import csv
import io

from supervision_helpers import build_history
from web_helpers import login


def test_dashboard_renders_charts_for_the_township(app, xw, people, frozen):
    build_history(xw, people, frozen)
    client = login(app, people["township_discipline"])
    page = client.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "<script" not in html and "监督分析" in html
    for key in ("procedures", "villages", "ontime", "warnings", "rules", "trend", "durations", "grades"):
        assert f'id="chart-{key}"' in html, key
        assert f"/dashboard/{key}.csv" in html
    assert html.count('class="bar') >= 8 and 'class="trend-line"' in html
    assert 'id="kpi-red">1<' in html and 'id="kpi-ontime">50%<' in html
    assert "东岙村" in html and "南溪村" in html and "/dashboard/heat/V-DEC-01" in html
    nav = client.get("/tasks").text
    assert 'href="/dashboard"' in nav and 'href="/cadres"' in nav


def test_csv_downloads_are_utf8_with_bom(app, xw, people, frozen):
    build_history(xw, people, frozen)
    client = login(app, people["township_staff"])
    for chart in ("procedures", "villages", "ontime", "durations", "warnings", "rules", "trend", "grades"):
        r = client.get(f"/dashboard/{chart}.csv")
        assert r.status_code == 200 and r.headers["Content-Type"] == "text/csv; charset=utf-8", chart
        assert r.data.startswith(b"\xef\xbb\xbf") and "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(client.get("/dashboard/villages.csv").data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["镇(街道)", "村(社区)代码", "村(社区)"]
    dongao = next(r for r in rows if r[1] == "DONGAO")
    assert dongao[2] == "东岙村" and dongao[rows[0].index("红色预警")] == "1" and dongao[rows[0].index("按时率")] == "50%"
    trend = list(csv.reader(io.StringIO(client.get("/dashboard/trend.csv").data.decode("utf-8-sig"))))
    assert trend[0] == ["月份", "新发起事项", "办结事项", "新预警"] and trend[-1][:2] == ["2026-03", "4"]
    assert client.get("/dashboard/nothing.csv").status_code == 404


def test_heat_map_page(app, xw, people, frozen):
    build_history(xw, people, frozen)
    client = login(app, people["township_discipline"])
    r = client.get("/dashboard/heat/V-DEC-01")
    assert r.status_code == 200
    assert "<svg" in r.text and "heat-10" in r.text and 'class="heat-badge" data-step="collect"' in r.text
    assert 'data-step="collect"' in r.text and "<script" not in r.text
    rows = client.get("/dashboard/heat/V-DEC-01?format=csv").data.decode("utf-8-sig")
    assert "collect" in rows and "征求意见" in rows
    assert client.get("/dashboard/heat/NOPE-01").status_code == 404


def test_village_members_see_only_their_village(app, xw, people, frozen):
    build_history(xw, people, frozen)
    committee = login(app, people["committee"])
    html = committee.get("/dashboard").text
    assert "东岙村" in html and "南溪村" not in html
    assert committee.get("/dashboard?org=NANXI").status_code == 404
    assert committee.get("/dashboard?org=DONGAO").status_code == 200
    nanxi = login(app, people["nanxi_all"])
    assert 'id="kpi-red">0<' in nanxi.get("/dashboard").text
    assert login(app, people["bookkeeper"]).get("/dashboard").status_code == 403
    assert login(app, people["bookkeeper"]).get("/dashboard/trend.csv").status_code == 403
    assert committee.get("/dashboard?month=2026-13").status_code == 422


def test_cadre_file_and_note_form(app, xw, people, frozen):
    build_history(xw, people, frozen)
    client = login(app, people["supervision_committee"])
    listing = client.get("/cadres")
    assert listing.status_code == 200 and people["party_branch"] in listing.text and "nanxi_all" not in listing.text
    page = client.get(f"/cadres/{people['party_branch']}")
    assert page.status_code == 200 and 'id="stat-late">1<' in page.text and 'id="stat-ontime">1<' in page.text
    r = client.post(f"/cadres/{people['party_branch']}/notes",
                    data={"kind": "three_lists", "responsibilities": "落实五议两公开", "problems": "",
                          "risks": "先实施后决策", "csrf_token": client.csrf})
    assert r.status_code == 422 and "问题清单" in r.text
    r = client.post(f"/cadres/{people['party_branch']}/notes",
                    data={"kind": "talk", "text": "提醒谈话:按时办理征求意见环节", "csrf_token": client.csrf})
    assert r.status_code == 302
    page = client.get(f"/cadres/{people['party_branch']}").text
    assert "提醒谈话:按时办理征求意见环节" in page and "谈话" in page
    assert client.get("/cadres/nanxi_all").status_code == 404
    assert login(app, people["township_staff"]).get(f"/cadres/{people['party_branch']}").status_code == 403
    township = login(app, people["township_discipline"]).get(f"/cadres/{people['party_branch']}")
    assert township.status_code == 200 and "提醒谈话" in township.text
