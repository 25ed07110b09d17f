"""A small village procedure written as a step table, for the editing tests."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "id": "Z-SVC-01", "name": "测试便民服务事项", "name_en": "Test citizen service", "category": "SVC",
    "edition": "village", "description": "用于测试编辑、发布和迁移的小事项。",
    "requires": {"disclosure": True, "supervision": True},
    "parameters": [{"key": "svc_notice_days", "label": "结果公示最短天数", "type": "days", "unit": "天",
                    "default": 5, "source": "测试"}],
    "lanes": [{"role": "committee"}, {"role": "supervision_committee"}],
    "steps": [
        {"id": "register", "name": "登记申请", "role": "committee", "kind": "task", "time_limit": "5wd",
         "instructions": "登记村民的申请。",
         "fields": [{"name": "applicant_name", "label": "申请人", "type": "person", "required": True},
                    {"name": "request", "label": "申请事项", "type": "textarea", "required": True, "public": True}]},
        {"id": "review", "name": "审核申请", "role": "committee", "kind": "task", "time_limit": "3wd",
         "instructions": "村委会审核。",
         "fields": [{"name": "review_note", "label": "审核意见", "type": "textarea", "required": True}],
         "supervision": {"role": "supervision_committee", "action": "监督审核并签字", "on_return": "register"}},
        {"id": "disclose", "name": "公示结果", "role": "committee", "kind": "disclosure", "time_limit": "2wd",
         "instructions": "张榜公示。",
         "disclosure": {"what": "办理结果", "where": ["村务公开栏"], "min_days_param": "svc_notice_days"}},
    ],
    "ends": [{"id": "end_done", "name": "办结", "outcome": "completed"}],
}


def table(*, register_limit: str = "5wd", phone_field: bool = False, supervision: bool = True,
          notice_days: int = 5) -> dict:
    t = copy.deepcopy(BASE)
    t["steps"][0]["time_limit"] = register_limit
    if phone_field:
        t["steps"][0]["fields"].append({"name": "phone_no", "label": "联系电话", "type": "phone", "required": False})
    if not supervision:
        del t["steps"][1]["supervision"]
        t["requires"]["supervision"] = False
        t["lanes"] = [{"role": "committee"}]
    t["parameters"][0]["default"] = notice_days
    return t


def bpmn(**kw: Any) -> bytes:
    from engine.bpmn.steptable import build_bpmn

    return build_bpmn(table(**kw))
