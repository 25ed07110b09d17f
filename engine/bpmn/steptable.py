"""Generate BPMN 2.0 procedures from step tables (任务单).

A step table (``processes/tables/*.yaml``, see ``docs/step-tables.md``) lists the steps of a
procedure in order: who does each, its kind, time limit, form and what happens when a checkpoint
fails. :func:`build_bpmn` turns it into a BPMN 2.0 file that carries the ``xw:`` extensions of
``docs/bpmn-extensions.md`` and a full diagram (one pool, one lane per role: lanes as
columns, the flow from top to bottom, see :mod:`engine.bpmn.swimlanes`).

The generation is deterministic: the same table always yields the same bytes, so the committed
``processes/<id>.bpmn`` files can be compared with a fresh generation.

Command line::

    python -m engine.bpmn.steptable processes/tables/V-DEC-01.yaml -o processes/V-DEC-01.bpmn
    python -m engine.bpmn.steptable --all
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml
from lxml import etree

from engine.core.definitions import BPMN as BPMN_NS, BPMNDI as BPMNDI_NS, DC as DC_NS, DI as DI_NS
from engine.bpmn.english import english
from engine.core.definitions import XSI as XSI_NS, XW as XW_NS
from engine.core.expressions import ExpressionError, check
from engine.core import voting
from engine.bpmn.swimlanes import Box, Layout, Layouter, text_width  # noqa: F401 (re-exported)

PROCESSES_DIR = Path(__file__).resolve().parents[2] / "processes"
TABLES_DIR = PROCESSES_DIR / "tables"
REGISTRY_DIR = PROCESSES_DIR  # roles.yaml and categories.yaml

NSMAP = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS, "xsi": XSI_NS, "xw": XW_NS}
TARGET_NAMESPACE = "urn:xiaowei:procedures"

KINDS = ("task", "meeting", "vote", "approval", "disclosure", "supervision")
FIELD_TYPES = ("text", "textarea", "integer", "decimal", "money", "boolean", "date", "datetime",
               "choice", "person", "idnumber", "phone")
PARAMETER_TYPES = ("money", "integer", "days", "ratio", "text")
EDITIONS = ("village", "community", "both", "township")
OUTCOMES = ("completed", "rejected", "terminated")
LEGAL_STATUSES = ("confirmed", "recalled", "typical")
SUGAR_KINDS = {"vote": "vote", "approval": "approval", "disclosure": "disclosure"}

ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TIME_LIMIT_RE = re.compile(r"^\d+(d|wd|h)$")

TABLE_KEYS = {"id", "name", "name_en", "category", "edition", "handling_subject", "handling_mode",
              "overall_time_limit", "description", "requires", "legal_basis", "risk_points",
              "parameters", "lanes", "steps", "ends", "review"}
STEP_KEYS = {"id", "name", "role", "kind", "time_limit", "instructions", "basis", "evidence",
             "proxy", "supervision_note", "fields", "constraints", "gateway", "next", "vote",
             "approval", "disclosure", "supervision", "review", "evidence_required", "name_en", "instructions_en"}
FIELD_KEYS = {"name", "label", "type", "required", "public", "unit", "min", "max", "maxLength",
              "help", "options", "default", "date_rule", "label_en"}
# What a date field records (checked on every submission, engine/core/clerk.py): "act" (default) — the
# date something was done in this case: not in the future, not before the case began, not before a
# notice that had to end first; "planned" — may lie ahead (a lease end); "record" — a fact from before
# the case (when an asset was acquired): not in the future.
DATE_RULES = ("act", "planned", "record", "observed")
PARAMETER_KEYS = {"key", "label", "type", "unit", "default", "source", "review"}
# Vote rules: "at_least" (以上, the number itself included) or "more_than" (过半数, strictly more):
# the comparison of a count with the threshold that meets the rule, and the one that fails it.
VOTE_RULES = {"at_least": (">=", "<"), "more_than": (">", "<=")}
SUGAR_KEYS = {
    "vote": ({"body", "quorum_param", "pass_param", "on_no_quorum", "on_fail"},
             {"matter", "pass_of", "quorum_rule", "pass_rule", "household_quorum_param"}),
    "approval": ({"on_reject"}, set()),
    "disclosure": ({"what", "where", "min_days_param"}, {"objection"}),
    "supervision": ({"role", "action", "on_return"}, set()),
    "objection": ({"role", "on_upheld"}, set()),
    "supervision_note": ({"role", "action"}, set()),
}


class StepTableError(ValueError):
    """A step table that cannot be turned into a procedure; the message names file and place."""


# --------------------------------------------------------------------------------------------
# Registries


def _read_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@lru_cache(maxsize=None)
def role_names() -> dict[str, str]:
    """Role key → Chinese name, from ``processes/roles.yaml``."""
    return {entry["key"]: entry["zh"] for entry in _read_yaml(REGISTRY_DIR / "roles.yaml")}


@lru_cache(maxsize=None)
def category_codes() -> frozenset[str]:
    """The category codes of ``processes/categories.yaml``."""
    return frozenset(entry["code"] for entry in _read_yaml(REGISTRY_DIR / "categories.yaml"))


# --------------------------------------------------------------------------------------------
# Loading and validation


def load_table(path: str | Path) -> dict:
    """Read and validate the step table at ``path``; raise :class:`StepTableError` if invalid."""
    path = Path(path)
    try:
        table = _read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise StepTableError(f"{path}: cannot read step table: {exc}") from exc
    validate_table(table, source=str(path))
    return table


def validate_table(table: Any, source: str = "<table>") -> None:
    """Check a parsed step table against ``docs/step-tables.md``.

    Raises :class:`StepTableError` with ``source`` and the offending step or key in the message.
    """
    _Validator(source).run(table)


class _Validator:
    """Checks one table; every failure raises a :class:`StepTableError` naming ``source``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lanes: set[str] = set()
        self.parameters: set[str] = set()
        self.defaults: dict[str, Any] = {}
        self.targets: set[str] = set()

    def fail(self, where: str, message: str) -> None:
        raise StepTableError(f"{self.source}: {where}: {message}")

    def run(self, table: Any) -> None:
        self.mapping(table, "table")
        self.keys(table, "table", {"id", "name", "lanes", "steps", "ends"}, TABLE_KEYS)
        self.header(table)
        self.check_parameters(table.get("parameters") or [])
        self.check_lanes(table["lanes"])
        self.check_ends(table["ends"])
        self.check_steps(table["steps"])
        self.check_ids(table)
        for step in table["steps"]:
            self.check_step(step, f"step {step['id']!r}")
        self.check_reachable(table)

    # -- generic helpers --------------------------------------------------------------------

    def mapping(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {type(value).__name__}")

    def sequence(self, value: Any, where: str, allow_empty: bool = False) -> None:
        if not isinstance(value, list) or (not value and not allow_empty):
            self.fail(where, "expected a non-empty list" if not allow_empty else "expected a list")

    def keys(self, value: Mapping, where: str, required: set[str], allowed: set[str]) -> None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            hint = f"allowed: {', '.join(sorted(allowed))}"
            if value[unknown[0]] is None and not unknown[0].isascii():
                hint = ("an unquoted ASCII comma ',' inside {…} ends the text before it; "
                        "quote the text or write the full-width comma ','")
            self.fail(where, f"unknown key {unknown[0]!r} ({hint})")
        missing = sorted(key for key in required if value.get(key) in (None, ""))
        if missing:
            self.fail(where, f"missing key {missing[0]!r}")

    def text(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"expected non-empty text, got {value!r}")

    def identifier(self, value: Any, where: str, pattern: re.Pattern = ID_RE) -> None:
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(where, f"{value!r} is not an ASCII identifier")

    def choice(self, value: Any, where: str, allowed: Sequence[str], what: str) -> None:
        if value not in allowed:
            self.fail(where, f"unknown {what} {value!r} (allowed: {', '.join(allowed)})")

    def target(self, value: Any, where: str) -> None:
        if value not in self.targets:
            self.fail(where, f"unknown target {value!r} (not a step or end id)")

    def lane(self, role: Any, where: str) -> None:
        if role not in role_names():
            self.fail(where, f"unknown role {role!r} (see processes/roles.yaml)")
        if role not in self.lanes:
            self.fail(where, f"role {role!r} has no lane in this table")

    def expression(self, source: Any, where: str) -> None:
        if not isinstance(source, str):
            self.fail(where, f"expected an expression, got {source!r}")
        try:
            parsed = check(source)
        except ExpressionError as exc:
            self.fail(where, f"invalid expression {source!r}: {exc}")
        unknown = sorted(parsed.params - self.parameters)
        if unknown:
            self.fail(where, f"expression {source!r} uses undeclared parameter {unknown[0]!r}")

    def parameter(self, key: Any, where: str) -> None:
        if key not in self.parameters:
            self.fail(where, f"undeclared parameter {key!r}")

    # -- sections ---------------------------------------------------------------------------

    def header(self, table: Mapping) -> None:
        self.identifier(table["id"], "id")
        self.text(table["name"], "name")
        if "category" in table and table["category"] not in category_codes():
            self.fail("category", f"unknown category {table['category']!r}")
        if "edition" in table:
            self.choice(table["edition"], "edition", EDITIONS, "edition")
        requires = table.get("requires") or {}
        self.mapping(requires, "requires")
        self.keys(requires, "requires", set(), {"disclosure", "supervision"})
        for key, value in requires.items():
            if not isinstance(value, bool):
                self.fail(f"requires.{key}", f"expected true or false, got {value!r}")
        for index, basis in enumerate(table.get("legal_basis") or []):
            where = f"legal_basis[{index}]"
            self.mapping(basis, where)
            self.keys(basis, where, {"source"}, {"source", "article", "status", "note", "review"})
            if "status" in basis:
                self.choice(basis["status"], where, LEGAL_STATUSES, "status")
        for index, risk in enumerate(table.get("risk_points") or []):
            self.text(risk, f"risk_points[{index}]")

    def check_parameters(self, parameters: Any) -> None:
        self.sequence(parameters, "parameters", allow_empty=True)
        for index, parameter in enumerate(parameters):
            where = f"parameters[{index}]"
            self.mapping(parameter, where)
            self.keys(parameter, where, {"key", "label", "type"}, PARAMETER_KEYS)
            self.identifier(parameter["key"], where, NAME_RE)
            self.choice(parameter["type"], where, PARAMETER_TYPES, "parameter type")
            if parameter["key"] in self.parameters:
                self.fail(where, f"duplicate parameter {parameter['key']!r}")
            self.parameters.add(parameter["key"])
            self.defaults[parameter["key"]] = parameter.get("default")

    def check_lanes(self, lanes: Any) -> None:
        self.sequence(lanes, "lanes")
        for index, lane in enumerate(lanes):
            where = f"lanes[{index}]"
            self.mapping(lane, where)
            self.keys(lane, where, {"role"}, {"role", "label", "label_en"})
            if lane["role"] not in role_names():
                self.fail(where, f"unknown role {lane['role']!r} (see processes/roles.yaml)")
            if lane["role"] in self.lanes:
                self.fail(where, f"duplicate lane for role {lane['role']!r}")
            self.lanes.add(lane["role"])

    def check_ends(self, ends: Any) -> None:
        self.sequence(ends, "ends")
        for index, end in enumerate(ends):
            where = f"ends[{index}]"
            self.mapping(end, where)
            self.keys(end, where, {"id", "name"}, {"id", "name", "outcome"})
            self.identifier(end["id"], where)
            self.choice(end.get("outcome", "completed"), where, OUTCOMES, "outcome")
            self.targets.add(end["id"])
        if not any(end.get("outcome", "completed") == "completed" for end in ends):
            self.fail("ends", "no end with outcome 'completed'")

    def check_steps(self, steps: Any) -> None:
        self.sequence(steps, "steps")
        for index, step in enumerate(steps):
            where = f"steps[{index}]"
            self.mapping(step, where)
            self.keys(step, where, {"id", "name", "role", "kind"}, STEP_KEYS)
            self.identifier(step["id"], where)
            self.targets.add(step["id"])

    def check_ids(self, table: Mapping) -> None:
        seen: dict[str, str] = {"start": "the start event"}
        own = [(step["id"], f"step {step['id']!r}") for step in table["steps"]]
        own += [(end["id"], f"end {end['id']!r}") for end in table["ends"]]
        generated = [(node_id, f"node generated for step {step['id']!r}")
                     for step in table["steps"] for node_id in _generated_ids(step)]
        for node_id, owner in own + generated:
            if node_id in seen or node_id == table["id"] or node_id.startswith(("Lane_", "flow_")):
                self.fail(owner, f"duplicate or reserved id {node_id!r}")
            seen[node_id] = owner

    # -- steps ------------------------------------------------------------------------------

    def check_step(self, step: Mapping, where: str) -> None:
        self.text(step["name"], f"{where}.name")
        self.lane(step["role"], f"{where}.role")
        self.choice(step["kind"], f"{where}.kind", KINDS, "kind")
        limit = step.get("time_limit")
        if limit is not None and not (isinstance(limit, str) and TIME_LIMIT_RE.match(limit)):
            self.fail(f"{where}.time_limit", f"bad time limit {limit!r} (expected 3d, 5wd or 48h)")
        for flag in ("proxy", "evidence_required"):
            if flag in step and not isinstance(step[flag], bool):
                self.fail(f"{where}.{flag}", f"expected true or false, got {step[flag]!r}")
        if step.get("evidence_required") and not step.get("evidence"):
            self.fail(f"{where}.evidence_required", "name the evidence (evidence: …) that is required")
        if "next" in step:
            self.target(step["next"], f"{where}.next")
        self.check_fields(step.get("fields") or [], f"{where}.fields")
        self.check_constraints(step.get("constraints") or [], f"{where}.constraints")
        self.check_gateway(step.get("gateway") or [], f"{where}.gateway")
        self.check_sugar(step, where)
        names = [item["name"] for item in _all_fields(step)]
        duplicate = next((name for name in names if names.count(name) > 1), None)
        if duplicate:
            self.fail(f"{where}.fields", f"duplicate field {duplicate!r} (checkpoints add some fields)")

    def check_fields(self, fields: Any, where: str) -> None:
        self.sequence(fields, where, allow_empty=True)
        for index, item in enumerate(fields):
            here = f"{where}[{index}]"
            self.mapping(item, here)
            self.keys(item, here, {"name", "label", "type"}, FIELD_KEYS)
            self.identifier(item["name"], here, NAME_RE)
            self.choice(item["type"], here, FIELD_TYPES, "field type")
            if "date_rule" in item:
                self.choice(item["date_rule"], f"{here}.date_rule", DATE_RULES, "date rule")
                if item["type"] not in ("date", "datetime"):
                    self.fail(f"{here}.date_rule", "only date and datetime fields have a date rule")
            options = item.get("options")
            if item["type"] == "choice":
                self.sequence(options, f"{here}.options")
                for number, option in enumerate(options):
                    self.mapping(option, f"{here}.options[{number}]")
                    self.keys(option, f"{here}.options[{number}]", {"value", "label"}, {"value", "label", "label_en"})
            elif options is not None:
                self.fail(here, "options are only allowed on choice fields")
            for flag in ("required", "public"):
                if flag in item and not isinstance(item[flag], bool):
                    self.fail(f"{here}.{flag}", f"expected true or false, got {item[flag]!r}")

    def check_constraints(self, constraints: Any, where: str) -> None:
        self.sequence(constraints, where, allow_empty=True)
        for index, item in enumerate(constraints):
            here = f"{where}[{index}]"
            self.mapping(item, here)
            self.keys(item, here, {"test", "message"}, {"test", "message"})
            self.expression(item["test"], f"{here}.test")

    def check_gateway(self, branches: Any, where: str) -> None:
        self.sequence(branches, where, allow_empty=True)
        for index, item in enumerate(branches):
            here = f"{where}[{index}]"
            self.mapping(item, here)
            self.keys(item, here, {"when", "to"}, {"when", "to", "label"})
            self.expression(item["when"], f"{here}.when")
            self.target(item["to"], f"{here}.to")

    def check_sugar(self, step: Mapping, where: str) -> None:
        for key, kind in SUGAR_KINDS.items():
            if key in step and step["kind"] != kind:
                self.fail(f"{where}.{key}", f"`{key}` requires kind {kind!r}, not {step['kind']!r}")
            if step["kind"] == kind and key not in step:
                self.fail(where, f"a step of kind {kind!r} needs a `{key}` checkpoint")
        for key in ("vote", "approval", "disclosure", "supervision", "supervision_note"):
            if key in step:
                self.sugar_keys(step[key], key, f"{where}.{key}")
        self.check_checkpoint_refs(step, where)

    def sugar_keys(self, value: Any, key: str, where: str) -> None:
        required, optional = SUGAR_KEYS[key]
        self.mapping(value, where)
        self.keys(value, where, required, required | optional)

    def check_checkpoint_refs(self, step: Mapping, where: str) -> None:
        vote = step.get("vote")
        if vote:
            self.check_vote(vote, f"{where}.vote")
        if step.get("approval"):
            self.target(step["approval"]["on_reject"], f"{where}.approval.on_reject")
        if step.get("disclosure"):
            self.check_disclosure(step["disclosure"], f"{where}.disclosure")
        supervision = step.get("supervision")
        if supervision:
            self.lane(supervision["role"], f"{where}.supervision.role")
            self.target(supervision["on_return"], f"{where}.supervision.on_return")
        note = step.get("supervision_note")
        if note and note["role"] not in role_names():
            self.fail(f"{where}.supervision_note.role", f"unknown role {note['role']!r}")

    def check_vote(self, vote: Mapping, where: str) -> None:
        """A vote names its body (processes/bodies.yaml); its rule may be stricter than the body's
        lawful rule, never weaker."""
        self.choice(vote["body"], f"{where}.body", tuple(voting.bodies()), "meeting body")
        body = voting.bodies()[vote["body"]]
        if vote.get("matter") is not None:
            self.choice(vote["matter"], f"{where}.matter", tuple(body.matters), f"matter of {vote['body']}")
        law = voting.lawful_rule(vote["body"], vote.get("matter"))
        self.parameter(vote["quorum_param"], f"{where}.quorum_param")
        self.parameter(vote["pass_param"], f"{where}.pass_param")
        if "household_quorum_param" in vote:
            if law.quorum_households is None:
                self.fail(f"{where}.household_quorum_param", f"{law.name} has no quorum counted by households")
            self.parameter(vote["household_quorum_param"], f"{where}.household_quorum_param")
        self.choice(vote.get("pass_of", law.passing.of), f"{where}.pass_of", ("present", "members"), "pass_of")
        for rule in ("quorum_rule", "pass_rule"):
            self.choice(vote.get(rule, "at_least"), f"{where}.{rule}", tuple(VOTE_RULES), rule)
        self.target(vote["on_no_quorum"], f"{where}.on_no_quorum")
        self.target(vote["on_fail"], f"{where}.on_fail")
        rule = voting.step_rule(_vote_attributes(vote), self.defaults)
        reasons = voting.weaker_than_law(rule) if rule is not None else []
        if reasons:
            self.fail(where, "vote rule weaker than the law: " + " ".join(reasons))

    def check_disclosure(self, disclosure: Mapping, where: str) -> None:
        self.parameter(disclosure["min_days_param"], f"{where}.min_days_param")
        places = disclosure["where"]
        if isinstance(places, str):
            places = [places]
        self.sequence(places, f"{where}.where")
        for index, place in enumerate(places):
            self.text(place, f"{where}.where[{index}]")
        objection = disclosure.get("objection")
        if objection is not None:
            self.sugar_keys(objection, "objection", f"{where}.objection")
            self.lane(objection["role"], f"{where}.objection.role")
            self.target(objection["on_upheld"], f"{where}.objection.on_upheld")

    def check_reachable(self, table: Mapping) -> None:
        graph = _GraphBuilder(table).build()
        reached = graph.reachable()
        for node in graph.nodes.values():
            if node.id not in reached:
                self.fail(f"{node.kind} {node.id!r}", "is not reachable from the start")


def _generated_ids(step: Mapping) -> list[str]:
    """The ids of the extra nodes the generator adds for a step's checkpoints."""
    sid = step["id"]
    ids = []
    if step.get("supervision"):
        ids += [f"{sid}_supervision", f"{sid}_supervision_gw"]
    if step.get("vote"):
        ids.append(f"{sid}_vote_gw")
    if step.get("approval"):
        ids.append(f"{sid}_approval_gw")
    disclosure = step.get("disclosure")
    if disclosure:
        ids.append(f"{sid}_period")
        if disclosure.get("objection"):
            ids += [f"{sid}_objections", f"{sid}_objections_gw"]
    if step.get("gateway"):
        ids.append(f"{sid}_gw")
    return ids


# --------------------------------------------------------------------------------------------
# Checkpoint sugar: standard fields and constraints


def _field(name: str, label: str, type_: str, public: bool = False, **extra: Any) -> dict:
    return {"name": name, "label": label, "type": type_, "required": True, "public": public, **extra}


APPROVAL_FIELDS = [
    _field("approved", "是否同意", "boolean"),
    _field("opinion", "审核意见", "textarea"),
]
DISCLOSURE_FIELDS = [
    _field("notice_start", "公示开始日期", "date"),
    _field("notice_content", "公示内容", "textarea", public=True),
]
OBJECTION_FIELDS = [
    _field("objection_count", "收到异议件数", "integer", public=True, min=0),
    _field("objection_upheld", "异议成立", "boolean", public=True),
    _field("objection_reply", "异议核实与答复情况", "textarea", public=True),
]
OBJECTION_CONSTRAINTS = [
    {"test": "objection_count > 0 or not objection_upheld", "message": "无异议时不能认定异议成立"},
]
SUPERVISION_FIELDS = [
    _field("signed_off", "签字确认", "boolean"),
    _field("supervision_opinion", "监督意见", "textarea", public=True),
]
SUGAR_FIELDS = {"approval": APPROVAL_FIELDS, "disclosure": DISCLOSURE_FIELDS}


def _field_ref(step_id: str, name: str) -> str:
    """How a generated vote condition or constraint names the field ``name`` of step ``step_id``.
    The one place to change when fields are qualified by their step (bare names for now)."""
    return name


def _vote_attributes(vote: Mapping) -> dict[str, str]:
    """The ``xw:vote`` attributes of a table's vote spec (rules resolved from its body when omitted)."""
    law = _vote_law(vote)
    attributes = {"body": vote.get("body"), "matter": vote.get("matter"), "quorumParam": vote.get("quorum_param"),
                  "passParam": vote.get("pass_param"), "householdQuorumParam": vote.get("household_quorum_param")}
    if law is not None:
        attributes.update(quorumRule=vote.get("quorum_rule", law.quorum.rule),
                          passRule=vote.get("pass_rule", law.passing.rule),
                          passOf=vote.get("pass_of", law.passing.of))
    return {key: str(value) for key, value in attributes.items() if value is not None}


def _vote_law(vote: Mapping | None) -> "voting.VoteRule | None":
    """The lawful rule of a vote spec's body (None when the spec names no known body)."""
    if not vote or vote.get("body") not in voting.bodies():
        return None
    try:
        return voting.lawful_rule(vote["body"], vote.get("matter"))
    except KeyError:
        return None


def _vote_shape(step: Mapping) -> "voting.VoteRule | None":
    """The rule that decides a vote step's form: its body's, with the step's own household option."""
    vote = step.get("vote")
    law = _vote_law(vote)
    if law is None:
        return None
    return voting.step_rule(_vote_attributes(vote), {}) or law


def _all_fields(step: Mapping) -> list[dict]:
    """The form of a step: the fields its checkpoint adds, then its own."""
    if step.get("vote"):
        shape = _vote_shape(step)
        sugar = voting.vote_fields(shape) if shape is not None else []
    else:
        sugar = next((SUGAR_FIELDS[key] for key in SUGAR_FIELDS if step.get(key)), [])
    return [*sugar, *(step.get("fields") or [])]


# --------------------------------------------------------------------------------------------
# Flow graph


@dataclass
class Node:
    """A flow node of the generated process."""

    id: str
    kind: str  # start | task | gateway | timer | end
    name: str | None
    lane: str | None
    order: int
    task: dict | None = None
    timer: dict | None = None
    outcome: str | None = None
    default: str | None = None
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)


@dataclass
class Flow:
    """A sequence flow of the generated process."""

    id: str
    source: str
    target: str
    name: str | None = None
    condition: str | None = None


@dataclass
class Graph:
    """Nodes (in creation order) and flows (in id order) of one procedure."""

    nodes: dict[str, Node]
    flows: list[Flow]

    def reachable(self) -> set[str]:
        """Ids of the nodes reachable from the start event."""
        successors: dict[str, list[str]] = {}
        for flow in self.flows:
            successors.setdefault(flow.source, []).append(flow.target)
        seen, stack = {"start"}, ["start"]
        while stack:
            for target in successors.get(stack.pop(), []):
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        return seen


class _GraphBuilder:
    """Expands a validated table into nodes and flows, chaining each step's exits."""

    def __init__(self, table: Mapping) -> None:
        self.table = table
        self.nodes: dict[str, Node] = {}
        self.flows: list[Flow] = []
        self.params = {p["key"]: p for p in table.get("parameters") or []}
        self.default_labels: dict[str, str] = {}

    def build(self) -> Graph:
        steps = self.table["steps"]
        self.add("start", "start", "开始", steps[0]["role"])
        self.connect("start", steps[0]["id"])
        completed = next(end["id"] for end in self.table["ends"]
                         if end.get("outcome", "completed") == "completed")
        for index, step in enumerate(steps):
            fallthrough = steps[index + 1]["id"] if index + 1 < len(steps) else completed
            self.expand_step(step, step.get("next", fallthrough))
        for end in self.table["ends"]:
            node = self.add(end["id"], "end", end["name"], self.end_lane(end["id"]))
            node.outcome = end.get("outcome", "completed")
        for flow in self.flows:
            self.nodes[flow.source].outgoing.append(flow.id)
            self.nodes[flow.target].incoming.append(flow.id)
        return Graph(self.nodes, self.flows)

    def add(self, node_id: str, kind: str, name: str | None, lane: str | None) -> Node:
        node = Node(node_id, kind, name, lane, len(self.nodes))
        self.nodes[node_id] = node
        return node

    def connect(self, source: str, target: str, name: str | None = None,
                condition: str | None = None) -> Flow:
        flow = Flow(f"flow_{len(self.flows) + 1}", source, target, name, condition)
        self.flows.append(flow)
        return flow

    def proceed(self, source: str, target: str) -> None:
        """Connect ``source`` onwards; from a gateway this is its (labelled) default flow."""
        flow = self.connect(source, target, self.default_labels.get(source))
        node = self.nodes[source]
        if node.kind == "gateway":
            node.default = flow.id

    def end_lane(self, end_id: str) -> str | None:
        source = next((flow.source for flow in self.flows if flow.target == end_id), None)
        return self.nodes[source].lane if source else None

    def gateway(self, after: str, node_id: str, name: str | None) -> str:
        self.add(node_id, "gateway", name, self.nodes[after].lane)
        self.proceed(after, node_id)
        return node_id

    # -- a step and its exits ---------------------------------------------------------------

    def expand_step(self, step: Mapping, next_target: str) -> None:
        self.add(step["id"], "task", step["name"], step["role"]).task = _step_task(step)
        current = step["id"]
        for expand in (self.supervision, self.vote, self.approval, self.disclosure, self.branches):
            current = expand(step, current)
        self.proceed(current, next_target)

    def supervision(self, step: Mapping, current: str) -> str:
        spec = step.get("supervision")
        if not spec:
            return current
        task_id = f"{step['id']}_supervision"
        node = self.add(task_id, "task", f"{step['name']}·监督", spec["role"])
        node.task = _supervision_task(spec)
        self.proceed(current, task_id)
        gateway = self.gateway(task_id, f"{task_id}_gw", "监督签字?")
        self.connect(gateway, spec["on_return"], "退回整改", "signed_off == False")
        return gateway

    def vote(self, step: Mapping, current: str) -> str:
        spec = step.get("vote")
        if not spec:
            return current
        gateway = self.gateway(current, f"{step['id']}_vote_gw", "表决结果?")
        rule = _vote_shape(step)
        assert rule is not None  # validated
        names = {"quorum": spec["quorum_param"], "pass": spec["pass_param"],
                 "quorum_households": spec.get("household_quorum_param", "")}
        no_quorum, fail = voting.vote_conditions(rule, names, lambda name: _field_ref(step["id"], name))
        self.connect(gateway, spec["on_no_quorum"], "到会不足法定人数", no_quorum)
        self.connect(gateway, spec["on_fail"], "未通过", fail)
        self.default_labels[gateway] = "通过"
        return gateway

    def approval(self, step: Mapping, current: str) -> str:
        spec = step.get("approval")
        if not spec:
            return current
        gateway = self.gateway(current, f"{step['id']}_approval_gw", "是否同意?")
        self.connect(gateway, spec["on_reject"], "不同意", "approved == False")
        self.default_labels[gateway] = "同意"
        return gateway

    def disclosure(self, step: Mapping, current: str) -> str:
        spec = step.get("disclosure")
        if not spec:
            return current
        timer_id = f"{step['id']}_period"
        key = spec["min_days_param"]
        days = self.params[key].get("default", "N")
        timer = self.add(timer_id, "timer", f"公示期(不少于{days}天)", self.nodes[current].lane)
        timer.timer = {"expression": f'duration_days(param("{key}"))', "for": step["id"]}
        self.proceed(current, timer_id)
        objection = spec.get("objection")
        if not objection:
            return timer_id
        task_id = f"{step['id']}_objections"
        node = self.add(task_id, "task", "公示期满·核实异议", objection["role"])
        node.task = _objection_task()
        self.proceed(timer_id, task_id)
        gateway = self.gateway(task_id, f"{task_id}_gw", "异议成立?")
        self.connect(gateway, objection["on_upheld"], "异议成立", "objection_upheld == True")
        return gateway

    def branches(self, step: Mapping, current: str) -> str:
        branches = step.get("gateway")
        if not branches:
            return current
        gateway = self.gateway(current, f"{step['id']}_gw", None)
        earlier: list[str] = []
        for branch in branches:
            self.connect(gateway, branch["to"], branch.get("label"), first_match(branch["when"], earlier))
            earlier.append(branch["when"])
        return gateway


def first_match(when: str, earlier: list[str]) -> str:
    """``when`` guarded by the negation of every earlier branch it could overlap with, so that at
    most one exit of a gateway matches: "first match wins" then holds whatever order the engine
    evaluates the exits in (SpiffWorkflow orders them by the diagram position of their targets).
    Branches that are disjoint by their form (``kind == "a"`` / ``kind == "b"``, ``x < E`` /
    ``x >= E``) need no guard."""
    guards = [f"not ({c})" for c in earlier if not _disjoint(c, when)]
    if not guards:
        return when
    return " and ".join(guards + [when if _binds_tighter_than_and(when) else f"({when})"])


_RELATIONS = {ast.Lt: {"<"}, ast.LtE: {"<", "="}, ast.Eq: {"="}, ast.NotEq: {"<", ">"},
              ast.GtE: {"=", ">"}, ast.Gt: {">"}}


def _atoms(expression: str) -> list[tuple[str, str, type, Any]]:
    """The ``name op expression`` conjuncts of a condition: (name, right side, operator, constant)."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return []
    parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    atoms = []
    for part in parts:
        if (isinstance(part, ast.Compare) and len(part.ops) == 1 and isinstance(part.left, ast.Name)
                and type(part.ops[0]) in _RELATIONS):
            right = part.comparators[0]
            constant = right.value if isinstance(right, ast.Constant) else None
            atoms.append((part.left.id, ast.unparse(right), type(part.ops[0]), constant))
    return atoms


def _disjoint(a: str, b: str) -> bool:
    """True when the two conditions can never hold together, judged by their conjuncts alone."""
    for name, right, op, constant in _atoms(a):
        for name2, right2, op2, constant2 in _atoms(b):
            if name != name2:
                continue
            if right == right2 and not _RELATIONS[op] & _RELATIONS[op2]:
                return True
            if (op is op2 is ast.Eq and constant is not None and constant2 is not None
                    and constant != constant2):
                return True
    return False


def _binds_tighter_than_and(expression: str) -> bool:
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return False
    return not isinstance(tree, (ast.IfExp, ast.Lambda)) and not (
        isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.Or))


def _step_task(step: Mapping) -> dict:
    """The user-task payload of a table step (documentation, xw:step data, form, checkpoints)."""
    vote = step.get("vote")
    disclosure = step.get("disclosure")
    shape = _vote_shape(step) if vote else None
    sugar = voting.vote_constraints(shape, lambda name: _field_ref(step["id"], name)) if shape else []
    constraints = sugar + list(step.get("constraints") or [])
    places = disclosure["where"] if disclosure else None
    return {
        "documentation": step.get("instructions"),
        "name_en": step.get("name_en"), "instructions_en": step.get("instructions_en"),
        "step": {"kind": step["kind"], "timeLimit": step.get("time_limit"),
                 "evidence": step.get("evidence"), "proxy": step.get("proxy"),
                 # A disclosure keeps its notice photo or scan unless the table says otherwise.
                 "evidenceRequired": step.get("evidence_required",
                                              bool(step.get("evidence")) and step["kind"] == "disclosure")},
        "basis": step.get("basis"),
        "review": step.get("review"),
        "fields": _all_fields(step),
        "constraints": constraints,
        "disclosure": disclosure and {
            "what": disclosure["what"],
            "where": places if isinstance(places, str) else ";".join(places),
            "minDaysParam": disclosure["min_days_param"]},
        "vote": vote and _vote_attributes(vote),
        "supervision": ({"role": step["role"], "action": step["name"]}
                        if step["kind"] == "supervision" else None),
        "supervisionNote": step.get("supervision_note"),
    }


def _supervision_task(spec: Mapping) -> dict:
    return {
        "documentation": f"{spec['action']}。签字确认;发现问题的,不签字并退回整改。",
        "step": {"kind": "supervision"},
        "fields": SUPERVISION_FIELDS,
        "constraints": [],
        "supervision": {"role": spec["role"], "action": spec["action"]},
    }


def _objection_task() -> dict:
    return {
        "documentation": "公示期满后,核实公示期内收到的异议,逐件作出答复;异议成立的,退回重新办理。",
        "step": {"kind": "task"},
        "fields": OBJECTION_FIELDS,
        "constraints": OBJECTION_CONSTRAINTS,
    }


# --------------------------------------------------------------------------------------------
# Layout

# the layout itself (lanes as columns, top to bottom) is engine.bpmn.swimlanes
_Layouter = Layouter


def layout(graph: Graph, table: Mapping) -> Layout:
    """Compute the swimlane diagram geometry of a procedure graph."""
    names = role_names()
    lanes = [lane["role"] for lane in table["lanes"]]
    labels = {lane["role"]: lane.get("label") or names[lane["role"]] for lane in table["lanes"]}
    return _Layouter(graph, lanes, labels).run()


# --------------------------------------------------------------------------------------------
# XML


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _bpmn(parent: etree._Element, tag: str, **attrs: Any) -> etree._Element:
    return _sub(parent, BPMN_NS, tag, attrs)


def _xw(parent: etree._Element, tag: str, text: str | None = None, **attrs: Any) -> etree._Element:
    element = _sub(parent, XW_NS, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


def _sub(parent: etree._Element, ns: str, tag: str, attrs: Mapping[str, Any]) -> etree._Element:
    element = etree.SubElement(parent, _q(ns, tag))
    for key, value in attrs.items():
        if value is not None:
            element.set(key, _attr(value))
    return element


def _attr(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_bpmn(table: dict) -> bytes:
    """Generate the BPMN 2.0 XML (UTF-8, pretty-printed, deterministic) of a step table."""
    validate_table(table, source=f"table {table.get('id', '?')}" if isinstance(table, dict) else "table")
    graph = _GraphBuilder(table).build()
    geometry = layout(graph, table)
    root = etree.Element(_q(BPMN_NS, "definitions"), nsmap=NSMAP)
    root.set("id", f"Definitions_{_ascii_id(table['id'])}")
    root.set("targetNamespace", TARGET_NAMESPACE)
    root.set("exporter", "xiaowei engine.steptable")
    collaboration = _bpmn(root, "collaboration", id=f"Collaboration_{_ascii_id(table['id'])}")
    _bpmn(collaboration, "participant", id=_participant_id(table), name=table["name"],
          processRef=table["id"])
    _write_process(root, table, graph)
    _write_diagram(root, table, graph, geometry, collaboration.get("id"))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _ascii_id(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", value)


def _participant_id(table: Mapping) -> str:
    return f"Participant_{_ascii_id(table['id'])}"


def _write_process(root: etree._Element, table: Mapping, graph: Graph) -> None:
    process = _bpmn(root, "process", id=table["id"], name=table["name"], isExecutable=True)
    _process_extensions(_bpmn(process, "extensionElements"), table)
    lane_set = _bpmn(process, "laneSet", id="LaneSet_1")
    for lane in table["lanes"]:
        _write_lane(lane_set, lane, graph)
    writers: dict[str, Callable[[etree._Element, Node], None]] = {
        "start": _write_start, "task": _write_task, "gateway": _write_gateway,
        "timer": _write_timer, "end": _write_end}
    for node in graph.nodes.values():
        writers[node.kind](process, node)
    for flow in graph.flows:
        _write_flow(process, flow)


def _process_extensions(ext: etree._Element, table: Mapping) -> None:
    _xw(ext, "procedure", category=table.get("category"), edition=table.get("edition"),
        nameEn=table.get("name_en"), handlingSubject=table.get("handling_subject"),
        handlingMode=table.get("handling_mode"), overallTimeLimit=table.get("overall_time_limit"))
    if table.get("description"):
        _xw(ext, "description", str(table["description"]).strip())
    for basis in table.get("legal_basis") or []:
        _xw(ext, "legalBasis", basis.get("note"), source=basis["source"],
            article=basis.get("article"), status=basis.get("status"), review=basis.get("review"))
    for risk in table.get("risk_points") or []:
        _xw(ext, "riskPoint", risk)
    for parameter in table.get("parameters") or []:
        _xw(ext, "parameter", key=parameter["key"], label=parameter["label"],
            type=parameter["type"], unit=parameter.get("unit"), default=parameter.get("default"),
            source=parameter.get("source"), review=parameter.get("review"))
    if table.get("requires"):
        _xw(ext, "requires", **{key: table["requires"][key] for key in ("disclosure", "supervision")
                                if key in table["requires"]})
    if table.get("review"):
        _xw(ext, "review", " ".join(str(table["review"]).split()))


def _role_en(role: str) -> str | None:
    from engine.core import catalogue

    found = catalogue.roles().get(role)
    return found.en if found is not None and found.en else None


def _write_lane(lane_set: etree._Element, lane: Mapping, graph: Graph) -> None:
    role = lane["role"]
    element = _bpmn(lane_set, "lane", id=f"Lane_{role}",
                    name=lane.get("label") or role_names()[role])
    _xw(_bpmn(element, "extensionElements"), "role", key=role,
        labelEn=english(lane.get("label") or role_names()[role], lane.get("label_en"), "lanes")
        or (None if lane.get("label") else _role_en(role)))
    for node in graph.nodes.values():
        if node.lane == role:
            _bpmn(element, "flowNodeRef").text = node.id


def _refs(element: etree._Element, node: Node) -> None:
    for flow_id in node.incoming:
        _bpmn(element, "incoming").text = flow_id
    for flow_id in node.outgoing:
        _bpmn(element, "outgoing").text = flow_id


def _write_start(process: etree._Element, node: Node) -> None:
    _refs(_bpmn(process, "startEvent", id=node.id, name=node.name), node)


def _write_end(process: etree._Element, node: Node) -> None:
    element = _bpmn(process, "endEvent", id=node.id, name=node.name)
    _xw(_bpmn(element, "extensionElements"), "end", outcome=node.outcome, nameEn=english(node.name, kind="ends"))
    _refs(element, node)


def _write_gateway(process: etree._Element, node: Node) -> None:
    element = _bpmn(process, "exclusiveGateway", id=node.id, name=node.name, default=node.default)
    _refs(element, node)


def _write_timer(process: etree._Element, node: Node) -> None:
    element = _bpmn(process, "intermediateCatchEvent", id=node.id, name=node.name)
    _xw(_bpmn(element, "extensionElements"), "noticePeriod", **{"for": node.timer["for"]})
    _refs(element, node)
    definition = _bpmn(element, "timerEventDefinition", id=f"{node.id}_timer")
    duration = _bpmn(definition, "timeDuration")
    duration.set(_q(XSI_NS, "type"), "bpmn:tFormalExpression")
    duration.text = node.timer["expression"]


def _write_task(process: etree._Element, node: Node) -> None:
    task = node.task
    element = _bpmn(process, "userTask", id=node.id, name=node.name)
    if task.get("documentation"):
        _bpmn(element, "documentation").text = str(task["documentation"]).strip()
    ext = _bpmn(element, "extensionElements")
    step = task["step"]
    _xw(ext, "step", kind=step["kind"], timeLimit=step.get("timeLimit"),
        evidence=step.get("evidence"), proxy=True if step.get("proxy") else None,
        evidenceRequired=True if step.get("evidenceRequired") else None,
        nameEn=english(node.name, task.get("name_en"), "steps"),
        instructionsEn=" ".join(str(task["instructions_en"]).split()) if task.get("instructions_en") else None)
    if task.get("basis"):
        _xw(ext, "basis", task["basis"])
    if task.get("review"):
        _xw(ext, "review", " ".join(str(task["review"]).split()))
    for item in task["fields"]:
        _write_field(ext, item)
    for constraint in task["constraints"]:
        _xw(ext, "constraint", test=constraint["test"], message=constraint["message"])
    for tag in ("disclosure", "vote", "supervision"):
        if task.get(tag):
            _xw(ext, tag, **task[tag])
    note = task.get("supervisionNote")
    if note:
        _xw(ext, "supervisionNote", role=note["role"], action=note["action"])
    _refs(element, node)


def _write_field(ext: etree._Element, item: Mapping) -> None:
    element = _xw(ext, "field", name=item["name"], label=item["label"], type=item["type"],
                  required=bool(item.get("required", False)), public=bool(item.get("public", False)),
                  unit=item.get("unit"), min=item.get("min"), max=item.get("max"),
                  maxLength=item.get("maxLength"), help=item.get("help"), default=item.get("default"),
                  dateRule=item.get("date_rule") if item.get("date_rule") not in (None, "act") else None,
                  labelEn=english(item["label"], item.get("label_en"), "fields"))
    for option in item.get("options") or []:
        _xw(element, "option", value=option["value"], label=option["label"],
            labelEn=english(option["label"], option.get("label_en"), "options"))


def _write_flow(process: etree._Element, flow: Flow) -> None:
    element = _bpmn(process, "sequenceFlow", id=flow.id, name=flow.name, sourceRef=flow.source,
                    targetRef=flow.target)
    if flow.condition:
        condition = _bpmn(element, "conditionExpression")
        condition.set(_q(XSI_NS, "type"), "bpmn:tFormalExpression")
        condition.text = flow.condition


def _write_diagram(root: etree._Element, table: Mapping, graph: Graph, geometry: Layout,
                   collaboration_id: str) -> None:
    diagram = _sub(root, BPMNDI_NS, "BPMNDiagram", {"id": f"Diagram_{_ascii_id(table['id'])}"})
    plane = _sub(diagram, BPMNDI_NS, "BPMNPlane",
                 {"id": f"Plane_{_ascii_id(table['id'])}", "bpmnElement": collaboration_id})
    participant = _participant_id(table)
    _shape(plane, participant, geometry.pool, isHorizontal=geometry.horizontal)
    for role, box in geometry.lanes.items():
        _shape(plane, f"Lane_{role}", box, label=geometry.lane_labels[role], isHorizontal=geometry.horizontal)
    for node in graph.nodes.values():
        extra = {"isMarkerVisible": True} if node.kind == "gateway" else {}
        _shape(plane, node.id, geometry.shapes[node.id], label=geometry.labels.get(node.id), **extra)
    for flow in graph.flows:
        edge = _sub(plane, BPMNDI_NS, "BPMNEdge", {"id": f"{flow.id}_di", "bpmnElement": flow.id})
        for x, y in geometry.edges[flow.id]:
            _sub(edge, DI_NS, "waypoint", {"x": x, "y": y})
        if flow.id in geometry.edge_labels:
            _bounds(_sub(edge, BPMNDI_NS, "BPMNLabel", {}), geometry.edge_labels[flow.id])


def _shape(plane: etree._Element, element_id: str, box: Box, label: Box | None = None,
           **attrs: Any) -> None:
    shape = _sub(plane, BPMNDI_NS, "BPMNShape",
                 {"id": f"{element_id}_di", "bpmnElement": element_id, **attrs})
    _bounds(shape, box)
    if label is not None:
        _bounds(_sub(shape, BPMNDI_NS, "BPMNLabel", {}), label)


def _bounds(parent: etree._Element, box: Box) -> None:
    _sub(parent, DC_NS, "Bounds", {"x": box.x, "y": box.y, "width": box.w, "height": box.h})


# --------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m engine.bpmn.steptable``."""
    parser = argparse.ArgumentParser(prog="python -m engine.bpmn.steptable",
                                     description="Generate BPMN 2.0 procedures from step tables.")
    parser.add_argument("table", nargs="?", type=Path, help="step table (YAML)")
    parser.add_argument("-o", "--output", type=Path, help="output .bpmn (default: stdout)")
    parser.add_argument("--all", action="store_true",
                        help="regenerate processes/<id>.bpmn for every processes/tables/*.yaml")
    args = parser.parse_args(argv)
    if args.all == bool(args.table):
        parser.error("give either a TABLE or --all")
    if args.all:
        results = [_generate_one(path, None) for path in sorted(TABLES_DIR.glob("*.yaml"))]
        return 0 if all(results) else 1
    if args.output is None:
        try:
            sys.stdout.buffer.write(build_bpmn(load_table(args.table)))
        except StepTableError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return 0
    return 0 if _generate_one(args.table, args.output) else 1


def _generate_one(path: Path, output: Path | None) -> bool:
    """Generate one table (to ``processes/<id>.bpmn`` by default); print one line."""
    try:
        table = load_table(path)
        output = output or PROCESSES_DIR / f"{table['id']}.bpmn"
        output.write_bytes(build_bpmn(table))
    except StepTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return False
    print(f"{_display(path)} -> {_display(output)}")
    return True


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROCESSES_DIR.parent))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
