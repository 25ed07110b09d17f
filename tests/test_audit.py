"""The audit chain: tampering in the database is detected; exported trails verify offline."""

import json
import subprocess
import sys

import pytest
from sqlalchemy import text

from engine.services.scenarios import walk
from engine.trailcheck import verify_trail

from conftest import ROOT


@pytest.fixture
def finished_case(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])

    def tick():
        frozen.advance(days=10)
        xw.tick()
    walk(xw, case_id, people, tick=tick)
    assert all(r.ok for r in xw.verify())
    return case_id


def rows(xw, case_id):
    with xw.db.read() as s:
        return s.execute(text("SELECT id, seq, data, hash FROM audit_event WHERE case_id = :c ORDER BY seq"),
                         {"c": case_id}).all()


def tamper(xw, sql, **params):
    """What a database administrator could do behind the engine's back (a superuser on PostgreSQL
    switches the append-only triggers off first)."""
    from conftest import bypass_append_only

    with xw.db.write() as s:
        bypass_append_only(s)
        s.execute(text(sql), params)


def problems(xw, case_id=None):
    return [p for r in xw.verify(case_id) for p in r.problems]


def test_edit_is_detected(xw, finished_case):
    event = rows(xw, finished_case)[3]
    data = json.loads(event.data)
    data["data"] = {k: ("改过" if isinstance(v, str) else v) for k, v in data.get("data", {}).items()}
    tamper(xw, "UPDATE audit_event SET data = :d WHERE id = :i", d=json.dumps(data, ensure_ascii=False), i=event.id)
    found = problems(xw, finished_case)
    assert any("edited" in p and f"seq {event.seq}" in p for p in found)


def test_edit_with_recomputed_hash_is_detected_by_the_next_link(xw, finished_case):
    from engine.trailcheck import event_hash
    from engine.core.audit import iso

    from storage.models import AuditEvent

    with xw.db.read() as s:
        ev = s.query(AuditEvent).filter_by(case_id=finished_case, seq=2).one()
    forged = json.loads(ev.data)
    forged["name"] = "伪造"
    new_hash = event_hash(ev.chain, ev.seq, ev.type, iso(ev.at), ev.actor, ev.role, forged, ev.prev_hash)
    tamper(xw, "UPDATE audit_event SET data = :d, hash = :h WHERE id = :i",
           d=json.dumps(forged, ensure_ascii=False, sort_keys=True, separators=(",", ":")), h=new_hash, i=ev.id)
    assert any("seq 3" in p and "link" in p for p in problems(xw, finished_case))


def test_delete_is_detected(xw, finished_case):
    victim = rows(xw, finished_case)[4]
    tamper(xw, "DELETE FROM audit_event WHERE id = :i", i=victim.id)
    found = problems(xw, finished_case)
    assert any(f"seq {victim.seq + 1} found where {victim.seq} was expected" in p for p in found), found
    assert any(f"seq {victim.seq + 1}" in p and "does not link" in p for p in found), found


def test_delete_of_the_last_event_is_detected(xw, finished_case):
    last = rows(xw, finished_case)[-1]
    tamper(xw, "DELETE FROM audit_event WHERE id = :i", i=last.id)
    assert any("head" in p for p in problems(xw, finished_case))


def test_swap_is_detected(xw, finished_case):
    a, b = rows(xw, finished_case)[2:4]
    tamper(xw, "UPDATE audit_event SET data = :d, hash = :h WHERE id = :i", d=b.data, h=b.hash, i=a.id)
    tamper(xw, "UPDATE audit_event SET data = :d, hash = :h WHERE id = :i", d=a.data, h=a.hash, i=b.id)
    found = problems(xw, finished_case)
    # each moved event's hash was computed for the other position; the links no longer follow
    assert any(f"seq {a.seq} " in p and "edited" in p for p in found), found
    assert any(f"seq {b.seq} " in p and "edited" in p for p in found), found
    assert any(f"seq {b.seq} " in p and "does not link" in p for p in found), found


def test_insert_is_detected(xw, finished_case):
    last = rows(xw, finished_case)[-1]
    from storage.models import AuditEvent

    with xw.db.read() as s:
        ev = s.get(AuditEvent, last.id)
    tamper(xw, "INSERT INTO audit_event (chain, case_id, seq, type, at, actor, role, data, prev_hash, hash) "
               "VALUES (:chain, :case_id, :seq, 'step_completed', :at, 'intruder', '', '{}', :prev, :hash)",
           chain=ev.chain, case_id=ev.case_id, seq=ev.seq + 1, at=ev.at, prev=ev.hash, hash="0" * 64)
    found = problems(xw, finished_case)
    assert any(f"seq {ev.seq + 1} " in p and "edited" in p for p in found), found
    assert any("head" in p for p in found), found  # the case's stated head is the event before it


def test_system_chain_covers_administrative_actions(xw, finished_case):
    with xw.db.read() as s:
        types = [r[0] for r in s.execute(text("SELECT type FROM audit_event WHERE chain = 'system' ORDER BY seq"))]
    assert "procedure_published" in types and "org_added" in types and "user_added" in types
    tamper(xw, "UPDATE audit_event SET actor = 'ghost' WHERE chain = 'system' AND seq = 1")
    bad = [r for r in xw.verify() if not r.ok]
    assert [r.chain for r in bad] == ["system"]


def test_cli_verify_exit_codes(xw, finished_case, db_url):
    from test_cli import run

    assert run(db_url, "audit", "verify").returncode == 0
    tamper(xw, "DELETE FROM audit_event WHERE id = :i", i=rows(xw, finished_case)[1].id)
    # the exit code of a real process, as cron or a shell script sees it
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "audit", "verify", "--db", db_url],
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 1 and "FAILED" in bad.stdout
    only = run(db_url, "audit", "verify", "--case", str(finished_case), "--json", ok=False)
    assert only.returncode == 1 and json.loads(only.stdout)[0]["ok"] is False


def test_exported_trail_verifies_offline_and_fails_after_any_byte_edit(xw, finished_case, tmp_path, db_url):
    out = tmp_path / "trail.json"
    from test_cli import run

    run(db_url, "audit", "export", str(finished_case), "-o", str(out))
    check = subprocess.run([sys.executable, "-m", "engine.trailcheck", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0 and check.stdout.startswith("OK")
    # the verifier needs nothing but the standard library
    standalone = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "engine" / "trailcheck.py"), str(out)],
                                capture_output=True, text=True)
    assert standalone.returncode == 0, standalone.stderr
    raw = out.read_bytes()
    for position in (len(raw) // 3, len(raw) // 2, len(raw) - 3, raw.index(b'"actor"') + 12):
        while raw[position] >= 0x80:  # edit an ASCII byte: inside a Chinese character the file is no longer UTF-8
            position += 1
        edited = bytearray(raw)
        edited[position] = ord("x") if edited[position] != ord("x") else ord("y")
        bad = tmp_path / f"edited-{position}.json"
        bad.write_bytes(bytes(edited))
        result = subprocess.run([sys.executable, "-m", "engine.trailcheck", str(bad)], capture_output=True, text=True,
                                cwd=ROOT)
        assert result.returncode == 1, f"an edit at byte {position} went unnoticed"


def test_trail_checks_header_against_chain(xw, finished_case):
    trail = json.loads(xw.export_trail(finished_case))
    assert verify_trail(xw.export_trail(finished_case)) == []
    trail["case"]["procedure_version"] = 99
    from engine.trailcheck import render

    assert any("procedure_version" in p for p in verify_trail(render(trail)))
    trail = json.loads(xw.export_trail(finished_case))
    trail["events"] = trail["events"][:-1]  # truncation, re-rendered canonically
    assert any("head" in p for p in verify_trail(render(trail)))


def test_fast_hash_matches_the_reference_hash():
    from engine.core.audit import to_json
    from engine.trailcheck import event_hash, event_hash_text

    data = {"名称": "村道\"硬化\"", "amount": "1.50", "nested": [1, {"b": True, "a": None}]}
    text = to_json(data)
    assert event_hash_text("case:1", 3, "step_completed", "2026-01-01T00:00:00.000000Z", "张三", "committee", text,
                           "ab" * 32) == event_hash("case:1", 3, "step_completed", "2026-01-01T00:00:00.000000Z",
                                                    "张三", "committee", json.loads(text), "ab" * 32)
