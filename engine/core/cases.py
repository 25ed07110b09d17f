"""Cases: start, complete steps, fire timers, cancel — each one transaction on a locked case row.

Every change goes through SpiffWorkflow and leaves audit events; the derived `work_item` and
`timer_due` rows are rebuilt on every save so lists never deserialize cases.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import String, any_, bindparam, delete, insert, select, update
from sqlalchemy import inspect as orm_state
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from . import attachments as evidence
from . import audit, catalogue, clerk, clock, forms, people, privacy, spiff, variants
from .definitions import ProcedureDefinition
from .directory import Actor, chain_ids, get_org, load_actor
from .errors import Conflict, EngineIncident, Forbidden, InvalidData, NotFound, XiaoweiError
from .expressions import ExpressionError, compile_expression
from .procedures import Runtime, effective_params, runtime
from storage.batch import WriteBatch
from storage.db import dialect_insert
from storage.models import AuditEvent, Case, CaseField, CaseState, Organization, Submission, TimerDue, WorkItem

RUNNING = "running"
CLOSED_STATUSES = ("completed", "rejected", "terminated", "cancelled")
STATUS_ZH = {"running": "办理中", "completed": "已办结", "rejected": "未通过", "terminated": "已终止",
             "cancelled": "已撤销"}
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
INITIAL_KEY = "xw_initial"
PUBLIC_ACTOR = "public"  # the actor of what the public does without an account (objections, 码上举报)


def new_tracking_code() -> str:
    """12 characters from an unambiguous alphabet (~59 bits): short, printable, not guessable."""
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))


def normalize_tracking_code(code: str) -> str:
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())


def format_tracking_code(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


@dataclass
class CaseContext:
    """A case loaded for change inside a write transaction."""

    session: Session
    case: Case
    rt: Runtime
    workflow: Any
    chain_ids: list[int]
    pending: list[tuple[str, dict]] = field(default_factory=list)
    end: dict | None = None
    # What the derived rows held when the case was loaded (they are derived from this state).
    ready_before: set[str] = field(default_factory=set)
    timers_before: set[str] = field(default_factory=set)
    new_case: bool = False
    # Form values given in this change (name -> value) and the step that gave them: case_field rows.
    field_values: dict = field(default_factory=dict)
    field_step: str = ""
    # The submission this change makes (a step completed), stored with its event's sequence number.
    submission: dict | None = None
    # Not None: save_case reads the case's open work items after its writes, into this list.
    open_items: list | None = None

    ready_tasks: list = field(default_factory=list)
    timer_deadlines: list = field(default_factory=list)
    timer_nodes: dict = field(default_factory=dict)

    def remember_derived(self) -> None:
        self.ready_tasks, timers = spiff.open_tasks(self.workflow)
        self.ready_before = {str(t.id) for t in self.ready_tasks}
        self.timers_before = {str(t.id) for t, _ in timers}
        self.timer_deadlines = [deadline for _, deadline in timers]
        self.timer_nodes = {str(t.id): t.task_spec.bpmn_id for t, _ in timers}

    @property
    def definition(self) -> ProcedureDefinition:
        return self.rt.definition

    def run_engine(self, action: str = "timer") -> None:
        """Run gateways and due timers. A condition or timer that fails at run time raises
        :class:`EngineIncident` (the caller's transaction rolls back: the case stays as it was)."""
        try:
            spiff.run_engine(self.workflow, self._record)
        except XiaoweiError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever SpiffWorkflow raised: an incident, never a 500
            from . import incidents

            raise incidents.wrap(self.definition, exc, action) from exc

    def run_task(self, task) -> None:
        """Complete a user task and run what follows it (see :meth:`run_engine`)."""
        try:
            task.run()
        except XiaoweiError:
            raise
        except Exception as exc:  # noqa: BLE001
            from . import incidents

            raise incidents.wrap(self.definition, exc, "complete") from exc
        self.run_engine("complete")

    def _record(self, task) -> None:
        spec_id = task.task_spec.bpmn_id
        node = self.definition.nodes.get(spec_id or "")
        if node is None:
            return
        if node.type == "exclusiveGateway":
            self.pending.append(("gateway_decided", self._gateway_event(task, node)))
        elif node.timer is not None:
            self.pending.append(("timer_fired", {"node": node.id, "name": node.name,
                                                 "notice_for": node.notice_for}))
            step = self.definition.steps.get(node.notice_for or "")
            if step is not None:  # later acts may not be dated before this notice ended
                self.workflow.data[clerk.NOTICE_END_KEY] = {
                    "step": step.id, "name": step.name, "date": clerk.china_date(clock.now()).isoformat()}
        elif node.type == "endEvent":
            self.end = {"end": node.id, "name": node.name, "outcome": node.outcome or "completed"}

    def _gateway_event(self, task, node) -> dict:
        targets = {child.task_spec.bpmn_id for child in task.children}
        candidates = [self.definition.flows[f] for f in node.outgoing if self.definition.flows[f].target in targets]
        params = self.workflow.data.get(spiff.PARAMS_KEY, {})

        def holds(condition: str) -> bool:
            try:
                return bool(compile_expression(condition).evaluate(task.data, params))
            except ExpressionError:
                return False

        # Two exits may lead to the same step: name the one whose condition held, in document order.
        flow = (next((f for f in candidates if f.condition and holds(f.condition)), None)
                or next((f for f in candidates if f.id == node.default_flow), None)
                or (candidates[0] if candidates else None))
        inputs: dict[str, Any] = {}
        condition = flow.condition if flow else None
        for fid in node.outgoing:
            cond = self.definition.flows[fid].condition
            if cond:
                for name in sorted(compile_expression(cond).names):
                    inputs[name] = task.data.get(name)
        target = self.definition.nodes.get(flow.target) if flow else None
        return {
            "gateway": node.id, "name": node.name, "flow": flow.id if flow else None,
            "label": flow.name if flow else "", "target": flow.target if flow else None,
            "target_name": target.name if target else "",
            "condition": condition or "default", "inputs": inputs,
        }


# The case row and its state row in one statement (the state is what a change deserializes).
_LOCK = (select(Case).outerjoin(Case.state_row).options(contains_eager(Case.state_row))
         .where(Case.id == bindparam("case_id")).execution_options(populate_existing=True))
# PostgreSQL locks both rows: a transaction that waited for the lock then reads the versions the
# previous holder committed of both (with only the case row locked, READ COMMITTED would re-read the
# case row but hand back the state row of its own older snapshot, and the step would be done twice).
# FOR UPDATE cannot lock the nullable side of an outer join: the join is inner, and a case without a
# state row (none is made so; a damaged database) is locked alone.
_JOINED = (select(Case).join(Case.state_row).options(contains_eager(Case.state_row))
           .where(Case.id == bindparam("case_id")).execution_options(populate_existing=True))
_ALONE = select(Case).where(Case.id == bindparam("case_id")).execution_options(populate_existing=True)
_LOCK_PG = {skip: (_JOINED.with_for_update(skip_locked=skip), _ALONE.with_for_update(skip_locked=skip))
            for skip in (False, True)}


def lock_case(session: Session, case_id: int, *, skip_locked: bool = False) -> Case | None:
    """Load the case row (with its state) for change. PostgreSQL: row locks (FOR UPDATE [SKIP
    LOCKED]); SQLite: the write transaction already holds the database's write lock (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name != "postgresql":
        return session.scalars(_LOCK, {"case_id": case_id}).first()
    joined, alone = _LOCK_PG[skip_locked]
    found = session.scalars(joined, {"case_id": case_id}).first()
    return found if found is not None else session.scalars(alone, {"case_id": case_id}).first()


def open_for_update(session: Session, case_id: int, *, skip_locked: bool = False, fire: bool = True,
                    action: str = "timer") -> CaseContext | None:
    """Lock and load a case; fire its due timers first (unless ``fire`` is False). None only when
    skip_locked skipped it. A due timer whose firing fails raises :class:`EngineIncident`."""
    case = lock_case(session, case_id, skip_locked=skip_locked)
    if case is None:
        if skip_locked and session.get(Case, case_id) is not None:
            return None
        raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
    rt = runtime(session, case.procedure_version_id)
    workflow = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
    ctx = CaseContext(session, case, rt, workflow, list(chain_ids(session, case.org_id)))
    ctx.remember_derived()
    now = clock.now()
    if fire and case.status == RUNNING and any(d is not None and d <= now for d in ctx.timer_deadlines):
        ctx.run_engine(action)
        if ctx.pending or ctx.end:
            save_case(ctx, None)
            ctx.remember_derived()
    return ctx


def start_case(session: Session, procedure_id: str, org_code: str, username: str,
               data: Mapping[str, Any] | None = None, *, public: Mapping[str, Any] | None = None,
               scheduled: bool = False) -> Case:
    """Start a case of the current published version for a village or community (or a township
    procedure at a township). ``public``: started by a member of the public (码上举报) — ``username``
    is then :data:`PUBLIC_ACTOR`, no role is checked, and ``public`` (channel, reporter, files) is
    recorded in the ``case_started`` event."""
    # ``scheduled``: started by Xiaowei itself (monthly checklists, grade notices): actor "system", no role.
    actor = load_actor(session, username) if public is None and not scheduled else None
    starter = actor.username if actor is not None else ("system" if scheduled else PUBLIC_ACTOR)
    org = get_org(session, org_code)
    version, variant = variants.version_for(session, procedure_id, org)  # a township's variant, else the district's
    rt = runtime(session, version.id)
    d = rt.definition
    _check_edition(d, org)
    chain = list(chain_ids(session, org.id))
    data = dict(data or {})
    title = str(data.pop("title", "") or "").strip()[:200]
    initial = _initial_values(d, data)
    params = effective_params(session, d, org)
    workflow = spiff.new_workflow(rt.spec, rt.subprocess_specs, {k: v["value"] for k, v in params.items()})
    workflow.data[INITIAL_KEY] = initial
    workflow.data[ROUNDS_KEY] = {"": 0}
    start_tasks = workflow.get_tasks(state=spiff.TaskState.READY)
    for task in start_tasks:
        task.data.update(initial)
    case = Case(procedure_id=d.id, procedure_version_id=version.id, org_id=org.id, status=RUNNING,
                title=title or _default_title(d, initial), tracking_code=_unique_code(session),
                state="", serializer_version=spiff.SERIALIZER_VERSION, started_by=starter,
                created_at=audit.db_time(), updated_at=audit.db_time(), audit_seq=0, audit_head="")
    ctx = CaseContext(session, case, rt, workflow, chain, new_case=True, field_values=dict(initial))
    ctx.run_engine("start")
    ready = spiff.ready_user_tasks(workflow)
    role = _starting_role(actor, d, ready, chain) if actor is not None else ""
    case.state = spiff.dump_state(workflow)
    session.add(case)
    session.flush()
    started = {
        "procedure_id": d.id, "procedure_name": d.name, "procedure_version": version.version,
        "definition_hash": version.content_hash, "org": org.code, "org_name": org.name,
        "tracking_code": case.tracking_code, "title": case.title,
        "params": {k: {"value": str(v["value"]), "source": v["source"]} for k, v in params.items()},
        "initial": initial,
    }
    if variant is not None:
        started["variant"] = variant.key
    if public is not None:
        started["public"] = dict(public)
    save_case(ctx, ("case_started", starter, role, started))
    return case


def _check_edition(d: ProcedureDefinition, org: Organization) -> None:
    if d.edition == "township" or org.kind == "township":  # the township's own procedures (e.g. T-SUP-01)
        if d.edition != "township" or org.kind != "township":
            raise InvalidData(f"“{d.name}”{'由镇(街道)办理' if d.edition == 'township' else '须在村或社区办理'},"
                              f"不适用于{org.name} / edition {d.edition} does not apply to a {org.kind}",
                              {"org": org.code})
        return
    if org.kind not in ("village", "community"):
        raise InvalidData(f"事项须在村或社区办理,“{org.name}”是{org.kind} / cases run in a village or community",
                          {"org": org.code})
    if d.edition == "village" and org.kind != "village" or d.edition == "community" and org.kind != "community":
        raise InvalidData(f"“{d.name}”是{'村' if d.edition == 'village' else '社区'}版事项,不适用于{org.name} / "
                          f"edition {d.edition} does not apply to a {org.kind}", {"org": org.code})


def _initial_values(d: ProcedureDefinition, data: Mapping[str, Any]) -> dict[str, Any]:
    fields = d.fields_by_name()
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, raw in data.items():
        f = fields.get(name)
        if f is None:
            errors[str(name)] = f"未知字段 / unknown field: {name}"
            continue
        if raw is None or raw == "":
            continue
        try:
            values[name] = forms.coerce(f, raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise InvalidData("初始数据有误 / the initial data has errors", errors)
    return values


def _default_title(d: ProcedureDefinition, initial: Mapping[str, Any]) -> str:
    for f in d.fields_by_name().values():
        if f.type == "text" and initial.get(f.name):
            return str(initial[f.name])[:200]
    return d.name


def _unique_code(session: Session) -> str:
    while True:
        code = new_tracking_code()
        if session.scalar(select(Case.id).where(Case.tracking_code == code)) is None:
            return code


def _starting_role(actor: Actor, d: ProcedureDefinition, ready: list, chain_ids: list[int]) -> str:
    held = actor.roles_at(chain_ids)
    for task in ready:
        step = d.steps.get(task.task_spec.bpmn_id)
        if step is None:
            continue
        if step.role in held:
            return step.role  # type: ignore[return-value]
        if step.proxy and held & catalogue.PROXY_ROLES:
            return sorted(held & catalogue.PROXY_ROLES)[0]
    admin = held & catalogue.ADMIN_ROLES
    if admin:
        return sorted(admin)[0]
    needed = "、".join(sorted({catalogue.roles()[s.role].zh for t in ready
                               if (s := d.steps.get(t.task_spec.bpmn_id)) and s.role in catalogue.roles()}))
    raise Forbidden(f"{actor.username} 无权发起“{d.name}”:需要{needed or '相应'}角色 / "
                    f"{actor.username} may not start {d.id} here", action="start", procedure=d.id)


def complete_step(session: Session, case_id: int, step_id: str, username: str, data: Mapping[str, Any] | None,
                  *, on_behalf_of: str | None = None, proxy_reason: str | None = None,
                  attachments: list[dict] | None = None, extra: Mapping[str, Any] | None = None,
                  open_items: list | None = None) -> Case:
    """Complete a ready step as ``username`` with form ``data``; route the gateways that follow.
    ``attachments`` are references to stored evidence files ({sha256, name, size, type}); ``extra``
    is added to the event (a retry after an incident names it and the administrator). A list given
    as ``open_items`` receives the case's open work items after the change (rows of
    :data:`OPEN_ITEMS`), read with the change's writes (on PostgreSQL in the same round trip)."""
    ctx = open_for_update(session, case_id, action="complete")
    assert ctx is not None
    case, d, workflow = ctx.case, ctx.definition, ctx.workflow
    if case.status != RUNNING:
        raise Conflict(f"事项已{STATUS_ZH.get(case.status, case.status)},不能再办理 / the case is {case.status}")
    step = d.steps.get(step_id)
    if step is None:
        raise NotFound(f"“{d.name}”没有步骤“{step_id}” / no step {step_id} in {d.id}")
    task = next((t for t in ctx.ready_tasks if t.task_spec.bpmn_id == step_id), None)
    if task is None:
        done = workflow.get_tasks(spec_name=step_id, state=spiff.TaskState.COMPLETED)
        if done:
            raise Conflict(f"步骤“{step.name}”已被办理,无需重复提交 / step {step_id} was already completed")
        raise Conflict(f"步骤“{step.name}”尚未轮到办理 / step {step_id} is not ready")
    actor = load_actor(session, username)
    role, proxy, errors = _authorize_step(actor, d, step, ctx.chain_ids, on_behalf_of, proxy_reason)
    files = evidence.resolve(session, attachments)
    initial = workflow.data.get(INITIAL_KEY, {})
    raw = dict(data or {})
    for f in step.fields:
        if f.name not in raw and f.name in initial:
            raw[f.name] = initial[f.name]
    objections = _objections_for(session, case.id, step)
    if objections and "objection_count" not in raw:
        raw["objection_count"] = len(objections)  # prefilled from the objections the public filed
    rounds = _rounds(ctx)
    # Every problem of the form at once: 代办 details, each field, the cross-field rules, dates, evidence.
    try:
        clean = forms.validate(step.fields, step.constraints, raw, context=task.data,
                               params=workflow.data.get(spiff.PARAMS_KEY, {}))
    except InvalidData as exc:
        errors.update(exc.errors)
        clean = forms.valid_part(step.fields, raw)
    facts = clerk.Facts(today=clerk.china_date(clock.now()), case_start=clerk.china_date(case.created_at),
                        last_act=workflow.data.get(clerk.LAST_ACT_KEY), notice_end=workflow.data.get(clerk.NOTICE_END_KEY))
    for key, message in clerk.check(step, clean, facts, files).items():
        errors[key] = f"{errors[key]};{message}" if key in errors else message
    if objections and int(clean.get("objection_count") or 0) < len(objections):
        errors["objection_count"] = f"公示期内收到{len(objections)}件异议,异议件数不能少于{len(objections)}"
    if errors:
        raise InvalidData("表单有误,请检查 / the form has errors", errors)
    act = clerk.latest_act(step, clean)
    if act is not None:
        workflow.data[clerk.LAST_ACT_KEY] = act
    clean, sealed = privacy.split_identity_fields(clean)  # a reporter's identity stays out of the trail
    round_ = rounds.get(step.id, 0) + 1
    # A diff exists only between rounds of the same step: the previous round is under step.field.
    changes = [] if round_ == 1 else [
        {"field": f.name, "label": f.label, "before": task.data.get(f"{step.id}.{f.name}"), "after": clean.get(f.name)}
        for f in step.fields if task.data.get(f"{step.id}.{f.name}") != clean.get(f.name)]
    task.data.update(clean)
    task.data.update({f"{step.id}.{k}": v for k, v in clean.items()})
    for f in step.fields:  # a field left empty in this round holds nothing, not the last round's value
        if f.name not in clean:
            task.data.pop(f"{step.id}.{f.name}", None)
    rounds[step.id] = round_
    ctx.field_values, ctx.field_step = clean, step.id
    if proxy or people.person_fields(step.fields):  # the step names persons: resolve them to the register
        people.resolve_step(session, case.id, session.get(Organization, case.org_id), step, clean,
                            actor=actor.username, on_behalf_of=proxy["name"] if proxy else None)
    if case.title == d.name:
        case.title = next((str(clean[f.name])[:200] for f in step.fields if f.type == "text" and clean.get(f.name)),
                          case.title)
    ctx.run_task(task)
    event = {"step": step.id, "name": step.name, "kind": step.kind, "task_id": str(task.id), "round": round_,
             "data": clean, "changes": changes}
    if proxy:
        event["on_behalf_of"] = proxy
    if files:
        event["attachments"] = files
    if extra:
        event.update(extra)
    if sealed is not None:
        event["identity"] = privacy.event_marker(sealed)
    ctx.submission = {"step_id": step.id, "step_name": step.name, "kind": step.kind, "round": round_,
                      "task_id": str(task.id), "actor": actor.username, "role": role,
                      "on_behalf_of": proxy["name"] if proxy else None, "proxy_reason": proxy["reason"] if proxy else None,
                      "values": audit.to_json(clean), "attachments": audit.to_json(files or [])}
    seq = case.audit_seq + 1  # the step_completed event is the first this save appends
    if open_items is not None:
        ctx.open_items = []
    save_case(ctx, ("step_completed", actor.username, role, event))
    if open_items is not None:
        open_items.extend(ctx.open_items)
    if sealed is not None:
        privacy.store(session, case.id, seq, "report", sealed)
    return case


ROUNDS_KEY = "xw_rounds"  # workflow data: step id -> rounds done, and "" -> submissions in the case


def _rounds(ctx: CaseContext) -> dict[str, int]:
    """How many times each step of the case was done (kept in the workflow data). A case begun before
    submissions were kept gets them counted once from its rows, and its earlier submissions' values
    put under their step.field names, so explicit names read the same in old and new cases."""
    data = ctx.workflow.data
    if ROUNDS_KEY not in data:
        counts: dict[str, int] = {"": 0}
        latest: dict[str, dict] = {}
        rows = ctx.session.execute(select(Submission.step_id, Submission.values).where(
            Submission.case_id == ctx.case.id).order_by(Submission.seq)).all()
        for step_id, values in rows:
            counts[step_id] = counts.get(step_id, 0) + 1
            counts[""] += 1
            latest[step_id] = json.loads(values)
        data[ROUNDS_KEY] = counts
        if latest:
            for task in ctx.ready_tasks:
                for step_id, values in latest.items():
                    fields = {f.name: f for f in ctx.definition.steps[step_id].fields} \
                        if step_id in ctx.definition.steps else {}
                    for name, value in values.items():
                        key = f"{step_id}.{name}"
                        if key not in task.data:
                            task.data[key] = _typed(fields.get(name), value)
    return data[ROUNDS_KEY]


def _objections_for(session: Session, case_id: int, step) -> list[dict]:
    """Objections filed for the disclosure step whose objections task ``step`` is (else none)."""
    if not step.id.endswith(OBJECTIONS_SUFFIX) or not any(f.name == "objection_count" for f in step.fields):
        return []
    return filed_objections(session, case_id, step.id[: -len(OBJECTIONS_SUFFIX)])


OBJECTIONS_SUFFIX = "_objections"


def _authorize_step(actor: Actor, d: ProcedureDefinition, step, chain_ids: list[int],
                    on_behalf_of: str | None, reason: str | None) -> tuple[str, dict | None, dict[str, str]]:
    """The role the actor does the step in, the 代办 details, and problems with those details (reported
    together with the form's); Forbidden when the actor may not do the step at all."""
    held = actor.roles_at(chain_ids)
    if step.role in held and not on_behalf_of:
        return step.role, None, {}
    if step.proxy and held & catalogue.PROXY_ROLES:
        errors = {}
        name, why = (on_behalf_of or "").strip(), (reason or "").strip()
        if not name:
            errors["on_behalf_of"] = "代办须填写被代办人姓名 / name the person you act for"
        elif len(name) > 50 or any(ord(ch) < 32 for ch in name):
            errors["on_behalf_of"] = "被代办人姓名不能超过50字 / at most 50 characters"
        if not why:
            errors["proxy_reason"] = "代办须填写代办原因 / give the reason for acting on their behalf"
        role = sorted(held & catalogue.PROXY_ROLES)[0]
        return role, {"name": name[:50], "reason": why[:200]}, errors
    if step.role in held:
        return step.role, None, {"on_behalf_of": "本步骤不允许代办 / this step cannot be done on someone's behalf"}
    role_name = catalogue.roles()[step.role].zh if step.role in catalogue.roles() else step.role
    raise Forbidden(f"{actor.username} 不是本村(社区)的“{role_name}”,无权办理“{step.name}” / "
                    f"{actor.username} lacks role {step.role} here", action="complete", step=step.id)


def cancel_case(session: Session, case_id: int, username: str, reason: str) -> Case:
    """Cancel a running case with a reason (an administrative action of township or district staff)."""
    if not (reason or "").strip():
        raise InvalidData("撤销须说明原因 / a reason is required", {"reason": "required"})
    try:
        ctx = open_for_update(session, case_id)
    except EngineIncident:
        ctx = open_for_update(session, case_id, fire=False)  # a stuck case can always be cancelled
    assert ctx is not None
    if ctx.case.status != RUNNING:
        raise Conflict(f"事项已{STATUS_ZH.get(ctx.case.status, ctx.case.status)} / the case is {ctx.case.status}")
    actor = load_actor(session, username)
    admin = actor.roles_at(ctx.chain_ids) & catalogue.ADMIN_ROLES
    if not admin:
        raise Forbidden(f"{username} 无权撤销本事项(需镇街或区级管理角色) / {username} may not cancel this case",
                        action="cancel")
    ctx.workflow.cancel()
    ctx.end = {"end": None, "name": "撤销", "outcome": "cancelled"}
    save_case(ctx, ("case_cancelled", actor.username, sorted(admin)[0], {"reason": reason.strip()[:500]}))
    return ctx.case


def filed_objections(session: Session, case_id: int, disclosure_step: str) -> list[dict]:
    """The objections filed during the latest notice period of ``disclosure_step`` (events after the
    step's latest completion), oldest first."""
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.type, AuditEvent.data, AuditEvent.at)
        .where(AuditEvent.case_id == case_id, AuditEvent.type.in_(("objection_filed", "step_completed")))
        .order_by(AuditEvent.seq)).all()
    found: list[dict] = []
    for row in rows:
        data = json.loads(row.data)
        if data.get("step") != disclosure_step:
            continue
        if row.type == "step_completed":
            found = []
        else:
            found.append({**data, "seq": row.seq, "at": audit.iso(row.at)})
    return found


def record_denied(session: Session, case_id: int, username: str, action: str, message: str,
                  details: Mapping[str, Any] | None = None) -> None:
    """Record a refused attempt in the case's trail, for supervisors (its own transaction)."""
    case = lock_case(session, case_id)
    if case is None:
        return
    audit.append_case_event(session, case, "access_denied", actor=username, role="",
                            data={"action": action, "message": message, **(details or {})})


def fire_due_timers(session: Session, case_id: int) -> int | None:
    """Fire a case's due timers (used by `tick`): the number of audit events recorded, or None
    when another process holds the case (it will fire them)."""
    before = session.scalar(select(Case.audit_seq).where(Case.id == case_id)) or 0
    ctx = open_for_update(session, case_id, skip_locked=True)
    if ctx is None:
        return None
    return ctx.case.audit_seq - before


def save_case(ctx: CaseContext, event: tuple[str, str, str, dict] | None) -> None:
    """Persist state, derived rows and audit events of one change."""
    session, case, workflow = ctx.session, ctx.case, ctx.workflow
    now = audit.db_time()
    batch = WriteBatch(session.connection())  # PostgreSQL: this change's writes go in one round trip
    active = case.status == RUNNING and ctx.end is None
    ready, waiting = spiff.open_tasks(workflow) if active else ([], [])
    opened = _rebuild_work_items(ctx, now, ready, batch)
    timers = _rebuild_timers(ctx, waiting, batch)
    if ctx.field_values:
        _record_fields(ctx, now, batch)
    closed = _closed_without_event(ctx, event, ready, waiting) if active else {}
    events: list[tuple[str, str, str, dict]] = []
    if event is not None:
        type_, actor, role, data = event
        data = {**data, "opened": opened}
        if timers:
            data["timers"] = timers
        data.update(closed)
        events.append((type_, actor, role, data))
    elif opened or timers or closed:
        ctx.pending.append(("steps_opened", {"opened": opened, "timers": timers, **closed}))
    events.extend((type_, "system", "", data) for type_, data in ctx.pending)
    ctx.pending.clear()
    if ctx.end is not None and case.status == RUNNING:
        case.status = ctx.end["outcome"] if ctx.end["outcome"] in CLOSED_STATUSES else "completed"
        case.closed_at = now
        if case.status != "cancelled":
            events.append(("case_closed", "system", "", {**ctx.end, "status": case.status}))
    written = audit.append_case_events(session, case, events, at=now, batch=batch)
    if ctx.submission is not None:
        rounds = workflow.data.setdefault(ROUNDS_KEY, {"": 0})
        rounds[""] = rounds.get("", 0) + 1
        batch.execute(_INSERT_SUBMISSION, [{
            **ctx.submission, "case_id": case.id, "seq": rounds[""], "at": now, "event_seq": written[0]["seq"]}])
        ctx.submission = None
    case.state = spiff.dump_state(workflow)
    case.updated_at = now
    if ctx.new_case:
        batch.send()
        session.flush()
    else:
        _write_case(session, case, batch)
        if ctx.open_items is not None:  # the caller answers with the open steps: read in the same trip
            ctx.open_items = batch.query(OPEN_ITEMS, {"case_id": case.id})
        batch.send()


_CASE_COLUMNS = frozenset(c.key for c in Case.__table__.columns) - {"id", "version"}
_CASE_UPDATES: dict[frozenset, Any] = {}
_UPDATE_STATE = update(CaseState).where(CaseState.case_id == bindparam("b_case_id")).values(
    state=bindparam("b_state"))


def _write_case(session: Session, case: Case, batch: WriteBatch) -> None:
    """Write a loaded case's changed columns and its state with two plain UPDATEs (the ORM's flush
    costs more than the statements): ``… WHERE id = ? AND version = ?`` as the mapper's version
    counter does, so a lost update raises instead of overwriting. The ORM object is then clean."""
    insp = orm_state(case)
    changed = {key: getattr(case, key) for key in insp.committed_state if key in _CASE_COLUMNS}
    version = case.version
    names = frozenset(changed)
    stmt = _CASE_UPDATES.get(names)
    if stmt is None:
        stmt = _CASE_UPDATES[names] = update(Case).where(
            Case.id == bindparam("b_id"), Case.version == bindparam("b_version")).values(
            version=bindparam("b_new_version"), **{k: bindparam(f"b_{k}") for k in sorted(names)})
    batch.execute(stmt, {"b_id": case.id, "b_version": version, "b_new_version": version + 1,
                         **{f"b_{k}": v for k, v in changed.items()}}, expect_rows=1,
                  otherwise=Conflict("事项刚被他人修改,请刷新后重试 / the case was changed meanwhile; reload and retry"))
    set_committed_value(case, "version", version + 1)
    _mark_clean(insp)
    row = case.state_row
    if row is not None and orm_state(row).pending:  # a case that had no state row yet
        batch.send()
        session.flush()
    elif row is not None and orm_state(row).modified:
        batch.execute(_UPDATE_STATE, {"b_case_id": case.id, "b_state": row.state})
        _mark_clean(orm_state(row))


def _mark_clean(insp) -> None:
    """What the ORM does after it flushed an object: its loaded values are now the committed ones
    (so the commit flushes nothing). SQLAlchemy has no public call for it."""
    insp._commit_all(insp.dict, insp.session.identity_map)


def _closed_without_event(ctx: CaseContext, event, ready: list, waiting: list) -> dict[str, list[str]]:
    """Steps and timers that stopped being open in this change other than by being completed or
    fired (a migration, a branch cancelled): named in the event, so that replaying the events gives
    exactly the open steps and timers (``xiaowei audit verify``)."""
    now_ready = {str(t.id) for t in ready}
    done = str(event[3].get("task_id")) if event is not None and event[0] == "step_completed" else None
    steps = sorted(t.task_spec.bpmn_id for t in ctx.ready_tasks
                   if str(t.id) not in now_ready and str(t.id) != done)
    now_waiting = {str(t.id) for t, _ in waiting}
    fired = [data.get("node") for type_, data in ctx.pending if type_ == "timer_fired"]
    gone = []
    for tid, node in sorted(ctx.timer_nodes.items()):
        if tid in now_waiting:
            continue
        if node in fired:
            fired.remove(node)
        else:
            gone.append(node)
    out: dict[str, list[str]] = {}
    if steps:
        out["closed"] = steps
    if gone:
        out["timers_closed"] = sorted(gone)
    return out


# Statements built once: building a statement costs more than running it on SQLite.
_INSERT_ITEM = insert(WorkItem)
# A case's open steps, in the order they opened (plain rows, no ORM objects).
OPEN_ITEMS = select(WorkItem.case_id, WorkItem.step_id, WorkItem.step_name, WorkItem.role_key, WorkItem.task_id,
                    WorkItem.ready_at, WorkItem.due_at).where(WorkItem.case_id == bindparam("case_id")).order_by(WorkItem.id)
_INSERT_TIMER = insert(TimerDue)


def _delete_by_task(model) -> dict:
    """DELETE of a case's rows for some task ids, one statement text for any number of ids (what a
    compiled batch needs): ``= ANY(array)`` on PostgreSQL; one row per id (executemany) on SQLite."""
    return {
        "sqlite": delete(model).where(model.case_id == bindparam("case_id"), model.task_id == bindparam("task_id")),
        "postgresql": delete(model).where(model.case_id == bindparam("case_id"),
                                          model.task_id == any_(bindparam("task_ids", type_=ARRAY(String)))),
    }


def _delete_stale(batch: WriteBatch, statements: dict, case_id: int, task_ids: set[str]) -> None:
    if batch.dialect_name == "postgresql":
        batch.execute(statements["postgresql"], {"case_id": case_id, "task_ids": sorted(task_ids)})
    else:
        batch.execute(statements["sqlite"], [{"case_id": case_id, "task_id": t} for t in sorted(task_ids)])


_DELETE_ITEMS = _delete_by_task(WorkItem)
_DELETE_TIMERS = _delete_by_task(TimerDue)


_INSERT_FIELD = insert(CaseField)


def _upsert_field(dialect: str):
    stmt = dialect_insert(dialect)(CaseField)
    return stmt.on_conflict_do_update(index_elements=["case_id", "name"], set_={
        k: stmt.excluded[k] for k in ("type", "step_id", "text_value", "number_value", "updated_at")})


_UPSERT_FIELD = {dialect: _upsert_field(dialect) for dialect in ("sqlite", "postgresql")}
_INSERT_SUBMISSION = insert(Submission)
_NUMERIC_TYPES = frozenset({"integer", "decimal", "money"})


def _record_fields(ctx: CaseContext, now: datetime, batch: WriteBatch) -> None:
    """Keep the latest value of each field given in this change in ``case_field`` (derived, for search)."""
    fields = ctx.definition.fields_by_name()
    rows = []
    for name, value in ctx.field_values.items():
        f = fields.get(name)
        if f is None or value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (list, tuple)):
            text = ",".join(str(v) for v in value)
        else:
            text = value.isoformat() if hasattr(value, "isoformat") else str(value)
        number = value if f.type in _NUMERIC_TYPES and not isinstance(value, bool) else None
        rows.append({"case_id": ctx.case.id, "name": name, "type": f.type, "step_id": ctx.field_step,
                     "text_value": text[:200], "number_value": number, "updated_at": now})
    ctx.field_values = {}
    if not rows:
        return
    if ctx.new_case:
        batch.execute(_INSERT_FIELD, rows)
    else:  # one statement: the latest value replaces the row of that name
        batch.execute(_UPSERT_FIELD[batch.dialect_name], rows)


def _rebuild_work_items(ctx: CaseContext, now: datetime, ready: list, batch: WriteBatch) -> list[dict]:
    """Insert rows for newly ready steps, delete rows of steps no longer ready (diffed in memory)."""
    case = ctx.case
    now_ids = set()
    opened = []
    rows: list[dict] = []
    for task in ready:
        tid = str(task.id)
        now_ids.add(tid)
        if tid in ctx.ready_before:
            continue
        step = ctx.definition.steps.get(task.task_spec.bpmn_id)
        if step is None:
            continue
        due = step.time_limit.due_from(now) if step.time_limit else None
        rows.append({"case_id": case.id, "task_id": tid, "step_id": step.id, "step_name": step.name,
                     "role_key": step.role or "", "org_id": case.org_id, "procedure_id": case.procedure_id,
                     "ready_at": now, "due_at": due})
        opened.append({"step": step.id, "name": step.name, "role": step.role,
                       "due_at": audit.iso(due) if due else None})
    stale = ctx.ready_before - now_ids
    if stale and not ctx.new_case:
        _delete_stale(batch, _DELETE_ITEMS, case.id, stale)
    if rows:
        batch.execute(_INSERT_ITEM, rows)
    return opened


def _rebuild_timers(ctx: CaseContext, waiting: list, batch: WriteBatch) -> list[dict]:
    """Insert rows for timers that started waiting, delete rows of timers that fired or were cancelled."""
    case = ctx.case
    now_ids = set()
    started = []
    rows: list[dict] = []
    for task, deadline in waiting:
        tid = str(task.id)
        now_ids.add(tid)
        if tid in ctx.timers_before or deadline is None:
            continue
        due = audit.db_time(deadline)
        node = ctx.definition.nodes.get(task.task_spec.bpmn_id)
        rows.append({"case_id": case.id, "task_id": tid, "node_id": task.task_spec.bpmn_id, "due_at": due})
        started.append({"node": task.task_spec.bpmn_id, "name": node.name if node else "", "due_at": audit.iso(due)})
    stale = ctx.timers_before - now_ids
    if stale and not ctx.new_case:
        _delete_stale(batch, _DELETE_TIMERS, case.id, stale)
    if rows:
        batch.execute(_INSERT_TIMER, rows)
    return started


def _typed(f, value):
    """A value read back from a stored submission in the type the expression language compares."""
    if f is None or value is None:
        return value
    try:
        return forms.coerce(f, value)
    except ValueError:
        return value
