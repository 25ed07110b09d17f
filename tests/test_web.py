"""The web app over real HTTP: the health check and unknown routes (pages: test_web_pages.py)."""

import json
import urllib.error
import urllib.request

import pytest
from web_helpers import serve_in_thread
from webui import create_app


@pytest.fixture
def server(xw):
    with serve_in_thread(create_app({"TESTING": True}, db=xw.db), threads=2) as base:
        yield base


def test_healthz_reports_database_status(server):
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        body = json.loads(response.read())
    assert body == {"status": "ok", "database": "ok"}


def test_unknown_route_is_404(server):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server + "/no-such-page", timeout=5)
    assert info.value.code == 404
