"""Payments: high-frequency payee (WR-11), cash limit (WR-12), large transfer to an individual (WR-23), year-end spike (WR-24)."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from typing import Iterator

from sqlalchemy import select

from storage.models import (
    RoleAssignment,
    User,
)

from engine.services.supervision.registry import (
    Finding,
    P,
    ScanContext,
    money_text,
    normalized,
    rule,
)

# --- WR-11 / WR-12 / WR-23 / WR-24 payments --------------------------------------------------
EXEMPT_PAYEE = {"个人", "-", "—", "无"}
EXEMPT_CATEGORIES = {"subsidy", "welfare"}


@rule(
    "WR-11",
    "同一收款人高频收款",
    "High-frequency payee",
    severity="yellow",
    procedures=["B-FIN-01"],
    inspects="财务支出报销(B-FIN-01)的收款方、金额、支出日期",
    condition="同一收款方N天内≥M笔,或≥2笔且合计≥配置金额(误工补贴、福利类除外)",
    params=(
        P("payee_days", "高频收款统计天数", "days", "30", "天"),
        P("payee_count", "高频收款笔数", "integer", "5", "笔"),
        P("payee_total", "高频收款累计金额", "money", "50000", "元"),
    ),
)
def frequent_payee(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(
        ["B-FIN-01"], ["payee", "amount", "expense_date", "expense_category"], by_org=True, require="payee"
    )
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for r in rows.values():
        when, amount = r.date("expense_date"), r.amount("amount")
        payee = r.text.get("payee", "").strip()
        if (
            when is None
            or amount is None
            or payee in EXEMPT_PAYEE
            or r.text.get("expense_category") in EXEMPT_CATEGORIES
        ):
            continue
        groups[(r.org_id, normalized(payee))].append((when, amount, r.case_id))
    for (org_id, payee), items in groups.items():
        days, count, total_limit = (
            ctx.param(org_id, "payee_days"),
            ctx.param(org_id, "payee_count"),
            ctx.param(org_id, "payee_total"),
        )
        items.sort(key=lambda i: (i[0], i[2]))
        start = 0
        while start < len(items):
            end = start
            while end + 1 < len(items) and (items[end + 1][0] - items[start][0]).days <= days:
                end += 1
            window = items[start : end + 1]
            total = sum(i[1] for i in window)
            if len(window) >= count or (len(window) >= 2 and total >= total_limit):
                cases = [i[2] for i in window]
                yield Finding(
                    "WR-11",
                    org_id,
                    f"{org_id}|{payee}|{cases[0]}",
                    f"收款方“{rows[cases[0]].text.get('payee')}”{days}天内收款{len(window)}笔,合计{money_text(total)}元",
                    {
                        "payee": rows[cases[0]].text.get("payee"),
                        "cases": cases,
                        "total": str(total),
                        "amounts": [str(i[1]) for i in window],
                        "dates": [i[0].isoformat() for i in window],
                        "days": days,
                        "count_limit": count,
                        "total_limit": str(total_limit),
                    },
                    case_id=cases[-1],
                )
                start = end + 1
            else:
                start += 1


@rule(
    "WR-12",
    "现金收支超限",
    "Cash limit breach",
    severity="yellow",
    procedures=["B-FIN-01", "B-FIN-02"],
    inspects="报销支付方式与金额(B-FIN-01);收入存行天数(B-FIN-02)",
    condition="单笔现金支付超过限额,或现金收入超过规定天数未存行",
    params=(
        P("cash_single_limit", "单笔现金支付限额", "money", "1000", "元"),
        P("cash_deposit_days", "现金收入存行时限", "days", "3", "天"),
    ),
)
def cash_limit(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["B-FIN-01"], ["payment_method", "amount"]).values():
        limit, amount = ctx.param(r.org_id, "cash_single_limit"), r.amount("amount")
        if r.text.get("payment_method") == "cash" and amount is not None and amount > limit:
            yield Finding(
                "WR-12",
                r.org_id,
                f"{r.case_id}|cash",
                f"现金支付{money_text(amount)}元,超过单笔限额{money_text(limit)}元",
                {"amount": str(amount), "limit": str(limit)},
                case_id=r.case_id,
            )
    for r in ctx.fields(["B-FIN-02"], ["days_to_deposit", "receivable", "amount"]).values():
        days, limit = r.amount("days_to_deposit"), ctx.param(r.org_id, "cash_deposit_days")
        if days is not None and days > limit:
            yield Finding(
                "WR-12",
                r.org_id,
                f"{r.case_id}|deposit",
                f"现金收入{int(days)}天后才存行,超过{limit}天",
                {"days_to_deposit": int(days), "limit": limit},
                case_id=r.case_id,
            )


_ORG_NAME = re.compile(r"(公司|有限|合作社|厂|店|中心|站|院|局|所|队|部|行|会|社|室|馆|场|处|委|办|集团|工作室)")


@rule(
    "WR-23",
    "大额资金流向个人",
    "Large transfer to individual account",
    severity="red",
    procedures=["B-FIN-01"],
    inspects="财务支出报销的收款方、金额、类别;干部名单",
    condition="向个人单笔≥配置金额(补贴、福利类除外);或收款人为本村干部本人(按姓名,仅限尚未关联人员库的账号;已关联的按人员比对,见WR-08)",
    params=(P("large_transfer_amount", "向个人大额支付起点", "money", "50000", "元"),),
)
def large_to_individual(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["payee", "amount", "expense_category"], require="payee")
    if not rows:
        return
    # org → display name → username, of the accounts not linked to a person: a cadre who is a person of
    # the register is compared by person (WR-08: the payee is the cadre themself), not by name
    cadres: dict[int, dict[str, str]] = defaultdict(dict)
    for oid, username, display in ctx.session.execute(
        select(RoleAssignment.org_id, User.username, User.display_name)
        .join(User, User.id == RoleAssignment.user_id)
        .where(RoleAssignment.org_id.in_({o for r in rows.values() for o in ctx.chain(r.org_id)}),
               User.person_id.is_(None))
    ):
        if display:
            cadres[oid][normalized(display)] = username
    for r in rows.values():
        payee, amount = r.text.get("payee", "").strip(), r.amount("amount")
        limit = ctx.param(r.org_id, "large_transfer_amount")
        cadre = next((cadres[o][normalized(payee)] for o in ctx.chain(r.org_id) if normalized(payee) in cadres.get(o, {})), None)
        if cadre:
            yield Finding(
                "WR-23",
                r.org_id,
                f"{r.case_id}|cadre",
                f"收款人“{payee}”是本村干部本人({cadre})",
                {"payee": payee, "cadre": cadre, "amount": str(amount)},
                case_id=r.case_id,
                subjects=(cadre,),
            )
        elif (
            amount is not None
            and amount >= limit
            and r.text.get("expense_category") not in EXEMPT_CATEGORIES
            and (payee == "个人" or not _ORG_NAME.search(payee))
        ):
            yield Finding(
                "WR-23",
                r.org_id,
                f"{r.case_id}|individual",
                f"向个人“{payee}”单笔支付{money_text(amount)}元,达到{money_text(limit)}元",
                {"payee": payee, "amount": str(amount), "limit": str(limit)},
                case_id=r.case_id,
            )


@rule(
    "WR-24",
    "年末突击支出",
    "Year-end spending spike",
    severity="blue",
    procedures=["B-FIN-01"],
    inspects="财务支出报销按月合计(支出发生日期)",
    condition="12月支出超过1–11月月均支出的N倍(1–11月至少3个月有支出)",
    params=(P("year_end_factor", "年末突击支出倍数", "integer", "3", "倍"),),
)
def year_end_spike(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["amount", "expense_date"], by_org=True)
    months: dict[tuple[int, int], dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows.values():
        when, amount = r.date("expense_date"), r.amount("amount")
        if when and amount is not None:
            months[(r.org_id, when.year)][when.month] += amount
    for (org_id, year), by_month in months.items():
        december = by_month.get(12, Decimal(0))
        earlier = [by_month[m] for m in range(1, 12) if by_month.get(m)]
        if december <= 0 or len(earlier) < 3:
            continue
        average = sum(earlier, Decimal(0)) / 11
        factor = ctx.param(org_id, "year_end_factor")
        if december > average * factor:
            yield Finding(
                "WR-24",
                org_id,
                f"{org_id}|{year}",
                f"{year}年12月支出{money_text(december)}元,是1–11月月均{money_text(average)}元的{december / average:.1f}倍",
                {
                    "year": year,
                    "december": str(december),
                    "monthly_average": str(average.quantize(Decimal("0.01"))),
                    "factor": factor,
                    "months": {m: str(v) for m, v in sorted(by_month.items())},
                },
            )
