"""Cost of the supervision warning rules (engine/services/supervision/).

    python bench/bench_warnings.py [--cases N] [--source FILE] [--events N] [--keep]

1. **Incremental evaluation per event**: a fresh SQLite database, cases started and steps completed
   through the engine (Xiaowei.start_case / complete); the evaluation that runs right after each change
   (``Xiaowei._warn``: the case's rules and the cross-case rules over its village) is timed apart.
2. **Full scan over --cases (default 100,000) cases**: building that many cases through the engine
   is too slow here, so an engine-built database (bench/.data/pages-10000.db from bench_pages.py, or
   with --source FILE any engine-built SQLite file; without either, one of 2,000 cases is built here
   through the engine) is copied and **replicated** k-fold with shifted case ids, tracking codes and
   village codes (case_field, work_item, timer_due and the case audit events copied with the shifted
   ids; the copies' hash chains are not re-hashed, the scan does not read hashes). Then
   ``warnings.scan`` (every rule, set-based) runs on the empty warning table, then again (idempotent),
   and the incremental evaluation of random cases is timed on that big database too.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("XIAOWEI_SCRYPT_N", "16")

from sqlalchemy import delete, func, select, text  # noqa: E402

from engine.core import catalogue, clock, directory  # noqa: E402
from engine.services.supervision import warnings
from engine.services.scenarios import plan_step_data  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from storage import Database  # noqa: E402
from storage.models import (  # noqa: E402
    Base, Case, Organization, SupervisionWarning, WarningSubject,
)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / ".data"
MIX = ["B-FIN-01", "B-PUR-02", "V-DEC-01", "B-PUB-01", "B-SVC-02", "B-PRJ-02", "V-AST-01", "B-PUR-03"]


def _setup_orgs(xw: Xiaowei, villages: int) -> list[str]:
    codes = []
    with xw.db.write() as s:
        directory.add_org(s, "BQ", "基准区", "district", None)
        directory.add_org(s, "BZ", "基准镇", "township", "BQ")
        for i in range(villages):
            code = f"V{i:03d}"
            directory.add_org(s, code, f"基准{i}村", "village", "BZ")
            codes.append(code)
        for key, role in catalogue.roles().items():
            org = {"village": "BZ", "township": "BZ", "district": "BQ"}[role.level]
            directory.add_user(s, f"b_{key}", "password123", [f"{key}@{org}"])
    return codes


def _step(xw: Xiaowei, case_id: int, rng: random.Random) -> bool:
    from engine.core import procedures, spiff

    tasks = xw.tasks(case_id, fire=False)
    if not tasks:
        return False
    with xw.db.read() as s:
        case = s.get(Case, case_id)
        rt = procedures.runtime(s, case.procedure_version_id)
        wf = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
        ready = spiff.ready_user_tasks(wf)
        data = dict(ready[0].data) if ready else {}
        params = dict(wf.data.get(spiff.PARAMS_KEY, {}))
    step = tasks[0]["step_id"]
    d = rt.definition
    overrides = {}
    names = {f.name for f in d.steps[step].fields}
    if "payee" in names:
        overrides["payee"] = rng.choice(["永兴五金店", "张记餐馆", "宏达建筑有限公司", "李四海"])
    if "supplier" in names:
        overrides["supplier"] = rng.choice(["永兴五金店", "城东建材", "宏达建筑有限公司"])
    payload = plan_step_data(d, step, params, data, overrides=overrides)
    xw.complete(case_id, step, f"b_{d.steps[step].role}", payload)
    return True


def incremental(events: int, rng: random.Random) -> tuple[list[float], list[float]]:
    """(engine change seconds without the evaluation, evaluation seconds) per event."""
    tmp = Path(tempfile.mkdtemp(prefix="xw-bench-warn-"))
    db = Database(f"sqlite:///{tmp / 'inc.db'}")
    xw = Xiaowei(db)
    xw.init()
    fixed = clock.FixedClock("2026-03-02T01:00:00+00:00")
    evals: list[float] = []
    original = Xiaowei._warn

    def timed(self, case_id):
        t = time.perf_counter()
        result = original(self, case_id)
        evals.append(time.perf_counter() - t)
        return result

    changes: list[float] = []
    with clock.using(fixed):
        villages = _setup_orgs(xw, 5)
        with xw.db.write() as s:
            warnings.add_kin(s, "V000", "b_director", "李四海", "spouse", actor="cli")
        Xiaowei._warn = timed
        try:
            open_cases: list[int] = []
            while len(evals) < events:
                if len(open_cases) < 20:
                    t = time.perf_counter()
                    before = len(evals)
                    cid = _start(xw, rng, villages)
                    changes.append(time.perf_counter() - t - sum(evals[before:]))
                    open_cases.append(cid)
                    continue
                cid = rng.choice(open_cases)
                t = time.perf_counter()
                before = len(evals)
                try:
                    moved = _step(xw, cid, rng)
                except Exception:  # a step the planner cannot fill: drop the case
                    moved = False
                if moved:
                    changes.append(time.perf_counter() - t - sum(evals[before:]))
                else:
                    open_cases.remove(cid)
                fixed.advance(hours=rng.choice([1, 2, 5, 30]))
        finally:
            Xiaowei._warn = original
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return changes, evals


def _start(xw: Xiaowei, rng: random.Random, villages: list[str]) -> int:
    from engine.core import procedures

    proc = rng.choice(MIX[:6])
    with xw.db.read() as s:
        version = procedures.current_version(s, proc)
        d = procedures.runtime(s, version.id).definition
    first = next(iter(d.steps.values()))
    return xw.start_case(proc, rng.choice(villages), f"b_{first.role}")


def build_source(target: Path, cases: int, rng: random.Random) -> None:
    db = Database(f"sqlite:///{target}")
    xw = Xiaowei(db)
    xw.init()
    fixed = clock.FixedClock("2025-06-02T01:00:00+00:00")
    with clock.using(fixed):
        villages = _setup_orgs(xw, 20)
        ids = []
        for i in range(cases):
            ids.append(_start(xw, rng, villages))
            for _ in range(rng.randint(0, 6)):
                try:
                    if not _step(xw, ids[-1], rng):
                        break
                except Exception:
                    break
            fixed.advance(hours=3)
    db.dispose()


def replicate(path: Path, target_cases: int) -> tuple[int, int]:
    """Copy every village's cases k-fold (shifted ids and codes) until there are ``target_cases``."""
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    # a file built while 0006 still followed 0004 is stamped 0006 without 0005's tables: add them
    Base.metadata.create_all(db.engine, tables=[Base.metadata.tables[t] for t in ("warning", "warning_subject",
                                                                                  "kinship")], checkfirst=True)
    with db.engine.begin() as conn:
        n = conn.scalar(select(func.count()).select_from(Case))
        factor = max(1, math.ceil(target_cases / n))
        org_off = (conn.scalar(select(func.max(Organization.id))) or 0) + 1
        case_off = (conn.scalar(select(func.max(Case.id))) or 0) + 1
        cols = {t: [c.name for c in Base.metadata.tables[t].columns] for t in
                ("organization", "case_instance", "case_field", "work_item", "timer_due", "audit_event")}

        def copy(table: str, exprs: dict[str, str], where: str) -> None:
            names = [c for c in cols[table] if c != "id" or "id" in exprs]
            select_list = ", ".join(exprs.get(c, c) for c in names)
            conn.execute(text(f"INSERT INTO {table} ({', '.join(names)}) SELECT {select_list} FROM {table} WHERE {where}"))

        village_ids = f"(SELECT id FROM organization WHERE kind IN ('village','community') AND id < {org_off})"
        for k in range(1, factor):
            org = f"(CASE WHEN org_id IN {village_ids} THEN org_id + {k * org_off} ELSE org_id END)"
            copy("organization", {"id": f"id + {k * org_off}", "code": f"code || '~{k}'", "name": f"name || '{k}'"},
                 f"kind IN ('village','community') AND id < {org_off}")
            copy("case_instance", {"id": f"id + {k * case_off}", "org_id": org,
                                   "tracking_code": f"tracking_code || 'R{k}'"}, f"id < {case_off}")
            copy("case_field", {"case_id": f"case_id + {k * case_off}"}, f"case_id < {case_off}")
            copy("work_item", {"case_id": f"case_id + {k * case_off}", "org_id": org}, f"case_id < {case_off}")
            copy("timer_due", {"case_id": f"case_id + {k * case_off}"}, f"case_id < {case_off}")
            copy("audit_event", {"case_id": f"case_id + {k * case_off}", "chain": f"'case:' || (case_id + {k * case_off})"},
                 f"case_id IS NOT NULL AND case_id < {case_off}")
        total = conn.scalar(select(func.count()).select_from(Case))
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    db.dispose()
    return n, total


def clear_warnings(db: Database) -> None:
    with db.write() as s:
        s.execute(delete(WarningSubject))
        s.execute(delete(SupervisionWarning))


def timed_scan(db: Database, on_rule=None) -> dict:
    """One full warning scan (every rule over every case) and the storing of its findings, timed:
    {"elapsed", "findings", "raised", "store", "per_rule"}; ``on_rule(rule_id, seconds, findings)``
    after each rule."""
    started = time.perf_counter()
    with db.write() as s:
        per_rule: dict[str, float] = {}
        ctx = warnings.ScanContext(s)
        findings = []
        for r in warnings.RULES.values():
            rt = time.perf_counter()
            found = list(r.check(ctx))
            findings.extend(found)
            per_rule[r.id] = time.perf_counter() - rt
            if on_rule is not None:
                on_rule(r.id, per_rule[r.id], len(found))
        st = time.perf_counter()
        raised = warnings.store(s, findings, ctx.now)
        store_s = time.perf_counter() - st
    return {"elapsed": time.perf_counter() - started, "findings": len(findings), "raised": len(raised),
            "store": store_s, "per_rule": per_rule}


def slowest(scan: dict, n: int) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in sorted(scan["per_rule"].items(), key=lambda kv: -kv[1])[:n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the replicated database in bench/.data/")
    args = ap.parse_args()
    rng = random.Random(7)

    changes, evals = incremental(args.events, rng)
    ms = sorted(e * 1000 for e in evals)
    print(f"incremental evaluation, {len(evals)} engine events (SQLite, small database):")
    print(f"  evaluation per event: median {statistics.median(ms):.1f} ms, p95 {ms[int(len(ms) * .95) - 1]:.1f} ms, "
          f"max {ms[-1]:.1f} ms; the engine change itself: median {statistics.median(changes) * 1000:.1f} ms")

    DATA.mkdir(parents=True, exist_ok=True)
    source = args.source or DATA / "pages-10000.db"
    if not source.exists():
        source = DATA / "warnings-source-2000.db"
        if not source.exists():
            print("no engine-built source database: building 2,000 cases through the engine …", flush=True)
            t = time.perf_counter()
            build_source(source, 2000, rng)
            print(f"  built in {time.perf_counter() - t:.0f} s")
    big = DATA / f"warnings-{args.cases}.db"
    t = time.perf_counter()
    shutil.copyfile(source, big)
    n, total = replicate(big, args.cases)
    print(f"full scan database: {source.name} ({n:,} engine-built cases) replicated to {total:,} cases "
          f"(shifted ids, codes) in {time.perf_counter() - t:.0f} s")
    db = Database(f"sqlite:///{big}")
    clear_warnings(db)
    for run in ("first", "second"):
        scan = timed_scan(db)
        print(f"full scan ({run} run) over {total:,} cases: {scan['elapsed']:.1f} s, {scan['findings']:,} findings, "
              f"{scan['raised']:,} new warnings (store {scan['store']:.1f} s); slowest rules: {slowest(scan, 5)}")
    with db.read() as s:
        ids = list(s.scalars(select(Case.id)))
    sample = random.Random(3).sample(ids, min(200, len(ids)))
    times = []
    for cid in sample:
        t = time.perf_counter()
        with db.write() as s:
            warnings.evaluate_case(s, cid)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"incremental evaluation on the {total:,}-case database, {len(times)} random cases: "
          f"median {statistics.median(times):.1f} ms, p95 {times[int(len(times) * .95) - 1]:.1f} ms")
    db.dispose()
    if not args.keep:
        big.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(big) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
