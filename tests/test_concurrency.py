"""Two people completing the same step at once: exactly one wins; timers fire once under parallel ticks."""

import threading

import pytest

from engine.core.errors import Conflict
from engine.services.scenarios import plan_step_data
from engine.services.facade import Xiaowei
from storage import Database

from conftest import case_context, do_step


def race(db_url, case_id, step_id, users, payload, workers=6):
    barrier = threading.Barrier(workers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(i):
        app = Xiaowei(Database(db_url))  # each thread its own connections, as separate web workers would
        barrier.wait()
        try:
            app.complete(case_id, step_id, users[i % len(users)], payload)
            result = "ok"
        except Conflict as exc:
            result = "conflict:" + exc.message
        except Exception as exc:  # noqa: BLE001 - anything else (a duplicate row, say) fails the race
            result = f"error:{type(exc).__name__}: {exc}"
        finally:
            app.db.dispose()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_same_step_completed_concurrently_exactly_once(xw, people, db_url):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, "collect", params, data)
    outcomes = race(db_url, case_id, "collect", [people["party_branch"]], payload)
    assert outcomes.count("ok") == 1, outcomes
    assert all("已被办理" in o for o in outcomes if o != "ok"), outcomes
    history = xw.show_case(case_id)["history"]
    assert [e["type"] for e in history].count("step_completed") == 1
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["propose"]
    assert all(r.ok for r in xw.verify(case_id))


def test_parallel_ticks_fire_each_timer_once(xw, people, frozen, db_url):
    case_ids = []
    for _ in range(4):
        case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
        for step in ("collect", "propose", "consult", "party_review", "resolve", "resolve_supervision",
                     "disclose_resolution"):
            do_step(xw, case_id, step, people)
        case_ids.append(case_id)
    frozen.advance(days=8)
    barrier = threading.Barrier(3)
    from engine.core import clock

    def tick():
        app = Xiaowei(Database(db_url))
        with clock.using(frozen):
            barrier.wait()
            app.tick()
        app.db.dispose()

    threads = [threading.Thread(target=tick) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for case_id in case_ids:
        types = [e["type"] for e in xw.show_case(case_id)["history"]]
        assert types.count("timer_fired") == 1, types
        assert [t["step_id"] for t in xw.tasks(case_id)] == ["disclose_resolution_objections"]
    assert all(r.ok for r in xw.verify())


def test_sqlite_writer_waits_for_the_write_lock_then_writes(tmp_path, monkeypatch):
    """SQLite: a write transaction that finds the write lock taken waits (in short steps) and then
    writes; past the wait it fails as SQLite does ("database is locked"), nothing half-written."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    import storage.db

    db = Database(f"sqlite:///{tmp_path}/lock.db")
    with db.write() as s:
        s.execute(text("CREATE TABLE probe (v INTEGER)"))
    held = threading.Event()

    def hold(seconds: float) -> None:
        with db.write() as s:
            s.execute(text("INSERT INTO probe VALUES (1)"))
            held.set()
            time.sleep(seconds)

    holder = threading.Thread(target=hold, args=(0.3,))
    holder.start()
    held.wait(5)
    with db.write() as s:  # waits for the holder's commit
        s.execute(text("INSERT INTO probe VALUES (2)"))
    holder.join()
    with db.read() as s:
        assert s.execute(text("SELECT v FROM probe ORDER BY v")).scalars().all() == [1, 2]

    monkeypatch.setattr(storage.db, "WRITE_LOCK_WAIT", 0.1)
    held.clear()
    holder = threading.Thread(target=hold, args=(1.0,))
    holder.start()
    held.wait(5)
    try:
        with pytest.raises(OperationalError, match="locked"):
            with db.write() as s:
                s.execute(text("INSERT INTO probe VALUES (3)"))
    finally:
        holder.join()
    with db.read() as s:
        assert s.execute(text("SELECT v FROM probe ORDER BY v")).scalars().all() == [1, 1, 2]
    db.dispose()
