"""Helpers shared by the web tests: an app on the test database and signed-in clients."""

from __future__ import annotations

import re

from webui import create_app
from webui.serving import serve_in_thread  # noqa: F401  (re-exported for the tests)

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


