"""The trail anchored outside the database (issue #13): what an insider with database access did and
what used to pass — cutting a case's newest events and moving its head back, rewriting and rehashing a
whole chain, cutting an exported trail, changing a case's status or work items by SQL — is detected by
``xiaowei audit verify`` and by ``python -m engine.trailcheck`` on the export."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from conftest import ROOT, USING_PG, do_step, ready_steps
from engine.core import audit, checkpoints
from engine.trailcheck import (
    event_hash, genesis, render, verify_consistency, verify_inclusion, verify_trail,
)
from storage.models import AuditCheckpoint, AuditEvent, Case, WorkItem


def tamper(xw, *statements: tuple[str, dict]) -> None:
    """What a database administrator could do behind the engine's back (a superuser on PostgreSQL
    first switches the append-only triggers off for the session: that is what checkpoints are for)."""
    with xw.db.write() as s:
        if xw.db.is_postgres:
            s.execute(text("SET LOCAL session_replication_role = replica"))
        for sql, params in statements:
            s.execute(text(sql), params)


def problems(xw, case_id=None) -> list[str]:
    return [p for r in xw.verify(case_id) for p in r.problems]


def events_of(xw, case_id):
    with xw.db.read() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)))


@pytest.fixture
def anchored(xw, people, frozen):
    """A V-DEC-01 case five steps in, anchored by a signed checkpoint."""
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for _ in range(4):
        do_step(xw, case_id, ready_steps(xw, case_id)[0], people)
    with xw.db.write() as s:
        made = checkpoints.make(s)
    assert made and made["new"] and not made["problems"]
    assert problems(xw) == []
    return case_id


def cut_newest(xw, case_id: int, n: int) -> None:
    """Delete the newest events and move the head back: the hash chain alone still verifies."""
    evs = events_of(xw, case_id)
    keep = evs[-n - 1]
    tamper(xw, ("DELETE FROM audit_event WHERE case_id = :c AND seq > :s", {"c": case_id, "s": keep.seq}),
           ("UPDATE case_instance SET audit_seq = :s, audit_head = :h WHERE id = :c",
            {"s": keep.seq, "h": keep.hash, "c": case_id}))


def rehash_from(xw, case_id: int, seq: int) -> None:
    """Rewrite an event and recompute every hash after it, and the head: the hash chain still verifies."""
    evs = events_of(xw, case_id)
    prev = evs[seq - 2].hash if seq > 1 else genesis(audit.case_chain(case_id))
    statements = []
    for ev in evs[seq - 1:]:
        data = json.loads(ev.data)
        if ev.seq == seq:
            data["name"] = "伪造的步骤名称"
        text_data = audit.to_json(data)
        digest = event_hash(ev.chain, ev.seq, ev.type, audit.iso(ev.at), ev.actor, ev.role, data, prev)
        statements.append(("UPDATE audit_event SET data = :d, prev_hash = :p, hash = :h WHERE id = :i",
                           {"d": text_data, "p": prev, "h": digest, "i": ev.id}))
        prev = digest
    statements.append(("UPDATE case_instance SET audit_head = :h WHERE id = :c", {"h": prev, "c": case_id}))
    tamper(xw, *statements)


# --- the Merkle tree is RFC 9162's ------------------------------------------------------------------

def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = 1
    while k * 2 < len(d):
        k *= 2
    return _h(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def test_tree_roots_and_proofs_are_rfc_9162():
    rng = random.Random(13)
    for n in [1, 2, 3, 5, 7, 8, 9, 31, 64, 65, 200]:
        data = [rng.randbytes(8) for _ in range(n)]
        leaves = [_h(b"\x00" + x) for x in data]
        tree = checkpoints.Tree(leaves)
        assert tree.root() == _mth(data)
        for m in {0, n // 2, n - 1}:
            proof = tree.inclusion(m)
            assert verify_inclusion(m, n, leaves[m], proof, tree.root())
            assert not verify_inclusion(m, n, _h(b"other"), proof, tree.root())
        for m in {1, n // 3, n - 1} - {0, n}:
            proof = tree.consistency(m)
            assert verify_consistency(m, n, _mth(data[:m]), tree.root(), proof)
            assert not verify_consistency(m, n, _h(b"forged"), tree.root(), proof)
            assert tree.root_at(m) == _mth(data[:m])
            grown = checkpoints.Tree(leaves[:m])
            grown.extend(leaves[m:])  # what a process does after each checkpoint
            assert grown.levels == tree.levels


# --- audit verify ---------------------------------------------------------------------------------------

def test_cutting_the_newest_events_and_moving_the_head_back_is_detected(xw, anchored):
    cut_newest(xw, anchored, 3)
    from engine.core.audit import verify_chain

    with xw.db.read() as s:  # what used to pass: the chain is intact up to its (moved) head
        case = s.get(Case, anchored)
        assert verify_chain(events_of(xw, anchored), audit.case_chain(anchored), case.audit_seq, case.audit_head).ok
    found = problems(xw, anchored)
    assert any("head moved back" in p for p in found), found


def test_rewriting_and_rehashing_a_chain_is_detected(xw, anchored):
    rehash_from(xw, anchored, 2)
    found = problems(xw, anchored)
    assert any("rewritten and rehashed" in p for p in found), found
    # and the next checkpoint refuses to anchor the rewritten chain
    with xw.db.write() as s:
        made = checkpoints.make(s)
    assert made is not None and any("no longer in the chain" in p for p in made["problems"])


def test_a_status_set_by_sql_and_changed_work_items_and_timers_are_detected(xw, anchored, people):
    tamper(xw, ("UPDATE case_instance SET status = 'completed', closed_at = updated_at WHERE id = :c", {"c": anchored}))
    assert any("stored as completed" in p for p in problems(xw, anchored))
    tamper(xw, ("UPDATE case_instance SET status = 'running', closed_at = NULL WHERE id = :c", {"c": anchored}))
    assert problems(xw, anchored) == []
    tamper(xw, ("DELETE FROM work_item WHERE case_id = :c", {"c": anchored}))
    assert any("work items" in p for p in problems(xw, anchored))


def test_an_engine_state_edited_by_sql_is_detected(xw, anchored):
    from storage.models import CaseState

    with xw.db.read() as s:
        state = json.loads(s.get(CaseState, anchored).state)
    ready = ready_steps(xw, anchored)[0]
    for task in state["tasks"].values():
        if task["task_spec"] == ready and task["state"] == 16:  # READY → COMPLETED behind the engine's back
            task["state"] = 64
    tamper(xw, ("UPDATE case_state SET state = :s WHERE case_id = :c", {"s": json.dumps(state), "c": anchored}))
    assert any("stored engine state" in p for p in problems(xw, anchored))


def test_a_moved_deadline_is_detected(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for _ in range(12):
        ready = ready_steps(xw, case_id)
        do_step(xw, case_id, ready[0], people)
        if xw.show_case(case_id)["timers"]:
            break
    assert problems(xw, case_id) == []
    tamper(xw, ("UPDATE timer_due SET due_at = '2099-01-01 00:00:00' WHERE case_id = :c", {"c": case_id}))
    assert any("deadline of timer" in p for p in problems(xw, case_id))


def test_a_case_deleted_whole_after_it_was_anchored_is_detected(xw, anchored):
    tamper(xw, *[(f"DELETE FROM {t} WHERE case_id = :c", {"c": anchored})
                 for t in ("audit_event", "work_item", "timer_due", "case_field", "submission", "case_person",
                           "case_state")],
           ("DELETE FROM case_instance WHERE id = :c", {"c": anchored}))
    bad = [r for r in xw.verify() if not r.ok]
    assert [r.chain for r in bad] == ["checkpoints"] and "整个事项被删除" in bad[0].problems[0]


def test_a_checkpoint_signed_by_another_key_is_refused(xw, anchored, tmp_path):
    other = checkpoints.generate_key(tmp_path / "insider.key")
    with xw.db.write() as s:
        checkpoints.make(s, other, force=True)
    bad = [r for r in xw.verify() if r.chain == "checkpoints"]
    assert bad and any("unknown key" in p for p in bad[0].problems)


@pytest.mark.skipif(not USING_PG, reason="the triggers are PostgreSQL's")
def test_postgresql_refuses_update_and_delete_on_the_trail(xw, anchored):
    for sql in ("UPDATE audit_event SET actor = 'ghost' WHERE case_id = :c",
                "DELETE FROM audit_event WHERE case_id = :c", "DELETE FROM checkpoint_leaf",
                "UPDATE audit_checkpoint SET root_hash = 'x'", "TRUNCATE audit_event"):
        with pytest.raises(DBAPIError) as refused:
            with xw.db.write() as s:
                s.execute(text(sql), {"c": anchored})
        assert "append-only" in str(refused.value)
    assert problems(xw) == []


# --- exports and trailcheck -----------------------------------------------------------------------------

def export(xw, case_id, tmp_path, name="trail.json"):
    path = tmp_path / name
    path.write_text(xw.export_trail(case_id), encoding="utf-8")
    return path


def trailcheck(*args, standalone=False):
    if standalone:  # no site-packages: the standard library only (no cryptography)
        cmd = [sys.executable, "-I", "-S", str(ROOT / "engine" / "trailcheck.py"), *map(str, args)]
    else:
        cmd = [sys.executable, "-m", "engine.trailcheck", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def test_every_export_carries_the_checkpoint_and_its_inclusion_proof(xw, people, case_id, tmp_path):
    path = export(xw, case_id, tmp_path)
    trail = json.loads(path.read_text(encoding="utf-8"))
    anchor = trail["anchor"]
    assert anchor["leaf"] == {"chain": f"case:{case_id}", "seq": len(trail["events"]),
                              "hash": trail["head"]["hash"]}, "the export anchored its own head first"
    ok = trailcheck(path)
    assert ok.returncode == 0 and ok.stdout.startswith("OK") and "signature verified" in ok.stdout, ok.stdout
    key = checkpoints.load_key()
    pinned = trailcheck(path, "--key", key.public_hex)
    assert pinned.returncode == 0
    stranger = checkpoints.generate_key(tmp_path / "stranger.key")
    assert trailcheck(path, "--key", stranger.public_hex).returncode == 1
    bare = trailcheck(path, standalone=True)
    assert bare.returncode == 0 and "signature NOT CHECKED" in bare.stdout, bare.stdout + bare.stderr


def test_an_exported_trail_whose_newest_events_were_cut_fails_trailcheck(xw, anchored, tmp_path):
    trail = json.loads(xw.export_trail(anchored))
    trail["events"] = trail["events"][:-3]  # cut, then made consistent and canonical again
    trail["head"] = {"seq": len(trail["events"]), "hash": trail["events"][-1]["hash"]}
    path = tmp_path / "cut.json"
    path.write_text(render(trail), encoding="utf-8")
    result = trailcheck(path)
    assert result.returncode == 1 and "truncated" in result.stdout, result.stdout
    stripped = dict(trail)
    stripped.pop("anchor")
    assert any("no signed checkpoint" in p for p in verify_trail(render(stripped)))


def test_an_export_from_a_tampered_database_fails_trailcheck(xw, anchored, tmp_path):
    cut_newest(xw, anchored, 2)
    result = trailcheck(export(xw, anchored, tmp_path, "cut.json"))
    assert result.returncode == 1 and "events were cut" in result.stdout, result.stdout
    rehash_from(xw, anchored, 1)
    result = trailcheck(export(xw, anchored, tmp_path, "rehashed.json"))
    assert result.returncode == 1 and "rehashed" in result.stdout, result.stdout


def test_a_trail_older_than_a_checkpoint_one_holds_is_not_proven_complete(app, xw, anchored, people, tmp_path):
    old = export(xw, anchored, tmp_path, "old.json")
    do_step(xw, anchored, ready_steps(xw, anchored)[0], people)
    new_trail = export(xw, anchored, tmp_path, "new.json")  # makes a newer checkpoint
    held = app.test_client().get("/public/checkpoint.json").get_json()
    (tmp_path / "held.json").write_text(json.dumps(held), encoding="utf-8")
    stale = trailcheck(old, "--checkpoint", tmp_path / "held.json")
    assert stale.returncode == 1 and "NOT PROVEN complete" in stale.stdout
    fresh = trailcheck(new_trail, "--checkpoint", tmp_path / "held.json")
    assert fresh.returncode == 0, fresh.stdout
    # consistency between checkpoints, for anyone who kept the older one
    first = json.loads(old.read_text(encoding="utf-8"))["anchor"]["checkpoint"]
    proof = app.test_client().get(f"/public/checkpoint.json?from={first['tree_size']}").get_json()
    c = proof["consistency"]
    assert c["from_root"] == first["root_hash"]
    assert verify_consistency(first["tree_size"], held["checkpoint"]["tree_size"], bytes.fromhex(first["root_hash"]),
                              bytes.fromhex(held["checkpoint"]["root_hash"]), [bytes.fromhex(p) for p in c["proof"]])


# --- published where the public sees it ----------------------------------------------------------------

def test_the_latest_checkpoint_is_on_the_board_the_receipt_and_the_handbook(app, xw, anchored, tmp_path):
    with xw.db.read() as s:
        cp = s.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.number.desc()))
    client = app.test_client()
    board = client.get("/public/DONGAO").text
    assert "办理留痕防篡改凭证" in board and cp.root_hash[:16] in board and cp.key_id[:16] in board
    code = xw.show_case(anchored)["tracking_code"]
    receipt = client.get(f"/public/case/{code}/receipt").text
    assert "留痕凭证" in receipt and cp.root_hash[:16] in receipt
    from engine.render.handbook import build_handbook

    out = tmp_path / "handbook.html"
    build_handbook(xw, "village", "html", out)
    assert cp.public_key in out.read_text(encoding="utf-8")


def test_tick_signs_a_checkpoint_every_few_minutes_when_heads_moved(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    first = xw.tick()
    assert "checkpoint" in first
    do_step(xw, case_id, "collect", people)
    frozen.advance(minutes=3)
    assert "checkpoint" not in xw.tick()  # too soon (XIAOWEI_CHECKPOINT_MINUTES: 10)
    frozen.advance(minutes=8)
    assert xw.tick()["checkpoint"] == first["checkpoint"] + 1
    frozen.advance(minutes=11)
    assert "checkpoint" not in xw.tick()  # nothing moved
    with xw.db.read() as s:
        assert s.scalar(select(WorkItem.step_id).where(WorkItem.case_id == case_id)) is not None
    assert problems(xw) == []
