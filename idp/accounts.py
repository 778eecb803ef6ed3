"""Who signs in: the account as the token service sees it, and password authentication."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .errors import InvalidCredentials
from .passwords import PasswordHasher


@dataclass(frozen=True)
class Account:
    id: str
    username: str
    email: str | None
    disabled: bool = False
    platform_roles: tuple[str, ...] = ()
    # tenant id -> role
    memberships: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    email_verified: bool = False
    password_hash: str | None = field(default=None, repr=False)
    # the user's revocation watermark (epoch seconds), when the directory loaded it: refresh
    # families that began at or before it are dead
    revoked_before: float | None = None
    # the watermark of this user's grant to the one client the directory was asked about
    # (consent withdrawn): that client's refresh families begun at or before it are dead
    grant_revoked_before: float | None = None
    # whether the one refresh family the directory was asked about was ended (its durable
    # revocation), which a Redis restored from an older copy would not remember
    family_ended: bool = False
    # when the directory read it (taken before the query): a sign-in, a family or a token
    # that rests on this reading counts from then, so a revocation landing since (during the
    # password check, say) still covers it
    read_at: float | None = field(default=None, compare=False, repr=False)

    def get_user_id(self) -> str:  # Authlib's user contract
        return self.id

    def public(self) -> dict:
        """The seed's ``user`` object."""
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "roles": list(self.platform_roles),
            "tenants": [{"id": t, "role": r} for t, r in sorted(self.memberships.items())],
        }


class AccountDirectory(Protocol):
    def find_by_username(self, username: str) -> Account | None: ...

    def find_by_id(self, user_id: str, client_id: str | None = None,
                   family_id: str | None = None) -> Account | None:
        """The account with its current memberships, its ``revoked_before`` watermark, with
        ``client_id`` its ``grant_revoked_before`` for that client, and with ``family_id``
        whether that refresh family was ended (``family_ended``)."""

    def replace_password_hash(self, user_id: str, password_hash: str) -> None: ...


# what any sign-in form or API accepts; longer input is never looked up or hashed
MAX_USERNAME, MAX_PASSWORD = 150, 1024


def normalise_username(username: str) -> str:
    return username.strip().lower()


class PasswordAuthenticator:
    """Username and password to an enabled account, or one uniform failure.

    Unknown user, wrong password and disabled user all raise the same
    ``InvalidCredentials`` after one argon2 verification each.
    """

    def __init__(self, directory: AccountDirectory, hasher: PasswordHasher):
        self.directory = directory
        self.hasher = hasher

    def authenticate(self, username: str, password: str) -> Account:
        account = self.directory.find_by_username(normalise_username(username))
        if account is None:
            self.hasher.verify_dummy(password)
            raise InvalidCredentials()
        if not self.hasher.verify(account.password_hash, password) or account.disabled:
            raise InvalidCredentials()
        if self.hasher.needs_rehash(account.password_hash):
            self.directory.replace_password_hash(account.id, self.hasher.hash(password))
        return account
