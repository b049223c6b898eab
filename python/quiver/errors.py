"""Errors raised by the Quiver client.

Every error coming back from the server (a ``pyarrow.flight`` error or an Arrow status
error produced from a gRPC status) is re-raised as a :class:`QuiverError` subclass chosen
from the gRPC status. ``str(err)`` is the server's own message; the full pyarrow text is
kept in ``err.raw`` and the original exception in ``err.__cause__``.
"""

from __future__ import annotations

import re
from typing import Optional

import pyarrow as pa
import pyarrow.flight as flight


class QuiverError(Exception):
    """Base class of every error raised by the Quiver client."""

    #: gRPC status name (``"INVALID_ARGUMENT"``, ...) when known.
    code: Optional[str] = None

    def __init__(self, message: str, raw: Optional[str] = None, code: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.raw = raw if raw is not None else message
        if code is not None:
            self.code = code


class Unauthenticated(QuiverError):
    """No token, or a token the server does not know (gRPC UNAUTHENTICATED)."""

    code = "UNAUTHENTICATED"


class PermissionDenied(QuiverError):
    """The token's role may not do this, e.g. a read-only token writing (PERMISSION_DENIED)."""

    code = "PERMISSION_DENIED"


#: Alias: pyarrow calls PERMISSION_DENIED "unauthorized".
Unauthorized = PermissionDenied


class NotFound(QuiverError):
    """Unknown dataset, branch, tag, version, ... (NOT_FOUND)."""

    code = "NOT_FOUND"


class AlreadyExists(QuiverError):
    """A branch or tag of that name already exists (ALREADY_EXISTS)."""

    code = "ALREADY_EXISTS"


class InvalidArgument(QuiverError):
    """Malformed request: bad SQL, bad ticket, schema mismatch, ... (INVALID_ARGUMENT)."""

    code = "INVALID_ARGUMENT"


class Conflict(QuiverError):
    """A concurrent update or an unresolved merge (FAILED_PRECONDITION / ABORTED)."""

    code = "FAILED_PRECONDITION"


class Unsupported(QuiverError):
    """The server does not implement this call (UNIMPLEMENTED)."""

    code = "UNIMPLEMENTED"


class Unavailable(QuiverError):
    """The server cannot be reached, or asks to run the request again (UNAVAILABLE): e.g. a
    pack another process erased while the server had it cached (the next read is served)."""

    code = "UNAVAILABLE"


class TimedOut(QuiverError):
    code = "DEADLINE_EXCEEDED"


class Cancelled(QuiverError):
    code = "CANCELLED"


class ServerError(QuiverError):
    """Any other server-side failure (INTERNAL, UNKNOWN, ...)."""

    code = "INTERNAL"


# "Flight returned <kind> error, with message: <message>[. gRPC client debug context: ...][. Detail: ...]";
# errors of a DoPut stream read "gRPC returned <kind> error, with message: …" (gRPC's own
# status names, e.g. "precondition failed")
_KIND_RE = re.compile(r"(?:Flight|gRPC) returned ([a-z ]+?) error, with message: ", re.S)
_TAIL_RE = re.compile(r"(?:\.?\s*gRPC client debug context:|\.\s*Client context:|\.\s*Detail: )", re.S)

_BY_KIND = {
    "invalid argument": InvalidArgument,
    "not found": NotFound,
    "already exists": AlreadyExists,
    "permission denied": PermissionDenied,
    "unauthorized": PermissionDenied,
    "unauthenticated": Unauthenticated,
    "unavailable": Unavailable,
    "unimplemented": Unsupported,
    "not implemented": Unsupported,
    "failed precondition": Conflict,
    "precondition failed": Conflict,
    "aborted": Conflict,
    "timed out": TimedOut,
    "deadline exceeded": TimedOut,
    "cancelled": Cancelled,
    "internal": ServerError,
    "unknown": ServerError,
}


def _server_message(text: str) -> tuple[Optional[str], str]:
    """(status kind if pyarrow named it, the server's own message) of a pyarrow error text."""
    kind = None
    msg = text
    m = _KIND_RE.search(text)
    if m:
        kind = m.group(1)
        msg = text[m.end():]
    t = _TAIL_RE.search(msg)
    if t:
        msg = msg[: t.start()]
    msg = msg.strip()
    return kind, msg or text.strip()


def _class_for(exc: BaseException, kind: Optional[str]):
    if kind and kind in _BY_KIND:
        return _BY_KIND[kind]
    if isinstance(exc, flight.FlightUnauthenticatedError):
        return Unauthenticated
    if isinstance(exc, flight.FlightUnauthorizedError):
        return PermissionDenied
    if isinstance(exc, flight.FlightUnavailableError):
        return Unavailable
    if isinstance(exc, flight.FlightTimedOutError):
        return TimedOut
    if isinstance(exc, flight.FlightCancelledError):
        return Cancelled
    if isinstance(exc, (flight.FlightServerError, flight.FlightInternalError)):
        return ServerError
    if isinstance(exc, pa.ArrowInvalid):
        return InvalidArgument
    if isinstance(exc, pa.ArrowKeyError):
        return NotFound
    if isinstance(exc, pa.ArrowNotImplementedError):
        return Unsupported
    return ServerError


def from_flight(exc: BaseException) -> QuiverError:
    """The :class:`QuiverError` for a pyarrow/Flight exception."""
    if isinstance(exc, QuiverError):
        return exc
    raw = str(exc)
    kind, msg = _server_message(raw)
    cls = _class_for(exc, kind)
    err = cls(msg, raw=raw)
    return err


#: Exceptions that come back from pyarrow.flight calls and are translated.
FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
