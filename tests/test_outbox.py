"""The transactional outbox and the background worker: a change leaves its row in its own transaction,
the worker turns it into the warning evaluation exactly once — also when a worker dies holding the
claim, or a slow worker's lease runs out and another takes over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from engine.cli import main
from engine.core import outbox
from engine.services import worker
from engine.services.facade import Xiaowei
from storage.models import OutboxEntry
from supervision_helpers import red_expense

ROOT = Path(__file__).resolve().parent.parent


def _rows(xw, case_id=None):
    with xw.db.read() as s:
        query = select(OutboxEntry).order_by(OutboxEntry.id)
        if case_id is not None:
            query = query.where(OutboxEntry.case_id == case_id)
        return [(r.case_id, r.kind, r.claimed_by, r.done_at is not None, r.attempts, r.last_error)
                for r in s.scalars(query)]


def _red(xw, case_id):
    return [w for w in xw.list_warnings(rule="WR-03", case_id=case_id, limit=50)["warnings"]]


def test_a_change_writes_one_outbox_row_in_its_transaction_and_the_worker_raises_the_warning(xw, people):
    deferred = Xiaowei(xw.db, inline_background=False)  # as the web app: the request does only what is atomic
    cid = red_expense(deferred, people)
    rows = _rows(xw, cid)
    assert [(r[0], r[1], r[3]) for r in rows] == [(cid, "case_changed", False)] * 2  # start, submit
    assert _red(xw, cid) == []  # nothing evaluated on the request path
    done = worker.drain(deferred)
    assert done["rows"] == 2 and done["cases"] == 1 and done["raised"] >= 1 and done["failed"] == 0
    assert len(_red(xw, cid)) == 1
    assert all(r[3] for r in _rows(xw, cid))
    assert worker.drain(deferred)["rows"] == 0  # nothing left, nothing evaluated twice
    assert len(_red(xw, cid)) == 1


def test_a_refused_change_leaves_no_outbox_row(xw, people):
    """The row is part of the change's transaction: a change that rolls back leaves none."""
    from engine.core.errors import XiaoweiError

    deferred = Xiaowei(xw.db, inline_background=False)
    cid = deferred.start_case("B-FIN-01", "DONGAO", people["handler"])
    before = len(_rows(xw, cid))
    try:
        deferred.complete(cid, "submit", people["handler"], {"amount": "not a number"})
    except XiaoweiError:
        pass
    else:  # pragma: no cover - the form must refuse it
        raise AssertionError("bad data accepted")
    assert len(_rows(xw, cid)) == before


def test_inline_mode_evaluates_through_the_worker_at_once(xw, people):
    cid = red_expense(xw, people)  # the tests' and the command line's facade: inline_background=True
    assert len(_red(xw, cid)) == 1
    assert _rows(xw, cid) and all(r[3] for r in _rows(xw, cid))


_CLAIM_AND_HANG = """
import sys, time
from engine.core import outbox
from storage import Database
db = Database(sys.argv[1])
with db.write() as s:
    rows = outbox.claim(s, "doomed-worker", limit=100)
print(len(rows), flush=True)
time.sleep(600)
"""


def test_a_worker_killed_after_claiming_leaves_the_change_to_the_next_worker_raised_once(xw, people, db_url):
    deferred = Xiaowei(xw.db, inline_background=False)
    cid = red_expense(deferred, people)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    doomed = subprocess.Popen([sys.executable, "-c", _CLAIM_AND_HANG, db_url], stdout=subprocess.PIPE, text=True,
                              env=env, cwd=ROOT)
    try:
        assert doomed.stdout.readline().strip() == "2"  # it holds the case's two rows
    finally:
        doomed.send_signal(signal.SIGKILL)  # dies before it evaluates anything
        doomed.wait()
    assert {r[2] for r in _rows(xw, cid)} == {"doomed-worker"}
    assert worker.drain(deferred)["rows"] == 0  # its claim still holds: nobody else takes the rows
    assert _red(xw, cid) == []
    later = outbox.wall_now() + outbox.LEASE + timedelta(seconds=1)  # the claim has expired
    done = worker.drain(deferred, now=later)
    assert done["rows"] == 2 and done["cases"] == 1
    assert len(_red(xw, cid)) == 1
    assert [(r[3], r[4]) for r in _rows(xw, cid)] == [(True, 2)] * 2  # taken twice, done once
    assert worker.drain(deferred, now=later + timedelta(hours=1))["rows"] == 0
    assert len(_red(xw, cid)) == 1


def test_a_slow_worker_that_lost_its_claim_does_not_commit(xw, people):
    deferred = Xiaowei(xw.db, inline_background=False)
    cid = red_expense(deferred, people)
    t0 = outbox.wall_now()
    with xw.db.write() as s:
        slow = outbox.claim(s, "slow", now=t0, lease=timedelta(seconds=5))
    done = worker.drain(deferred, worker="fast", now=t0 + timedelta(seconds=6))  # the lease ran out
    assert done["rows"] == 2 and len(_red(xw, cid)) == 1
    with xw.db.write() as s:  # the slow one finishes late: its mark refuses, its transaction would roll back
        assert outbox.finish(s, [r[0] for r in slow], "slow") is False
    assert [(r[2], r[4]) for r in _rows(xw, cid)] == [("fast", 2)] * 2


def test_a_failing_evaluation_is_recorded_and_retried_later(xw, people, monkeypatch):
    deferred = Xiaowei(xw.db, inline_background=False)
    cid = red_expense(deferred, people)
    original = worker.HANDLERS[outbox.CASE_CHANGED]

    def broken(session, case_id):
        raise RuntimeError("rule crashed")

    monkeypatch.setitem(worker.HANDLERS, outbox.CASE_CHANGED, (broken, original[1]))
    done = worker.drain(deferred)
    assert done["failed"] == 1 and _red(xw, cid) == []
    assert {r[5] for r in _rows(xw, cid)} == {"RuntimeError: rule crashed"}
    with xw.db.read() as s:
        assert outbox.backlog(s)["failing"] == 2
    monkeypatch.setitem(worker.HANDLERS, outbox.CASE_CHANGED, original)
    assert worker.drain(deferred)["rows"] == 0  # it waits before the retry
    done = worker.drain(deferred, now=outbox.wall_now() + timedelta(seconds=31))
    assert done["cases"] == 1 and len(_red(xw, cid)) == 1


def test_a_change_commits_while_the_worker_rules_read_and_is_evaluated_in_the_next_round(xw, people, monkeypatch):
    """The drain's rules read in a read transaction of their own: a case changed meanwhile (here from
    inside the rules' read, in its own write transaction) commits at once instead of waiting for the
    worker (on SQLite: the write lock is free while the rules run), and its outbox row is left for the
    next round; the warning of the case evaluated is stored with its done mark."""
    deferred = Xiaowei(xw.db, inline_background=False)
    cid = red_expense(deferred, people)
    read, write = worker.HANDLERS[outbox.CASE_CHANGED]
    started: list[int] = []

    def reading(session, case_id):
        found = read(session, case_id)
        if not started:
            started.append(deferred.start_case("B-FIN-01", "DONGAO", people["handler"]))
        return found

    monkeypatch.setitem(worker.HANDLERS, outbox.CASE_CHANGED, (reading, write))
    done = worker.drain(deferred)
    assert done == {"rows": 2, "cases": 1, "raised": 1, "failed": 0, "lost": 0}
    assert len(_red(xw, cid)) == 1 and all(r[3] for r in _rows(xw, cid))
    assert [(r[0], r[3]) for r in _rows(xw, started[0])] == [(started[0], False)]  # left for the next round
    assert worker.drain(deferred)["rows"] == 1
    assert all(r[3] for r in _rows(xw)) and len(_red(xw, cid)) == 1


def test_cli_worker_once_drains_the_outbox_and_ticks(xw, people, db_url):
    deferred = Xiaowei(xw.db, inline_background=False)
    cid = red_expense(deferred, people)
    result = CliRunner().invoke(main, ["worker", "--once", "--json", "--db", db_url])
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["rows"] == 2 and done["cases"] == 1 and done["ticks"] == 1
    assert done["backlog"] == {"due": 0, "claimed": 0, "failing": 0}
    assert len(_red(xw, cid)) == 1
    result = CliRunner().invoke(main, ["worker", "--once", "--db", db_url])
    assert result.exit_code == 0 and "已处理变更 0 条" in result.output
    with xw.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.done_at.is_(None))) == 0


def test_tick_purges_rows_done_long_ago(xw, people):
    red_expense(xw, people)
    with xw.db.write() as s:
        assert outbox.purge(s) == 0  # done just now: kept a while
        assert outbox.purge(s, now=outbox.wall_now() + timedelta(days=8)) == 2


def test_the_thread_of_serve_drains_the_outbox_and_the_web_app_defers(xw, people):
    import time

    from engine.cli.serve import start_ticker
    from webui import create_app

    assert create_app({"SECRET_KEY": "k"}, db=xw.db).extensions["xiaowei"].inline_background is False
    assert create_app({"TESTING": True, "SECRET_KEY": "k"}, db=xw.db).extensions["xiaowei"].inline_background is True
    deferred = Xiaowei(xw.db, inline_background=False)
    stop = start_ticker(deferred, 0, poll=0.05)  # timers left alone: only the outbox
    try:
        cid = red_expense(deferred, people)
        deadline = time.monotonic() + 30
        # until the warning is raised and every row is done (the start's row may be evaluated after the
        # submission committed: it raises the warning, and the submission's row is done a moment later)
        while not (_red(xw, cid) and all(r[3] for r in _rows(xw, cid))) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
    assert len(_red(xw, cid)) == 1 and all(r[3] for r in _rows(xw, cid)), _rows(xw, cid)


def test_two_workers_at_once_take_every_row_once(xw, people):
    """Two workers drain the same backlog concurrently (threads with their own connections, as two
    processes would): every row is done exactly once, nothing is lost, no warning is raised twice."""
    import threading

    deferred = Xiaowei(xw.db, inline_background=False)
    cases = [red_expense(deferred, people) for _ in range(4)]
    results: list[dict] = []
    barrier = threading.Barrier(2)

    def one(name: str) -> None:
        barrier.wait()
        results.append(worker.drain(deferred, worker=name, batch=2))

    threads = [threading.Thread(target=one, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["rows"] for r in results) == 8 and sum(r["lost"] + r["failed"] for r in results) == 0
    rows = _rows(xw)
    assert [(r[3], r[4]) for r in rows if r[0] in cases] == [(True, 1)] * 8
    for cid in cases:
        assert len(_red(xw, cid)) == 1


def test_cli_worker_once_on_a_database_without_schema_says_so(db_url):
    result = CliRunner().invoke(main, ["worker", "--once", "--db", db_url])
    assert result.exit_code == 1 and "xiaowei init" in result.output and "Traceback" not in result.output
