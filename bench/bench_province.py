"""Province scale on PostgreSQL: ~1,000,000 cases / ~20,000,000 audit events, the pages and a full warning scan.

    python bench/bench_province.py [--source FILE] [--cases N] [--villages N] [--townships N]
                                   [--pg URL] [--schema NAME] [--requests N] [--reuse] [--keep]
                                   [--no-scan] [--no-pages]

1. **Source.** An engine-made SQLite database (every case started and completed through
   Xiaowei.start_case / complete, with its hash-chained trail, work items, timers, fields, submissions,
   persons, outbox rows and the warnings the worker raised): ``--source FILE``, by default
   bench/.data/pages-2000.db as ``python bench/bench_pages.py --cases 2000 --no-pg`` builds it
   (1 district, 2 townships, 20 villages, a user per role and village, the cadre ``cadre``).
2. **Replication on PostgreSQL, server-side.** The source is copied into the schema ``--schema``
   (default ``province``; bench_pages.copy_database: same ids, same hashes), then replicated there with
   ``INSERT … SELECT … CROSS JOIN generate_series`` until there are ``--cases`` cases: copy k of every
   case gets the id ``id + k·offset``, a tracking code with three more characters, and the village
   replica ``k mod R``; the directory is replicated to ``--villages`` villages under ``--townships``
   townships (village replica r of a source village lies in the township replica r // (R/G) of its
   township), with every village and township user replicated (``name-r``; same password) and their
   role assignments moved along. Audit events (``chain`` = the new case, the actor the replicated user),
   submissions, work items, timers, case fields, case states, case persons, outbox rows (done), objections,
   and the person register (persons with shifted keyed hashes, households, relations, kinship) follow.
   Non-constraint indexes are dropped during the load and rebuilt after it exactly as the migrations
   defined them; foreign-key triggers are off during the load (``session_replication_role``); then
   ANALYZE. The warnings are not copied (their fingerprints hash the case ids): the full scan raises them.
   **The replicas' hash chains do not verify**: an event's hash covers its chain name (``case:<id>``) and
   its actor, both shifted; the copied source cases (the first ``n`` ids) verify as built.
3. **Full warning scan** (every rule, set-based, ``warnings.ScanContext`` with no case ids) over all
   cases: first on the empty warning table (raises every warning), then again (idempotent); per-rule times.
4. **Pages** over real HTTP (waitress, webui.serving.serve_in_thread) with signed-in sessions: 我的待办,
   the case search (unfiltered, all filters at once, a person, a deep page, district-wide), a 20-event
   trail, the step page with its dossier, a village's public board, the QR case page, the warnings inbox,
   the township dashboard and 镇街总览: median and p95 of ``--requests`` requests each (target p95 < 100 ms).

``--reuse`` skips 1–2 and measures an existing schema (kept with ``--keep``; brought up to the latest
migration first); without ``--keep`` the schema
is dropped at the end. Run it with ``nice``; the load averages are printed beside the timings.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("XIAOWEI_SCRYPT_N", "1024")

from sqlalchemy import create_engine, text  # noqa: E402

from bench_pages import copy_database, measure, percentile, signed_in  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from storage import Database  # noqa: E402
from storage.db import normalize_url  # noqa: E402
from storage.models import Base  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
TARGET_P95_MS = 100.0
TARGET_SCAN_S = 600.0
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # engine.core.cases' tracking-code alphabet
VILLAGE_KINDS = "('village','community')"
# tables with a row per case (copied k-fold) and per village replica (copied R-fold)
CASE_TABLES = ("case_instance", "case_state", "case_field", "work_item", "timer_due", "submission", "audit_event",
               "case_person", "outbox", "objection", "periodic_case")
PEOPLE_TABLES = ("household", "person", "person_relation", "kinship")
DIRECTORY_TABLES = ("organization", "user_account", "role_assignment")


def load_avg() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def schema_url(base: str, schema: str) -> str:
    url = normalize_url(base)
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    admin = create_engine(normalize_url(base), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


# --- replication ----------------------------------------------------------------------------------
def _cols(table: str) -> list[str]:
    return [c.name for c in Base.metadata.tables[table].columns]


def _insert(conn, table: str, exprs: dict[str, str], source: str, *, omit: tuple[str, ...] = ("id",),
            conflict: bool = False) -> int:
    """INSERT INTO table (columns) SELECT (the column, or its expression) FROM source; ``omit``: columns
    left to their defaults (serial ids nothing refers to)."""
    names = [c for c in _cols(table) if c not in omit or c in exprs]
    select_list = ", ".join(exprs.get(c, f"s.{c}") for c in names)
    sql = f"INSERT INTO {table} ({', '.join(names)}) SELECT {select_list} FROM {source}"
    if conflict:
        sql += " ON CONFLICT DO NOTHING"
    return conn.execute(text(sql)).rowcount


def _offset(conn, table: str, column: str = "id") -> int:
    top = conn.scalar(text(f"SELECT COALESCE(MAX({column}), 0) FROM {table}"))
    return 10 ** len(str(top + 1))  # a round offset: ids stay readable (1000017 is copy 1 of case 17)


def replicate(engine, target_cases: int, target_villages: int, target_townships: int, chunk: int = 25) -> dict:
    """Replicate the engine-made rows in place (see the module docstring); returns the figures used."""
    with engine.connect() as conn:
        conn.execute(text("SET session_replication_role = replica"))  # no FK triggers during the bulk copy
        conn.execute(text("SET maintenance_work_mem = '1GB'"))
        conn.execute(text("SET work_mem = '256MB'"))
        conn.commit()
        n = conn.scalar(text("SELECT COUNT(*) FROM case_instance"))
        n_villages = conn.scalar(text(f"SELECT COUNT(*) FROM organization WHERE kind IN {VILLAGE_KINDS}"))
        n_townships = conn.scalar(text("SELECT COUNT(*) FROM organization WHERE kind = 'township'"))
        copies = max(1, math.ceil(target_cases / n))
        reps = max(1, min(copies, math.ceil(target_villages / n_villages)))  # village replicas R
        groups = max(1, min(reps, math.ceil(target_townships / n_townships)))  # township replicas G
        per = max(1, reps // groups)  # village replicas per township replica
        groups = math.ceil(reps / per)
        case_off, org_off = _offset(conn, "case_instance"), _offset(conn, "organization")
        user_off, person_off = _offset(conn, "user_account"), _offset(conn, "person")
        household_off = _offset(conn, "household")
        print(f"  source: {n:,} cases, {n_villages} villages, {n_townships} townships → {copies} copies of each "
              f"case over {reps} replicas of each village in {groups} replicas of each township", flush=True)

        # indexes that back no constraint: dropped now, rebuilt after the load as the migrations made them
        tables = CASE_TABLES + PEOPLE_TABLES + DIRECTORY_TABLES
        indexes = conn.execute(text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = ANY(:t) AND NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_class x "
            "ON x.oid = c.conindid WHERE x.relname = i.indexname AND c.connamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()))"), {"t": list(tables)}).all()
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        conn.commit()

        # maps: (source org, replica r) → org; (source user, replica r) → user name
        conn.execute(text("CREATE TEMP TABLE orgmap (src int, r int, dst int, PRIMARY KEY (src, r))"))
        conn.execute(text(
            f"INSERT INTO orgmap SELECT o.id, r, CASE WHEN o.kind IN {VILLAGE_KINDS} THEN o.id + r * {org_off} "
            f"WHEN o.kind = 'township' THEN o.id + (r / {per}) * {org_off} ELSE o.id END "
            f"FROM organization o CROSS JOIN generate_series(0, {reps - 1}) r"))
        # a user is a village user when every role is held at a village, a township user at a township
        conn.execute(text(
            "CREATE TEMP TABLE userlevel AS SELECT u.id, u.username, "
            f"CASE WHEN bool_and(o.kind IN {VILLAGE_KINDS}) THEN 'village' "
            "WHEN bool_and(o.kind = 'township') THEN 'township' END AS level "
            "FROM user_account u JOIN role_assignment a ON a.user_id = u.id JOIN organization o ON o.id = a.org_id "
            "GROUP BY u.id, u.username"))
        conn.execute(text("CREATE TEMP TABLE usermap (src varchar(64), r int, dst varchar(64), "
                          "uid int, PRIMARY KEY (src, r))"))
        conn.execute(text(
            f"INSERT INTO usermap SELECT l.username, r, l.username || '-' || r, l.id + r * {user_off} "
            f"FROM userlevel l CROSS JOIN generate_series(1, {reps - 1}) r WHERE l.level = 'village'"))
        conn.execute(text(
            f"INSERT INTO usermap SELECT l.username, r, l.username || '-' || (r / {per}), l.id + (r / {per}) * "
            f"{user_off} FROM userlevel l CROSS JOIN generate_series({per}, {reps - 1}) r "
            "WHERE l.level = 'township'"))
        conn.execute(text("ANALYZE orgmap; ANALYZE usermap"))
        conn.commit()

        def who(col: str, alias: str) -> str:  # a user name column of the copy: the replicated user
            return f"COALESCE({alias}.dst, s.{col})"

        def hashed(col: str, r: str) -> str:
            return (f"CASE WHEN s.{col} IS NULL THEN NULL ELSE "
                    f"encode(sha256(convert_to(s.{col} || ':' || {r}, 'UTF8')), 'hex') END")

        t = time.perf_counter()
        # the directory: township replicas g ≥ 1, village replicas r ≥ 1, their users and roles
        _insert(conn, "organization", {"id": f"s.id + g * {org_off}", "code": "s.code || '-' || g",
                                       "name": "s.name || '-' || g"},
                f"organization s CROSS JOIN generate_series(1, {groups - 1}) g WHERE s.kind = 'township'")
        _insert(conn, "organization", {"id": f"s.id + r * {org_off}", "code": "s.code || '-' || r",
                                       "name": "s.name || '-' || r", "parent_id": f"s.parent_id + (r / {per}) * {org_off}"},
                f"organization s CROSS JOIN generate_series(1, {reps - 1}) r WHERE s.kind IN {VILLAGE_KINDS} "
                f"AND s.id < {org_off}")
        _insert(conn, "user_account", {"id": "m.uid", "username": "m.dst", "display_name": "s.display_name || '-' || m.r",
                                       "person_id": f"s.person_id + m.r * {person_off}"},
                "user_account s JOIN (SELECT DISTINCT ON (uid) * FROM usermap ORDER BY uid, r) m ON m.src = s.username")
        _insert(conn, "role_assignment", {"user_id": "m.uid", "org_id": "om.dst"},
                "role_assignment s JOIN user_account u ON u.id = s.user_id "
                "JOIN (SELECT DISTINCT ON (uid) * FROM usermap ORDER BY uid, r) m ON m.src = u.username "
                "JOIN orgmap om ON om.src = s.org_id AND om.r = m.r", conflict=True)
        # the person register of each village replica
        series = f"generate_series(1, {reps - 1}) AS gs(rr)"
        _insert(conn, "household", {"id": f"s.id + rr * {household_off}", "org_id": "om.dst"},
                f"household s CROSS JOIN {series} JOIN orgmap om ON om.src = s.org_id AND om.r = rr")
        _insert(conn, "person", {"id": f"s.id + rr * {person_off}", "org_id": "om.dst",
                                 "household_id": f"s.household_id + rr * {household_off}",
                                 "id_hash": hashed("id_hash", "rr"), "phone_hash": hashed("phone_hash", "rr"),
                                 "created_by": who("created_by", "um")},
                f"person s CROSS JOIN {series} LEFT JOIN orgmap om ON om.src = s.org_id AND om.r = rr "
                "LEFT JOIN usermap um ON um.src = s.created_by AND um.r = rr")
        _insert(conn, "person_relation", {"person_id": f"s.person_id + rr * {person_off}",
                                          "relative_id": f"s.relative_id + rr * {person_off}",
                                          "declared_by": who("declared_by", "um")},
                f"person_relation s CROSS JOIN {series} LEFT JOIN usermap um ON um.src = s.declared_by AND um.r = rr")
        _insert(conn, "kinship", {"org_id": "om.dst", "cadre": who("cadre", "uc"),
                                  "declared_by": who("declared_by", "um")},
                f"kinship s CROSS JOIN {series} JOIN orgmap om ON om.src = s.org_id AND om.r = rr "
                "LEFT JOIN usermap uc ON uc.src = s.cadre AND uc.r = rr "
                "LEFT JOIN usermap um ON um.src = s.declared_by AND um.r = rr", conflict=True)
        conn.commit()
        print(f"  directory and person register replicated in {time.perf_counter() - t:.0f} s", flush=True)

        # the cases, copy k = 1 … copies-1 into village replica k mod R, in chunks of copies
        # a copy's tracking code: 12 characters of the engine's alphabet (the QR page reads exactly 12), the
        # digits of (new id × an odd multiplier) in base 31: one-to-one, apart from the random source codes
        def code(value: str, multiplier: int = 99999999977) -> str:
            v = f"(({value})::bigint * {multiplier} + 1234567)"
            return " || ".join(f"substr('{ALPHABET}', (({v} / {31 ** p}::bigint) % 31)::int + 1, 1)"
                               for p in range(11, -1, -1))

        case = f"s.case_id + k * {case_off}"
        specs = {
            "case_instance": ({"id": f"s.id + k * {case_off}", "org_id": "om.dst", "tracking_code": code(f"s.id + k * {case_off}"),
                               "started_by": who("started_by", "um")},
                              "JOIN orgmap om ON om.src = s.org_id AND om.r = k % {R} "
                              "LEFT JOIN usermap um ON um.src = s.started_by AND um.r = k % {R}", "s.id"),
            "case_state": ({"case_id": case}, "", "s.case_id"),
            "case_field": ({"case_id": case}, "", "s.case_id"),
            "work_item": ({"case_id": case, "org_id": "om.dst"},
                          "JOIN orgmap om ON om.src = s.org_id AND om.r = k % {R}", "s.case_id"),
            "timer_due": ({"case_id": case}, "", "s.case_id"),
            "submission": ({"case_id": case, "actor": who("actor", "um")},
                           "LEFT JOIN usermap um ON um.src = s.actor AND um.r = k % {R}", "s.case_id"),
            "audit_event": ({"case_id": case, "chain": f"'case:' || ({case})", "actor": who("actor", "um")},
                            "LEFT JOIN usermap um ON um.src = s.actor AND um.r = k % {R}", "s.case_id"),
            "case_person": ({"case_id": case, "person_id": f"s.person_id + (k % {reps}) * {person_off}"}, "", "s.case_id"),
            "outbox": ({"case_id": case, "done_at": "COALESCE(s.done_at, s.created_at)", "claimed_by": "NULL",
                        "claimed_until": "NULL"}, "", "s.case_id"),
            "objection": ({"case_id": case, "receipt_code": f"CASE WHEN s.receipt_code IS NULL THEN NULL ELSE {code(f'({case}) * 1000 + s.seq + 500000000000', 1)} END"}, "", "s.case_id"),
            "periodic_case": ({"case_id": case, "org_id": "om.dst"},
                              "JOIN orgmap om ON om.src = s.org_id AND om.r = k % {R}", "s.case_id"),
        }
        counts = {name: 0 for name in specs}
        t = time.perf_counter()
        for table in specs:  # the engine-made rows, apart: each chunk reads them, not the growing table
            where = " WHERE case_id IS NOT NULL" if table != "case_instance" else ""  # not the system chain
            conn.execute(text(f"CREATE TEMP TABLE src_{table} AS SELECT * FROM {table}{where}"))
        conn.commit()
        for k0 in range(1, copies, chunk):
            k1 = min(copies - 1, k0 + chunk - 1)
            for table, (exprs, joins, key) in specs.items():
                # k outermost: the copies arrive in id order (the unique indexes grow at their right edge)
                source = f"generate_series({k0}, {k1}) k CROSS JOIN src_{table} s {joins.format(R=reps)}"
                counts[table] += _insert(conn, table, exprs, source, conflict=table == "periodic_case")
            conn.commit()
            print(f"  copies {k1}/{copies - 1}: {counts['case_instance']:,} cases, {counts['audit_event']:,} events "
                  f"in {time.perf_counter() - t:.0f} s ({load_avg()})", flush=True)
        copy_s = time.perf_counter() - t

        t = time.perf_counter()
        for name, definition in indexes:
            conn.execute(text(definition))
            conn.commit()
        index_s = time.perf_counter() - t
        print(f"  {len(indexes)} indexes rebuilt in {index_s:.0f} s ({load_avg()})", flush=True)
        for table in Base.metadata.sorted_tables:  # the id sequences move past the copies
            if "id" in table.c and conn.scalar(text(f"SELECT pg_get_serial_sequence('{table.name}', 'id')")):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                  f"COALESCE((SELECT MAX(id) FROM {table.name}), 1))"))
        conn.execute(text("SET session_replication_role = DEFAULT"))
        conn.commit()
        t = time.perf_counter()
        conn.execute(text("ANALYZE"))
        conn.commit()
        analyze_s = time.perf_counter() - t
    return {"copies": copies, "villages": reps, "townships": groups, "per": per, "case_off": case_off,
            "copy_s": copy_s, "index_s": index_s, "analyze_s": analyze_s}


def report_sizes(engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT c.relname, 0, pg_total_relation_size(c.oid) FROM pg_class c "
            "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
            "AND c.relkind = 'r' ORDER BY 3 DESC")).all()
        rows = [(name, conn.scalar(text(f'SELECT COUNT(*) FROM "{name}"')), size) for name, _, size in rows]
        counts = {name: count for name, count, _ in rows}
        cases, events = counts["case_instance"], counts["audit_event"]
    total = sum(r[2] for r in rows)
    print("rows and sizes per table (tables with indexes and TOAST):")
    for name, tuples, size in rows:
        if size > 100_000 or tuples > 0:
            print(f"  {name:<20} {max(tuples, 0):>12,} rows  {size / 2**20:>10,.1f} MB")
    print(f"database size: {total / 2**30:.2f} GB for {cases:,} cases and {events:,} audit events: "
          f"{total / cases / 1024:.1f} KB per case, {total / events:.0f} bytes per audit event (all tables / count)")


# --- the full scan --------------------------------------------------------------------------------
def full_scan(db: Database, *, runs: int = 2, empty_first: bool = True) -> None:
    from bench_warnings import clear_warnings, slowest, timed_scan

    if empty_first:
        clear_warnings(db)
    for run in ("first", "second")[:runs]:
        scan = timed_scan(db, lambda rule, seconds, found: print(f"    {rule}: {seconds:.1f} s, {found:,} findings",
                                                                 flush=True))
        verdict = "ok" if scan["elapsed"] < TARGET_SCAN_S else "SLOW"
        print(f"full warning scan ({run} run): {scan['elapsed']:.1f} s, {scan['findings']:,} findings, "
              f"{scan['raised']:,} new warnings (store {scan['store']:.1f} s) [{verdict}, target < {TARGET_SCAN_S:.0f} s]; "
              f"slowest rules: {slowest(scan, 6)} ({load_avg()})", flush=True)


# --- the pages ------------------------------------------------------------------------------------
def page_targets(engine, copies_hint: int | None = None) -> dict:
    """Users and objects of a replica in the middle of the province for the pages."""
    with engine.connect() as conn:
        cadre = conn.scalar(text("SELECT username FROM user_account WHERE username LIKE 'cadre-%' "
                                 "ORDER BY id DESC LIMIT 1")) or "cadre"
        village_id = conn.scalar(text(
            "SELECT a.org_id FROM role_assignment a JOIN user_account u ON u.id = a.user_id "
            "WHERE u.username = :u LIMIT 1"), {"u": cadre})
        village, township_id = conn.execute(text("SELECT code, parent_id FROM organization WHERE id = :i"),
                                            {"i": village_id}).one()
        supervisor = conn.scalar(text(
            "SELECT u.username FROM user_account u JOIN role_assignment a ON a.user_id = u.id "
            "WHERE a.role_key = 'township_discipline' AND a.org_id = :t LIMIT 1"), {"t": township_id})
        township_code = conn.scalar(text("SELECT code FROM organization WHERE id = :t"), {"t": township_id})
        district_user = conn.scalar(text(
            "SELECT u.username FROM user_account u JOIN role_assignment a ON a.user_id = u.id "
            "JOIN organization o ON o.id = a.org_id WHERE o.kind = 'district' AND a.role_key IN "
            "('district_discipline', 'district_admin', 'supervision_office') ORDER BY a.role_key DESC LIMIT 1"))
        trail = conn.execute(text(
            "SELECT c.id, c.audit_seq FROM case_instance c JOIN organization o ON o.id = c.org_id "
            "WHERE o.parent_id = :t ORDER BY abs(c.audit_seq - 20), c.id DESC LIMIT 1"), {"t": township_id}).one()
        step = conn.execute(text(  # an open step in the township and a user who may do it
            "SELECT w.case_id, w.step_id, u.username FROM work_item w JOIN organization o ON o.id = w.org_id "
            "JOIN role_assignment a ON a.org_id = w.org_id AND a.role_key = w.role_key "
            "JOIN user_account u ON u.id = a.user_id WHERE o.parent_id = :t ORDER BY w.case_id DESC LIMIT 1"),
            {"t": township_id}).one_or_none()
        staff = conn.scalar(text(
            "SELECT u.username FROM user_account u JOIN role_assignment a ON a.user_id = u.id "
            "WHERE a.role_key IN ('township_staff', 'township_government') AND a.org_id = :t LIMIT 1"),
            {"t": township_id})
        code = conn.scalar(text("SELECT tracking_code FROM case_instance WHERE org_id = :v ORDER BY audit_seq DESC, "
                                "id LIMIT 1"), {"v": village_id})
        # the person filter: the cadre's name (a user who acted; the sample data's person fields all name
        # 张三明, whom a province-wide search finds in ~95 % of the cases: measured apart with --person)
        person = conn.scalar(text("SELECT display_name FROM user_account WHERE username = :u"), {"u": cadre})
    return {"cadre": cadre, "village": village, "supervisor": supervisor, "township": township_code,
            "district_user": district_user, "trail": trail, "step": step, "staff": staff, "code": code, "person": person}


def bench_pages(db: Database, n: int, person: str | None = None, only: str | None = None) -> None:
    from webui import create_app, warm_up
    from webui.serving import serve_in_thread

    tg = page_targets(db.engine)
    if person:
        tg["person"] = person
    q = urllib.parse.quote
    sup, cadre = tg["supervisor"], tg["cadre"]
    case_id, events = tg["trail"]
    all_filters = (f"/cases?scope=all&org={q(tg['village'])}&procedure=B-PUR-02&status=completed&from=2026-01-01"
                   f"&to=2026-12-31&amount_min=100&amount_max=1000000&person={q(tg['person'])}&q={q('事项')}")
    pages = [
        (cadre, "我的待办 /tasks", "/tasks"),
        (sup, "case search, township, no filter", "/cases?scope=all"),
        (sup, "case search, township, all filters", all_filters),
        (sup, "case search, township, running+procedure", "/cases?scope=all&status=running&procedure=B-PUR-02"),
        (sup, "case search, township, amount+overdue", "/cases?scope=all&amount_min=50000&overdue=1"),
        (sup, "case search, township, person", f"/cases?scope=all&person={q(tg['person'])}"),
        (sup, "case search, township, page 100", "/cases?scope=all&page=100"),
        (tg["district_user"], "case search, district (1M), no filter", "/cases?scope=all"),
        (tg["district_user"], "case search, district (1M), all filters", all_filters),
        (sup, f"trail of a {events}-event case", f"/cases/{case_id}/trail"),
    ]
    if tg["step"]:
        pages.append((tg["step"][2], f"step page with dossier ({tg['step'][1]})", f"/cases/{tg['step'][0]}"))
    pages += [
        (None, f"public board of {tg['village']}", f"/public/{q(tg['village'])}"),
        (None, "QR case page /public/case/<code>", f"/public/case/{tg['code']}"),
        (sup, "warnings inbox", "/warnings"),
        (sup, f"township dashboard ({tg['township']})", "/dashboard"),
        (tg["staff"], "镇街总览 /overview", "/overview"),
    ]
    if only:
        pages = [p for p in pages if any(word in p[1] for word in only.split(","))]
    print(f"\npages over HTTP ({n} requests each after 10 warm-ups; users {cadre}, {sup}, {tg['district_user']}; "
          f"{load_avg()}):", flush=True)
    web = create_app({"SECRET_KEY": "bench", "SESSION_COOKIE_SECURE": False}, db=db)
    warm_up(web)
    with serve_in_thread(web) as base:
        openers: dict = {}
        for user, name, path in pages:
            if user is None:
                opener = urllib.request.build_opener()
            else:
                opener = openers.get(user) or openers.setdefault(user, signed_in(base, user))
            try:
                timings, size = measure(opener, base + path, n)
            except Exception as exc:  # noqa: BLE001  (a page that fails is reported, the rest measured)
                print(f"  {name:<44} FAILED: {type(exc).__name__}: {exc}  ({path})", flush=True)
                continue
            median, p95 = statistics.median(timings) * 1000, percentile(timings, 0.95) * 1000
            verdict = "ok" if p95 < TARGET_P95_MS else "SLOW"
            print(f"  {name:<44} median {median:7.1f} ms  p95 {p95:7.1f} ms  {size / 1024:6.1f} KB  [{verdict}]  "
                  f"{path}", flush=True)
    print(f"  ({load_avg()})")


# --- main -----------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DATA / "pages-2000.db",
                    help="engine-made SQLite database (default: bench_pages.py --cases 2000 --no-pg builds it)")
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--villages", type=int, default=5000)
    ap.add_argument("--townships", type=int, default=100)
    ap.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--schema", default="province")
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--reuse", action="store_true", help="measure the existing schema (no load)")
    ap.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--no-sizes", action="store_true", help="skip the row counts and sizes")
    ap.add_argument("--scan-runs", type=int, default=2, help="1: the first scan only (raises every warning)")
    ap.add_argument("--no-pages", action="store_true")
    ap.add_argument("--only", default=None, help="measure only the pages whose names contain one of these words (comma-separated)")
    ap.add_argument("--person", default=None, help="the name the person filters search (default: the cadre's)")
    args = ap.parse_args()

    url = schema_url(args.pg, args.schema)
    try:
        if not args.reuse:
            if not args.source.exists():
                sys.exit(f"no source database {args.source}: build one with "
                         f"`python bench/bench_pages.py --cases 2000 --no-pg` or pass --source")
            drop_schema(args.pg, args.schema)
            admin = create_engine(normalize_url(args.pg), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"CREATE SCHEMA {args.schema}"))
            admin.dispose()
            started = time.perf_counter()
            print(f"copying {args.source.name} (engine-made) into schema {args.schema} …", flush=True)
            db = Database(url)
            copy_database(Database(f"sqlite:///{args.source}"), db)
            figures = replicate(db.engine, args.cases, args.villages, args.townships)
            load_s = time.perf_counter() - started
            print(f"load: {load_s:.0f} s in all (copies {figures['copy_s']:.0f} s, indexes {figures['index_s']:.0f} s, "
                  f"ANALYZE {figures['analyze_s']:.0f} s; {load_avg()})", flush=True)
        else:
            db = Database(url)
            db.upgrade()  # a schema loaded before a later migration gets it (new indexes take a while at 1M)
        if not args.no_sizes:
            report_sizes(db.engine)
        if not args.no_scan:
            full_scan(db, runs=args.scan_runs)
            with db.engine.connect() as conn:
                conn.execute(text("ANALYZE warning; ANALYZE warning_subject"))
                conn.commit()
        if not args.no_pages:
            bench_pages(Xiaowei(db, inline_background=False).db, args.requests, args.person, args.only)
        db.dispose()
    finally:
        if not args.keep:
            drop_schema(args.pg, args.schema)
            print(f"schema {args.schema} dropped")


if __name__ == "__main__":
    main()
