"""Assets: leases below the previous rent (WR-15), rent arrears (WR-16), settlement overrun (WR-17)."""

from __future__ import annotations

from typing import Iterator

from engine.services.supervision.registry import (
    Finding,
    P,
    ScanContext,
    money_text,
    rule,
)


# --- WR-15 / WR-16 / WR-17 leases and settlements ------------------------------------------
@rule(
    "WR-15",
    "资产低价出租",
    "Below-previous-rent lease",
    severity="yellow",
    procedures=["V-AST-01"],
    inspects="集体资产出租(V-AST-01)的上期年租金与成交年租金",
    condition="成交年租金较上期下降达到配置比例(成交价低于底价由表单校验拦截)",
    params=(P("lease_drop_ratio", "租金较上期下降预警比例", "ratio", "1/5"),),
)
def lease_drop(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["V-AST-01"], ["previous_rent", "deal_price"]).values():
        before, deal = r.amount("previous_rent"), r.amount("deal_price")
        if not before or deal is None or r.step.get("deal_price") != "bidding":
            continue
        ratio = ctx.param(r.org_id, "lease_drop_ratio")
        if deal <= before * (1 - ratio):
            yield Finding(
                "WR-15",
                r.org_id,
                f"{r.case_id}",
                f"成交年租金{money_text(deal)}元较上期{money_text(before)}元下降{(before - deal) / before:.0%}",
                {"previous_rent": str(before), "deal_price": str(deal), "ratio": str(ratio)},
                case_id=r.case_id,
            )


@rule(
    "WR-16",
    "租金逾期",
    "Rent arrears",
    severity="yellow",
    procedures=["V-AST-01"],
    inspects="集体资产出租(V-AST-01)租金收取的逾期天数、实收租金、合同年租金",
    condition="租金逾期天数达到配置天数(收入低于预期)",
    params=(P("rent_overdue_days", "租金逾期预警天数", "days", "30", "天"),),
)
def rent_arrears(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["V-AST-01"], ["overdue_days", "rent_received", "annual_rent", "receipt_date"]).values():
        days = r.amount("overdue_days")
        limit = ctx.param(r.org_id, "rent_overdue_days")
        if days is None or days < limit:
            continue
        yield Finding(
            "WR-16",
            r.org_id,
            f"{r.case_id}|{r.text.get('receipt_date')}",
            f"租金逾期{int(days)}天(预警线{limit}天),实收{money_text(r.amount('rent_received'))}元,"
            f"合同年租金{money_text(r.amount('annual_rent'))}元",
            {
                "overdue_days": int(days),
                "limit": limit,
                "rent_received": str(r.amount("rent_received")),
                "annual_rent": str(r.amount("annual_rent")),
            },
            case_id=r.case_id,
        )


@rule(
    "WR-17",
    "工程结算超比例",
    "Settlement overrun",
    severity="red",
    procedures=["B-PRJ-05"],
    inspects="工程竣工结算(B-PRJ-05)的合同价与审定结算价",
    condition="审定结算价超过合同价达到配置比例",
    params=(P("settlement_overrun_ratio", "结算超合同价预警比例", "ratio", "1/10"),),
)
def settlement_overrun(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["B-PRJ-05"], ["contract_amount", "audited_price"]).values():
        contract, audited = r.amount("contract_amount"), r.amount("audited_price")
        if not contract or audited is None:
            continue
        ratio = ctx.param(r.org_id, "settlement_overrun_ratio")
        if audited >= contract * (1 + ratio):
            yield Finding(
                "WR-17",
                r.org_id,
                f"{r.case_id}",
                f"审定结算价{money_text(audited)}元超过合同价{money_text(contract)}元{(audited - contract) / contract:.0%}",
                {"contract_amount": str(contract), "audited_price": str(audited), "ratio": str(ratio)},
                case_id=r.case_id,
            )
