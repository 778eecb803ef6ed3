"""The IdP's own browser sessions, kept in the store.

The cookie holds only a random session id (256 bits); the store holds the session under a
keyed hash of it (``sess:{<hash>}``), so neither a stolen store dump nor a guessed id opens
one, and ending a session (RP-initiated logout) really ends it, on every worker at once.

A browser gets an *anonymous* session the first time it is shown a form: it carries the
CSRF token that form posts back. Signing in replaces it with a new session (a new id,
against session fixation, and a new CSRF token) holding the user and ``auth_time``; that
one lasts ``IDP_SESSION_TTL`` seconds from the sign-in, whatever happens.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import asdict, dataclass

from .clock import now, to_millisecond
from .hashing import SecretHasher
from .store import Store

ANONYMOUS_TTL = 1800


@dataclass(frozen=True)
class BrowserSession:
    id: str
    csrf_token: str
    user_id: str | None = None
    # when the user signed in, to the millisecond: compared with revocation watermarks,
    # which are as precise (ID and access tokens claim its whole seconds)
    auth_time: float | None = None
    expires_at: float = 0.0

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    def check_csrf(self, presented) -> bool:
        """Constant-time comparison with the session's CSRF token."""
        return isinstance(presented, str) and hmac.compare_digest(
            presented.encode(), self.csrf_token.encode())


class SessionStore:
    def __init__(self, store: Store, hasher: SecretHasher, ttl: int, clock=now):
        self.store = store
        self.hasher = hasher
        self.ttl = ttl
        self.clock = clock

    def binding(self, session_id: str) -> str:
        """A stable, secret-free name for a session (interactions are bound to it)."""
        return self.hasher.digest("session\x00" + session_id)

    def _key(self, session_id: str) -> str:
        return self.store.key("sess", self.binding(session_id))

    def find(self, session_id: str | None) -> BrowserSession | None:
        if not isinstance(session_id, str) or not 20 <= len(session_id) <= 100:
            return None
        data = self.store.get(self._key(session_id))
        if data is None:
            return None
        session = BrowserSession(id=session_id, **data)
        return session if session.expires_at > self.clock() else None

    def _save(self, session: BrowserSession, ttl: int) -> BrowserSession:
        data = asdict(session)
        del data["id"]
        self.store.put(self._key(session.id), data, ttl)
        return session

    def anonymous(self) -> BrowserSession:
        return self._save(BrowserSession(
            id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32),
            expires_at=self.clock() + ANONYMOUS_TTL), ANONYMOUS_TTL)

    def sign_in(self, previous: BrowserSession | None, user_id: str,
                signed_in_at: float | None = None) -> BrowserSession:
        """A new session for ``user_id`` authenticated at ``signed_in_at`` (the moment their
        account was read; now when not given); the previous one ends."""
        if previous is not None:
            self.end(previous)
        signed_in_at = signed_in_at if signed_in_at is not None else self.clock()
        return self._save(BrowserSession(
            id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32),
            user_id=user_id, auth_time=to_millisecond(signed_in_at),
            expires_at=signed_in_at + self.ttl), self.ttl)

    def end(self, session: BrowserSession) -> None:
        self.store.delete(self._key(session.id))
