"""Run-time failures: a case stopped because a condition or timer could not be computed (XW-07,
engine/core/incidents.py)."""

from __future__ import annotations

from typing import Iterator

from engine.services.supervision.registry import Finding, ScanContext, rule


# --- XW-07 a case stopped by a run-time failure of a condition or timer --------------------------
@rule("XW-07", "流程运行故障", "A condition or timer failed at run time", severity="red",
      inspects="事项留痕中的运行故障记录(条件或定时在运行时无法计算,办理未保存)",
      condition="每个事项的每种故障预警一次;管理员修正参数后在事项页面“重试”")
def run_time_incident(ctx: ScanContext) -> Iterator[Finding]:
    for case_id, seq, _t, _at, actor, _role, data, org_id, _proc, _v in ctx.events(["incident"]):
        name = data.get("node_name") or data.get("node") or "流程"
        what = data.get("what") or "流程"
        yield Finding("XW-07", org_id, f"{case_id}|{data.get('fingerprint')}",
                      f"“{name}”的{what}无法计算({data.get('reason', '')}),事项无法继续,请管理员修正参数后重试",
                      {"seq": seq, "node": data.get("node"), "node_name": name, "kind": data.get("kind"),
                       "reason": data.get("reason"), "expression": data.get("expression"),
                       "action": data.get("action")}, case_id=case_id, subjects=(actor,) if actor != "system" else ())
