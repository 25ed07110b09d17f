"""Cost of the supervisors' inbox in words and of the Excel downloads (issue #16).

    python bench/bench_inbox.py [--warnings N] [--cases N] [--repeat N]

A fresh SQLite database: cases through the engine (B-FIN-01 payments of 60,000 to payees without a
platform record: each raises a red WR-03 warning, and one person doing every step of the others
raises XW-02), then the warning table filled up to --warnings rows by copying those warnings with
new fingerprints (the facts and cases stay real). Timed, median of --repeat runs:

* a page of the inbox (50 warnings) told in words: ``list_warnings`` + ``explain_many``;
* one warning in words with its facts and submissions: ``get_warning`` + ``explain``;
* the warnings export: every warning in words and written as .xlsx (openpyxl) and as CSV.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("XIAOWEI_SCRYPT_N", "16")

from sqlalchemy import insert, select  # noqa: E402

from engine.core import catalogue, clock, directory  # noqa: E402
from engine.services.facade import Xiaowei  # noqa: E402
from engine.services.scenarios import case_context, plan_step_data  # noqa: E402
from engine.services.supervision import explain, warnings  # noqa: E402
from storage import Database  # noqa: E402
from storage.models import SupervisionWarning  # noqa: E402


def _people(xw: Xiaowei) -> None:
    with xw.db.write() as s:
        directory.add_org(s, "BQ", "基准区", "district", None)
        directory.add_org(s, "BZ", "基准镇", "township", "BQ")
        directory.add_org(s, "V001", "基准一村", "village", "BZ")
        for key, role in catalogue.roles().items():
            org = {"village": "V001", "township": "BZ", "district": "BQ"}[role.level]
            directory.add_user(s, f"b_{key}", "password123", [f"{key}@{org}"], display_name=f"{role.zh}甲")


def _expense(xw: Xiaowei, i: int) -> None:
    cid = xw.start_case("B-FIN-01", "V001", "b_handler")
    d, params, data = case_context(xw, cid)
    values = {"payee": f"宏达建筑有限公司{i}", "amount": 60000, "expense_date": "2026-03-02",
              "expense_category": "project", "days_since_expense": 0}
    payload = plan_step_data(d, "submit", params, data, overrides=values)
    payload.update(values)
    xw.complete(cid, "submit", "b_handler", payload)


def _fill(xw: Xiaowei, target: int) -> int:
    with xw.db.write() as s:
        rows = [dict(r._mapping) for r in s.execute(select(SupervisionWarning.__table__))]
        n = len(rows)
        batch = []
        for k in range(target - n):
            row = dict(rows[k % n])
            row.pop("id")
            row["fingerprint"] = f"bench-{k:08d}"
            batch.append(row)
        for i in range(0, len(batch), 500):
            s.execute(insert(SupervisionWarning), batch[i:i + 500])
    return target


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warnings", type=int, default=5000)
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="xw-bench-inbox-"))
    xw = Xiaowei(Database(f"sqlite:///{tmp / 'inbox.db'}"))
    xw.init()
    with clock.using(clock.FixedClock("2026-03-02T01:00:00+00:00")):
        _people(xw)
        for i in range(args.cases):
            _expense(xw, i)
    total = _fill(xw, args.warnings)
    reader = "b_township_discipline"

    def page() -> None:
        with xw.db.read() as s:
            actor = directory.load_actor(s, reader)
            explain.explain_many(s, warnings.list_warnings(s, actor=actor, limit=50)["warnings"])

    first = xw.list_warnings(limit=1)["warnings"][0]["id"]

    def detail() -> None:
        with xw.db.read() as s:
            explain.explain(s, warnings.get_warning(s, first, directory.load_actor(s, reader)))

    from webui.views import sheets

    def export(fmt: str):
        def run() -> None:
            with xw.db.read() as s:
                ws = explain.explain_many(s, warnings.list_warnings(s, actor=directory.load_actor(s, reader),
                                                                    limit=total)["warnings"])
            rows = [["编号", "规则", "内容", "事项", "村(社区)", "涉及人员", "发现时间"]] + [
                [w["id"], w["rule_zh"], w["words"]["summary"], (w["words"]["case"] or {}).get("title", ""),
                 w["org_name"], "、".join(p["name"] for p in w["words"]["people"]), w["raised_at"]] for w in ws]
            if fmt == "xlsx":
                sheets.xlsx_bytes(rows, "预警")
            else:
                "".join(sheets.text_of(c) for row in rows for c in row)
        return run

    print(f"{total} warnings over {args.cases} cases (SQLite), median of {args.repeat}:")
    print(f"  inbox page of 50 in words:      {_median(page, args.repeat):8.1f} ms")
    print(f"  one warning in words (detail):  {_median(detail, args.repeat):8.1f} ms")
    print(f"  all {total} as .xlsx:            {_median(export('xlsx'), max(args.repeat // 2, 1)):8.1f} ms")
    print(f"  all {total} as CSV text:         {_median(export('csv'), max(args.repeat // 2, 1)):8.1f} ms")


if __name__ == "__main__":
    main()
