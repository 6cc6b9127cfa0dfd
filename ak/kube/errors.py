"""One error tree for API calls, so callers catch exactly what they mean."""

from __future__ import annotations

from typing import Any


class KubeError(Exception):
    """Anything that went wrong talking to an API server."""


class Unreachable(KubeError):
    """The API server could not be reached (connect, TLS, read timeout, reset)."""

    def __init__(self, where: str, error: BaseException) -> None:
        self.reason = transport_reason(error)
        super().__init__(f"{where}: {self.reason}")


def transport_reason(error: BaseException) -> str:
    """What went wrong, from the innermost cause that says something.

    httpx reports a refused certificate as ``ConnectError('')``: the reason is
    on the trio/ssl exception it was raised from."""
    said = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    seen = {id(error)}
    cause = error.__cause__ or error.__context__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if str(cause):
            said = f"{type(error).__name__}: {cause}"
        cause = cause.__cause__ or cause.__context__
    return said


class ApiError(KubeError):
    """The API server answered with an error Status."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: a resourceVersion or UID precondition failed, or the object exists."""

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


class Gone(ApiError):
    """410: the watch's resourceVersion is too old; relist."""


class Forbidden(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class Invalid(ApiError):
    """422: the object failed validation (or admission with that code)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


def api_error(status: int, body: Any) -> ApiError:
    reason, message = "", ""
    if isinstance(body, dict):
        reason = str(body.get("reason", ""))
        message = str(body.get("message", ""))
    elif body:
        message = str(body)[:500]
    cls = _BY_STATUS.get(status, ApiError)
    return cls(status, reason or "Unknown", message, body)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying as is: outages, throttling and server-side hiccups."""
    if isinstance(exc, Unreachable):
        return True
    return isinstance(exc, ApiError) and (exc.status == 429 or exc.status >= 500)
