"""Demo data: a district, a township, two villages and a community, a user for every role, and a
few cases at different stages — all made through the engine, so every case has its full trail."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select

from engine.core import catalogue, clock, directory
from .scenarios import walk
from .facade import Xiaowei
from storage.models import Organization

ORGS = [
    ("SFQ", "示范区", "district", None),
    ("SFZ", "示范镇", "township", "SFQ"),
    ("DONGAO", "东岙村", "village", "SFZ"),
    ("NANXI", "南溪村", "village", "SFZ"),
    ("HEPING", "和平社区", "community", "SFZ"),
]


def _password() -> str:
    return secrets.token_urlsafe(9)


def load_demo(app: Xiaowei) -> dict:
    """Create the demo once; a second call changes nothing and reports ``created: False``."""
    with app.db.read() as s:
        if s.scalar(select(Organization).where(Organization.code == "SFQ")) is not None:
            return {"created": False, "users": [], "cases": []}
    users: list[dict] = []
    with app.db.write() as s:
        for code, name, kind, parent in ORGS:
            directory.add_org(s, code, name, kind, parent, actor="demo")

        def add(username: str, roles: list[str], display: str = "") -> None:
            password = _password()
            directory.add_user(s, username, password, roles, display_name=display or username, actor="demo")
            users.append({"username": username, "password": password, "roles": roles})

        add("dongao.secretary", ["party_branch@DONGAO", "joint_meeting@DONGAO", "committee@DONGAO",
                                 "director@DONGAO"], "东岙村书记兼主任 陈建国")
        for key, role in catalogue.roles().items():
            if role.level == "village":
                add(f"dongao.{key}", [f"{key}@DONGAO"], f"东岙村·{role.zh}")
                add(f"heping.{key}", [f"{key}@HEPING"], f"和平社区·{role.zh}")
            elif role.level == "township":
                add(f"sfz.{key}", [f"{key}@SFZ"], f"示范镇·{role.zh}")
            else:
                add(f"sfq.{key}", [f"{key}@SFQ"], f"示范区·{role.zh}")
        add("nanxi.secretary", ["party_branch@NANXI", "joint_meeting@NANXI", "committee@NANXI", "handler@NANXI",
                                "director@NANXI"], "南溪村书记")
        add("nanxi.supervisor", ["supervision_committee@NANXI"], "南溪村村监会主任")
    cases = _demo_cases(app)
    return {"created": True, "users": users, "cases": cases}


def _people(org: str) -> dict[str, str]:
    people = {}
    for key, role in catalogue.roles().items():
        people[key] = {"village": f"{org}.{key}", "township": f"sfz.{key}", "district": f"sfq.{key}"}[role.level]
    return people


def _demo_cases(app: Xiaowei) -> list[dict]:
    """Cases started weeks ago and moved along on a demo clock that ends before now."""
    real_now = clock.now()
    fake = clock.FixedClock(real_now - timedelta(days=40))
    dongao, heping = _people("dongao"), _people("heping")
    nanxi = {**_people("dongao"), "party_branch": "nanxi.secretary", "joint_meeting": "nanxi.secretary",
             "committee": "nanxi.secretary", "handler": "nanxi.secretary", "director": "nanxi.secretary",
             "supervision_committee": "nanxi.supervisor"}
    made: list[dict] = []

    def hours(n: float):
        def move() -> None:
            if fake.now() + timedelta(hours=n) < real_now:
                fake.advance(hours=n)
        return move

    def tick() -> None:
        fake.advance(days=8)
        app.tick()

    with clock.using(fake):
        done = app.start_case("V-DEC-01", "DONGAO", dongao["party_branch"], {"title": "东岙村村道硬化工程"})
        walk(app, done, dongao, tick=tick, between=hours(20))
        made.append(_row(app, done, "五议两公开全流程已办结"))

        purchase = app.start_case("B-PUR-02", "DONGAO", dongao["handler"], {"title": "村委会办公用品采购"})
        walk(app, purchase, dongao, stop_at="disclose_result_objections", between=hours(6))
        made.append(_row(app, purchase, "采购结果公示期中"))

        refused = app.start_case("B-PUR-02", "NANXI", nanxi["handler"], {"title": "南溪村文化礼堂音响采购"})
        walk(app, refused, nanxi, choices={"joint_approve": _flow_to(app, refused, "joint_approve", "end_rejected")},
             between=hours(5))
        made.append(_row(app, refused, "联席会议不同意,已终止"))

        voting = app.start_case("V-DEC-01", "DONGAO", dongao["party_branch"], {"title": "集体厂房出租方案"})
        walk(app, voting, dongao, stop_at="resolve", between=hours(30))
        made.append(_row(app, voting, "待村民代表会议表决"))

        dibao = app.start_case("B-SVC-01", "HEPING", heping["committee"], {"title": "居民低保申请"})
        heping_no_applicant = {k: v for k, v in heping.items() if k != "applicant"}
        walk(app, dibao, heping_no_applicant, stop_at="initial_review", between=hours(24))
        made.append(_row(app, dibao, "代办申请,镇街审核中"))

        fresh = app.start_case("V-DEC-01", "DONGAO", dongao["party_branch"], {"title": "村集体经营性收益分配"})
        made.append(_row(app, fresh, "刚发起"))
    return made


def _flow_to(app: Xiaowei, case_id: int, step_id: str, target: str) -> str:
    from .scenarios import case_context, exits_after

    d, _, _ = case_context(app, case_id)
    return next(e.flow.id for e in exits_after(d, step_id) if e.flow.target == target)


def _row(app: Xiaowei, case_id: int, note: str) -> dict:
    case = app.show_case(case_id)
    return {"id": case_id, "procedure_id": case["procedure_id"], "org": case["org"], "status": case["status"],
            "tracking_code": case["tracking_code"], "note": note}
