"""Sessions that end, no lock-out by strangers, safe redirects, and limits that hold under
concurrency (issue #13): each test is one of the attacks the issue found, tried again."""

from __future__ import annotations

import hashlib
import http.cookiejar
import re
import secrets
import threading
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.core import audit, throttle
from engine.render import printing
from engine.core.errors import Busy, InvalidData
from storage.models import AuditEvent, User
from web_helpers import PASSWORD, login, serve_in_thread, token_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def system_events(xw, type_):
    with xw.db.read() as s:
        return [audit.event_dict(e) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.type == type_).order_by(AuditEvent.seq))]


def captured(app, client):
    """A second browser holding a copy of ``client``'s session cookie (what an attacker captured)."""
    thief = app.test_client()
    thief.set_cookie("xw_session", client.get_cookie("xw_session").value)
    return thief


# --- sessions ------------------------------------------------------------------------------------------

def test_logout_kills_a_captured_cookie_at_once(app, people):
    client = login(app, people["party_branch"])
    thief = captured(app, client)
    assert thief.get("/api/v1/me").status_code == 200
    assert client.post("/logout", data={"csrf_token": client.csrf}).status_code == 302
    assert thief.get("/api/v1/me").status_code == 401
    assert thief.get("/tasks").status_code == 302


def test_signing_out_everywhere_ends_every_session_of_the_user(app, xw, people):
    user = people["committee"]
    phone, office = login(app, user), login(app, user)
    assert "2 处登录" in phone.get("/password").text
    assert phone.post("/logout/everywhere", data={"csrf_token": phone.csrf}).status_code == 302
    assert office.get("/api/v1/me").status_code == 401 and phone.get("/api/v1/me").status_code == 401
    # An administrator does it for a user whose phone was lost.
    staff = login(app, people["township_staff"])
    lost = login(app, user)
    response = staff.post(f"/admin/users/{user}/sessions/end", data={"csrf_token": staff.csrf})
    assert response.status_code == 302
    assert lost.get("/api/v1/me").status_code == 401
    ended = system_events(xw, "sessions_ended")
    assert [(e["actor"], e["data"]["username"], e["data"]["sessions"]) for e in ended] == \
        [(user, user, 2), (people["township_staff"], user, 1)]


def test_a_password_change_ends_the_captured_cookie(app, people):
    client = login(app, people["committee"])
    thief = captured(app, client)
    ok = client.post("/password", data={"current": PASSWORD, "new": "new-password-1", "confirm": "new-password-1",
                                        "csrf_token": client.csrf})
    assert ok.status_code == 200
    assert thief.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me").status_code == 200


# --- sign-in: throttled, never locked by strangers --------------------------------------------------------

def test_wrong_passwords_from_one_address_do_not_lock_the_user_out_of_another(app, xw, people, frozen):
    user = people["party_branch"]
    stranger = app.test_client()
    token = token_of(stranger.get("/login").text)
    away = {"REMOTE_ADDR": "198.51.100.7"}
    statuses = []
    for i in range(30):
        r = stranger.post("/login", data={"username": user, "password": f"guess-{i}", "csrf_token": token},
                          environ_base=away)
        statuses.append(r.status_code)
        wait = re.search(r"(\d+) 秒后", r.text)
        if wait:
            frozen.advance(seconds=int(wait.group(1)))
    assert statuses.count(401) >= 20 and 429 not in statuses[:3]
    # the cadre, at the village office, signs in at once
    cadre = app.test_client()
    ok = cadre.post("/login", data={"username": user, "password": PASSWORD,
                                    "csrf_token": token_of(cadre.get("/login").text)})
    assert ok.status_code == 302
    # the stranger's failures are in the system chain in aggregate, not one event each
    failures = system_events(xw, "login_failed")
    assert 1 <= len(failures) <= 3 and failures[0]["data"]["failures"] == 1
    frozen.advance(minutes=20)
    xw.tick()  # the quiet pair is summed up
    last = system_events(xw, "login_failed")[-1]["data"]
    assert last["ended"] == "quiet" and last["failures"] == statuses.count(401)
    assert all(r.ok for r in xw.verify())


def test_the_delay_grows_and_is_capped():
    assert [throttle.delay_after(n).total_seconds() for n in range(1, 9)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert throttle.delay_after(100) == timedelta(minutes=15)


def test_an_unknown_user_name_is_throttled_like_a_real_one(app, xw, frozen):
    client = app.test_client()
    token = token_of(client.get("/login").text)
    codes = [client.post("/login", data={"username": "nobody", "password": "x" * 9, "csrf_token": token}).status_code
             for _ in range(5)]
    assert codes == [401, 401, 401, 401, 429]
    event = system_events(xw, "login_failed")[-1]
    assert event["actor"] == "" and event["data"]["reason"] == "unknown_user"


def test_an_old_scrypt_hash_is_upgraded_to_argon2id_at_sign_in(app, xw, people):
    user = people["committee"]
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    with xw.db.write() as s:  # a row written by an earlier version
        s.scalar(select(User).where(User.username == user)).password_hash = \
            f"scrypt${2**14}$8$1${salt.hex()}${digest.hex()}"
    login(app, user)
    with xw.db.read() as s:
        assert s.scalar(select(User.password_hash).where(User.username == user)).startswith("$argon2id$")
    assert system_events(xw, "password_rehashed")[-1]["data"] == {"username": user, "scheme": "argon2id"}
    login(app, user)  # the new hash works


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\\evil.example", "//evil.example", "/x\r\nSet-Cookie: a=b",
                                    "/%0d%0a", "https://evil.example", " /tasks", "/\x00"])
def test_next_is_followed_only_as_a_plain_local_path(app, people, target):
    client = app.test_client()
    token = token_of(client.get("/login").text)
    response = client.post("/login", data={"username": people["party_branch"], "password": PASSWORD,
                                           "csrf_token": token, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] in ("/", "/tasks", "/%0d%0a")  # "/" forwards to the landing page of the role
    lang = app.test_client().get("/lang/en?next=" + urllib.parse.quote(target, safe=""))
    assert lang.status_code == 302 and lang.headers["Location"] in ("/", "/%0d%0a")


def test_a_plain_local_next_is_followed(app, people):
    client = app.test_client()
    token = token_of(client.get("/login").text)
    response = client.post("/login", data={"username": people["party_branch"], "password": PASSWORD,
                                           "csrf_token": token, "next": "/cases?scope=all"})
    assert response.headers["Location"] == "/cases?scope=all"


def test_hsts_only_over_tls(app):
    client = app.test_client()
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://xiaowei.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


# --- limits under concurrency -------------------------------------------------------------------------------

@pytest.fixture
def web(xw):
    from webui import create_app

    return create_app({"TESTING": True, "SECRET_KEY": "test-secret", "PUBLIC_MIN_FILL_SECONDS": 0}, db=xw.db)


def _browser():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _form(opener, url: str) -> dict:
    page = opener.open(url, timeout=30).read().decode()
    return {"csrf_token": token_of(page), "stamp": re.search(r'name="stamp" value="([^"]+)"', page).group(1)}


def test_fifteen_concurrent_reports_from_one_address_accept_exactly_the_limit(web, xw, people):
    with serve_in_thread(web, threads=8) as base:
        url = base + "/public/DONGAO/report"
        browsers = [_browser() for _ in range(15)]
        forms = [_form(b, url) for b in browsers]
        results: list[int] = []
        start = threading.Barrier(15)

        def send(i: int) -> None:
            body = urllib.parse.urlencode({**forms[i], "text": f"第{i}位村民反映村道工程质量有问题", "topic": "project"})
            start.wait()
            try:
                response = browsers[i].open(urllib.request.Request(url, data=body.encode()), timeout=60)
                results.append(response.status)
            except urllib.error.HTTPError as exc:
                results.append(exc.code)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(15)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(results) == [200] * 5 + [429] * 10
    assert len(xw.list_cases(org_code="SFZ")) == 5


def test_a_form_stamp_is_good_once(web, xw, people):
    client = web.test_client()
    url = "/public/DONGAO/report"
    page = client.get(url).text
    form = {"csrf_token": token_of(page), "stamp": re.search(r'name="stamp" value="([^"]+)"', page).group(1),
            "text": "村里的公示栏三个月没有更新过了", "topic": "conduct"}
    assert client.post(url, data=form).status_code == 200
    again = client.post(url, data=form)
    assert again.status_code == 409 and "已经提交过" in again.text and "三个月没有更新" in again.text
    assert len(xw.list_cases(org_code="SFZ")) == 1


def test_uploads_have_a_daily_quota_per_user(xw, people, monkeypatch, frozen):
    monkeypatch.setenv("XIAOWEI_UPLOAD_QUOTA_MB", "1")
    user = people["committee"]
    xw.store_files([("a.png", PNG + b"a" * 600_000)], user)
    with pytest.raises(InvalidData) as over:
        xw.store_files([("b.png", PNG + b"b" * 600_000)], user)
    assert "每人每天 1 MB" in over.value.message
    assert xw.file_owners([hashlib.sha256(PNG + b"b" * 600_000).hexdigest()]) == {}  # nothing of it was stored
    xw.store_files([("c.png", PNG + b"c" * 600_000)], people["party_branch"])  # another user's own quota
    frozen.advance(days=1)
    xw.store_files([("b.png", PNG + b"b" * 600_000)], user)  # the next day


def test_at_most_n_pdfs_print_at_once_and_the_rest_queue_or_are_told_to_wait():
    queue = printing.PrintQueue(2, 1)
    release = threading.Event()
    outcomes: list[str] = []

    def job():
        release.wait(10)
        return "printed"

    def run():
        try:
            outcomes.append(queue.run(job, wait=10))
        except Busy as exc:
            outcomes.append("busy:" + exc.message)

    threads = [threading.Thread(target=run) for _ in range(5)]
    for t in threads:
        t.start()
    for _ in range(200):
        if queue.running == 2 and queue.waiting == 1 and len(outcomes) == 2:
            break
        threading.Event().wait(0.01)
    assert queue.running == 2 and queue.waiting == 1
    assert [o.split("/")[0] for o in outcomes] == ["busy:正在打印的文件较多,请一分钟后再试 "] * 2
    release.set()
    for t in threads:
        t.join()
    assert outcomes.count("printed") == 3 and queue.peak == 2


def test_a_busy_printer_answers_503_in_chinese(app, xw, people, case_id, monkeypatch):
    full = printing.PrintQueue(1, 0)
    full._free.acquire()  # the one printer is busy with another trail
    monkeypatch.setattr(printing, "_queue", full)
    client = login(app, people["township_discipline"])
    response = client.get(f"/cases/{case_id}/trail.pdf")
    assert response.status_code == 503 and "请一分钟后再试" in response.text


def test_refused_requests_on_any_route_are_recorded_in_aggregate(app, xw, people):
    cadre = login(app, people["party_branch"])
    for _ in range(12):
        assert cadre.get("/admin/users").status_code == 403
    refused = [e for e in system_events(xw, "request_refused") if e["actor"] == people["party_branch"]]
    assert [e["data"]["count_this_hour"] for e in refused] == [1, 10]
    assert refused[0]["data"]["path"] == "/admin/users" and refused[0]["data"]["status"] == 403
    assert all(r.ok for r in xw.verify())
