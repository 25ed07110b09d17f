"""Page weight and latency of the public pages: the village board (/public/<org>) and a case's
progress page (/public/case/<code>), on the 10,000-case database of bench_pages.py.

    python bench/bench_public.py [--cases N] [--requests N] [--pg URL] [--no-pg]

The data is bench_pages.py's (built through the engine; imported, not duplicated): its SQLite file
bench/.data/pages-N.db is copied (SQLite backup API) to bench/.data/public-N.db so this script's
migration never touches a file another benchmark uses; it is built first if missing. PostgreSQL gets
the same rows copied into a schema. Pages are fetched anonymously over real HTTP from waitress,
warmed up, then ``--requests`` times each. Printed: HTML bytes, CSS bytes (public.css, fetched once
and cached by the browser), their sum against the 50 KB target, median and p95 against 30 ms.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_pages as bp  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from engine.core import cases as engine_cases  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from storage import Database  # noqa: E402
from storage.models import AuditEvent, Case, Organization, TimerDue  # noqa: E402

TARGET_BYTES = 50 * 1024
TARGET_P95_MS = 30.0


def ensure_copy(n_cases: int) -> Path:
    """bench/.data/public-N.db: a copy of bench_pages.py's database (or, without one, built the same way)."""
    target = bp.DATA / f"public-{n_cases}.db"
    if target.exists():
        return target
    source = bp.DATA / f"pages-{n_cases}.db"
    bp.DATA.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(target) + ".tmp")
    if source.exists():
        src, dst = sqlite3.connect(source), sqlite3.connect(tmp)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
    else:
        print(f"building {target.name} through bench_pages.build …", flush=True)
        app = Xiaowei(Database(f"sqlite:///{tmp}"))
        bp.build(app, n_cases)
        app.db.dispose()
    tmp.rename(target)
    return target


def targets(app: Xiaowei) -> tuple[str, str, int, bool]:
    """(the village with most cases, a case code of it with ~20 events — on notice if any, its events,
    whether it is on notice)."""
    with app.db.read() as s:
        org_id, _ = s.execute(select(Case.org_id, func.count()).group_by(Case.org_id)
                              .order_by(func.count().desc()).limit(1)).one()
        org = s.get(Organization, org_id)
        noticed = set(s.scalars(select(TimerDue.case_id).join(Case, Case.id == TimerDue.case_id)
                                .where(Case.org_id == org_id)))
        counts = s.execute(select(AuditEvent.case_id, func.count()).join(Case, Case.id == AuditEvent.case_id)
                           .where(Case.org_id == org_id).group_by(AuditEvent.case_id)).all()
        pool = [r for r in counts if r[0] in noticed] or counts
        case_id, n = min(pool, key=lambda r: (abs(r[1] - 20), r[0]))
        code = s.get(Case, case_id).tracking_code
    return org.code, engine_cases.format_tracking_code(code), n, case_id in noticed


def run(app: Xiaowei, label: str, n: int) -> None:
    from webui import create_app, warm_up

    data = bp.sizes(app)
    org, code, events, noticed = targets(app)
    print(f"\n{label}: " + ", ".join(f"{v} {k}" for k, v in data.items()))
    web = create_app({"SECRET_KEY": "bench", "SESSION_COOKIE_SECURE": False}, db=app.db)
    warm_up(web)  # as `xiaowei serve` does
    opener = urllib.request.build_opener()
    with bp.serve(web) as base:
        with opener.open(base + "/static/public.css") as r:
            css = len(r.read())
        pages = [(f"/public/{org} (board)", f"/public/{org}"),
                 (f"/public/case/<code> ({events} events{', on notice' if noticed else ''})", f"/public/case/{code}"),
                 ("/public/case/<code>/data.json", f"/public/case/{code}/data.json"),
                 (f"/public/{org}/money", f"/public/{org}/money")]
        for name, path in pages:
            timings, size = bp.measure(opener, base + path, n)
            median, p95 = statistics.median(timings) * 1000, bp.percentile(timings, 0.95) * 1000
            weight = size + (css if not path.endswith(".json") else 0)
            verdict = "ok" if p95 < TARGET_P95_MS and weight < TARGET_BYTES else "OVER"
            print(f"  {name:<52} html {size / 1024:6.1f} KB + css {css / 1024:4.1f} KB = {weight / 1024:6.1f} KB  "
                  f"median {median:6.2f} ms  p95 {p95:6.2f} ms  [{verdict}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    path = ensure_copy(args.cases)
    app = Xiaowei(Database(f"sqlite:///{path}"))
    app.db.upgrade()
    run(app, f"SQLite ({path.relative_to(bp.ROOT)}, {args.cases} cases)", args.requests)
    app.db.dispose()
    if args.no_pg:
        return
    bp.SCHEMA = "benchpublic"
    try:
        url = bp.fresh_pg(args.pg)
    except Exception as exc:  # PostgreSQL is optional for this script
        print(f"PostgreSQL not measured: {type(exc).__name__}: {exc}")
        return
    try:
        app = Xiaowei(Database(url))
        bp.copy_database(Database(f"sqlite:///{path}"), app.db)
        run(app, f"PostgreSQL (schema {bp.SCHEMA}, {args.cases} cases)", args.requests)
        app.db.dispose()
    finally:
        bp.drop_pg(args.pg)


if __name__ == "__main__":
    main()
