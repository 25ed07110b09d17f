"""No stuck case: a condition or timer that fails at run time becomes an *incident*, never a 500.

Values are bounded where they enter (form fields, local parameters, timer durations: see
:mod:`engine.forms`, :func:`engine.definitions.parse_param_value`, :mod:`engine.expressions`) and lint
refuses what it can tell will fail (:mod:`engine.lint_runtime`). What still fails when a case runs —
a division by a zero the cadre entered, a parameter frozen in an old case — is handled here:

1. the change is rolled back: the case stays exactly as it was (its transaction never commits);
2. the caller gets :class:`engine.errors.EngineIncident` (HTTP 409) with a plain Chinese message
   naming the step or gateway and the reason;
3. an ``incident`` event is appended to the case's trail (the submission that failed included, so
   nothing the cadre entered is lost), once per distinct failure while the case has not moved;
4. rule XW-07 raises a red warning for the township (:mod:`engine.warnings`);
5. a township or district administrator fixes the parameter (``xiaowei params set`` or the admin page)
   and retries (:func:`retry`: ``xiaowei case retry`` or the button on the case page): the case takes
   the parameters now in force (``case_params_updated``), its due timers fire, and the failed
   submission is completed again as its author.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, catalogue, spiff
from .errors import Conflict, EngineIncident, Forbidden, InvalidData, XiaoweiError
from .expressions import REASONS_EN, REASONS_ZH, ExpressionError
from storage.models import AuditEvent, Organization

INCIDENT = "incident"
ACTIONS_ZH = {"complete": "办理", "start": "发起", "timer": "定时推进", "migrate": "迁移", "retry": "重试"}
# Events that do not move a case: an incident stays open across them.
_QUIET = frozenset({INCIDENT, "access_denied", "objection_filed", "warning_acknowledged", "warning_resolved",
                    "warning_dismissed", "warning_supervised"})


def wrap(definition, exc: BaseException, action: str) -> EngineIncident:
    """The incident for an exception raised while SpiffWorkflow ran the case's conditions and timers."""
    task = getattr(exc, "task", None) or spiff.task_in_traceback(exc)
    node_id = getattr(getattr(task, "task_spec", None), "bpmn_id", None) if task is not None else None
    node = definition.nodes.get(node_id or "") if definition is not None else None
    expression = getattr(exc, "xw_expression", None)
    if expression is None and node is not None and node.timer:
        expression = node.timer
    kind = getattr(exc, "xw_kind", None) or _kind_of(exc)
    if node is not None and node.timer is not None:
        what, what_en = "定时", "timer"
    elif node is not None and node.type == "exclusiveGateway":
        what, what_en = "条件", "condition"
    else:
        what, what_en = "流程", "process"
    name = (node.name or node.id) if node is not None else "流程"
    reason = REASONS_ZH.get(kind, REASONS_ZH["invalid"])
    action_zh = ACTIONS_ZH.get(action, "办理")
    reason_en = REASONS_EN.get(kind, REASONS_EN["invalid"])
    message = (f"“{name}”的{what}无法计算:{reason}。本次{action_zh}没有保存,事项保持原状;已记入事项留痕并通知镇街管理员,"
               f"管理员修正参数后可重试 / the {what_en} of “{name}” cannot be computed: {reason_en}. Nothing was saved "
               f"and the case is as it was; the incident is in the case's trail and the township administrators were "
               f"warned: they can fix the parameter and retry")
    error = EngineIncident(message, node=node_id, node_name=name, what=what, kind=kind, reason=reason,
                           expression=expression, action=action)
    error.detail = f"{type(exc).__name__}: {exc}"[:300]
    return error


def _kind_of(exc: BaseException) -> str:
    inner = getattr(exc, "exception", None)
    if isinstance(inner, ExpressionError):
        return inner.kind
    if isinstance(exc, ExpressionError):
        return exc.kind
    if isinstance(exc, ZeroDivisionError):
        return "zero"
    if isinstance(exc, (OverflowError, RecursionError, MemoryError)):
        return "range"
    if isinstance(exc, TypeError):
        return "type"
    text = str(exc).lower()
    if "out of range" in text or "overflow" in text:
        return "range"
    return "invalid"


def fingerprint(details: Mapping[str, Any]) -> str:
    key = "|".join(str(details.get(k) or "") for k in ("action", "node", "kind", "expression"))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _event_data(exc: EngineIncident, submission: Mapping[str, Any] | None) -> dict[str, Any]:
    details = {k: v for k, v in exc.details.items() if v is not None}
    data = {**details, "message": exc.message, "fingerprint": fingerprint(details),
            "detail": getattr(exc, "detail", "")}
    if submission:
        data["submission"] = dict(submission)
    return data


def latest_events(session: Session, case_id: int, limit: int = 50) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.chain == audit.case_chain(case_id))
                                .order_by(AuditEvent.seq.desc()).limit(limit)))


def open_incident(session: Session, case_id: int) -> dict[str, Any] | None:
    """The latest incident of a case if the case has not moved since (else None), as an event dict."""
    for ev in latest_events(session, case_id):
        if ev.type == INCIDENT:
            return audit.event_dict(ev)
        if ev.type not in _QUIET:
            return None
    return None


def record(session: Session, case_id: int, exc: EngineIncident, *, actor: str,
           submission: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Append the incident to the case's trail (its own transaction, after the failed change rolled
    back); None when the same failure is already the open incident (no flood of events)."""
    from .cases import lock_case

    case = lock_case(session, case_id)
    if case is None:
        return None
    data = _event_data(exc, submission)
    current = open_incident(session, case_id)
    if current is not None and current["data"].get("fingerprint") == data["fingerprint"] \
            and current["data"].get("submission") == data.get("submission"):
        return None
    return audit.append_case_event(session, case, INCIDENT, actor=actor or "system", role="", data=data)


def start_incident_event(session: Session, org_code: str, procedure_id: str, exc: EngineIncident, *,
                         actor: str, submission: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """A case that could not even start: the incident goes to the system chain (there is no case to
    carry it). Returns (the event, its data); the caller raises the township's warning."""
    data = {**_event_data(exc, submission), "org": org_code, "procedure_id": procedure_id}
    return audit.append_system_event(session, INCIDENT, actor=actor or "system", data=data), data


def retry(session: Session, case_id: int, username: str, overrides: Mapping[str, str] | None = None) -> dict:
    """An administrator retries a case after an incident: the case takes the local parameters now in
    force (and ``overrides``, validated), its due timers fire, and a failed submission is completed
    again as its author. One transaction: if it still fails, nothing of it is kept."""
    from . import cases, directory, procedures
    from .definitions import parse_param_value

    ctx = cases.open_for_update(session, case_id, fire=False)
    assert ctx is not None
    case = ctx.case
    if case.status != cases.RUNNING:
        raise Conflict(f"事项已{cases.STATUS_ZH.get(case.status, case.status)},无需重试 / the case is {case.status}")
    actor = directory.load_actor(session, username)
    admin = actor.roles_at(ctx.chain_ids) & catalogue.ADMIN_ROLES
    if not admin:
        raise Forbidden(f"{username} 无权重试本事项(需镇街或区级管理角色) / {username} may not retry this case",
                        action="retry")
    incident = open_incident(session, case_id)
    if incident is None:
        raise Conflict("本事项没有待处理的运行故障,无需重试 / the case has no open incident")
    definition = ctx.definition
    org = session.get(Organization, case.org_id)
    effective = procedures.effective_params(session, definition, org)
    errors: dict[str, str] = {}
    wanted: dict[str, Any] = {}
    for key, text in (overrides or {}).items():
        param = definition.parameters.get(key)
        if param is None:
            errors[key] = f"本事项没有参数“{key}” / no parameter {key} in {definition.id}"
            continue
        try:
            wanted[key] = parse_param_value(param.type, text)
        except ValueError:
            errors[key] = f"参数“{param.label}”的值“{str(text)[:50]}”无效 / invalid value"
    if errors:
        raise InvalidData("参数有误 / invalid parameters", errors)
    frozen = ctx.workflow.data.setdefault(spiff.PARAMS_KEY, {})
    changes = []
    for key, param in definition.parameters.items():
        new = wanted[key] if key in wanted else effective[key]["value"]
        if key not in frozen or frozen[key] != new:
            changes.append({"key": key, "label": param.label, "before": _text(frozen.get(key)), "after": _text(new),
                            "source": "retry" if key in wanted else effective[key]["source"]})
            frozen[key] = new
    role = sorted(admin)[0]
    cases.save_case(ctx, ("case_params_updated", username, role,
                      {"changes": changes, "incident_seq": incident["seq"], "reason": "retry"}))
    session.flush()
    cases.open_for_update(session, case_id, action="retry")  # due timers fire with the parameters now in force
    submission = incident["data"].get("submission")
    completed = None
    if submission and incident["data"].get("action") in ("complete", "retry"):
        try:
            cases.complete_step(session, case_id, submission["step"], submission["actor"], submission.get("data"),
                                on_behalf_of=submission.get("on_behalf_of"),
                                proxy_reason=submission.get("proxy_reason"),
                                attachments=submission.get("attachments"),
                                extra={"retry_of": incident["seq"], "retried_by": username})
            completed = submission["step"]
        except EngineIncident as exc:
            exc.submission = submission
            raise
        except XiaoweiError as exc:
            if not isinstance(exc, Conflict):
                raise
            # the step is no longer ready (done another way meanwhile): the parameters are fixed anyway
    return {"case_id": case_id, "changes": changes, "completed": completed, "status": case.status}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def incident_dict(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a case page shows of an open incident."""
    if event is None:
        return None
    data = event.get("data") or {}
    return {"seq": event.get("seq"), "at": event.get("at"), "message": data.get("message", ""),
            "node_name": data.get("node_name"), "reason": data.get("reason"), "action": data.get("action"),
            "step": (data.get("submission") or {}).get("step"), "actor": event.get("actor")}


__all__ = ["wrap", "record", "start_incident_event", "retry", "open_incident", "incident_dict", "INCIDENT"]
