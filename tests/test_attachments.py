"""Evidence attachments on case steps: photos, scans and PDFs stored by content hash, named in the
step's audit event, checked by content (not by name), downloadable only through the case they belong to.

Real database, real Flask app and multipart requests; no mocks.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import struct
import zlib

import pytest
from sqlalchemy import func, select

from engine.core import attachments
from engine.core.errors import InvalidData
from engine.trailcheck import verify_trail
from storage.models import Blob
from web_helpers import COLLECT, login, token_of


def png(width: int = 2, height: int = 2, noise: int = 0) -> bytes:
    """A real PNG image, stored uncompressed; ``noise`` makes it at least that many bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    if noise:
        width, height = 64, noise // (64 * 3) + 1
    raw = b"".join(b"\x00" + (hashlib.sha256(f"{width}x{height}:{y}".encode()).digest() * (width // 10 + 1))[:width * 3]
                   for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
HTML = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 40


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def post_step(client, case_id: int, data: dict, files: list[tuple[bytes, str]] = (), step: str = "collect",
              **extra):
    form = {**data, "csrf_token": client.csrf, **extra}
    if files:
        form["files"] = [(io.BytesIO(content), name) for content, name in files]
    return client.post(f"/cases/{case_id}/steps/{step}", data=form, content_type="multipart/form-data")


def completed(xw, case_id: int) -> list[dict]:
    return [e for e in xw.show_case(case_id)["history"] if e["type"] == "step_completed"]


def blob_count(xw) -> int:
    with xw.db.read() as s:
        return s.scalar(select(func.count()).select_from(Blob))


# --- the checks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("content,expected", [
    (png(), "image/png"), (JPEG, "image/jpeg"), (PDF, "application/pdf"), (HEIC, "image/heic"),
    (b"\x00\x00\x00\x18ftypheix" + b"\x00" * 20, "image/heic"), (b"\x00\x00\x00\x18ftypmif1" + b"\x00" * 20, "image/heic"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20, "image/webp"), (b"GIF89a" + b"\x00" * 20, "image/gif"),
    (HTML, None), (ZIP, None), (EXE, None), (b"   %PDF-1.4", None), (b"", None),
    (b"\x00\x00\x00\x18ftypisom" + b"\x00" * 20, None),  # an MP4 video
])
def test_sniff_by_magic_bytes(content, expected):
    assert attachments.sniff(content) == expected


@pytest.mark.parametrize("content,name,ok", [
    (png(), "照片.png", True), (png(), "照片.PNG", True), (png(), "无扩展名", True), (JPEG, "IMG_0001.jpeg", True),
    (HEIC, "IMG_0002.HEIC", True), (PDF, "scan.pdf", True),
    (HTML, "photo.jpg", False), (ZIP, "photo.jpg", False), (EXE, "scan.pdf", False),
    (png(), "photo.jpg", False), (PDF, "invoice.png", False), (png(), "payload.html", False),
    (png(), "payload.svg", False), (PDF, "report.pdf.exe", False),
])
def test_content_and_extension_must_agree(content, name, ok):
    if ok:
        media_type, shown = attachments.check(content, name)
        assert media_type == attachments.sniff(content) and shown == name
    else:
        with pytest.raises(InvalidData) as exc:
            attachments.check(content, name)
        assert name in exc.value.message and " / " in exc.value.message
        assert exc.value.errors[attachments.FIELD].startswith(f"“{name}”")


def test_file_names_are_cleaned_for_display():
    assert attachments.clean_name("C:\\Users\\张三\\Desktop\\现场照片.jpg") == "现场照片.jpg"
    assert attachments.clean_name("../../etc/passwd") == "passwd"
    assert attachments.clean_name("a\x00b\r\nc.png") == "abc.png"
    assert attachments.clean_name("invoice\u202egnp.exe") == "invoicegnp.exe"  # no right-to-left override
    long = attachments.clean_name("长" * 300 + ".pdf")
    assert len(long) <= attachments.NAME_LENGTH and long.endswith(".pdf")
    assert attachments.clean_name("", "image/png") == "附件.png"
    assert attachments.clean_name("...", "application/pdf") == "附件.pdf"


def test_size_limit_comes_from_the_environment(setenv):
    setenv("XIAOWEI_MAX_UPLOAD_MB", None)
    assert attachments.max_bytes() == 10 * 1024 * 1024
    setenv("XIAOWEI_MAX_UPLOAD_MB", "2")
    assert attachments.max_bytes() == 2 * 1024 * 1024
    setenv("XIAOWEI_MAX_UPLOAD_MB", "nonsense")  # a typo falls back to the default
    assert attachments.max_bytes() == 10 * 1024 * 1024
    setenv("XIAOWEI_MAX_UPLOAD_MB", "0.01")
    with pytest.raises(InvalidData, match="超过"):
        attachments.check(png(noise=20_000), "big.png")
    with pytest.raises(InvalidData, match="空文件"):
        attachments.check(b"", "empty.jpg")


# --- the engine ------------------------------------------------------------------------------------

def test_engine_stores_once_and_records_refs_in_the_step_event(xw, people, case_id):
    user = people["party_branch"]
    image = png()
    refs = xw.store_files([("现场照片.png", image), ("again.png", image)], user)
    assert [r["sha256"] for r in refs] == [sha(image)] * 2
    assert refs[0] == {"sha256": sha(image), "name": "现场照片.png", "size": len(image), "type": "image/png"}
    assert blob_count(xw) == 1  # deduplicated by content
    assert xw.load_file(sha(image)) == ("image/png", image)
    # A reference must name a stored file; size and type come from the store, not from the caller.
    from conftest import case_context
    from engine.services.scenarios import plan_step_data

    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, "collect", params, data)
    with pytest.raises(InvalidData, match="不存在"):
        xw.complete(case_id, "collect", user, payload, attachments=[{"sha256": "a" * 64, "name": "x.png"}])
    with pytest.raises(InvalidData, match="SHA-256"):
        xw.complete(case_id, "collect", user, payload, attachments=[{"sha256": "../../etc"}])
    assert completed(xw, case_id) == []
    xw.complete(case_id, "collect", user, payload,
                attachments=[{**refs[0], "size": 1, "type": "text/html"}, refs[1]])
    event = completed(xw, case_id)[0]
    assert event["data"]["attachments"] == [refs[0]]
    assert all(r.ok for r in xw.verify(case_id))


def test_steps_without_files_keep_their_event_unchanged(xw, people, case_id):
    from conftest import do_step

    do_step(xw, case_id, "collect", people)
    assert "attachments" not in completed(xw, case_id)[0]["data"]


def test_at_most_ten_files_per_step(xw, people):
    files = [(f"p{i}.png", png(i + 1, 1)) for i in range(11)]
    with pytest.raises(InvalidData, match="最多"):
        xw.store_files(files, people["party_branch"])
    assert blob_count(xw) == 0


# --- the step page -----------------------------------------------------------------------------------

def test_upload_at_a_step_is_in_the_trail_and_downloadable(app, xw, people, case_id):
    client = login(app, people["party_branch"])
    page = client.get(f"/cases/{case_id}")
    assert 'enctype="multipart/form-data"' in page.text
    assert 'type="file" multiple accept="image/*,application/pdf"' in page.text and 'capture="environment"' in page.text
    assert "需留存:" in page.text and "意见征集记录" in page.text  # the step's expected evidence, by the input
    image, pdf = png(), PDF
    done = post_step(client, case_id, COLLECT, [(image, "村道现场照片.png"), (pdf, "村民说事记录.pdf")])
    assert done.status_code == 302, done.text[:500]
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["propose"]
    event = completed(xw, case_id)[0]
    assert event["data"]["attachments"] == [
        {"sha256": sha(image), "name": "村道现场照片.png", "size": len(image), "type": "image/png"},
        {"sha256": sha(pdf), "name": "村民说事记录.pdf", "size": len(pdf), "type": "application/pdf"}]
    assert all(r.ok for r in xw.verify(case_id))

    supervisor = login(app, people["supervision_committee"])
    trail = supervisor.get(f"/cases/{case_id}/trail")
    assert trail.status_code == 200 and "留痕校验通过" in trail.text
    for text in ("村道现场照片.png", "村民说事记录.pdf", "image/png", "application/pdf", sha(image)[:12],
                 f'title="SHA-256: {sha(pdf)}"', f"/cases/{case_id}/files/{sha(image)}"):
        assert text in trail.text
    download = supervisor.get(f"/cases/{case_id}/files/{sha(image)}")
    assert download.status_code == 200 and download.data == image
    assert download.mimetype == "image/png"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "filename*=UTF-8''" in download.headers["Content-Disposition"]
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert "default-src 'none'" in download.headers["Content-Security-Policy"]
    assert "no-store" in download.headers["Cache-Control"]
    assert supervisor.get(f"/cases/{case_id}/files/{sha(pdf).upper()}").data == pdf

    exported = supervisor.get(f"/cases/{case_id}/trail.json").get_data(as_text=True)
    assert verify_trail(exported) == []
    assert sha(image) in exported and sha(pdf) in exported
    step = [e for e in json.loads(exported)["events"] if e["type"] == "step_completed"][0]
    assert [a["sha256"] for a in step["data"]["attachments"]] == [sha(image), sha(pdf)]


@pytest.mark.parametrize("content,name", [(HTML, "现场照片.jpg"), (ZIP, "scan.jpg"), (EXE, "合同.pdf"),
                                          (png(), "photo.html")])
def test_disguised_upload_is_refused_and_the_case_unchanged(app, xw, people, case_id, content, name):
    client = login(app, people["party_branch"])
    before = xw.audit_event_count()
    refused = post_step(client, case_id, COLLECT, [(png(), "ok.png"), (content, name)])
    assert refused.status_code == 422
    assert name in refused.text and ("不符" in refused.text or "不是可接受" in refused.text)
    assert "/ " + name not in refused.text  # the Chinese half only
    assert "群众普遍支持硬化村东道路" in refused.text  # the form is kept
    assert xw.audit_event_count() == before
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"]
    assert blob_count(xw) == 0  # all or none: the good file was not stored either


def test_oversized_and_empty_uploads_are_refused(app, xw, people, case_id, setenv):
    setenv("XIAOWEI_MAX_UPLOAD_MB", "0.01")
    client = login(app, people["party_branch"])
    page = client.get(f"/cases/{case_id}")
    assert "不超过 10 KB" in page.text
    big = post_step(client, case_id, COLLECT, [(png(noise=20_000), "大照片.png")])
    assert big.status_code == 422 and "“大照片.png”超过 10 KB 的大小限制" in big.text
    empty = post_step(client, case_id, COLLECT, [(b"", "空白.jpg")])
    assert empty.status_code == 422 and "“空白.jpg”是空文件" in empty.text
    many = post_step(client, case_id, COLLECT, [(png(i + 1, 1), f"p{i}.png") for i in range(11)])
    assert many.status_code == 422 and "最多上传 10 个" in many.text
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"] and completed(xw, case_id) == []
    assert blob_count(xw) == 0


def test_request_over_the_total_limit_shows_a_clear_page(xw, people, case_id):
    from webui import create_app

    small = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "MAX_CONTENT_LENGTH": 40_000}, db=xw.db)
    client = login(small, people["party_branch"])
    response = post_step(client, case_id, COLLECT, [(png(noise=60_000), "很大的照片.png")])
    assert response.status_code == 413
    assert "提交内容过大" in response.text and "不能超过" in response.text and "未保存" in response.text
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"] and blob_count(xw) == 0


def test_form_error_keeps_the_upload(app, xw, people, case_id):
    client = login(app, people["party_branch"])
    image = png()
    broken = {k: v for k, v in COLLECT.items() if k != "matter_title"}
    failed = post_step(client, case_id, broken, [(image, "会场照片.png")])
    assert failed.status_code == 422 and "请填写“事项名称”" in failed.text
    assert f'<input type="hidden" name="attachment" value="{sha(image)}">' in failed.text
    assert "已上传" in failed.text and "会场照片.png" in failed.text
    assert completed(xw, case_id) == []
    # The form sent again as the browser would: the kept reference, no file chosen.
    form = {**COLLECT, "csrf_token": client.csrf, "attachment": sha(image),
            f"attachment_name.{sha(image)}": "会场照片.png", "files": (io.BytesIO(b""), "")}
    done = client.post(f"/cases/{case_id}/steps/collect", data=form, content_type="multipart/form-data")
    assert done.status_code == 302, done.text[:500]
    assert completed(xw, case_id)[0]["data"]["attachments"] == [
        {"sha256": sha(image), "name": "会场照片.png", "size": len(image), "type": "image/png"}]


def test_a_kept_reference_must_be_the_users_own_upload(app, xw, people, case_id):
    other = xw.store_files([("他人的照片.png", png(3, 3))], people["committee"])[0]
    client = login(app, people["party_branch"])
    before = xw.audit_event_count()
    forged = post_step(client, case_id, COLLECT, attachment=other["sha256"])
    assert forged.status_code == 422 and "不是您上传的" in forged.text
    assert f'value="{other["sha256"]}"' not in forged.text
    unknown = post_step(client, case_id, COLLECT, attachment="b" * 64)
    assert unknown.status_code == 422 and "不存在" in unknown.text
    assert xw.audit_event_count() == before and completed(xw, case_id) == []
    # Uploading the same content proves one has it: the file is then usable by this user too.
    same = post_step(client, case_id, {k: v for k, v in COLLECT.items() if k != "matter_title"},
                     [(png(3, 3), "我的照片.png")])
    assert same.status_code == 422 and f'value="{other["sha256"]}"' in same.text
    done = post_step(client, case_id, COLLECT, attachment=other["sha256"])
    assert done.status_code == 302
    assert completed(xw, case_id)[0]["data"]["attachments"][0]["sha256"] == other["sha256"]


def test_a_user_who_may_not_do_the_step_stores_nothing(app, xw, people, case_id):
    client = login(app, people["joint_meeting"])
    refused = post_step(client, case_id, COLLECT, [(png(), "x.png")])
    assert refused.status_code == 403
    assert blob_count(xw) == 0
    denied = [e for e in xw.show_case(case_id)["history"] if e["type"] == "access_denied"]
    assert [(e["actor"], e["data"]["action"]) for e in denied] == [(people["joint_meeting"], "complete")]


# --- downloads -------------------------------------------------------------------------------------

def _case_with_file(app, xw, people, case_id, image: bytes):
    client = login(app, people["party_branch"])
    assert post_step(client, case_id, COLLECT, [(image, "照片.png")]).status_code == 302
    return client


def test_a_file_of_another_case_is_404(app, xw, people, case_id):
    image = png()
    client = _case_with_file(app, xw, people, case_id, image)
    other = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    assert client.get(f"/cases/{case_id}/files/{sha(image)}").status_code == 200
    assert client.get(f"/cases/{other}/files/{sha(image)}").status_code == 404
    # Stored but attached to no step: 404 too; and malformed hashes.
    loose = xw.store_files([("loose.png", png(5, 5))], people["party_branch"])[0]["sha256"]
    assert client.get(f"/cases/{case_id}/files/{loose}").status_code == 404
    for bad in ("0" * 64, "not-a-hash", sha(image)[:12]):
        assert client.get(f"/cases/{case_id}/files/{bad}").status_code == 404
    assert client.get(f"/cases/99999/files/{sha(image)}").status_code == 404


def test_other_village_gets_403_and_it_is_recorded(app, xw, people, case_id):
    image = png()
    _case_with_file(app, xw, people, case_id, image)
    outsider = login(app, people["nanxi_all"])
    response = outsider.get(f"/cases/{case_id}/files/{sha(image)}")
    assert response.status_code == 403 and "无权访问" in response.text and response.data != image
    denied = [e for e in xw.show_case(case_id)["history"] if e["type"] == "access_denied"]
    assert [(e["actor"], e["data"]["action"]) for e in denied] == [(people["nanxi_all"], "download_file")]
    assert denied[0]["data"]["path"] == f"/cases/{case_id}/files/{sha(image)}"
    trail = login(app, people["township_discipline"]).get(f"/cases/{case_id}/trail").text
    assert "拒绝越权操作:下载附件" in trail
    assert all(r.ok for r in xw.verify(case_id))
    anonymous = app.test_client().get(f"/cases/{case_id}/files/{sha(image)}")
    assert anonymous.status_code == 302 and anonymous.location.startswith("/login")


# --- the JSON API ----------------------------------------------------------------------------------

def _api(app, username):
    client = login(app, username)
    client.csrf = client.get("/api/v1/me").json["csrf_token"]
    return client


def test_api_upload_then_complete_with_refs(app, xw, people, case_id):
    client = _api(app, people["party_branch"])
    headers = {"X-CSRF-Token": client.csrf}
    image = png()
    up = client.post("/api/v1/files", headers=headers, content_type="multipart/form-data",
                     data={"files": [(io.BytesIO(image), "现场.png"), (io.BytesIO(PDF), "记录.pdf")]})
    assert up.status_code == 201, up.json
    refs = up.json["files"]
    assert [r["sha256"] for r in refs] == [sha(image), sha(PDF)] and refs[1]["type"] == "application/pdf"
    assert client.post("/api/v1/files", headers=headers, json={}).status_code == 422
    assert client.post("/api/v1/files", content_type="multipart/form-data",
                       data={"files": [(io.BytesIO(image), "x.png")]}).status_code == 400  # CSRF header needed
    bad = client.post(f"/api/v1/cases/{case_id}/steps/collect", headers=headers,
                      json={**COLLECT, "attachments": "nope"})
    assert bad.status_code == 422 and bad.json["error"] == "invalid_data"
    done = client.post(f"/api/v1/cases/{case_id}/steps/collect", headers=headers,
                       json={**COLLECT, "attachments": refs})
    assert done.status_code == 200, done.json
    assert [a["sha256"] for a in completed(xw, case_id)[0]["data"]["attachments"]] == [sha(image), sha(PDF)]
    case = client.get(f"/api/v1/cases/{case_id}").json
    step = [e for e in case["history"] if e["type"] == "step_completed"][0]
    assert step["data"]["attachments"][0]["name"] == "现场.png"


def test_api_multipart_step_and_disguised_file(app, xw, people, case_id):
    client = _api(app, people["party_branch"])
    headers = {"X-CSRF-Token": client.csrf}
    url = f"/api/v1/cases/{case_id}/steps/collect"
    disguised = client.post(url, headers=headers, content_type="multipart/form-data",
                            data={**COLLECT, "files": [(io.BytesIO(HTML), "照片.jpg")]})
    assert disguised.status_code == 422 and disguised.json["error"] == "invalid_data"
    assert "照片.jpg" in disguised.json["message"] and "attachments" in disguised.json["errors"]
    assert completed(xw, case_id) == [] and blob_count(xw) == 0
    foreign = xw.store_files([("别人的.pdf", PDF)], people["committee"])[0]
    refused = client.post(url, headers=headers, json={**COLLECT, "attachments": [foreign]})
    assert refused.status_code == 422 and "不是您上传的" in refused.json["message"]
    image = png()
    done = client.post(url, headers=headers, content_type="multipart/form-data",
                       data={**COLLECT, "files": [(io.BytesIO(image), "现场.png")]})
    assert done.status_code == 200, done.json
    assert done.json["attachments"][0]["sha256"] == sha(image)
    assert completed(xw, case_id)[0]["data"]["data"]["matter_title"] == COLLECT["matter_title"]
    outsider = _api(app, people["nanxi_all"])
    denied = outsider.post(f"/api/v1/cases/{case_id}/steps/propose", headers={"X-CSRF-Token": outsider.csrf},
                           content_type="multipart/form-data", data={"files": [(io.BytesIO(png(7, 7)), "a.png")]})
    assert denied.status_code == 403 and blob_count(xw) == 2  # the foreign PDF and the photo


def test_openapi_documents_files(app):
    doc = app.test_client().get("/api/v1/openapi.json").json
    assert "/api/v1/files" in doc["paths"] and "FileRef" in doc["components"]["schemas"]
    body = doc["paths"]["/api/v1/cases/{case_id}/steps/{step_id}"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(body)


def test_real_http_upload(app, xw, people, case_id):
    """Over real HTTP (waitress), as a browser sends the form."""
    import http.cookiejar
    import urllib.parse
    import urllib.request
    import uuid

    from web_helpers import PASSWORD, serve_in_thread

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    image = png()
    with serve_in_thread(app) as base:
        token = token_of(opener.open(base + "/login").read().decode())
        opener.open(base + "/login", urllib.parse.urlencode(
            {"username": people["party_branch"], "password": PASSWORD, "csrf_token": token}).encode())
        page = opener.open(f"{base}/cases/{case_id}").read().decode()
        token = token_of(page)
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in {**COLLECT, "csrf_token": token}.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="现场.png"\r\n'
                     f'Content-Type: image/png\r\n\r\n'.encode() + image + b"\r\n")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename=""\r\n'
                     f'Content-Type: application/octet-stream\r\n\r\n\r\n'.encode())
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(f"{base}/cases/{case_id}/steps/collect", data=body, method="POST",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = opener.open(request)
        assert response.status == 200 and re.search("已提交", response.read().decode())
        download = opener.open(f"{base}/cases/{case_id}/files/{sha(image)}")
        assert download.read() == image and download.headers["Content-Type"] == "image/png"
    assert completed(xw, case_id)[0]["data"]["attachments"][0]["name"] == "现场.png"
