"""WR-20 on a step completed after its time limit, judged right after the completion from the end of
the trail (engine.services.supervision.rules.timing.latest_step_lateness): late → a warning naming the
step, its limit and who completed it; on time → none; the same answer as reading the whole trail."""

from __future__ import annotations

from test_warnings import do_step, raised

from engine.services.supervision.rules.timing import late_steps, latest_step_lateness


def test_step_completed_after_its_limit_is_warned_once(xw, people, frozen):
    late = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    on_time = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    do_step(xw, on_time, "collect", people)
    frozen.advance(days=29)  # no tick: the step is not yet warned as open and overdue
    assert not raised(xw, "WR-20")
    do_step(xw, late, "collect", people)
    found = raised(xw, "WR-20", case_id=late)
    assert len(found) == 1
    facts = found[0]["facts"]
    assert facts["step"] == "collect" and facts["open"] is False and facts["actor"] == people["party_branch"]
    assert facts["completed_at"] > facts["due_at"]
    assert not raised(xw, "WR-20", case_id=on_time)


def test_the_end_of_the_trail_gives_what_the_whole_trail_gives(xw, people, frozen):
    ids = []
    for days in (0, 3, 40):
        cid = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
        frozen.advance(days=days)
        do_step(xw, cid, "collect", people)
        ids.append(cid)
    ids.append(xw.start_case("V-DEC-01", "DONGAO", people["party_branch"]))  # nothing completed yet
    with xw.db.read() as s:
        whole = sorted(late_steps(s, ids, latest_only=True), key=lambda c: c["case_id"])
        end = sorted(latest_step_lateness(s, ids, depth=1), key=lambda c: c["case_id"])  # depth 1: reads back
    assert end == whole and len(end) == 3 and [c["late"] for c in end] == [False, False, True]
