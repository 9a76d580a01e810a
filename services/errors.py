"""One error hierarchy for the whole application, mapped to HTTP status codes once.

Domain code raises these; ``portal_site.app`` registers a single handler that turns them into
a JSON (or HTML) body with a clear message. Database exceptions never reach a client as text.
"""

from __future__ import annotations

__all__ = [
    "AppError",
    "BadRequest",
    "Conflict",
    "DatabaseUnavailable",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Unauthorized",
    "STATUS_CODES",
]


class AppError(Exception):
    """Base of every error we expect; ``message`` is safe to show to the user."""

    status_code = 500

    def __init__(self, message: str, *, param: str | None = None, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.details = details

    def to_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"error": type(self).__name__, "message": self.message}
        if self.param:
            body["param"] = self.param
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    """An illegal state transition or a duplicate."""

    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class RateLimited(AppError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailable(AppError):
    status_code = 503


STATUS_CODES: dict[type[AppError], int] = {
    cls: cls.status_code
    for cls in (AppError, BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, RateLimited, DatabaseUnavailable)
}
