"""Serve the app with waitress in a background thread (tests and benchmarks use real HTTP)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request


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
