"""Clean legal text: what people read holds only verified text, never authoring notes.

Authoring notes ("条号未复核", "具体条款未复核", "typical …") belong in the ``review`` field of a step
table (``xw:review`` / the ``review`` attribute in BPMN), which township staff see in the editor and
nobody else. :func:`authoring_notes` finds notes that slipped into user-facing text; lint refuses
them (:func:`user_facing_texts` lists what user-facing text a procedure has).
"""

from __future__ import annotations

import re
from typing import Iterable

# Phrases that are notes about the text, not the text itself.
AUTHORING_PHRASES = ("未复核", "未核对", "待核对", "条款待核", "据转述", "政策解读转述", "标题文号已见", "占位默认值",
                     "占位值", "待补充")
AUTHORING_WORDS = re.compile(r"\b(typical|recalled|confirmed|TODO|FIXME|TBD|to verify)\b", re.IGNORECASE)


def authoring_notes(text: str | None) -> list[str]:
    """The authoring notes found in ``text`` (empty when it is clean)."""
    if not text:
        return []
    found = [phrase for phrase in AUTHORING_PHRASES if phrase in text]
    found += [m.group(0) for m in AUTHORING_WORDS.finditer(text)]
    return found


def user_facing_texts(d) -> Iterable[tuple[str, str, str]]:
    """(element id, where in Chinese, text) of every text of a procedure that cadres or the public read."""
    yield d.id, "事项名称", d.name
    for where, text in (("事项说明", d.description), ("办理主体", d.handling_subject), ("办理方式", d.handling_mode),
                        ("办理时限", d.overall_time_limit)):
        yield d.id, where, text
    for risk in d.risk_points:
        yield d.id, "风险点", risk
    for basis in d.legal_basis:
        yield d.id, "依据", basis.get("source", "")
        yield d.id, "依据条款", basis.get("article", "")
        yield d.id, f"依据{basis.get('source', '')}的说明", basis.get("note", "")
    for p in d.parameters.values():
        yield d.id, f"参数“{p.key}”的名称", p.label
        yield d.id, f"参数“{p.label}”的来源", p.source
    for lane in d.lanes.values():
        yield lane.id, "泳道名称", lane.name
    for node in d.nodes.values():
        yield node.id, "名称", node.name
    for flow in d.flows.values():
        yield flow.id, "连线名称", flow.name
    for step in d.steps.values():
        for where, text in (("办理要求", step.instructions), ("依据", step.basis), ("需留存材料", step.evidence)):
            yield step.id, where, text
        for f in step.fields:
            yield step.id, f"字段“{f.name}”", f.label
            yield step.id, f"字段“{f.label}”的说明", f.help
            for option in f.options:
                yield step.id, f"字段“{f.label}”的选项", option.label
        for c in step.constraints:
            yield step.id, "校验提示", c.message
        for tag in (step.disclosure, step.supervision):
            for key in ("what", "where", "action"):
                if tag and tag.get(key):
                    yield step.id, "检查点", tag[key]
        for note in step.supervision_notes:
            yield step.id, "随程监督", note.get("action", "")
