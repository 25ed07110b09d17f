"""The vote rule of a step and the check of a vote's counts, for pages (step page, trail, print).

A small block pages place where they like: ``{% from "cases/_vote_rule.html" import vote_rule_block,
vote_check_block %}`` then ``{{ vote_rule_block(step, history) }}`` (the rule under the case's
parameters, with its source, in words) and ``{{ vote_check_block(event, definition, history) }}``
(each test of the counts a completed vote step recorded, with ✓ / ✗). The rule logic itself lives in
:mod:`engine.voting`.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from flask import Flask

from engine.core import voting


def _started_params(history: Sequence[Mapping[str, Any]] | None) -> Mapping[str, Any]:
    started = next((e for e in history or () if e.get("type") == "case_started"), None)
    return (started or {}).get("data", {}).get("params") or {}


def vote_rule(step: Any, history: Sequence[Mapping[str, Any]] | None = None,
              params: Mapping[str, Any] | None = None) -> dict | None:
    """The rule a vote step applies in a case (its parameters at start) or under ``params``:
    ``{"text", "law", "stricter", "review"}``; None for other steps."""
    if step is None or getattr(step, "kind", None) != "vote" or not getattr(step, "vote", None):
        return None
    values = params if params is not None else _started_params(history)
    rule = voting.step_rule(step.vote, values, role=step.role)
    if rule is None:
        return None
    law = voting.lawful_rule(rule.body, rule.matter or None)
    stricter = (rule.quorum, rule.passing, rule.quorum_households) != (law.quorum, law.passing, law.quorum_households)
    return {"text": voting.describe(rule), "law": voting.describe(law) if stricter else "",
            "stricter": stricter, "body": rule.name}


def vote_check(event: Mapping[str, Any], definition: Any,
               history: Sequence[Mapping[str, Any]] | None = None) -> list[voting.Test]:
    """The tests of the counts a ``step_completed`` event of a vote step recorded ([] otherwise)."""
    data = event.get("data") or {}
    step = getattr(definition, "steps", {}).get(data.get("step")) if event.get("type") == "step_completed" else None
    if step is None or step.kind != "vote" or not step.vote:
        return []
    rule = voting.step_rule(step.vote, _started_params(history), role=step.role)
    if rule is None:
        return []
    return list(voting.check(rule, data.get("data") or {}).tests)


def register(app: Flask) -> None:
    app.jinja_env.globals.update(vote_rule=vote_rule, vote_check=vote_check)
