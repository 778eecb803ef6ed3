"""Consent: what a user allowed a third-party client, remembered until the user revokes it.

First-party clients (``first_party``, the default) never ask. A third-party client asks
once for a set of scopes; a later request within what was allowed goes through, and a
request for more asks again (for the union). The records live in the database
(``ConsentDirectory``, implemented in ``app/repositories.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Consent:
    user_id: str
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    granted_at: datetime


class ConsentDirectory(Protocol):
    def find(self, user_id: str, client_id: str) -> Consent | None: ...

    def grant(self, user_id: str, client_id: str, scopes: list[str]) -> None: ...

    def list_for(self, user_id: str) -> list[Consent]: ...

    def revoke(self, user_id: str, client_id: str) -> bool: ...


# what the consent page says each scope lets the client do
SCOPE_DESCRIPTIONS = {
    "openid": "Know who you are (your account identifier)",
    "profile": "See your name and user name",
    "email": "See your e-mail address",
    "offline_access": "Keep access while you are signed out",
}
