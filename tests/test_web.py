"""The web app over real HTTP: the health check (the pages come with the web app issue)."""

import json
import socket
import threading
import time
import urllib.request

import pytest
from waitress.server import create_server

from webui import create_app


@pytest.fixture
def server(xw):
    app = create_app({"TESTING": True}, db=xw.db)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = create_server(app, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(50):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    yield base
    srv.close()


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
