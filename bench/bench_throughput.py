"""Completions per second over real HTTP: gunicorn with 1 and 2 web worker processes on PostgreSQL.

    python bench/bench_throughput.py [--pg URL] [--workers 1,2] [--clients N] [--seconds S] [--threads N]

The app runs as in production (``gunicorn -c deploy/gunicorn.conf.py webui.wsgi:app``; the warning rules
left to the worker, which is not run here: its cost per change is what ``make bench`` prints). Each
client thread signs in over HTTP and completes the V-DEC-01 party vote without quorum (a step that loops
back to itself) of its own case through ``POST /api/v1/cases/{id}/steps/party_review`` as fast as it
can for ``--seconds``; completions per second and the latency median and p95 are printed for each
number of web workers. On a shared machine the figures move with the other load (printed too).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "examples"))
os.environ.setdefault("XIAOWEI_SCRYPT_N", "1024")
os.environ.setdefault("XIAOWEI_ARGON2", "1,64,1")

from sqlalchemy import create_engine, text  # noqa: E402

from api_client import Client  # noqa: E402
from bench_engine import NO_QUORUM, PREP, percentile  # noqa: E402
from engine.core import directory  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from storage import Database  # noqa: E402
from storage.db import normalize_url  # noqa: E402

SCHEMA = "throughput"
GUNICORN = Path(sys.executable).with_name("gunicorn")


def fresh_schema(url: str) -> str:
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{SCHEMA}"


def drop_schema(url: str) -> None:
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def prepare(url: str) -> None:
    app = Xiaowei(Database(url))
    app.init()
    with app.db.write() as s:
        directory.add_org(s, "SFQ", "示范区", "district", None)
        directory.add_org(s, "SFZ", "示范镇", "township", "SFQ")
        directory.add_org(s, "DONGAO", "东岙村", "village", "SFZ")
        directory.add_user(s, "cadre", "password123", ["party_branch@DONGAO", "joint_meeting@DONGAO",
                                                         "party_members_meeting@DONGAO"])
    app.db.dispose()


def new_cases(url: str, clients: int) -> list[int]:
    """Fresh cases for a run (the vote loop's state grows with each round: every run starts alike)."""
    app = Xiaowei(Database(url))
    cases = []
    for _ in range(clients):
        case_id = app.start_case("V-DEC-01", "DONGAO", "cadre")
        for step, data in PREP.items():
            app.complete(case_id, step, "cadre", data)
        cases.append(case_id)
    app.db.dispose()
    return cases


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(url: str, workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "XIAOWEI_SECRET_KEY": "bench-throughput-key-0123456789abcdef",
           "XIAOWEI_COOKIE_SECURE": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([str(GUNICORN), "-c", "deploy/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                             "--workers", str(workers), "--threads", str(threads), "--access-logfile", "/dev/null",
                             "webui.wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.1)
    time.sleep(1.0)  # let every worker finish warming up
    return proc, base


def run_clients(base: str, cases: list[int], seconds: float) -> tuple[int, list[float], int]:
    clients = []
    for _ in cases:
        client = Client(base)
        client.sign_in("cadre", "password123")
        clients.append(client)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(len(cases) + 1)
    stop_at = [0.0]

    def loop(client: Client, case_id: int) -> None:
        mine: list[float] = []
        bad = 0
        start.wait()
        while time.perf_counter() < stop_at[0]:
            t = time.perf_counter()
            status, _ = client.request("POST", f"/api/v1/cases/{case_id}/steps/party_review", NO_QUORUM)
            if status == 200:
                mine.append(time.perf_counter() - t)
            else:
                bad += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=loop, args=(c, cid)) for c, cid in zip(clients, cases)]
    for th in threads:
        th.start()
    stop_at[0] = time.perf_counter() + seconds
    start.wait()
    for th in threads:
        th.join()
    return len(latencies), latencies, errors[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--workers", default="1,2", help="numbers of gunicorn worker processes to measure")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients, each on its own case")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not GUNICORN.exists():
        raise SystemExit("gunicorn is not installed (make install)")
    url = fresh_schema(args.pg)
    try:
        prepare(url)
        print(f"completions over HTTP (POST /api/v1/cases/{{id}}/steps/party_review), PostgreSQL, "
              f"{args.clients} clients, {args.seconds:g} s each; load average {os.getloadavg()[0]:.1f}")
        base_rate = None
        for workers in [int(w) for w in args.workers.split(",") if w.strip()]:
            cases = new_cases(url, args.clients)
            proc, base = start_gunicorn(url, workers, args.threads)
            try:
                n, latencies, errors = run_clients(base, cases, args.seconds)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            rate = n / args.seconds
            base_rate = base_rate or rate
            median = statistics.median(latencies) * 1000 if latencies else float("nan")
            p95 = percentile(latencies, 0.95) * 1000 if latencies else float("nan")
            print(f"gunicorn {workers} worker(s) x {args.threads} threads   {rate:7.1f} completions/s   "
                  f"median {median:6.1f} ms   p95 {p95:6.1f} ms   errors {errors}   "
                  f"x{rate / base_rate:.2f} of the first")
    finally:
        drop_schema(args.pg)


if __name__ == "__main__":
    main()
