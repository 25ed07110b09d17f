"""`xiaowei backup` / `xiaowei restore`: a backup restored into another database verifies every chain
(and a backup edited behind the engine's back does not)."""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager

from click.testing import CliRunner
from sqlalchemy import text

from conftest import USING_PG, _pg_admin, _pg_create, _pg_database_url, bypass_append_only, do_step
from engine.cli import main
from engine.services.facade import Xiaowei
from storage import Database
from supervision_helpers import red_expense


@contextmanager
def other_database(tmp_path):
    """A second, empty database of the kind under test."""
    if not USING_PG:
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    name = f"r_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin()
    with admin.connect() as conn:
        _pg_create(conn, name)
    try:
        yield _pg_database_url(name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _history(xw, people) -> list[int]:
    red = red_expense(xw, people)
    vote = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose"):
        do_step(xw, vote, step, people)
    xw.tick()
    return [red, vote]


def test_a_restored_backup_verifies_every_chain(xw, people, db_url, tmp_path):
    cases = _history(xw, people)
    runner = CliRunner()
    out = tmp_path / "backup.bin"
    result = runner.invoke(main, ["backup", "-o", str(out), "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["format"] == ("pg_dump" if USING_PG else "sqlite")
    again = runner.invoke(main, ["backup", "-o", str(out), "--db", db_url])
    assert again.exit_code == 1 and "文件已存在" in again.output  # never overwritten by accident
    with other_database(tmp_path) as target:
        result = runner.invoke(main, ["restore", str(out), "--json", "--db", target])
        assert result.exit_code == 0, result.output
        done = json.loads(result.output)
        assert done["problems"] == [] and done["chains"] >= len(cases) and done["events"] > 0
        restored = Xiaowei(Database(target))
        try:
            assert all(r.ok for r in restored.verify())
            for case_id in cases:
                assert restored.show_case(case_id)["status"] == xw.show_case(case_id)["status"]
                assert restored.trail_head(case_id) == xw.trail_head(case_id)
            assert len(restored.list_warnings(limit=100)["warnings"]) == len(xw.list_warnings(limit=100)["warnings"])
            result = runner.invoke(main, ["audit", "verify", "--db", target])
            assert result.exit_code == 0, result.output
        finally:
            restored.db.dispose()


def test_a_backup_edited_behind_the_engine_fails_verification_when_restored(xw, people, db_url, tmp_path):
    if USING_PG:  # the edit below is made on the SQLite file; on PostgreSQL the dump is a binary archive
        import pytest

        pytest.skip("edits an SQLite backup file")
    case_id = _history(xw, people)[0]
    out = tmp_path / "backup.db"
    assert CliRunner().invoke(main, ["backup", "-o", str(out), "--db", db_url]).exit_code == 0
    edited = Database(f"sqlite:///{out}")
    with edited.write() as s:
        bypass_append_only(s)
        s.execute(text("UPDATE audit_event SET actor = 'someone_else' WHERE case_id = :c AND seq = 1"), {"c": case_id})
    edited.dispose()
    with other_database(tmp_path) as target:
        result = CliRunner().invoke(main, ["restore", str(out), "--db", target])
        assert result.exit_code == 1 and "校验失败" in result.output


def test_restore_refuses_what_is_not_a_backup(xw, db_url, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database", encoding="utf-8")
    result = CliRunner().invoke(main, ["restore", str(junk), "--db", db_url])
    assert result.exit_code == 1 and "备份" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["restore", str(tmp_path / "missing.db"), "--db", db_url])
    assert result.exit_code == 1 and "备份文件不存在" in result.output
