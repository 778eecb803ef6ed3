"""One error type for everything the service refuses.

An ``IdpError`` carries the HTTP status, the envelope code used under ``/api/v1``, the
RFC 6749 §5.2 code used under ``/oauth``, and a message that is safe to show: it never
contains a secret, a token or an internal detail. The app maps it to either form at the
edge (``app/errors.py``); nothing below the views builds a response.
"""

from __future__ import annotations


class IdpError(Exception):
    status = 400
    # RFC 6749 §5.2 answers some failures with another status than the envelope does
    oauth_status: int | None = None
    code = "INVALID_REQUEST"
    oauth_error = "invalid_request"
    message = "Invalid request"

    def __init__(self, message: str | None = None, *, retry_after: int | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.retry_after = retry_after


class InvalidRequest(IdpError):
    pass


class InvalidGrant(IdpError):
    """A grant (refresh token, code) that is wrong, used, expired or revoked."""
    status = 401
    code = "UNAUTHORIZED"
    oauth_error = "invalid_grant"
    oauth_status = 400
    message = "Invalid or expired token"


class InvalidScope(IdpError):
    oauth_error = "invalid_scope"
    message = "The requested scope is not allowed"


class Unauthorized(IdpError):
    status = 401
    code = "UNAUTHORIZED"
    oauth_error = "invalid_token"
    message = "Invalid or expired token"


class InvalidCredentials(Unauthorized):
    """Wrong username, wrong password and disabled user: one error, one message."""
    oauth_error = "invalid_grant"
    oauth_status = 400
    message = "Invalid username or password"


class Forbidden(IdpError):
    status = 403
    code = "FORBIDDEN"
    oauth_error = "access_denied"
    message = "Insufficient permissions"


class NotFound(IdpError):
    status = 404
    code = "NOT_FOUND"
    oauth_error = "invalid_request"
    message = "Not found"


class Conflict(IdpError):
    status = 409
    code = "CONFLICT"
    oauth_error = "invalid_request"
    message = "Already exists"


class RateLimited(IdpError):
    status = 429
    code = "RATE_LIMITED"
    oauth_error = "slow_down"
    message = "Too many attempts; try again later"


class Unavailable(IdpError):
    """A dependency (Redis, the database) is down: we fail closed, never open."""
    status = 503
    code = "UNAVAILABLE"
    oauth_error = "temporarily_unavailable"
    message = "Service temporarily unavailable"
