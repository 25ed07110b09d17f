"""Helpers shared by the web tests: an app on the test database and signed-in clients."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
import urllib.request

from webui import create_app

PASSWORD = "password123"  # the password conftest.add_user gives every test user
# Valid data for V-DEC-01's first step (征求意见).
COLLECT = {"matter_title": "村道硬化工程", "matter_type": "project", "source": "villagers",
           "amount": "380000", "opinions_summary": "群众普遍支持硬化村东道路"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(xw):
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret"}, db=xw.db)


def token_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(app, username: str, password: str = PASSWORD):
    """A test client signed in as ``username``; ``client.csrf`` holds the session's token."""
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"username": username, "password": password,
                                           "csrf_token": token_of(page.text)})
    assert response.status_code == 302, response.text
    client.csrf = token_of(client.get("/password").text)
    return client


@contextlib.contextmanager
def serve_in_thread(app, threads: int = 4):
    """Serve ``app`` with waitress on a free localhost port; yields the base URL; stops cleanly
    (the server closes its sockets in its own loop thread, so no poll on a closed descriptor)."""
    from waitress import wasyncore
    from waitress.server import create_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = create_server(app, host="127.0.0.1", port=port, threads=threads)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield base
    finally:
        srv.trigger.pull_trigger(lambda: wasyncore.close_all(srv._map))
        thread.join(timeout=10)
        srv.task_dispatcher.shutdown()
