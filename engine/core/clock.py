"""One injectable clock for the whole engine.

Every time the engine reads ("now") comes from the clock of the current context: due times,
audit timestamps and SpiffWorkflow's timers alike. Tests and `xiaowei tick --now` move it.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator, Protocol


class Clock(Protocol):
    """Anything with a ``now()`` returning an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FixedClock:
    """A clock that stands still until moved; for tests, demos and `tick --now`."""

    def __init__(self, at: datetime | str):
        self._now = to_utc(at)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime | str) -> None:
        self._now = to_utc(at)

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now


def to_utc(value: datetime | str) -> datetime:
    """Parse ISO 8601 text or take a datetime; naive values are taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


_current: contextvars.ContextVar[Clock] = contextvars.ContextVar("xiaowei_clock", default=SystemClock())


def current() -> Clock:
    """The clock in force in this context."""
    return _current.get()


def now() -> datetime:
    """The current time of the clock in force."""
    return _current.get().now()


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the clock of this context for the duration of the block."""
    token = _current.set(clock)
    try:
        yield clock
    finally:
        _current.reset(token)
