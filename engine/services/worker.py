"""Background work fed from the transactional outbox (:mod:`engine.core.outbox`), and the timers.

What a change of a case leaves to do after its transaction committed — today the warning rules of
that case (:func:`engine.services.supervision.warnings.evaluate_case`) and making its township's
cached dashboard figures stale (:func:`engine.services.supervision.figures.touch_case`) — is done here:

* :func:`drain` claims due outbox rows in batches (one short transaction), then evaluates each
  changed case: the rules in a read transaction, then what they found stored in a write transaction
  that also marks its rows done, so the warnings and the "done" mark commit together or not at all
  (and on SQLite the write lock is held only for that short write, not while the rules read). Warnings are stored under a unique fingerprint, so even a
  repeated evaluation could never raise a warning twice.
* :func:`process_case` is the same work done at once for one case, in one transaction, right after
  the change (``Xiaowei(inline_background=True)``: the command line, scripts, the tests).
* :func:`run` is the loop of ``xiaowei worker`` and of the background thread of ``xiaowei serve``:
  drain the outbox every ``poll`` seconds and run ``tick`` (due timers, time-based rules, housekeeping)
  every ``tick_every`` seconds.

Any number of workers may run on PostgreSQL (claims use ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from engine.core import outbox

if TYPE_CHECKING:
    from .facade import Xiaowei

log = logging.getLogger("xiaowei.worker")


def worker_name() -> str:
    """host:pid:random — who holds a claim (shown in the outbox rows)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _LostClaim(Exception):
    """The lease ran out and another worker took the rows: this evaluation must not commit."""


def _case_findings(session, case_id: int | None):
    """What a changed case's follow-up work reads: its warning rules' findings (only reads)."""
    from .supervision import warnings

    if case_id is None:
        return [], None
    return warnings.find_for_case(session, case_id)


def _case_store(session, case_id: int | None, found) -> list[dict]:
    """What it writes: the new warnings, and its township's cached dashboard figures made stale (in
    the transaction that marks the outbox rows done)."""
    from .supervision import figures, warnings

    findings, at = found
    raised = warnings.store(session, findings, at)
    figures.touch_case(session, case_id)
    return raised


# kind -> (read, write): ``read(session, case_id)`` only reads (it may run in a read transaction of
# its own, before the write lock is taken); ``write(session, case_id, what_read_returned)`` stores.
HANDLERS: dict[str, tuple[Callable, Callable]] = {outbox.CASE_CHANGED: (_case_findings, _case_store)}


def _handler(kind: str) -> tuple[Callable, Callable]:
    handler = HANDLERS.get(kind)
    if handler is None:
        raise ValueError(f"unknown outbox kind {kind!r}")
    return handler


def _handle(session, kind: str, case_id: int | None) -> list[dict]:
    """Read and write of one kind's work in the one transaction ``session``."""
    read, write = _handler(kind)
    return write(session, case_id, read(session, case_id))


def process_case(xw: "Xiaowei", case_id: int) -> list[dict]:
    """The follow-up work of one case's change at once: claim its due rows, evaluate, mark them done —
    one transaction. A failure is logged and rolled back (the rows stay for the worker); never raised."""
    name = worker_name()
    try:
        with xw.db.write() as s:
            rows = outbox.claim(s, name, case_id=case_id, limit=1000)
            if not rows:
                return []
            raised: list[dict] = []
            for kind in sorted({kind for _, kind, _ in rows}):
                raised.extend(_handle(s, kind, case_id))
            outbox.finish(s, [r[0] for r in rows], name)
            return raised
    except Exception:  # noqa: BLE001 - follow-up work must never break the change that committed
        log.exception("background work failed for case %s (left for the worker)", case_id)
        return []


def drain(xw: "Xiaowei", *, worker: str | None = None, batch: int = 100, now: datetime | None = None,
          lease: timedelta = outbox.LEASE, limit: int | None = None) -> dict:
    """Work off every due outbox row (at most ``limit``); what was done:
    ``{"rows", "cases", "raised", "failed", "lost"}``. ``now`` (wall clock) decides which claims expired."""
    worker = worker or worker_name()
    done = {"rows": 0, "cases": 0, "raised": 0, "failed": 0, "lost": 0}
    with xw.db.read() as s:
        if not outbox.any_due(s, now=now):
            return done
    while limit is None or done["rows"] < limit:
        size = batch if limit is None else min(batch, limit - done["rows"])
        with xw.db.write() as s:
            rows = outbox.claim(s, worker, limit=size, now=now, lease=lease)
        if not rows:
            break
        by_case: dict[tuple[str, int | None], list[int]] = {}
        for row_id, kind, case_id in rows:
            by_case.setdefault((kind, case_id), []).append(row_id)
        for (kind, case_id), ids in by_case.items():
            done["rows"] += len(ids)
            try:
                # The rules read in a read transaction of their own; only storing what they found and
                # the done mark take the write transaction (on SQLite: the write lock), so that changes
                # of cases and other workers need not wait behind the rules. A change committed after
                # that read left an outbox row of its own, evaluated by a later round.
                read, write = _handler(kind)
                with xw.db.read() as s:
                    found = read(s, case_id)
                with xw.db.write() as s:
                    raised = write(s, case_id, found)
                    if not outbox.finish(s, ids, worker, now=now):
                        raise _LostClaim()
                done["cases"] += 1
                done["raised"] += len(raised)
            except _LostClaim:
                done["lost"] += 1
            except Exception as exc:  # noqa: BLE001 - one bad case must not stop the queue
                log.exception("background work failed for case %s", case_id)
                done["failed"] += 1
                try:
                    with xw.db.write() as s:
                        outbox.fail(s, ids, worker, f"{type(exc).__name__}: {exc}", now=now)
                except Exception:  # noqa: BLE001 - the lease expires and the rows are retried anyway
                    log.exception("could not record the failure of case %s", case_id)
        if len(rows) < size:
            break  # that was all that was due: no second look
    return done


def run(xw: "Xiaowei", *, stop: threading.Event | None = None, poll: float = 1.0, tick_every: float = 60.0,
        once: bool = False, on_round: Callable[[dict], None] | None = None) -> dict:
    """Drain the outbox every ``poll`` seconds and tick every ``tick_every`` seconds (0: never) until
    ``stop`` is set; with ``once``, one tick and one drain, and return what was done (an error is
    raised). Otherwise errors are logged, never fatal: the next round tries again."""
    stop = stop or threading.Event()
    worker = worker_name()
    total = {"rows": 0, "cases": 0, "raised": 0, "failed": 0, "lost": 0, "ticks": 0}
    last_tick = None
    wait = poll if tick_every <= 0 else min(poll, tick_every)
    while True:
        if tick_every > 0 and (once or last_tick is None or time.monotonic() - last_tick >= tick_every):
            last_tick = time.monotonic()
            try:
                ticked = xw.tick()
                total["ticks"] += 1
                total["tick"] = ticked
            except Exception:  # noqa: BLE001
                if once:
                    raise  # `xiaowei worker --once` says what went wrong
                log.exception("tick failed")
        try:
            done = drain(xw, worker=worker)
            for key in ("rows", "cases", "raised", "failed", "lost"):
                total[key] += done[key]
            if on_round is not None and done["rows"]:
                on_round(done)
        except Exception:  # noqa: BLE001 - the database may be away for a moment
            if once:
                raise
            log.exception("draining the outbox failed")
        if once or stop.wait(wait):
            return total


def start_thread(xw: "Xiaowei", *, poll: float = 1.0, tick_every: float = 60.0) -> threading.Event:
    """:func:`run` in a daemon thread (``xiaowei serve``); set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=run, kwargs={"xw": xw, "stop": stop, "poll": poll, "tick_every": tick_every},
                              name="xiaowei-worker", daemon=True)
    thread.start()
    return stop
