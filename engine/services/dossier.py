"""The case file (卷宗): every submission of a case as it was made, the decisions taken, the
objections received and the supervisors' opinions — and, for a step that judges (approval,
supervision, objection check), exactly what it must judge, next to the rule it must satisfy.

Submissions come from the ``submission`` table (one row per completion, append-only); decisions,
objections and warnings handled come from the case's audit chain. Everything is given as values
and as plain Chinese text, for the step page, the command line and the API alike.
"""

from __future__ import annotations

import ast
import json
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any, Mapping

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, voting
from engine.core.definitions import ProcedureDefinition
from engine.core.expressions import ExpressionError, compile_expression, qualified
from engine.core.forms import Field
from engine.render.narrative import (Context, case_params, china, describe, english, label_of, money_text,
                                     param_text, step_name, t, value_text)
from storage.models import Submission

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif")
_SUBMISSIONS = (select(Submission).where(Submission.case_id == bindparam("case_id"))
                .order_by(Submission.seq))


def submissions(session: Session, case_id: int) -> list[Submission]:
    """The submissions of a case in the order made."""
    return list(session.scalars(_SUBMISSIONS, {"case_id": case_id}))


def typed_values(step_fields: Mapping[str, Field], values: Mapping[str, Any]) -> dict[str, Any]:
    """Stored values (canonical JSON) in the types people and JSON readers expect: counts as
    numbers, money as exact text with two decimals, dates as ISO text, yes/no as booleans."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        f = step_fields.get(name)
        if f is not None and f.type == "integer" and isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        out[name] = value
    return out


def build(session: Session, case_id: int, d: ProcedureDefinition, events: list[Mapping], *,
          names: Mapping[str, str] | None = None, show_identities: bool = False) -> dict:
    """The case file as data: submissions, decisions, objections and opinions, each with its text."""
    ctx = Context(definition=d, names=names or {}, show_identities=show_identities)
    ctx.params = case_params(events, d)
    subs = []
    for row in submissions(session, case_id):
        step = d.steps.get(row.step_id)
        fields = {f.name: f for f in step.fields} if step is not None else {}
        values = typed_values(fields, json.loads(row.values))
        items = []
        order = [f.name for f in step.fields] if step is not None else []
        for name in [*[n for n in order if n in values], *[n for n in values if n not in order]]:
            f = fields.get(name) or d.fields_by_name().get(name)
            items.append({"field": name, "label": label_of(f) if f else name, "text": value_text(f, values[name]),
                          "public": bool(f.public) if f else False})
        files = [{"name": a.get("name", ""), "sha256": a.get("sha256", ""),
                  "media_type": a.get("type") or a.get("media_type") or "",
                  "size": a.get("size"), "image": (a.get("type") or "") in IMAGE_TYPES}
                 for a in json.loads(row.attachments or "[]")]
        subs.append({
            "step": row.step_id, "step_name": step_name(step, row.step_name) if english() else row.step_name,
            "kind": row.kind, "round": row.round,
            "by": row.actor, "by_name": ctx.who(row.actor), "role": row.role,
            "role_name": catalogue.role_zh(row.role, ""), "on_behalf_of": row.on_behalf_of,
            "proxy_reason": row.proxy_reason, "at": audit.iso(row.at), "values": values, "items": items,
            "attachments": files, "seq": row.seq, "event_seq": row.event_seq,
        })
    decisions, objections, opinions = [], [], []
    for ev in events:
        kind = ev.get("type")
        data = ev.get("data") or {}
        if kind == "gateway_decided":
            entry = describe(ev, ctx)
            decisions.append({"gateway": data.get("gateway"), "name": data.get("name") or "",
                              "outcome": data.get("label") or "", "target": data.get("target"),
                              "target_name": data.get("target_name") or "", "at": ev.get("at"),
                              "text": entry.title, "reason": "".join(entry.lines[:1]).removeprefix("依据:"),
                              "event_seq": ev.get("seq")})
        elif kind == "objection_filed":
            item = {"at": ev.get("at"), "step": data.get("step"), "step_name": data.get("step_name") or "",
                    "text": data.get("text") or "", "event_seq": ev.get("seq")}
            if show_identities:
                item.update(name=data.get("name") or "", phone=data.get("phone") or "")
            objections.append(item)
        elif str(kind).startswith("warning_") and data.get("opinion"):
            opinions.append({"at": ev.get("at"), "by": ev.get("actor"), "by_name": ctx.who(str(ev.get("actor") or "")),
                             "text": describe(ev, ctx).title, "opinion": data.get("opinion")})
    for s in subs:
        if s["kind"] == "supervision":
            opinion = next((i["text"] for i in s["items"] if i["field"] == "supervision_opinion"), "")
            signed = s["values"].get("signed_off")
            verdict = (t("签字确认", "signed off") if signed else t("未签字,退回整改", "not signed, returned")
                       if signed is False else t("已办理", "done"))
            opinions.append({"at": s["at"], "by": s["by"], "by_name": s["by_name"],
                             "text": f"{s['step_name']}{t(':', ': ')}{verdict}", "opinion": opinion})
    opinions.sort(key=lambda o: o["at"] or "")
    return {"case_id": case_id, "submissions": subs, "objections": objections, "decisions": decisions,
            "opinions": opinions}


def contract(dossier: Mapping) -> dict:
    """The dossier in the shape of the ``xiaowei case dossier --json`` contract (plus text fields)."""
    subs = []
    for s in dossier["submissions"]:
        subs.append({
            "step": s["step"], "step_name": s["step_name"], "round": s["round"], "by": s["by"], "role": s["role"],
            "on_behalf_of": s["on_behalf_of"], "at": s["at"], "values": s["values"],
            "attachments": [{"name": a["name"], "sha256": a["sha256"], "media_type": a["media_type"]}
                            for a in s["attachments"]],
            "kind": s["kind"], "by_name": s["by_name"], "role_name": s["role_name"],
            "proxy_reason": s["proxy_reason"], "text": [f"{i['label']}:{i['text']}" for i in s["items"]],
        })
    return {"case_id": dossier["case_id"], "submissions": subs, "objections": list(dossier["objections"]),
            "decisions": list(dossier["decisions"]), "opinions": list(dossier["opinions"])}


def grouped(dossier: Mapping) -> list[dict]:
    """Submissions grouped by step in the order steps were first done; rounds inside, oldest first."""
    groups: dict[str, dict] = {}
    for s in dossier["submissions"]:
        g = groups.setdefault(s["step"], {"step": s["step"], "step_name": s["step_name"], "kind": s["kind"],
                                          "rounds": []})
        g["rounds"].append(s)
    return list(groups.values())


# --- what a judging step must judge ------------------------------------------------------------------

def judgement(d: ProcedureDefinition, step_id: str, dossier: Mapping, params: Mapping[str, Any],
              events: list[Mapping], timers: list[Mapping] | None = None) -> dict | None:
    """For an approval, supervision or objection-check step: the submission it judges and the checks
    in words (vote counts against the rule, amounts against thresholds, notice dates against the
    minimum). None for other steps, or when there is nothing before it to judge."""
    step = d.steps.get(step_id)
    if step is None:
        return None
    objection_check = step_id.endswith("_objections")
    if step.kind not in ("approval", "supervision") and not objection_check:
        return None
    latest = {s["step"]: s for s in dossier["submissions"]}
    before = _steps_before(d, step_id)
    subject = max((latest[s] for s in before if s in latest), key=lambda s: s["seq"], default=None)
    if subject is None and dossier["submissions"]:
        subject = dossier["submissions"][-1]
    if subject is None:
        return None
    checks: list[dict] = []
    subject_step = d.steps.get(subject["step"])
    if subject_step is not None and subject_step.kind == "vote":
        checks += vote_checks(d, subject_step.id, subject["values"], params)
    if objection_check and subject_step is not None:
        checks += notice_checks(d, subject_step.id, subject, params, events, timers or [], dossier)
    checks += threshold_checks(d, dossier, params)
    if objection_check:
        title = t("核实异议:请对照下面的公示情况与收到的异议", "Check the objections against the notice below")
    elif step.kind == "supervision":
        title = t(f"监督核对:“{subject['step_name']}”的办理结果", f"Check what “{subject['step_name']}” recorded")
    else:
        title = t(f"审核:“{subject['step_name']}”及此前的办理结果", f"Review “{subject['step_name']}” and what came before")
    return {"title": title, "subject": subject, "checks": checks}


def _steps_before(d: ProcedureDefinition, node_id: str) -> list[str]:
    """The user tasks met first when walking back from ``node_id`` along the flows."""
    found, seen = [], set()
    stack = [d.flows[f].source for f in d.nodes[node_id].incoming if f in d.flows] if node_id in d.nodes else []
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in d.steps:
            found.append(current)
            continue
        node = d.nodes.get(current)
        if node is not None:
            stack.extend(d.flows[f].source for f in node.incoming if f in d.flows)
    return found


def _param_key(node: ast.AST) -> str | None:
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "param" and node.args
            and isinstance(node.args[0], ast.Constant)):
        return str(node.args[0].value)
    return None


def vote_checks(d: ProcedureDefinition, step_id: str, values: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict]:
    """The vote counts next to the rule of the step's meeting body (engine.core.voting), in words."""
    step = d.steps.get(step_id)
    if step is None or not step.vote:
        return []
    rule = voting.step_rule(step.vote, params, role=step.role)
    if rule is None:
        return []
    labels = {"members": t("应到人数", "Members"), "quorum": t("到会人数", "Attendance"), "pass": t("表决结果", "Vote"),
              "consistency": t("票数核对", "Ballots")}
    checks = [{"ok": x.ok, "label": labels.get(x.key, ""), "text": x.text} for x in voting.check(rule, values).tests]
    checks.append({"ok": None, "label": t("表决规则", "Rule"), "text": voting.describe(rule)})
    return checks


def threshold_checks(d: ProcedureDefinition, dossier: Mapping, params: Mapping[str, Any]) -> list[dict]:
    """Amounts submitted so far next to the money thresholds the procedure compares them with."""
    latest: dict[str, tuple[Any, Field]] = {}
    fields = d.readable_fields()
    for s in dossier["submissions"]:
        step = d.steps.get(s["step"])
        for f in step.fields if step is not None else []:
            if f.type == "money" and f.name in s["values"]:
                latest[f.name] = (s["values"][f.name], f)
                latest[f"{s['step']}.{f.name}"] = (s["values"][f.name], f)
    seen, checks = set(), []
    for flow in d.flows.values():
        if not flow.condition:
            continue
        try:
            tree = compile_expression(flow.condition).tree
        except ExpressionError:
            continue
        for cmp in (n for n in ast.walk(tree) if isinstance(n, ast.Compare) and len(n.ops) == 1):
            name = cmp.left.id if isinstance(cmp.left, ast.Name) else qualified(cmp.left)
            key = _param_key(cmp.comparators[0])
            if not name or key is None or (name, key) in seen or name not in latest:
                continue
            p = d.parameters.get(key)
            if p is None or p.type != "money" or key not in params:
                continue
            seen.add((name, key))
            amount, f = latest[name]
            try:
                reached = Fraction(str(amount)) >= Fraction(str(params[key]))
            except (ValueError, ZeroDivisionError):
                continue
            f = fields.get(name, f)
            checks.append({"ok": None, "label": f.label, "text": t(
                f"{f.label} {money_text(amount)};{p.label} {param_text('money', params[key])}——"
                f"{'已达到' if reached else '未达到'}",
                f"{f.label} {money_text(amount)}; {p.label} {param_text('money', params[key])} — "
                f"{'reached' if reached else 'not reached'}")})
    return checks


def notice_checks(d: ProcedureDefinition, step_id: str, subject: Mapping, params: Mapping[str, Any],
                  events: list[Mapping], timers: list[Mapping], dossier: Mapping) -> list[dict]:
    """A disclosure's dates next to its minimum days, and the objections received."""
    step = d.steps[step_id]
    checks: list[dict] = []
    key = (step.disclosure or {}).get("minDaysParam")
    days = params.get(key) if key else None
    start_text = subject["values"].get("notice_start")
    period = f"{step_id}_period"
    fired = next((e for e in reversed(events) if e.get("type") == "timer_fired"
                  and (e.get("data") or {}).get("node") == period), None)
    waiting = next((t for t in timers if t.get("node") == period), None)
    if start_text and days is not None:
        try:
            start = date.fromisoformat(str(start_text))
            until = start + timedelta(days=int(days))
            line = t(f"公示自 {start.isoformat()} 起,不少于 {days} 天(至少到 {until.isoformat()})",
                     f"On notice from {start.isoformat()} for at least {days} days (until {until.isoformat()} or later)")
        except ValueError:
            line, until = t(f"公示开始 {start_text},不少于 {days} 天", f"On notice from {start_text}, at least {days} days"), None
        label = t("公示期", "Notice period")
        if fired is not None:
            line += t(f";公示期于 {china(fired.get('at'))} 届满", f"; it ended {china(fired.get('at'))}")
            ended = datetime.fromisoformat(str(fired.get("at")).replace("Z", "")) + timedelta(hours=8)
            ok = until is None or ended.date() >= until
            checks.append({"ok": ok, "label": label, "text": line + ("" if ok else t(",短于规定天数", ", shorter than required"))})
        elif waiting is not None:
            checks.append({"ok": None, "label": label, "text": line + t(f";计时至 {china(waiting.get('due_at'))}",
                                                                       f"; running until {china(waiting.get('due_at'))}")})
        else:
            checks.append({"ok": None, "label": label, "text": line})
    received = [o for o in dossier["objections"]
                if o.get("step") == step_id and (o.get("event_seq") or 0) > (subject.get("event_seq") or 0)]
    checks.append({"ok": None, "label": t("异议", "Objections"), "text": t(
        f"公示期内收到异议 {len(received)} 件" + ("" if received else ",无人提出异议"),
        f"{len(received)} objection(s) received during the notice" if received else "no objection was received")})
    return checks
