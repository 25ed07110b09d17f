"""Procurement: split purchases (WR-01), split projects (WR-02), above the threshold without the platform (WR-03)."""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Iterator

from engine.services.supervision.registry import (
    THRESHOLD_GOODS,
    THRESHOLD_WORKS,
    Finding,
    P,
    Row,
    ScanContext,
    money_text,
    normalized,
    rule,
    windows,
)


# --- WR-01 split purchases -----------------------------------------------------------------
@rule(
    "WR-01",
    "拆分采购预警",
    "Split-purchase detection",
    severity="red",
    procedures=["B-PUR-02"],
    inspects="限额以下小额采购(B-PUR-02)的供应商、品目、成交金额、确定日期",
    condition="同一供应商或同一品目在N天内≥M笔,每笔低于进站起点,合计达到进站起点(两种情形涉及同一批采购的,合为一条预警)",
    params=(
        P("split_purchase_days", "拆分采购统计天数", "days", "30", "天"),
        P("split_purchase_count", "拆分采购最少笔数", "integer", "3", "笔"),
        THRESHOLD_GOODS,
    ),
)
def split_purchases(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(
        ["B-PUR-02"], ["supplier", "item_name", "contract_amount", "decision_date"], by_org=True, require="supplier"
    )
    groups: dict[tuple[int, str, str], list] = defaultdict(list)
    for r in rows.values():
        when, amount = r.date("decision_date"), r.amount("contract_amount")
        if when is None or amount is None:
            continue
        groups[(r.org_id, "supplier", normalized(r.text.get("supplier")))].append((when, amount, r.case_id))
        if r.text.get("item_name"):
            groups[(r.org_id, "item", normalized(r.text.get("item_name")))].append((when, amount, r.case_id))
    # The supplier view and the item view find windows of purchases; windows that share a purchase are
    # one set of facts and give one warning (the same three purchases are not two warnings).
    found: dict[int, list[tuple[str, str, str, list]]] = defaultdict(list)
    for (org_id, kind, value), items in groups.items():
        days, count = ctx.param(org_id, "split_purchase_days"), ctx.param(org_id, "split_purchase_count")
        threshold = ctx.param(org_id, "platform_entry_threshold")
        for window in windows(items, days, count, threshold):
            label = rows[window[0][2]].text.get("supplier" if kind == "supplier" else "item_name")
            found[org_id].append((kind, value, label, window))
    for org_id, views in found.items():
        days, count = ctx.param(org_id, "split_purchase_days"), ctx.param(org_id, "split_purchase_count")
        threshold = ctx.param(org_id, "platform_entry_threshold")
        for group in _overlapping(views):
            purchases = sorted({i for _, _, _, window in group for i in window}, key=lambda i: (i[0], i[2]))
            cases = [i[2] for i in purchases]
            total = sum(i[1] for i in purchases)
            seen: list[tuple[str, str]] = []
            group = sorted(group, key=lambda v: (v[0] != "supplier", v[1]))
            first_kind, first_value = group[0][0], group[0][1]  # (the key a supplier or item view alone had)
            for kind, _value, label, _window in group:
                if (kind, label) not in seen:
                    seen.append((kind, label))
            said = "、".join(f"{'同一供应商' if kind == 'supplier' else '同一品目'}“{label}”" for kind, label in seen)
            yield Finding(
                "WR-01",
                org_id,
                f"{org_id}|{first_kind}|{first_value}|{cases[0]}",
                f"{said}{days}天内{len(cases)}笔采购,每笔低于进站起点{money_text(threshold)}元,合计{money_text(total)}元",
                {
                    "by": seen[0][0],
                    "value": seen[0][1],
                    "views": [{"by": kind, "value": label} for kind, label in seen],
                    "cases": cases,
                    "amounts": [str(i[1]) for i in purchases],
                    "dates": [i[0].isoformat() for i in purchases],
                    "total": str(total),
                    "threshold": str(threshold),
                    "days": days,
                    "min_count": count,
                },
                case_id=max(cases),
            )


def _overlapping(views: list[tuple]) -> list[list[tuple]]:
    """The windows grouped so that windows sharing a purchase are in one group (connected components)."""
    groups: list[tuple[set[int], list[tuple]]] = []
    for view in views:
        ids = {i[2] for i in view[3]}
        joined = [g for g in groups if g[0] & ids]
        merged = (set(ids), [view])
        for g in joined:
            merged[0].update(g[0])
            merged[1].extend(g[1])
            groups.remove(g)
        groups.append(merged)
    return [members for _, members in groups]


# --- WR-02 split projects ------------------------------------------------------------------
@rule(
    "WR-02",
    "拆分工程预警",
    "Split-project detection",
    severity="red",
    procedures=["B-PRJ-02"],
    inspects="限额以下小额工程(B-PRJ-02)的项目名称、承包方、合同金额、开标日期",
    condition="N天内同一承包方或名称相似度≥S的项目≥M个,每个低于进站起点,合计达到进站起点",
    params=(
        P("split_project_days", "拆分工程统计天数", "days", "90", "天"),
        P("split_project_count", "拆分工程最少个数", "integer", "2", "个"),
        P("split_project_similarity", "项目名称相似度", "ratio", "4/5"),
        THRESHOLD_WORKS,
    ),
)
def split_projects(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(
        ["B-PRJ-02"], ["project_name", "contractor", "contract_amount", "open_date"], by_org=True, require="contractor"
    )
    by_org: dict[int, list[Row]] = defaultdict(list)
    for r in rows.values():
        if r.date("open_date") and r.amount("contract_amount") is not None:
            by_org[r.org_id].append(r)
    for org_id, items in by_org.items():
        days, count = ctx.param(org_id, "split_project_days"), ctx.param(org_id, "split_project_count")
        similarity, threshold = (
            ctx.param(org_id, "split_project_similarity"),
            ctx.param(org_id, "project_entry_threshold"),
        )
        items = sorted(
            (r for r in items if r.amount("contract_amount") < threshold),
            key=lambda r: (r.date("open_date"), r.case_id),
        )
        used: set[int] = set()
        for i, first in enumerate(items):
            if first.case_id in used:
                continue
            group = [first]
            for other in items[i + 1 :]:
                if (other.date("open_date") - first.date("open_date")).days > days:
                    break
                if other.case_id in used:
                    continue
                same = normalized(other.text.get("contractor")) == normalized(first.text.get("contractor"))
                ratio = difflib.SequenceMatcher(
                    None, normalized(first.text.get("project_name")), normalized(other.text.get("project_name"))
                ).ratio()
                if same or ratio >= similarity:
                    group.append(other)
            total = sum(r.amount("contract_amount") for r in group)
            if len(group) >= count and total >= threshold:
                used.update(r.case_id for r in group)
                cases = [r.case_id for r in group]
                yield Finding(
                    "WR-02",
                    org_id,
                    f"{org_id}|{cases[0]}",
                    f"{days}天内{len(group)}个相似或同一承包方的工程,每个低于进站起点{money_text(threshold)}元,"
                    f"合计{money_text(total)}元",
                    {
                        "cases": cases,
                        "projects": [r.text.get("project_name") for r in group],
                        "contractors": [r.text.get("contractor") for r in group],
                        "amounts": [str(r.amount("contract_amount")) for r in group],
                        "dates": [r.date("open_date").isoformat() for r in group],
                        "total": str(total),
                        "threshold": str(threshold),
                    },
                    case_id=cases[-1],
                )


# --- WR-03 above the threshold without the platform ----------------------------------------
PLATFORM_PROCEDURES = {"B-PUR-01": "supplier", "B-PRJ-01": "winner", "B-PUR-04": "agency"}


@rule(
    "WR-03",
    "超限额未进站",
    "Above-threshold without platform transaction",
    severity="red",
    procedures=["B-FIN-01", *PLATFORM_PROCEDURES],
    inspects="财务支出报销(B-FIN-01)的金额、类别、收款方;进站采购和工程(B-PUR-01、B-PRJ-01、B-PUR-04)的中标方",
    condition="采购、工程或服务类单笔支出达到进站起点,而收款方在本村没有进站交易记录",
    params=(THRESHOLD_GOODS,),
)
def above_threshold(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["amount", "payee", "expense_category"], require="payee")
    if ctx.case_ids is not None and not rows:  # a platform case changed: look at the village's payments
        rows = ctx.fields(["B-FIN-01"], ["amount", "payee", "expense_category"], by_org=True, require="payee")
    above = []
    for r in rows.values():
        amount, threshold = r.amount("amount"), ctx.param(r.org_id, "platform_entry_threshold")
        if (
            amount is not None
            and amount >= threshold
            and r.text.get("expense_category") in ("project", "service", "office", "other")
        ):
            above.append((r, amount, threshold))
    if not above:
        return  # no payment reaches the threshold: the platform's records need not be read
    platform = ctx.fields(list(PLATFORM_PROCEDURES), list(set(PLATFORM_PROCEDURES.values())), by_org=True)
    entered = {
        (r.org_id, normalized(r.text.get(name)))
        for r in platform.values()
        for name in PLATFORM_PROCEDURES.values()
        if r.text.get(name)
    }
    for r, amount, threshold in above:
        if (r.org_id, normalized(r.text.get("payee"))) in entered:
            continue
        yield Finding(
            "WR-03",
            r.org_id,
            f"{r.case_id}",
            f"支出{money_text(amount)}元(达到进站起点{money_text(threshold)}元)付给“{r.text.get('payee')}”,无进站交易记录",
            {
                "amount": str(amount),
                "threshold": str(threshold),
                "payee": r.text.get("payee"),
                "category": r.text.get("expense_category"),
            },
            case_id=r.case_id,
        )
