"""OCPI errors: an OCPI status code (the ``status_code`` of the envelope) and the HTTP status.

HTTP statuses as OCPI 2.2.1 sets them ("Transport and format", "Status codes"): a missing
Authorization header or a token that names no party is HTTP 401; a GET of something that does not
exist is HTTP 404 (with 2003, unknown Location); a request that reached the OCPI layer (authenticated,
addressing an existing resource) MUST NOT get an HTTP error, so invalid parameters are HTTP 200 with
2001 in the envelope. The issue's contract uses 4001 for bad credentials (in the spec's table 4001
is a hub's "unknown receiver"; the HTTP 401 is what the spec itself requires).
"""

from __future__ import annotations

__all__ = ["INVALID_PARAMETERS", "OcpiError", "SUCCESS", "UNKNOWN_LOCATION", "BAD_CREDENTIALS", "GENERIC_CLIENT_ERROR",
           "GENERIC_SERVER_ERROR", "bad_parameter", "bad_credentials", "unknown_location"]

SUCCESS = 1000
GENERIC_CLIENT_ERROR = 2000
INVALID_PARAMETERS = 2001
UNKNOWN_LOCATION = 2003
GENERIC_SERVER_ERROR = 3000
BAD_CREDENTIALS = 4001


class OcpiError(Exception):
    """An answer other than success: ``status_code`` (OCPI), ``http_status`` and a message for people."""

    def __init__(self, status_code: int, message: str, *, http_status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status
        self.param = param


def bad_parameter(param: str, message: str) -> OcpiError:
    """2001 naming the parameter, with HTTP 200 (the request reached the OCPI layer).

    >>> e = bad_parameter("limit", "parameter 'limit' must be a whole number")
    >>> e.status_code, e.http_status, e.param
    (2001, 200, 'limit')
    """
    return OcpiError(INVALID_PARAMETERS, message, http_status=200, param=param)


def unknown_location(message: str) -> OcpiError:
    """2003 with HTTP 404 (a GET of an object that does not exist)."""
    return OcpiError(UNKNOWN_LOCATION, message, http_status=404)


def bad_credentials(message: str) -> OcpiError:
    """4001 with HTTP 401 (no Authorization header, or a token that names no party)."""
    return OcpiError(BAD_CREDENTIALS, message, http_status=401)
