"""The `xiaowei` command line: its forms are a contract.

Commands run in-process through click's runner (the same ``main`` the console script calls, with
its own stdout, stderr and exit code); the tests about the process itself (the console script,
``python -m engine.cli``, exit codes of a real process) start one. The read-only and bad-input
cases share one database per module; a test that changes data gets a copy of it.
"""

import json
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from conftest import ROOT, copy_database
from engine.cli import main
from engine.cli.base import Context

XIAOWEI = shutil.which("xiaowei", path=os.path.dirname(sys.executable)) or shutil.which("xiaowei")


def run(db_url, *args, ok=True, env=None):
    """``xiaowei ARGS --db URL`` in this process: returncode, stdout and stderr like a process."""
    context = Context()
    result = CliRunner().invoke(main, [*args, "--db", db_url], obj=context, env=env, catch_exceptions=True)
    if context._app is not None:
        context._app.db.dispose()
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback would have reached the user
    done = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
    if ok:
        assert done.returncode == 0, f"{args}: {done.stderr}"
    return done


def run_process(db_url, *args, ok=True, env=None):
    """The real console script (or ``python -m engine.cli``) as a process."""
    cmd = [XIAOWEI or sys.executable, *([] if XIAOWEI else ["-m", "engine.cli"]), *args, "--db", db_url]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "XIAOWEI_SCRYPT_N": "16", **(env or {})}, timeout=120)
    if ok:
        assert result.returncode == 0, f"{args}: {result.stderr}"
    return result


def test_console_script_is_installed(db_url):
    assert XIAOWEI, "pip install -e . provides the xiaowei command"
    listed = run_process(db_url, "roles", "list", "--json")
    assert {"party_branch", "supervision_committee"} <= {r["key"] for r in json.loads(listed.stdout)}
    module = subprocess.run([sys.executable, "-m", "engine.cli", "case", "show", "1", "--db", db_url],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert module.returncode == 1 and "xiaowei init" in module.stderr and "Traceback" not in module.stderr


@pytest.fixture(scope="module")
def shared_cli_db(module_db_url):
    """One database per module made with the commands themselves: the library, four organizations,
    two users. Tests that only read or are refused use it as it is."""
    db_url = module_db_url
    run(db_url, "init")
    for args in (["SFQ", "--name", "示范区", "--kind", "district"],
                 ["SFZ", "--name", "示范镇", "--kind", "township", "--parent", "SFQ"],
                 ["DONGAO", "--name", "东岙村", "--kind", "village", "--parent", "SFZ"],
                 ["XITANG", "--name", "西塘村", "--kind", "village", "--parent", "SFZ"]):
        run(db_url, "org", "add", *args)
    run(db_url, "user", "add", "wang", "--password", "s3cret-pass", "--role", "party_branch@DONGAO",
        "--role", "joint_meeting@DONGAO")
    run(db_url, "user", "add", "li", "--password", "s3cret-pass", "--role", "party_branch@XITANG")
    return db_url


@pytest.fixture
def cli_db(shared_cli_db, db_url):
    """A copy of the module's database for a test that changes it."""
    copy_database(shared_cli_db, db_url)
    return db_url


def test_catalogue_commands(shared_cli_db):
    cli_db = shared_cli_db
    procs = json.loads(run(cli_db, "procedures", "list", "--json").stdout)
    ids = {p["id"] for p in procs}
    assert {"V-DEC-01", "B-PUR-02", "B-SVC-01"} <= ids
    assert all({"id", "name", "category", "edition", "version"} <= set(p) for p in procs)
    village = {p["id"] for p in json.loads(run(cli_db, "procedures", "list", "--edition", "village", "--json").stdout)}
    assert "V-DEC-01" in village and not any(i.startswith("C-") for i in village)
    dec = json.loads(run(cli_db, "procedures", "list", "--category", "DEC", "--json").stdout)
    assert dec and all(p["category"] == "DEC" for p in dec)
    shown = json.loads(run(cli_db, "procedures", "show", "V-DEC-01", "--json").stdout)
    assert shown["steps"][0]["id"] == "collect" and shown["legal_basis"]
    roles = json.loads(run(cli_db, "roles", "list", "--json").stdout)
    assert {"key": "supervision_committee", "name": "村(居)务监督委员会"}.items() <= next(
        r for r in roles if r["key"] == "supervision_committee").items()
    users = json.loads(run(cli_db, "user", "list", "--json").stdout)
    assert {"username": "wang", "roles": ["joint_meeting@DONGAO", "party_branch@DONGAO"]}.items() <= next(
        u for u in users if u["username"] == "wang").items()


def test_case_lifecycle_through_the_cli(cli_db):
    case_id = run(cli_db, "case", "start", "V-DEC-01", "--org", "DONGAO", "--as", "wang").stdout.strip()
    assert case_id.isdigit()
    tasks = json.loads(run(cli_db, "case", "tasks", case_id, "--json").stdout)
    assert [t["step_id"] for t in tasks] == ["collect"] and tasks[0]["role"] == "party_branch" and tasks[0]["due_at"]
    data = {"matter_title": "村道硬化", "matter_type": "project", "source": "villagers", "amount": 120000,
            "opinions_summary": "多数村民赞成"}
    run(cli_db, "case", "complete", case_id, "collect", "--as", "wang", "--data", json.dumps(data, ensure_ascii=False))
    shown = json.loads(run(cli_db, "case", "show", case_id, "--json").stdout)
    assert shown["status"] == "running" and shown["title"] == "村道硬化"
    assert [t["step_id"] for t in shown["current_steps"]] == ["propose"]
    assert [e["type"] for e in shown["history"]] == ["case_started", "step_completed"]
    listed = json.loads(run(cli_db, "case", "list", "--org", "DONGAO", "--status", "running", "--json").stdout)
    assert [c["id"] for c in listed] == [int(case_id)]
    assert json.loads(run(cli_db, "case", "list", "--org", "XITANG", "--json").stdout) == []
    assert "办理中" in run(cli_db, "case", "show", case_id).stdout
    tick = json.loads(run(cli_db, "tick", "--now", "2030-01-01T00:00:00Z", "--json").stdout)
    assert tick["due_cases"] == 0
    assert run(cli_db, "audit", "verify").returncode == 0


@pytest.mark.parametrize("args, message", [
    (["case", "start", "NOPE-01", "--org", "DONGAO", "--as", "wang"], "NOPE-01"),
    (["case", "start", "V-DEC-01", "--org", "NOWHERE", "--as", "wang"], "NOWHERE"),
    (["case", "start", "V-DEC-01", "--org", "DONGAO", "--as", "nobody"], "nobody"),
    (["case", "start", "V-DEC-01", "--org", "DONGAO", "--as", "wang", "--data", "{oops"], "JSON"),
    (["case", "show", "424242"], "424242"),
    (["case", "complete", "424242", "collect", "--as", "wang"], "424242"),
    (["org", "add", "BAD CODE", "--name", "x", "--kind", "village", "--parent", "SFZ"], "BAD CODE"),
    (["user", "add", "zhao", "--password", "s3cret-pass", "--role", "emperor@DONGAO"], "emperor"),
    (["user", "add", "zhao", "--password", "short"], "8"),
    (["tick", "--now", "yesterday"], "ISO"),
])
def test_bad_input_is_one_clear_line_and_non_zero(shared_cli_db, args, message):
    result = run(shared_cli_db, *args, ok=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    first = result.stderr.strip().splitlines()[0]
    assert message in first


def test_other_village_and_wrong_role_are_refused(cli_db):
    case_id = run(cli_db, "case", "start", "V-DEC-01", "--org", "DONGAO", "--as", "wang").stdout.strip()
    data = json.dumps({"matter_title": "x", "matter_type": "project", "source": "villagers", "amount": 1,
                       "opinions_summary": "y"})
    refused = run(cli_db, "case", "complete", case_id, "collect", "--as", "li", "--data", data, ok=False)
    assert refused.returncode == 1 and "li" in refused.stderr
    invalid = run(cli_db, "case", "complete", case_id, "collect", "--as", "wang", "--data", '{"amount": "lots"}',
                  ok=False)
    assert invalid.returncode == 1 and "“涉及金额”须为数字" in invalid.stderr and "amount" not in invalid.stderr
    history = json.loads(run(cli_db, "case", "show", case_id, "--json").stdout)["history"]
    assert [e["type"] for e in history] == ["case_started", "access_denied"]


def test_lint_command(tmp_path, db_url):
    assert run(db_url, "lint", str(ROOT / "processes")).returncode == 0
    bad = tmp_path / "bad.bpmn"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    result = run(db_url, "lint", str(bad), ok=False)
    assert result.returncode == 1 and "DOCTYPE" in result.stdout


def test_demo_is_idempotent_and_prints_passwords_once(db_url):
    first = run(db_url, "demo", "--json")
    data = json.loads(first.stdout)
    assert data["created"] and len(data["users"]) >= 10 and data["cases"]
    roles = {r.split("@")[0] for u in data["users"] for r in u["roles"]}
    from engine.core import catalogue
    assert set(catalogue.roles()) <= roles
    second = json.loads(run(db_url, "demo", "--json").stdout)
    assert second["created"] is False and not second.get("users")
    statuses = {c["status"] for c in json.loads(run(db_url, "case", "list", "--json").stdout)}
    assert {"running", "completed"} <= statuses


def test_database_problems_are_one_line(tmp_path):
    fresh = f"sqlite:///{tmp_path / 'never-initialized.db'}"
    result = run(fresh, "case", "list", ok=False)
    assert result.returncode == 1 and "xiaowei init" in result.stderr and "Traceback" not in result.stderr
    unreachable = run("postgresql://postgres@127.0.0.1:1/x", "case", "list", ok=False)
    assert unreachable.returncode == 1 and "Traceback" not in unreachable.stderr


def test_serve_ticker_fires_due_timers_in_the_background(xw, people, frozen):
    """`xiaowei serve` starts a ticker thread: it fires a due disclosure timer without anyone opening the
    case, survives a failing round, and stops when told."""
    import time

    from conftest import do_step
    from engine.cli.serve import start_ticker

    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult", "party_review", "resolve", "resolve_supervision",
                 "disclose_resolution"):
        do_step(xw, case_id, step, people)
    assert xw.tasks(case_id, fire=False) == [] and xw.show_case(case_id)["timers"]
    frozen.advance(days=8)  # the 7-day notice is over: only a tick (or opening the case) fires it
    calls = []
    original = xw.tick

    def flaky_tick(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away for a moment")
        return original(**kwargs)

    xw.tick = flaky_tick
    stop = start_ticker(xw, 0.05)
    try:
        deadline = time.monotonic() + 10
        while not xw.tasks(case_id, fire=False) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
    assert [t["step_id"] for t in xw.tasks(case_id, fire=False)] == ["disclose_resolution_objections"]
    assert len(calls) >= 2  # the failing first round did not stop the thread
    with xw.db.read() as s:
        from engine.core import audit

        fired = [e for e in audit.case_events(s, case_id) if e.type == "timer_fired"]
    assert len(fired) == 1 and fired[0].actor == "system"
    time.sleep(0.2)
    settled = len(calls)
    time.sleep(0.2)
    assert len(calls) == settled  # stopped
