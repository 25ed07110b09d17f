"""Latency of the eight everyday pages on a big database (#12), SQLite and PostgreSQL, over real HTTP.

    python bench/bench_pages.py [--cases N] [--processes N] [--requests N] [--rebuild] [--build-only]
                                [--pg URL] [--pg-cases N] [--pg-build] [--keep-pg] [--no-pg] [--no-sqlite]

The data is made through the engine (Xiaowei.start_case / Xiaowei.complete with planned valid step
data), so every case has its real hash-chained trail, work items and timers: 1 district, 2 townships,
20 villages, a user per role, a mix of procedures, the engine clock moved between steps so due
times and overdue flags are realistic.

The build runs in ``--processes`` processes (default: the machine's cores): the 20 villages are split
between them, each process has its own ``Xiaowei(db, inline_background=False)`` and its own engine
``FixedClock`` over the same 100-day span, and each writes its own SQLite file, so that no process
waits for another's write lock (one shared file let 2 processes run only ~1.25x one: a completion holds
the lock for about half its time). Process 0 writes the base file that the real ``init()`` made, with
``setup_orgs`` and the person register the forms name (``register_persons``: a case finds its persons,
so no process appends to the shared system chain); process k a copy of the base rows whose schema has
AUTOINCREMENT and whose id sequences start at k * 10**8 (``make_part``). ``merge`` then adds each part's
rows to the base file table by table with their ids unchanged (ids are inside the hashed audit data
and the chain names ``case:<id>``, so nothing is remapped) and stops at a base row a part changed,
a moved system chain or a unique key two parts used; every chain of the merged file is then verified
(``audit.verify``: hashes, links, heads and each case's rows against its replayed events) and the
build stops unless all hold. No warning rule runs during the build: the outbox rows the changes left
are worked off over the merged file by ``--processes`` workers (``engine.services.worker.drain``, the
production path, at the build clock's end), one big claim each (a case is evaluated about once); the
rules read outside the write lock, so the workers run side by side. Then the time-dependent rules run
once at the build clock's end, as the worker's minutely ``tick`` would have raised them. The build, merge, verification and
drain times, cases/s and completions/s are printed. The file is built once into bench/.data/ and reused
(``--rebuild`` forces a new build). PostgreSQL gets the same rows copied from that file into the schema
``benchpages`` (created and dropped here); ``--pg-build`` builds it through the engine instead, every
process writing that one database.

Measured on a 2-core machine, idle (load 1-2; ``--cases 10000 --rebuild --build-only --processes 2``):
2 processes built 9,996 cases (89,239 completions) in 270 s, 37 cases/s; merge 2 s, verification 6 s,
drain 60 s (113,354 rows, 3,119 warnings raised: 213 more XW-05 than before, since the worker judges a
night by its own steps), the time-dependent rules then raised nothing more: 338 s in all (a run before
that last step: 363 s). Earlier, with load 2-3 from other work: 2 processes built 9,996 cases (89,239 completions) in 407 s, 24.6 cases/s (set-up and
part files included); the merge took 2 s, verifying the 9,997 chains (199,675 events) 7 s, and 2
workers drained the 113,354 outbox rows (2,906 warnings raised) in 97 s: 513 s in all. The same counts
took 897 + 237 = 1,134 s with one shared file and the rules evaluated under the write lock; with a
benchmark of another process on both cores (load 4-5) the new build took 711 + 2 + 7 + 128 = 849 s.

Pages, each with the user who uses it: 我的待办 /tasks (the village cadre), the case search with every
filter and some single filters (the township discipline office), a trail of about 20 events, the step
page with its dossier (/cases/<id> of a running case, by the holder of its open step), the public board
of a village and the QR case page /public/case/<code> (no session), the warnings inbox and the
township dashboard (the township discipline office). Each is requested over real HTTP from waitress
with a signed-in session (POST /login with the form's CSRF token), warmed up, then ``--requests``
times; median and p95 are printed with "target 50 ms met / NOT met".
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
os.environ.setdefault("XIAOWEI_ARGON2", "1,64,1")  # cheap hashes for the bench users (production: 2,19456,1)

from sqlalchemy import Integer, create_engine, func, select, text  # noqa: E402

from engine.core import catalogue, clock, directory, outbox  # noqa: E402
from engine.core.errors import Conflict  # noqa: E402
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


def register_persons(app: Xiaowei) -> int:
    """The person register the build's forms name, made before the cases (``people.find_or_add``, each
    with its ``person_added`` event on the system chain): in every village, each name the planner gives
    a person field of the mix (and the applicant a cadre acts for), and, in the first village, the one
    person of the planned ID number and phone. A case then finds its persons instead of adding them, so
    the build processes never append to the shared system chain (the merge checks that they did not).
    The same persons a single-file build made on the way (one per name and village, one with the ID)."""
    from engine.core import people, procedures
    from engine.services.scenarios import default_value
    from storage.models import Organization

    with app.db.write() as s:
        names: dict[str, None] = {"张三明": None}  # the 代办 beneficiary (on_behalf_of)
        ids: dict[str, None] = {}
        phones: dict[str, None] = {}
        for proc, _ in MIX:
            d = procedures.runtime(s, procedures.current_version(s, proc).id).definition
            for step in d.steps.values():
                by_name = {f.name: f for f in step.fields}
                for name_field, id_field, phone_field in people.person_fields(step.fields):
                    names.setdefault(str(default_value(by_name[name_field])), None)
                    if id_field:
                        ids.setdefault(str(default_value(by_name[id_field])), None)
                    if phone_field:
                        phones.setdefault(str(default_value(by_name[phone_field])), None)
        first = True
        for v, _ in villages():
            org = s.scalar(select(Organization).where(Organization.code == v))
            for name in names:
                if first and name == "张三明":
                    for number in ids or [None]:
                        people.find_or_add(s, name, org=org, id_number=number, phone=next(iter(phones), None))
                    first = False
                else:
                    people.find_or_add(s, name, org=org)
        return len(names)


def _build_part(args: tuple) -> dict:
    """One build process: the cases ``i`` whose village (``i % 20``) falls to process ``part`` of
    ``parts``, on its own engine clock, through its own ``Xiaowei`` on the shared database."""
    url, n_cases, part, parts, seed = args
    app = Xiaowei(Database(url), inline_background=False)  # warnings after the build, by the worker
    rnd = random.Random(seed * 1000 + part)
    vs = villages()
    procs = [p for p, w in MIX for _ in range(w)]
    fake = clock.FixedClock(START)
    span = timedelta(days=100)
    gap = span / max(n_cases, 1)
    parked: list[tuple] = []  # (due_at, counter, case_id, users, steps_left)
    counter = 0
    made = 0
    completions = 0
    starter: dict[str, str] = {}
    started = time.perf_counter()

    def advance(case_id: int, users: dict, steps_left: int) -> None:
        nonlocal counter, completions
        tasks = app.tasks(case_id)
        while steps_left > 0:
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
            try:
                tasks = app.complete(case_id, step_id, user, payload, **kwargs)["tasks"]  # the steps now open
            except Conflict:  # a timer that fell due first changed the case: read its open steps again
                tasks = app.tasks(case_id)
                continue
            completions += 1
            steps_left -= 1

    def resume_due() -> None:
        while parked and parked[0][0] <= fake.now():
            _, _, cid, users, left = heapq.heappop(parked)
            app.fire_due(cid)
            advance(cid, users, left)

    with clock.using(fake):
        for i in range(n_cases):
            if (i % len(vs)) % parts != part:
                continue
            fake.set(max(fake.now(), clock.to_utc(START) + gap * i))
            resume_due()
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
            made += 1
            steps = 200 if rnd.random() < 0.96 else rnd.randint(0, 8)
            advance(case_id, users, steps)
            if made % 250 == 0:
                app.db.analyze()  # as `xiaowei serve` does hourly: planner statistics follow the growth
                print(f"  [process {part}] {made} cases, {completions} completions in "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
        # Let time run on to the end of the span: resume parked cases whose timers are due.
        fake.set(max(fake.now(), clock.to_utc(START) + span))
        resume_due()
    app.db.dispose()
    return {"cases": made, "completions": completions, "seconds": time.perf_counter() - started,
            "clock": fake.now().isoformat()}


def _drain_part(args: tuple) -> dict:
    """One worker process draining the outbox (claims are exclusive: several may run at once), at the
    build clock's end (the rules that count time see the same "now" the cases were made up to)."""
    from engine.services import worker

    url, at, batch = args
    app = Xiaowei(Database(url), inline_background=False)
    with clock.using(clock.FixedClock(at)):
        # One big claim each (a long lease to match): every case's rows in one batch, one evaluation a case.
        done = worker.drain(app, batch=batch, lease=timedelta(hours=2))
    app.db.dispose()
    return done


def drain(url: str, at: str, processes: int, pool) -> list[dict]:
    """The outbox worked off by ``processes`` workers at the engine time ``at``."""
    app = Xiaowei(Database(url), inline_background=False)
    with app.db.read() as s:
        due = outbox.backlog(s)["due"]
    app.db.dispose()
    done = pool.map(_drain_part, [(url, at, due // processes + 1)] * processes)
    # A row whose evaluation failed (e.g. SQLite's lock waited out) waits for its retry: taken at once here.
    from engine.services import worker

    app = Xiaowei(Database(url), inline_background=False)
    with clock.using(clock.FixedClock(at)):
        done.append(worker.drain(app, now=outbox.wall_now() + timedelta(hours=2), lease=timedelta(hours=2)))
    app.db.dispose()
    return done


ID_SHIFT = 10**8  # build process k makes its rows from id k * ID_SHIFT on, in its own file


def _int_id(table) -> bool:
    return list(table.primary_key.columns.keys()) == ["id"] and isinstance(table.c.id.type, Integer)


def make_part(base: Path, part: Path, k: int) -> None:
    """A file for build process ``k``: the schema of ``storage.models`` with AUTOINCREMENT on every
    integer ``id`` key (so that SQLite never hands out an id below the sequence), the base file's
    rows (library, organizations, users, persons) and ``alembic_version``, and every sequence set so
    that the process's rows get ids from ``k * ID_SHIFT`` on: the merge then keeps every id as it is
    (ids are inside the hashed audit data and the chain names ``case:<id>``)."""
    import sqlite3

    from sqlalchemy import MetaData
    from storage.models import Base

    for suffix in ("", "-wal", "-shm"):
        Path(str(part) + suffix).unlink(missing_ok=True)
    meta = MetaData()
    for table in Base.metadata.sorted_tables:
        copy = table.to_metadata(meta)
        if _int_id(table):
            copy.dialect_options["sqlite"]["autoincrement"] = True
    engine = create_engine(f"sqlite:///{part}")
    meta.create_all(engine)
    engine.dispose()
    con = sqlite3.connect(part, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("ATTACH DATABASE ? AS base", (str(base),))
    con.execute("BEGIN")
    con.execute(con.execute("SELECT sql FROM base.sqlite_master WHERE name = 'alembic_version'").fetchone()[0])
    con.execute("INSERT INTO alembic_version SELECT * FROM base.alembic_version")
    for table in Base.metadata.sorted_tables:
        cols = ", ".join(f'"{c.name}"' for c in table.columns)
        con.execute(f'INSERT INTO main."{table.name}" ({cols}) SELECT {cols} FROM base."{table.name}"')
        if _int_id(table):
            top = con.execute(f'SELECT MAX(id) FROM main."{table.name}"').fetchone()[0] or 0
            assert top < k * ID_SHIFT, (table.name, top)
            con.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table.name,))
            con.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, k * ID_SHIFT - 1))
    assert not con.execute("SELECT COUNT(*) FROM rate_counter").fetchone()[0]  # the merge adds the parts' counts
    con.execute("COMMIT")
    con.execute("DETACH DATABASE base")
    con.close()


def merge(base: Path, parts: list[tuple[int, Path]]) -> dict[str, int]:
    """The rows of each part file added to the base file (the database the real ``init()`` made),
    table by table in foreign-key order, ids unchanged: of a table with an integer id the rows from
    ``k * ID_SHIFT`` on, of ``case_state`` those of the part's cases, of the others (chain heads,
    blobs by sha256, …) the rows the base does not hold. A base row the part changed, or a part
    that appended to the shared system chain, stops the merge (their rows cannot be told apart);
    so does any unique key two parts both used (a person's ID number, a tracking code)."""
    import sqlite3

    from storage.models import Base

    added: dict[str, int] = {}
    con = sqlite3.connect(base, isolation_level=None)
    con.execute("PRAGMA foreign_keys=ON")
    for k, part in parts:
        con.execute("ATTACH DATABASE ? AS part", (str(part),))
        con.execute("BEGIN IMMEDIATE")
        shift = k * ID_SHIFT
        for table in Base.metadata.sorted_tables:
            name = table.name
            cols = ", ".join(f'"{c.name}"' for c in table.columns)
            if _int_id(table):
                changed = con.execute(f'SELECT COUNT(*) FROM (SELECT {cols} FROM part."{name}" WHERE id < ? '
                                      f'EXCEPT SELECT {cols} FROM main."{name}" WHERE id < ?)',
                                      (shift, shift)).fetchone()[0]
                if changed:
                    raise RuntimeError(f"part {k} changed {changed} base rows of {name}: cannot merge")
                cur = con.execute(f'INSERT INTO main."{name}" ({cols}) SELECT {cols} FROM part."{name}" '
                                  f'WHERE id >= ?', (shift,))
            elif name == "case_state":
                cur = con.execute(f'INSERT INTO main."{name}" ({cols}) SELECT {cols} FROM part."{name}" '
                                  f'WHERE case_id >= ?', (shift,))
            elif name == "rate_counter":  # the upload bytes of a user and day: the parts' counts add up
                cur = con.execute(f'INSERT INTO main."{name}" ({cols}) SELECT {cols} FROM part."{name}" WHERE true '
                                  'ON CONFLICT (key, window_start) DO UPDATE SET count = count + excluded.count')
            elif name == "blob":  # content-addressed: the same sha256 is the same file
                cur = con.execute(f'INSERT OR IGNORE INTO main."{name}" ({cols}) SELECT {cols} FROM part."{name}"')
            else:  # new rows (case chains' heads); a changed one (the system chain's head) fails on its key
                cur = con.execute(f'INSERT INTO main."{name}" ({cols}) SELECT {cols} FROM '
                                  f'(SELECT {cols} FROM part."{name}" EXCEPT SELECT {cols} FROM main."{name}")')
            added[name] = added.get(name, 0) + cur.rowcount
        problems = con.execute("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"part {k}: rows whose foreign keys do not hold: {problems[:5]}")
        con.execute("COMMIT")
        con.execute("DETACH DATABASE part")
    con.close()
    return {name: n for name, n in added.items() if n}


def verify_chains(url: str) -> None:
    """Every chain of the merged file recomputed (``audit.verify``: hashes, links, heads, and each case's
    rows against its replayed events); the build fails unless all hold."""
    from engine.core import audit

    started = time.perf_counter()
    db = Database(url)
    with db.read() as s:
        reports = audit.verify(s)
    db.dispose()
    bad = [r for r in reports if not r.ok]
    events = sum(r.events for r in reports)
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(reports)} chains do not verify, e.g. {bad[0].chain}: "
                           f"{bad[0].problems[:3]}")
    print(f"  every chain verifies: {len(reports)} chains, {events} events "
          f"({time.perf_counter() - started:.0f} s)", flush=True)


def build(path: Path | str, n_cases: int, processes: int, seed: int = 7) -> None:
    """``n_cases`` cases over the 20 villages, started on a moving clock by ``processes`` processes
    (the villages split between them), each into its own SQLite file (process 0 into ``path``, the
    base file that the real ``init()`` made; process k into a copy of its rows with ids from
    ``k * ID_SHIFT`` on), merged into ``path`` at the end and every chain verified. ~96 % of the
    cases are driven to their end, the rest stop at a random step (open work items, some overdue).
    A case waiting on a timer is parked and resumed once the clock has passed its due time. Every
    case is made by ``Xiaowei.start_case``/``complete``/``fire_due``; the warning rules are left to
    the outbox, which ``processes`` workers drain over the merged file at the end."""
    import multiprocessing

    shared = isinstance(path, str)  # a PostgreSQL URL (--pg-build): every process writes that database
    url = path if shared else f"sqlite:///{path}"
    started = time.perf_counter()
    app = Xiaowei(Database(url), inline_background=False)
    app.init()
    setup_orgs(app)
    register_persons(app)
    app.db.dispose()
    files = [path] if shared else [path] + [Path(f"{path}.part{k}") for k in range(1, processes)]
    for k, part in enumerate(files[1:], start=1):
        make_part(path, part, k)
    urls = [url] * processes if shared else [f"sqlite:///{f}" for f in files]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(processes) as pool:
        parts = pool.map(_build_part, [(urls[k], n_cases, k, processes, seed) for k in range(processes)])
        built = time.perf_counter() - started
        made = sum(p["cases"] for p in parts)
        completions = sum(p["completions"] for p in parts)
        print(f"  cases built in {built:.0f} s by {processes} processes: {made} cases, {completions} completions, "
              f"{made / built:.1f} cases/s, {completions / built:.1f} completions/s", flush=True)
        t = time.perf_counter()
        added = merge(path, list(enumerate(files))[1:]) if len(files) > 1 else {}
        for part in files[1:]:
            for suffix in ("", "-wal", "-shm"):
                Path(str(part) + suffix).unlink(missing_ok=True)
        if len(files) > 1:
            print(f"  {processes - 1} part files merged in {time.perf_counter() - t:.0f} s: "
                  + ", ".join(f"{n} {name}" for name, n in sorted(added.items(), key=lambda x: -x[1])[:6]), flush=True)
        Database(url).analyze()
        verify_chains(url)
        t = time.perf_counter()
        end = max(p["clock"] for p in parts)
        drained = drain(url, end, processes, pool)
    rows = sum(d["rows"] for d in drained)
    failed = sum(d["failed"] + d["lost"] for d in drained)
    raised = sum(d["raised"] for d in drained)
    print(f"  outbox drained by {processes} workers in {time.perf_counter() - t:.0f} s: {rows} rows, "
          f"{raised} warnings raised, {failed} failed or lost on the way (retried in a last pass)", flush=True)
    app = Xiaowei(Database(url), inline_background=False)
    t = time.perf_counter()
    from engine.services.supervision import warnings

    with clock.using(clock.FixedClock(end)), app.db.write() as s:  # as the worker's minutely tick does
        timed = warnings.evaluate(s, rules=warnings.TIMED_RULES)
    print(f"  time-dependent rules at the build clock's end (overdue steps, stalled cases …) in "
          f"{time.perf_counter() - t:.0f} s: {len(timed)} warnings raised", flush=True)
    app.db.analyze()
    with app.db.read() as s:
        left = outbox.backlog(s)
    app.db.dispose()
    total = time.perf_counter() - started
    print(f"  build took {total:.0f} s ({made / total:.1f} cases/s overall); outbox after: {left}", flush=True)


def sizes(app: Xiaowei) -> dict[str, int]:
    with app.db.read() as s:
        return {"cases": s.scalar(select(func.count()).select_from(Case)),
                "running": s.scalar(select(func.count()).select_from(Case).where(Case.status == "running")),
                "audit events": s.scalar(select(func.count()).select_from(AuditEvent)),
                "work items": s.scalar(select(func.count()).select_from(WorkItem)),
                "timers": s.scalar(select(func.count()).select_from(TimerDue))}


CADRE_ROLES = ("party_branch", "joint_meeting", "committee", "director", "handler", "party_members_meeting")


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


def step_case(app: Xiaowei) -> tuple[int, str, int, str]:
    """The step page: a running case with an open step, the first village's first, the longest history
    (the biggest dossier) first; its id, tracking code, event count and the user who does that step
    (the cadre, else the holder of the role)."""
    from storage.models import Organization

    with app.db.read() as s:
        events = (select(AuditEvent.case_id, func.count().label("n")).group_by(AuditEvent.case_id).subquery())
        rows = s.execute(select(Case.id, Case.tracking_code, events.c.n, WorkItem.role_key, Organization.code)
                         .join(WorkItem, WorkItem.case_id == Case.id)
                         .join(events, events.c.case_id == Case.id)
                         .join(Organization, Organization.id == Case.org_id)
                         .where(Case.status == "running")).all()
    first = villages()[0][0]
    best = min(rows, key=lambda r: (r[4] != first, -r[2], r[3] not in CADRE_ROLES, r[0]))
    user = "cadre" if best[4] == first and best[3] in CADRE_ROLES else people(best[4], dict(villages())[best[4]])[best[3]]
    return best[0], best[1], best[2], user


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
    supervisor = f"{TOWNSHIPS[0].lower()}.township_discipline"  # township discipline: search, inbox, dashboard
    step_id, code, step_events, step_user = step_case(app)
    village = villages()[0][0]
    everything = urllib.parse.urlencode({
        "scope": "all", "org": village, "procedure": "B-PUR-02", "category": "PUR", "status": "running",
        "overdue": "1", "person": "张三明", "q": "事项", "from": "2026-01-01", "to": "2026-12-31",
        "amount_min": "1000", "amount_max": "10000000"})
    pages = [("cadre", "我的待办 /tasks", "/tasks"),
             (supervisor, "case search: all filters", f"/cases?{everything}"),
             (supervisor, "case search: /cases?scope=all", "/cases?scope=all"),
             (supervisor, "case search: status+procedure", "/cases?scope=all&status=running&procedure=B-PUR-02"),
             (supervisor, "case search: amount_min+overdue", "/cases?scope=all&amount_min=50000&overdue=1"),
             (supervisor, "case search: person=张三明", "/cases?scope=all&person=%E5%BC%A0%E4%B8%89%E6%98%8E"),
             (supervisor, "case search: page 100", "/cases?scope=all&page=100"),
             (supervisor, f"trail /cases/{case_id}/trail ({n_events} ev)", f"/cases/{case_id}/trail"),
             (step_user, f"step page + dossier /cases/{step_id} ({step_events} ev)", f"/cases/{step_id}"),
             (None, f"public board /public/{village}", f"/public/{village}"),
             (None, f"QR case page /public/case/{code}", f"/public/case/{code}"),
             (supervisor, "warnings inbox /warnings", "/warnings"),
             (supervisor, "township dashboard /dashboard", "/dashboard")]
    with serve(web) as base:
        openers = {}
        for user, name, path in pages:
            if user is None:
                opener = urllib.request.build_opener(NoRedirect())  # the public side: no session
            else:
                opener = openers.get(user) or openers.setdefault(user, signed_in(base, user))
            timings, size = measure(opener, base + path, n)
            median, p95 = statistics.median(timings) * 1000, percentile(timings, 0.95) * 1000
            verdict = "met" if p95 < TARGET_P95_MS else "NOT met"
            print(f"  {name:<52} n={len(timings)}  median {median:7.2f} ms  p95 {p95:7.2f} ms  "
                  f"{size / 1024:7.1f} KB  target {TARGET_P95_MS:.0f} ms {verdict}", flush=True)


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
    parser.add_argument("--build-only", action="store_true", help="build the SQLite file (if needed), measure nothing")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="build processes (default: the machine's cores)")
    args = parser.parse_args()

    if not args.no_sqlite:
        DATA.mkdir(parents=True, exist_ok=True)
        path = DATA / f"pages-{args.cases}.db"
        if args.rebuild or not path.exists():
            for suffix in ("", "-wal", "-shm", ".tmp", ".tmp-wal", ".tmp-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            tmp = Path(str(path) + ".tmp")
            print(f"building SQLite database {tmp.name} with {args.cases} cases …", flush=True)
            build(tmp, args.cases, args.processes)
            tmp.rename(path)
        if args.build_only:
            return
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
            app.db.dispose()
            build(url, n_pg, args.processes)
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
