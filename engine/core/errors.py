"""Errors the engine raises on bad input; each maps to a one-line CLI message and an HTTP status."""

from __future__ import annotations

from typing import Any


class XiaoweiError(Exception):
    """Base class: a clear message (Chinese, then English) and an HTTP status for the API."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class NotFound(XiaoweiError):
    status = 404
    code = "not_found"


class Forbidden(XiaoweiError):
    status = 403
    code = "forbidden"


class Conflict(XiaoweiError):
    """The state changed under the caller: e.g. the step was completed by someone else."""

    status = 409
    code = "conflict"


class InvalidData(XiaoweiError):
    """Form data that fails the step's field definitions; ``errors`` maps field → message."""

    status = 422
    code = "invalid_data"

    def __init__(self, message: str, errors: dict[str, str]):
        super().__init__(message, errors=errors)
        self.errors = errors


class InvalidProcedure(XiaoweiError):
    """A BPMN document that fails validation; ``problems`` lists what and where."""

    status = 422
    code = "invalid_procedure"

    def __init__(self, message: str, problems: list | None = None):
        problems = problems or []
        super().__init__(message, problems=[p.to_dict() if hasattr(p, "to_dict") else p for p in problems])
        self.problems = problems


class Busy(XiaoweiError):
    """Too much of a bounded resource is in use (e.g. PDF printing): try again shortly."""

    status = 503
    code = "busy"


class Unavailable(XiaoweiError):
    """Something the server needs is missing (e.g. Chromium for PDFs): the administrator must install it."""

    status = 503
    code = "unavailable"


class EngineIncident(Conflict):
    """A condition or timer of the procedure failed at run time (a parameter out of range, a division
    by zero…): the case was left unchanged, the incident is on its trail and the township warned."""

    code = "incident"
