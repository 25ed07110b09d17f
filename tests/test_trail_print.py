"""The printable trail (/cases/<id>/trail/print) and its PDF (/cases/<id>/trail.pdf), on the real test
database; the PDF is printed by the system Chromium and read back with pdftotext."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import do_step
from engine.render.handbook import CHROMIUM_PATH
from engine.trailcheck import verify_trail
from test_attachments import png
from web_helpers import login

EVIL = "<script>alert('trail')</script>村东道路"


@pytest.fixture
def busy_case(xw, people, case_id):
    """东岙村's V-DEC-01 case: a step with an attachment and script-like text, a gateway decision,
    and a refused look by another village."""
    refs = xw.store_files([("现场照片.png", png())], people["party_branch"])
    do_step(xw, case_id, "collect", people, overrides={"matter_title": EVIL}, attachments=refs)
    do_step(xw, case_id, "propose", people)
    do_step(xw, case_id, "consult", people, overrides={"needs_township_review": False})
    return case_id


def test_print_page_has_every_event_and_escapes_text(app, xw, people, busy_case):
    client = login(app, people["township_discipline"])
    assert login(app, people["nanxi_all"]).get(f"/cases/{busy_case}/trail/print").status_code == 403
    page = client.get(f"/cases/{busy_case}/trail/print")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.text
    info = xw.show_case(busy_case)
    events = info["history"]
    assert events[-1]["type"] == "access_denied"  # the refused look above is in the trail, and printed
    for e in events:
        assert f'id="ev-{e["seq"]}"' in text and e["hash"][:16] in text
    assert text.count('<tr class="ev ') == len(events)
    # Header, flowchart, who and as what, before → after, gateway decision and why, attachment.
    for expected in (info["procedure_name"], info["org_name"], info["tracking_code"], "办理中", "<svg",
                     "办理“征求意见(村民说事)”", "村(社区)党组织", "流程判断", "需报镇(街道)预审", "依据:",
                     "现场照片.png", "image/png", "拒绝越权操作:查看留痕", "留痕校验通过",
                     "python -m engine.trailcheck trail-%d.json" % busy_case, "@page"):
        assert expected in text, expected
    sha = [e for e in events if e["type"] == "step_completed"][0]["data"]["attachments"][0]["sha256"]
    assert sha in text
    # Script text from a form is shown as text, never run; the page has no navigation and no scripts.
    assert "<script" not in text and "&lt;script&gt;alert(" in text
    assert 'class="tabs"' not in text and "/static/app.css" not in text
    assert "script-src 'none'" in page.headers["Content-Security-Policy"]
    # The head hash and count match the exported JSON that trailcheck verifies offline.
    raw = client.get(f"/cases/{busy_case}/trail.json").get_data(as_text=True)
    assert verify_trail(raw) == []
    exported = json.loads(raw)
    assert re.search(r'id="head-seq">%d<' % exported["head"]["seq"], text)
    assert f'id="head-hash">{exported["head"]["hash"]}<' in text


def test_print_page_shows_a_broken_chain(app, xw, people, case_id):
    from sqlalchemy import update

    from storage.models import AuditEvent

    from conftest import bypass_append_only

    with xw.db.write() as s:
        bypass_append_only(s)
        s.execute(update(AuditEvent).where(AuditEvent.chain == f"case:{case_id}", AuditEvent.seq == 1)
                  .values(actor="someone-else"))
    text = login(app, people["party_branch"]).get(f"/cases/{case_id}/trail/print").text
    assert "留痕校验未通过" in text and "留痕校验通过" not in text


def test_trail_page_links_to_print_and_pdf(app, people, case_id):
    text = login(app, people["party_branch"]).get(f"/cases/{case_id}/trail").text
    assert f'href="/cases/{case_id}/trail/print"' in text and f'href="/cases/{case_id}/trail.pdf"' in text


@pytest.mark.skipif(not Path(CHROMIUM_PATH).exists() or shutil.which("pdftotext") is None,
                    reason="needs /usr/bin/chromium and pdftotext")
def test_pdf_is_a_real_pdf_with_the_procedure_name(app, xw, people, busy_case, tmp_path):
    client = login(app, people["party_branch"])
    response = client.get(f"/cases/{busy_case}/trail.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f"attachment; filename=trail-{busy_case}.pdf"
    body = response.get_data()
    assert body.startswith(b"%PDF")
    path = tmp_path / "trail.pdf"
    path.write_bytes(body)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout
    squeezed = re.sub(r"\s+", "", text)
    name = xw.show_case(busy_case)["procedure_name"]
    assert re.sub(r"\s+", "", name) in squeezed
    assert "留痕校验通过" in squeezed and "现场照片.png" in squeezed
    # Printing for download is recorded nowhere but refused like the export for other villages.
    refused = login(app, people["nanxi_all"]).get(f"/cases/{busy_case}/trail.pdf")
    assert refused.status_code == 403
    denied = [e["data"]["action"] for e in xw.show_case(busy_case)["history"] if e["type"] == "access_denied"]
    assert denied == ["export_trail"]
