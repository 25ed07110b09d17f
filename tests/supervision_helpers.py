"""A small supervision history built through the engine, shared by the dashboard, cadre-file and
browser tests: a red warning (WR-03), steps completed on time and late, an overdue open step."""

from __future__ import annotations

from conftest import case_context, live_until, ready_steps
from engine.services.scenarios import plan_step_data, sample_evidence


def do(xw, case_id, step_id, users, overrides=None, as_user=None):
    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, step_id, params, data, overrides=overrides)
    payload.update(overrides or {})
    live_until(payload)
    user = as_user or users[d.steps[step_id].role]
    files = sample_evidence(xw, d.steps[step_id], user) if d.steps[step_id].evidence_required else None
    return xw.complete(case_id, step_id, user, payload, attachments=files)


def red_expense(xw, people, org="DONGAO") -> int:
    """A B-FIN-01 project payment of 60,000 to a payee without a platform record: WR-03 (red)."""
    cid = xw.start_case("B-FIN-01", org, people["handler"] if org == "DONGAO" else people["nanxi_all"])
    do(xw, cid, "submit", people, overrides={"payee": "宏达建筑有限公司", "amount": 60000, "expense_date": "2026-03-02",
                                             "expense_category": "project", "days_since_expense": 0},
       as_user=None if org == "DONGAO" else people["nanxi_all"])
    return cid


def build_history(xw, people, frozen) -> dict:
    """V-DEC-01 cases at 东岙村: one whose first step is done at once (on time), one done after its
    time limit (late), one left open past it; and a red WR-03 warning."""
    quick = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    do(xw, quick, "collect", people)
    slow = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    stuck = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    frozen.advance(days=20)
    do(xw, slow, "collect", people)  # after the time limit: late
    frozen.advance(days=1)
    xw.tick()  # the open step of ``stuck`` is overdue: WR-20
    red = red_expense(xw, people)
    return {"quick": quick, "slow": slow, "stuck": stuck, "red_case": red, "ready_quick": ready_steps(xw, quick)}
