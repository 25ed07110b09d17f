"""Latency of the web pages /tasks, /cases (supervisor search) and /cases/<id>/trail on a big database.

    python bench/bench_pages.py [--cases N] [--requests N] [--rebuild] [--pg URL] [--pg-cases N] [--no-pg]
                                [--no-sqlite]

The data is made through the engine (Xiaowei.start_case / Xiaowei.complete with planned valid step
data), so every case has its real hash-chained trail, work items and timers: 1 district, 2 townships,
20 villages, a user per role, a mix of procedures, the engine clock moved between steps so due
times and overdue flags are realistic. The SQLite database is built once into bench/.data/ and
reused (``--rebuild`` forces a new build). PostgreSQL gets the same rows copied from that file into
the schema ``benchpages`` (created and dropped here); ``--pg-build`` builds it through the engine
instead (slow), with ``--pg-cases`` cases.

Pages are requested over real HTTP from waitress with a signed-in session (POST /login with the
form's CSRF token), warmed up, then ``--requests`` times each; median and p95 are printed.
"""

from __future__ import annotations

import argparse
import heapq
import http.cookiejar
import os
import random
import re
import statistics
import sys
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("XIAOWEI_SCRYPT_N", "1024")

from sqlalchemy import Integer, create_engine, func, select, text  # noqa: E402

from engine.core import catalogue, clock, directory  # noqa: E402
from engine.services.scenarios import case_context, plan_step_data, sample_evidence  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from webui.serving import serve_in_thread  # noqa: E402
from storage import Database  # noqa: E402
from storage.db import normalize_url  # noqa: E402
from storage.models import AuditEvent, Case, TimerDue, WorkItem  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
PASSWORD = "password123"
SCHEMA = "benchpages"
TARGET_P95_MS = 50.0
# Procedures started at the villages, with weights (a plausible mix of the everyday ones).
MIX = [("V-DEC-01", 3), ("B-PUR-02", 3), ("B-FIN-01", 3), ("B-PUR-01", 2), ("V-FIN-01", 2), ("B-SVC-01", 2),
       ("V-PUB-01", 1), ("B-PRJ-01", 1), ("B-AST-01", 1), ("V-AST-01", 1)]
TOWNSHIPS = ["TA", "TB"]
VILLAGES_PER_TOWNSHIP = 10
START = "2026-01-05T01:00:00+00:00"  # the build clock; it ends before the real now
STARTERS = ("party_branch", "handler", "committee", "director", "joint_meeting", "applicant",
            "collective_board", "bookkeeper", "asset_keeper")
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- data -----------------------------------------------------------------------------------------
def villages() -> list[tuple[str, str]]:
    return [(f"{t}V{i:02d}", t) for t in TOWNSHIPS for i in range(1, VILLAGES_PER_TOWNSHIP + 1)]


def people(village: str, township: str) -> dict[str, str]:
    users = {}
    for key, role in catalogue.roles().items():
        users[key] = {"village": f"{village.lower()}.{key}", "township": f"{township.lower()}.{key}",
                      "district": f"sfq.{key}"}[role.level]
    return users


def setup_orgs(app: Xiaowei) -> None:
    with app.db.write() as s:
        directory.add_org(s, "SFQ", "示范区", "district", None)
        for t in TOWNSHIPS:
            directory.add_org(s, t, f"{t}镇", "township", "SFQ")
        for v, t in villages():
            directory.add_org(s, v, f"{v}村", "village", t)
        for key, role in catalogue.roles().items():
            if role.level == "district":
                directory.add_user(s, f"sfq.{key}", PASSWORD, [f"{key}@SFQ"])
            elif role.level == "township":
                for t in TOWNSHIPS:
                    directory.add_user(s, f"{t.lower()}.{key}", PASSWORD, [f"{key}@{t}"])
            else:
                for v, _ in villages():
                    directory.add_user(s, f"{v.lower()}.{key}", PASSWORD, [f"{key}@{v}"])
        # The cadre of the task list: the village secretary holding the usual leading roles.
        v0 = villages()[0][0]
        directory.add_user(s, "cadre", PASSWORD, [f"{k}@{v0}" for k in (
            "party_branch", "joint_meeting", "committee", "director", "handler", "party_members_meeting")],
            display_name="书记兼主任")


def build(app: Xiaowei, n_cases: int, seed: int = 7) -> None:
    """``n_cases`` cases started one after another on a moving clock; ~70 % are driven to their end,
    the rest stop at a random step (open work items, some overdue). A case waiting on a timer is
    parked and resumed once the clock has passed its due time."""
    rnd = random.Random(seed)
    app.init()
    setup_orgs(app)
    vs = villages()
    procs = [p for p, w in MIX for _ in range(w)]
    fake = clock.FixedClock(START)
    span = timedelta(days=100)
    gap = span / max(n_cases, 1)
    parked: list[tuple] = []  # (due_at, case_id, users, steps_left)
    counter = 0
    starter: dict[str, str] = {}
    started = time.perf_counter()

    def advance(case_id: int, users: dict, steps_left: int) -> None:
        nonlocal counter
        while steps_left > 0:
            tasks = app.tasks(case_id)
            if not tasks:
                with app.db.read() as s:
                    due = s.scalar(select(func.min(TimerDue.due_at)).where(TimerDue.case_id == case_id))
                if due is not None and clock.to_utc(due) > fake.now():  # else a timer that fires without effect
                    counter += 1
                    heapq.heappush(parked, (clock.to_utc(due), counter, case_id, users, steps_left))
                return
            step_id = tasks[0]["step_id"]
            d, params, data = case_context(app, case_id)
            payload = plan_step_data(d, step_id, params, data)
            step = d.steps[step_id]
            user = users.get(step.role or "")
            kwargs = {}
            if user is None and step.proxy:
                user, kwargs = users["committee"], {"on_behalf_of": "张三明", "proxy_reason": "申请人年老行动不便"}
            fake.advance(minutes=rnd.randint(1, 6) * gap.total_seconds() / 60 / 10)
            if step.evidence_required:  # the clerk refuses a disclosure step without its photo
                kwargs["attachments"] = sample_evidence(app, step, user)
            app.complete(case_id, step_id, user, payload, **kwargs)
            steps_left -= 1

    with clock.using(fake):
        for i in range(n_cases):
            fake.set(max(fake.now(), clock.to_utc(START) + gap * i))
            while parked and parked[0][0] <= fake.now():
                _, _, cid, users, left = heapq.heappop(parked)
                app.fire_due(cid)
                advance(cid, users, left)
            v, t = vs[i % len(vs)]
            proc = rnd.choice(procs)
            users = people(v, t)
            case_id = None
            for role in ([starter[proc]] if proc in starter else STARTERS):
                try:
                    case_id = app.start_case(proc, v, users[role], {"title": f"{proc} 事项 {i}"})
                except Exception:
                    continue
                starter[proc] = role
                break
            if case_id is None:  # no starter role fits this procedure: leave it out of the mix
                procs = [p for p in procs if p != proc]
                continue
            steps = 200 if rnd.random() < 0.96 else rnd.randint(0, 8)
            advance(case_id, users, steps)
            if (i + 1) % 50 == 0:
                app.run_background()  # the worker's turn: each changed case evaluated once for its changes
            if (i + 1) % 500 == 0:
                app.db.analyze()  # as `xiaowei serve` does hourly: planner statistics follow the growth
                print(f"  built {i + 1}/{n_cases} cases in {time.perf_counter() - started:.0f} s", flush=True)
        # Let time run on to the end of the span: resume parked cases whose timers are due.
        fake.set(max(fake.now(), clock.to_utc(START) + span))
        while parked and parked[0][0] <= fake.now():
            _, _, cid, users, left = heapq.heappop(parked)
            app.fire_due(cid)
            advance(cid, users, left)
        app.run_background()
    print(f"  build took {time.perf_counter() - started:.0f} s", flush=True)


def sizes(app: Xiaowei) -> dict[str, int]:
    with app.db.read() as s:
        return {"cases": s.scalar(select(func.count()).select_from(Case)),
                "running": s.scalar(select(func.count()).select_from(Case).where(Case.status == "running")),
                "audit events": s.scalar(select(func.count()).select_from(AuditEvent)),
                "work items": s.scalar(select(func.count()).select_from(WorkItem)),
                "timers": s.scalar(select(func.count()).select_from(TimerDue))}


def trail_case(app: Xiaowei, want: int = 20) -> tuple[int, int]:
    """A case of the first township's villages (the supervisor's) with about ``want`` events (closest),
    and its event count."""
    from storage.models import Organization

    with app.db.read() as s:
        township = s.scalar(select(Organization.id).where(Organization.code == TOWNSHIPS[0]))
        counts = s.execute(select(AuditEvent.case_id, func.count())
                           .join(Case, Case.id == AuditEvent.case_id)
                           .join(Organization, Organization.id == Case.org_id)
                           .where(Organization.parent_id == township)
                           .group_by(AuditEvent.case_id)).all()
    best = min(counts, key=lambda r: (abs(r[1] - want), r[0]))
    return best[0], best[1]


# --- HTTP -----------------------------------------------------------------------------------------
serve = serve_in_thread  # webui.serving: waitress on a free localhost port


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def signed_in(base: str, username: str):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
    page = opener.open(base + "/login").read().decode()
    token = _TOKEN.search(page).group(1)
    body = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrf_token": token}).encode()
    try:
        opener.open(base + "/login", data=body)
        raise RuntimeError(f"login of {username} did not redirect")
    except urllib.error.HTTPError as exc:
        if exc.code != 302:
            raise RuntimeError(f"login of {username} failed: {exc.code}") from exc
    return opener


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(opener, url: str, n: int, warmup: int = 10) -> tuple[list[float], int]:
    size = 0
    for _ in range(warmup):
        with opener.open(url) as r:
            size = len(r.read())
    timings = []
    for _ in range(n):
        t0 = time.perf_counter()
        with opener.open(url) as r:
            body = r.read()
            assert r.status == 200, (url, r.status)
        timings.append(time.perf_counter() - t0)
        size = len(body)
    return timings, size


def bench_pages(app: Xiaowei, label: str, n: int) -> None:
    from webui import create_app, warm_up

    data = sizes(app)
    case_id, n_events = trail_case(app)
    print(f"\n{label}: " + ", ".join(f"{v} {k}" for k, v in data.items()))
    web = create_app({"SECRET_KEY": "bench", "SESSION_COOKIE_SECURE": False}, db=app.db)
    warm_up(web)  # as `xiaowei serve` does
    supervisor = f"{TOWNSHIPS[0].lower()}.township_discipline"
    pages = [("cadre", "/tasks", "/tasks"),
             (supervisor, "/cases?scope=all", "/cases?scope=all"),
             (supervisor, "/cases?scope=all&status=running&procedure=B-PUR-02",
              "/cases?scope=all&status=running&procedure=B-PUR-02"),
             (supervisor, "/cases?scope=all&amount_min=50000&overdue=1",
              "/cases?scope=all&amount_min=50000&overdue=1"),
             (supervisor, "/cases?scope=all&person=张三明", "/cases?scope=all&person=%E5%BC%A0%E4%B8%89%E6%98%8E"),
             (supervisor, "/cases?scope=all&page=100", "/cases?scope=all&page=100"),
             (supervisor, "/cases (mine)", "/cases"),
             (supervisor, f"/cases/{case_id}/trail ({n_events} ev)", f"/cases/{case_id}/trail")]
    with serve(web) as base:
        openers = {}
        for user, name, path in pages:
            opener = openers.get(user) or openers.setdefault(user, signed_in(base, user))
            timings, size = measure(opener, base + path, n)
            median, p95 = statistics.median(timings) * 1000, percentile(timings, 0.95) * 1000
            verdict = "ok" if p95 < TARGET_P95_MS else "SLOW"
            print(f"  {name:<58} n={len(timings)}  median {median:7.2f} ms  p95 {p95:7.2f} ms  "
                  f"{size / 1024:7.1f} KB  [{verdict}]", flush=True)


# --- main -----------------------------------------------------------------------------------------
def fresh_pg(url: str) -> str:
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    admin.dispose()
    base = normalize_url(url)
    return base + ("&" if "?" in base else "?") + f"options=-csearch_path%3D{SCHEMA}"


def copy_database(source: Database, target: Database, chunk: int = 5000) -> None:
    """Copy every table row by row (same ids, same hashes) and move PostgreSQL's id sequences on."""
    from storage.models import Base

    started = time.perf_counter()
    source.upgrade()
    target.upgrade()
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in Base.metadata.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = src.execute(table.select()).mappings()
            batch = []
            for row in rows:
                batch.append(dict(row))
                if len(batch) >= chunk:
                    dst.execute(table.insert(), batch)
                    batch.clear()
            if batch:
                dst.execute(table.insert(), batch)
            if "id" in table.c and isinstance(table.c.id.type, Integer) and target.engine.dialect.name == "postgresql":
                dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                 f"COALESCE((SELECT MAX(id) FROM {table.name}), 1))"))
        if target.engine.dialect.name == "postgresql":
            dst.execute(text("ANALYZE"))
    print(f"  copy took {time.perf_counter() - started:.0f} s", flush=True)


def drop_pg(url: str) -> None:
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in the SQLite database")
    parser.add_argument("--pg-cases", type=int, default=None, help="cases on PostgreSQL (default: --cases)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the SQLite database file")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--keep-pg", action="store_true", help="leave the benchpages schema in place")
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--pg-build", action="store_true",
                        help="build the PostgreSQL data through the engine (slow) instead of copying the SQLite file")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()

    if not args.no_sqlite:
        DATA.mkdir(parents=True, exist_ok=True)
        path = DATA / f"pages-{args.cases}.db"
        if args.rebuild or not path.exists():
            for suffix in ("", "-wal", "-shm", ".tmp", ".tmp-wal", ".tmp-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            tmp = Path(str(path) + ".tmp")
            print(f"building SQLite database {tmp.name} with {args.cases} cases …", flush=True)
            app = Xiaowei(Database(f"sqlite:///{tmp}"), inline_background=False)  # the worker drains in batches
            build(app, args.cases)
            app.db.dispose()
            tmp.rename(path)
        app = Xiaowei(Database(f"sqlite:///{path}"))
        app.db.upgrade()  # a database built before a later migration gets its new tables and indexes
        bench_pages(app, f"SQLite ({path.relative_to(ROOT)})", args.requests)
        app.db.dispose()

    if args.no_pg:
        return
    n_pg = args.pg_cases if args.pg_cases is not None else args.cases
    try:
        url = fresh_pg(args.pg)
    except Exception as exc:  # PostgreSQL is optional for this script
        print(f"PostgreSQL not measured: {type(exc).__name__}: {exc}")
        return
    try:
        app = Xiaowei(Database(url), inline_background=False)
        source = DATA / f"pages-{n_pg}.db"
        if args.pg_build or not source.exists():
            print(f"\nbuilding PostgreSQL schema {SCHEMA} with {n_pg} cases …", flush=True)
            build(app, n_pg)
        else:
            print(f"\ncopying {source.relative_to(ROOT)} (built through the engine) to PostgreSQL schema {SCHEMA} …",
                  flush=True)
            copy_database(Database(f"sqlite:///{source}"), app.db)
        bench_pages(app, f"PostgreSQL (schema {SCHEMA})", args.requests)
        app.db.dispose()
    finally:
        if not args.keep_pg:
            drop_pg(args.pg)


if __name__ == "__main__":
    main()
