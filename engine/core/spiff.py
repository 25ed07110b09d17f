"""The one module that talks to SpiffWorkflow (3.2.0).

It gives SpiffWorkflow three things it lacks for Xiaowei:
- a script engine that evaluates only the safe expression language (no `eval`, no scripts);
- the engine's injectable clock for timers (SpiffWorkflow reads `datetime.now` directly);
- a serializer that stores a case's state without its process spec, which is re-attached from
  the cached published version (the spec is about half of a serialized case).
"""

from __future__ import annotations

import json
from copy import copy
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable, Iterable
from uuid import UUID, SafeUUID

import orjson

import SpiffWorkflow.bpmn.workflow as _bpmn_workflow_module
from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, TaskConverter
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.event_definitions import timer as _timer_module
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from . import clock
from .expressions import ExpressionError, compile_expression

SERIALIZER_VERSION = "spiff-3.2.0/xw-1"
PARAMS_KEY = "xw_params"

__all__ = [
    "BpmnWorkflow", "TaskState", "SafeScriptEngine", "SAFE_ENGINE", "parse_process",
    "new_workflow", "dump_state", "load_state", "ready_user_tasks", "waiting_timers",
    "run_engine", "SERIALIZER_VERSION", "PARAMS_KEY", "validate_xsd", "ready_data",
]


class _ClockedDatetime(datetime):
    """`datetime` whose `now()` asks the engine's clock; installed into SpiffWorkflow's timers."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        current = clock.now()
        return current.astimezone(tz) if tz is not None else current.astimezone().replace(tzinfo=None)


_timer_module.datetime = _ClockedDatetime  # type: ignore[attr-defined]


class _NoScriptEnvironment:
    """Environment that refuses everything: Xiaowei runs no scripts from BPMN files."""

    globals: dict[str, Any] = {}

    def evaluate(self, expression, context, external_context=None):
        raise ExpressionError("scripts are not allowed")

    def execute(self, script, context, external_context=None):
        raise ExpressionError("scripts are not allowed")

    def call_service(self, context, **kwargs):
        raise ExpressionError("service calls are not allowed")


class SafeScriptEngine(PythonScriptEngine):
    """Evaluates gateway conditions and timer expressions with the safe expression language."""

    def __init__(self, environment=None):
        super().__init__(environment=_NoScriptEnvironment())

    def validate(self, expression: str) -> None:
        compile_expression(expression)

    def evaluate(self, task, expression, external_context=None):
        try:
            params = task.workflow.top_workflow.data.get(PARAMS_KEY, {})
            return compile_expression(expression).evaluate(task.data, params)
        except ExpressionError as exc:
            error = WorkflowTaskException(f"表达式无法求值 / cannot evaluate {expression!r}: {exc}", task=task,
                                          exception=exc)
            error.xw_expression, error.xw_kind = expression, exc.kind  # read by engine.incidents
            raise error from None

    def execute(self, task, script, external_context=None):
        raise WorkflowTaskException("不允许执行脚本 / scripts are not allowed", task=task)

    def call_service(self, task, **kwargs):
        raise WorkflowTaskException("不允许调用服务 / service calls are not allowed", task=task)


SAFE_ENGINE = SafeScriptEngine()
# A workflow created anywhere without an explicit engine gets the safe one, never plain eval.
_bpmn_workflow_module.PythonScriptEngine = SafeScriptEngine  # type: ignore[attr-defined]


class _SpeclessWorkflowConverter(BpmnWorkflowConverter):
    """Serializes a workflow without its spec and restores it onto a spec object we pass in."""

    def to_dict(self, workflow):
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct):
        spec = dct.pop("spec")
        subprocess_specs = dct.pop("subprocess_specs", {})
        workflow = self.target_class(spec, subprocess_specs, script_engine=SAFE_ENGINE, deserializing=True)
        # Task id text -> UUID while loading: each id appears up to four times (key, id, parent, child).
        uuids = workflow.xw_uuids = {}
        restore = self.registry.restore
        tasks = {}
        for key, value in dct["tasks"].items():
            uuids[key] = uid = parse_uuid(key)
            tasks[uid] = restore(value, workflow=workflow)
        workflow.tasks = tasks
        workflow.task_tree = tasks.get(uuids.get(dct["root"]) or UUID(dct["root"]))
        del workflow.xw_uuids
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_MUTABLE = (dict, list, set)


def parse_uuid(text: str, _new=object.__new__, _set=object.__setattr__, _unknown=SafeUUID.unknown) -> UUID:
    """``UUID(text)`` for the canonical 36-character form that ``str(uuid)`` wrote (a stored state's
    task ids), in about half the time: the same object (equal, same hash and text), built from its
    integer without ``UUID.__init__``'s general parsing. Anything else goes to ``UUID`` itself."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return UUID(text)
    value = _new(UUID)
    _set(value, "int", int(text.replace("-", ""), 16))
    _set(value, "is_safe", _unknown)
    return value


class _TaskConverter(TaskConverter):
    """SpiffWorkflow's task converter, writing and reading the same dictionary with less work per
    task (loading a case restores every task of its history): ids parsed once per load, and the
    parent's data copied as ``DeepMerge.merge({}, parent.data)`` does (a new dict, mutable values
    copied one level) in one comprehension."""

    def from_dict(self, dct, workflow):
        uuids = getattr(workflow, "xw_uuids", None)
        if uuids is None:
            return super().from_dict(dct, workflow)

        def uid(text):
            value = uuids.get(text)
            if value is None:
                value = uuids[text] = parse_uuid(text)
            return value

        task_spec = workflow.spec.task_specs.get(dct["task_spec"])
        task = self.target_class(workflow, task_spec, state=dct["state"], id=uid(dct["id"]))
        task._parent = uid(dct["parent"]) if dct["parent"] is not None else None
        task._children = [uid(child) for child in dct["children"]]
        task.last_state_change = dct["last_state_change"]
        task.triggered = dct["triggered"]
        internal = dct["internal_data"]
        task.internal_data = self.registry.restore(internal) if internal else {}
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            task.workflow.top_workflow.event_manager.add_task(task)
        delta = dct.get("delta")
        parent = task.parent if delta else None
        if parent is not None:
            data = {key: copy(value) if isinstance(value, _MUTABLE) else value for key, value in parent.data.items()}
            updates = delta.get("updates")
            if updates:
                data.update(self.registry.restore(updates))
            for key in delta.get("deletions", ()):
                data.pop(key, None)
        else:
            data = self.registry.restore(dct["data"])
        task.data = data
        return task


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[BpmnWorkflow] = _SpeclessWorkflowConverter
    config[Task] = _TaskConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]), "Decimal")
    registry.register(Fraction, lambda v: {"value": str(v)}, lambda d: Fraction(d["value"]), "Fraction")
    return BpmnWorkflowSerializer(registry, version=SERIALIZER_VERSION)


_SERIALIZER = _make_serializer()
_ENCODER = _SERIALIZER._encoder_cls()
# Dates, times and dataclasses go to SpiffWorkflow's encoder (its typed form, as with the standard
# library); keys that are not text become text as json.dumps makes them.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
_STDLIB_MARK = " "  # leading white space (valid JSON): a state written by the standard library


def validate_xsd(root: etree._Element, filename: str | None = None) -> None:
    """Validate a parsed BPMN document against the BPMN 2.0 XSD (raises on failure)."""
    VALIDATOR.validate(root, filename)


def parse_process(root: etree._Element, process_id: str, filename: str = "<bpmn>"):
    """Build SpiffWorkflow's spec (and subprocess specs) for ``process_id`` from a parsed document."""
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_xml(root, filename)
    spec = parser.get_spec(process_id)
    return spec, parser.get_subprocess_specs(process_id)


def order_exits_as_written(spec, exits: dict[str, list[tuple[str, str | None]]]) -> None:
    """Evaluate each exclusive gateway's conditions in document order.

    SpiffWorkflow's parser sorts a gateway's exits by the y coordinate of their targets in the
    diagram, so moving a shape would change which of two true conditions wins. ``exits`` maps a
    gateway id to its outgoing (target id, condition) pairs in the order of the BPMN file.
    """
    for task_spec in spec.task_specs.values():
        order = exits.get(getattr(task_spec, "bpmn_id", None) or "")
        if not order or not getattr(task_spec, "cond_task_specs", None):
            continue
        rank = {pair: i for i, pair in enumerate(order)}

        def key(entry, rank=rank):
            condition, target = entry
            text = condition.args[0] if condition is not None and getattr(condition, "args", None) else None
            return rank.get((target, text), len(rank))

        task_spec.cond_task_specs.sort(key=key)


def new_workflow(spec, subprocess_specs, params: dict[str, Any]) -> BpmnWorkflow:
    """A new workflow with the safe engine and the case's frozen local parameters."""
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=SAFE_ENGINE)
    workflow.data[PARAMS_KEY] = dict(params)
    return workflow


def dump_state(workflow: BpmnWorkflow) -> str:
    """The workflow's state as JSON, without the spec (orjson: the same JSON as the standard
    library's, several times faster; values it does not know go through SpiffWorkflow's encoder)."""
    _SERIALIZER.registry._encoder_mode = True
    try:
        dct = _SERIALIZER.to_dict(workflow)
        try:
            return orjson.dumps(dct, default=_ENCODER.default, option=_ORJSON_OPTIONS).decode()
        except TypeError:  # what orjson refuses (an integer beyond 64 bits, say): the standard library,
            # marked so that it is read back by the standard library too (orjson would read such an
            # integer as a float). Forms bound numbers to 10**15, so states written before orjson have none.
            return _STDLIB_MARK + json.dumps(dct, cls=_SERIALIZER._encoder_cls, separators=(",", ":"),
                                             ensure_ascii=False)
    finally:
        _SERIALIZER.registry._encoder_mode = False


def _state_dict(state: str) -> dict:
    if not state.startswith(_STDLIB_MARK):
        try:
            return orjson.loads(state)
        except orjson.JSONDecodeError:  # JSON orjson does not read (NaN written by an older version)
            pass
    return json.loads(state, cls=_SERIALIZER.json_decoder_cls)


def load_state(state: str, spec, subprocess_specs) -> BpmnWorkflow:
    """Restore a workflow from :func:`dump_state` output onto its (cached) spec."""
    dct = _state_dict(state)
    dct["spec"] = spec
    dct["subprocess_specs"] = subprocess_specs
    return _SERIALIZER.from_dict(dct)


def ready_data(state: str, spec) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]] | None:
    """What :func:`load_state` then :func:`ready_user_tasks` would give of a stored state — the
    workflow's data, and (task spec name, data) of each READY user task in the same order — read
    from the stored dictionary without restoring the workflow: only the ready tasks' data is rebuilt
    (each task keeps its parent's data plus its delta), not every task of the case's history.
    None for a state with running subprocesses (their tasks are stored apart): restore it instead."""
    dct = _state_dict(state)
    if dct.get("subprocesses"):
        return None
    restore = _SERIALIZER.registry.restore
    tasks = dct["tasks"]
    specs = spec.task_specs
    data_of: dict[str, dict] = {}

    def data(task_id: str) -> dict:
        path = []
        tid = task_id
        while tid not in data_of:  # up to the nearest ancestor whose data is known or stored whole
            path.append(tid)
            entry = tasks[tid]
            if not entry.get("delta") or entry["parent"] is None:
                break
            tid = entry["parent"]
        for tid in reversed(path):
            entry = tasks[tid]
            delta = entry.get("delta")
            if delta and entry["parent"] is not None:
                found = {key: copy(value) if isinstance(value, _MUTABLE) else value
                         for key, value in data_of[entry["parent"]].items()}
                if delta.get("updates"):
                    found.update(restore(delta["updates"]))
                for key in delta.get("deletions", ()):
                    found.pop(key, None)
            else:
                found = restore(entry["data"])
            data_of[tid] = found
        return data_of[task_id]

    ready = []
    stack = [dct["root"]]  # depth first, children in order: the order of Workflow.get_tasks
    while stack:
        task_id = stack.pop()
        entry = tasks[task_id]
        task_spec = specs.get(entry["task_spec"])
        if entry["state"] == TaskState.READY and task_spec is not None and task_spec.manual:
            ready.append((entry["task_spec"], data(task_id)))
        if entry["children"] and entry["state"] >= TaskState.FUTURE:
            stack.extend(reversed(entry["children"]))
    return restore(dct.get("data", {})), ready


def ready_user_tasks(workflow: BpmnWorkflow) -> list:
    """READY tasks that need a person."""
    return workflow.get_tasks(state=TaskState.READY, manual=True)


def open_tasks(workflow: BpmnWorkflow) -> tuple[list, list[tuple[Any, datetime | None]]]:
    """READY user tasks and WAITING timers with deadlines, in one walk of the task tree."""
    ready, waiting = [], []
    for task in workflow.get_tasks(state=TaskState.READY | TaskState.WAITING):
        if task.state == TaskState.READY:
            if task.task_spec.manual:
                ready.append(task)
        else:
            waiting.append(task)
    return ready, _timers(waiting)


def waiting_timers(workflow: BpmnWorkflow) -> list[tuple[Any, datetime | None]]:
    """WAITING timer tasks with their deadlines (None when not yet computed)."""
    return _timers(workflow.get_tasks(state=TaskState.WAITING))


def _timers(tasks) -> list[tuple[Any, datetime | None]]:
    result = []
    for task in tasks:
        event = getattr(task.task_spec, "event_definition", None)
        if isinstance(event, TimerEventDefinition):
            value = task._get_internal_data("event_value")
            deadline = None
            if isinstance(value, str):
                try:
                    deadline = TimerEventDefinition.get_datetime(value)
                except ValueError:
                    deadline = None
            result.append((task, deadline))
    return result


def run_engine(workflow: BpmnWorkflow, on_task: Callable[[Any], None] | None = None) -> None:
    """Run engine steps (gateways, events, timers that are due) until people must act."""
    workflow.do_engine_steps(did_complete_task=on_task)
    # Timers that became due on refresh make more engine work ready.
    while workflow.get_tasks(state=TaskState.READY, manual=False):
        workflow.do_engine_steps(did_complete_task=on_task)


def task_spec_names(tasks: Iterable) -> list[str]:
    return [t.task_spec.bpmn_id or t.task_spec.name for t in tasks]


def migration_diff(workflow: BpmnWorkflow, spec, subprocess_specs):
    """SpiffWorkflow's alignment of a running workflow with another spec: ``(top_diff, sub_diffs)``;
    :func:`migrate` applies it (a case moving to a new published version)."""
    from SpiffWorkflow.bpmn.util.diff import diff_workflow

    return diff_workflow(_SERIALIZER.registry, workflow, spec, subprocess_specs)


def migrate(top_diff, workflow: BpmnWorkflow, spec) -> None:
    from SpiffWorkflow.bpmn.util.diff import migrate_workflow

    migrate_workflow(top_diff, workflow, spec)


def task_in_traceback(exc: BaseException):
    """The SpiffWorkflow task being worked on where ``exc`` was raised (innermost frame that has one)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        for name in ("my_task", "task"):
            value = tb.tb_frame.f_locals.get(name)
            if isinstance(value, Task):
                found = value
        tb = tb.tb_next
    return found


def timer_deadline(value: str) -> datetime | None:
    """The deadline a stored timer's event value names (None when it names none)."""
    try:
        return TimerEventDefinition.get_datetime(value)
    except ValueError:
        return None
