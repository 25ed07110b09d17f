"""Seals: seal-use anomalies (WR-19)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Iterator

from engine.services.supervision.registry import (
    Finding,
    P,
    ScanContext,
    rule,
)


# --- WR-19 seal use ---------------------------------------------------------------------------
@rule(
    "WR-19",
    "用印异常",
    "Seal-use anomaly",
    severity="yellow",
    procedures=["B-PUB-01", "B-SVC-03"],
    inspects="用印时间(B-PUB-01、B-SVC-03)",
    condition="非工作日或工作时间以外用印;某日用印次数超过近90天日均的N倍且不少于M次",
    params=(
        P("work_hours_start", "工作时间开始(时)", "integer", "8", "时"),
        P("work_hours_end", "工作时间结束(时)", "integer", "18", "时"),
        P("seal_bulk_factor", "单日用印超均值倍数", "integer", "3", "倍"),
        P("seal_bulk_min", "单日用印预警最少次数", "integer", "5", "次"),
    ),
)
def seal_anomaly(ctx: ScanContext) -> Iterator[Finding]:
    from engine.core.workdays import is_working_day

    rows = ctx.fields(["B-PUB-01", "B-SVC-03"], ["seal_time"], by_org=True, require="seal_time")
    by_day: dict[int, dict[date, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in rows.values():
        try:
            when = datetime.fromisoformat(r.text["seal_time"][:19])
        except ValueError:
            continue
        by_day[r.org_id][when.date()].append(r.case_id)
        if ctx.case_ids is not None and r.case_id not in ctx.case_ids:
            continue
        start, end = ctx.param(r.org_id, "work_hours_start"), ctx.param(r.org_id, "work_hours_end")
        if not is_working_day(when.date()) or not start <= when.hour < end:
            yield Finding(
                "WR-19",
                r.org_id,
                f"{r.case_id}|hours",
                f"{when:%Y-%m-%d %H:%M} 用印,不在工作日{start}:00–{end}:00内",
                {"seal_time": r.text["seal_time"], "working_day": is_working_day(when.date())},
                case_id=r.case_id,
            )
    for org_id, days in by_day.items():
        factor, least = ctx.param(org_id, "seal_bulk_factor"), ctx.param(org_id, "seal_bulk_min")
        for day, cases in days.items():
            if len(cases) < least:
                continue
            recent = [len(v) for d, v in days.items() if d != day and 0 < (day - d).days <= 90]
            average = sum(recent) / len(recent) if recent else 1
            if len(cases) > average * factor:
                yield Finding(
                    "WR-19",
                    org_id,
                    f"{org_id}|{day.isoformat()}",
                    f"{day.isoformat()} 用印{len(cases)}次,超过近90天日均{average:.1f}次的{factor}倍",
                    {"day": day.isoformat(), "count": len(cases), "average": round(average, 2), "cases": sorted(cases)},
                    case_id=max(cases),
                )
