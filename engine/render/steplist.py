"""A procedure's steps as a list in the order they are done, each marked done, current, overdue or
not yet reached: what a phone shows instead of a chart too wide for it (the public case page, the
step page), with the full chart one tap away."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from engine.core.definitions import ProcedureDefinition


def ordered_steps(d: ProcedureDefinition) -> list[str]:
    """Ids of the user tasks in flow order (breadth-first from the start), then any not reached."""
    order: list[str] = []
    seen: set[str] = set()
    queue = list(d.start_ids)
    while queue:
        node_id = queue.pop(0)
        if node_id in seen or node_id not in d.nodes:
            continue
        seen.add(node_id)
        if node_id in d.steps:
            order.append(node_id)
        for flow_id in d.nodes[node_id].outgoing:
            flow = d.flows.get(flow_id)
            if flow is not None:
                queue.append(flow.target)
    return order + [sid for sid in d.steps if sid not in seen]


def step_path(d: ProcedureDefinition, visited: Collection[str], current: Collection[str],
              overdue: Collection[str] = ()) -> list[dict[str, Any]]:
    """Every step with its state: ``overdue``, ``current``, ``notice`` (its notice period runs),
    ``done``, ``skip`` (not reached, though later steps were: a branch not taken) or ``todo``. A timer in ``current`` marks the step whose notice it counts."""
    noticed = {d.nodes[n].notice_for for n in current if n in d.nodes and d.nodes[n].notice_for}
    rows = []
    for sid in ordered_steps(d):
        step = d.steps[sid]
        if sid in overdue:
            state = "overdue"
        elif sid in current:
            state = "current"
        elif sid in noticed:
            state = "notice"
        elif sid in visited:
            state = "done"
        else:
            state = "todo"
        rows.append({"id": sid, "name": step.name, "name_en": step.name_en, "role": step.role, "state": state})
    # a step never reached although later ones were: a branch this case did not take
    reached = [index for index, row in enumerate(rows) if row["state"] != "todo"]
    for row in rows[:max(reached, default=-1)]:
        if row["state"] == "todo":
            row["state"] = "skip"
    return rows
