"""A deployment that scales out: several web processes on one database share sessions, CSRF tokens and
sign-in throttles, a restart keeps sessions, the secret key is kept (embedded) or required (PostgreSQL),
and gunicorn serves the app with the configuration in the repo."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import USING_PG
from storage.models import LoginThrottle
from web_helpers import PASSWORD, token_of

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
KEY = "shared-test-key-0123456789abcdef0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(db_url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url, "XIAOWEI_COOKIE_SECURE": "0"}
    env.pop("XIAOWEI_NOW", None)
    if USING_PG:
        env["XIAOWEI_SECRET_KEY"] = KEY  # required on PostgreSQL, the same on every process
    else:
        env.pop("XIAOWEI_SECRET_KEY", None)  # the embedded default keeps its own beside the database
    return env


def _wait_up(base: str, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not come up")


@contextmanager
def server(command: list[str], db_url: str, port: int):
    proc = subprocess.Popen(command, cwd=ROOT, env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, proc)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def serve(db_url: str, port: int):
    return server([sys.executable, "-m", "engine.cli", "serve", "--db", db_url, "--port", str(port),
                   "--tick-every", "0"], db_url, port)


class Browser:
    """A cookie-keeping client (one browser) that may talk to any of the servers."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, url: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body)
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            response = opener.open(req, timeout=30)
            status, text, headers = response.status, response.read().decode(), response.headers
        except urllib.error.HTTPError as exc:
            status, text, headers = exc.code, exc.read().decode(), exc.headers
        for cookie in headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return status, text

    def login(self, base: str, username: str, password: str = PASSWORD) -> int:
        _, page = self.request(base + "/login")
        status, _ = self.request(base + "/login", {"username": username, "password": password,
                                                   "csrf_token": token_of(page)})
        return status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _failures(xw) -> int:
    with xw.db.read() as s:
        return s.scalar(select(func.coalesce(func.sum(LoginThrottle.failures), 0))) or 0


def test_two_serve_processes_share_sessions_csrf_and_throttles_and_a_restart_keeps_sessions(xw, people, db_url):
    user = people["handler"]
    port_a, port_b = _free_port(), _free_port()
    with serve(db_url, port_b) as b:
        with serve(db_url, port_a) as a:
            browser = Browser()
            assert browser.login(a, user) == 302  # signed in on A
            assert browser.request(b + "/tasks")[0] == 200  # … and B accepts the session
            # a CSRF token issued by A is good on B: B checks the form (422: the current password is wrong),
            # where a forged token is refused before (400)
            _, page = browser.request(a + "/password")
            token = token_of(page)
            status, _ = browser.request(b + "/password", {"csrf_token": token, "current": "wrong-password",
                                                          "new": "another-password-1", "confirm": "another-password-1"})
            assert status == 422
            status, _ = browser.request(b + "/password", {"csrf_token": "forged", "current": "x", "new": "y",
                                                          "confirm": "y"})
            assert status == 400
            # the sign-in throttle is one bucket for both: failures on A and B add up
            intruder = Browser()
            before = _failures(xw)
            for base in (a, b, a):
                assert intruder.login(base, user, "wrong") == 401
            assert _failures(xw) - before == 3  # free failures, counted together
            statuses = [intruder.login(base, user, "wrong") for base in (b, a, b, a, b, a, b, a)]
            assert 429 in statuses  # the growing delay, enforced by whichever process is asked
        # A stops; a new process on the same database still knows the session
        with serve(db_url, port_a) as a_again:
            assert browser.request(a_again + "/tasks")[0] == 200
        assert browser.request(b + "/tasks")[0] == 200


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")
def test_gunicorn_with_two_workers_accepts_a_session_made_by_xiaowei_serve(xw, people, db_url):
    port_s, port_g = _free_port(), _free_port()
    command = [str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port_g}", "--workers", "2",
               "--threads", "2", "webui.wsgi:app"]
    with serve(db_url, port_s) as s, server(command, db_url, port_g) as g:
        browser = Browser()
        assert browser.login(s, people["handler"]) == 302
        for _ in range(12):  # several requests, spread over both gunicorn workers: each knows the session
            assert browser.request(g + "/tasks")[0] == 200
        assert browser.request(g + "/logout", {"csrf_token": token_of(browser.request(g + "/password")[1])})[0] == 302
        assert browser.request(s + "/tasks")[0] == 302  # signed out everywhere: the session ended in the database


def test_the_embedded_default_keeps_one_secret_key_beside_the_database(tmp_path, setenv):
    from engine.core import instance
    from engine.core.errors import XiaoweiError

    setenv("XIAOWEI_SECRET_KEY", None)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = instance.secret_key(url)
    assert len(first) >= 32 and instance.secret_key(url) == first
    path = tmp_path / "instance" / "secret_key"
    assert path.read_text().strip() == first and path.stat().st_mode & 0o077 == 0
    with pytest.raises(XiaoweiError, match="XIAOWEI_SECRET_KEY"):
        instance.secret_key("postgresql+psycopg://postgres@127.0.0.1/x")
    assert instance.secret_key("postgresql+psycopg://postgres@127.0.0.1/x", testing=True) != first
    setenv("XIAOWEI_SECRET_KEY", KEY)
    assert instance.secret_key(url) == KEY


def test_public_form_stamps_and_csrf_tokens_from_one_process_are_good_on_another_once(xw, setenv):
    """Two apps (as two processes build them) on one database with the kept key: the form, its CSRF
    token and its signed stamp come from one, the submission goes to the other and is accepted; the
    same stamp sent again (to the first) is refused as used."""
    from webui import create_app

    setenv("XIAOWEI_SECRET_KEY", KEY if USING_PG else None)
    config = {"PUBLIC_MIN_FILL_SECONDS": 0, "SESSION_COOKIE_SECURE": False}
    one, two = create_app(dict(config), db=xw.db), create_app(dict(config), db=xw.db)
    assert one.config["SECRET_KEY"] == two.config["SECRET_KEY"]
    url = "/public/DONGAO/report"
    first_client = one.test_client()
    page = first_client.get(url)
    assert page.status_code == 200
    stamp = re.search(r'name="stamp" value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": token_of(page.text), "stamp": stamp, "topic": "project",
            "text": "村里的工程款去向不明,希望核查。"}
    second_client = two.test_client()
    second_client.set_cookie("xw_session", first_client.get_cookie("xw_session").value)
    done = second_client.post(url, data=form)
    assert done.status_code == 200 and "/public/case/" in done.text, done.text[:500]
    again = first_client.post(url, data=form)
    assert again.status_code == 409
