"""The one token service behind every grant and both login APIs.

``/api/v1/auth/*`` and Authlib's grants on ``/oauth/token`` authenticate and issue through
these methods, so a token means the same thing whichever door it came through.
"""

from __future__ import annotations

from dataclasses import dataclass

from .accounts import Account, PasswordAuthenticator
from .clients import RegisteredClient
from .errors import Forbidden, NotFound
from .permissions import is_platform_admin
from .tokens import AccessToken, AccessTokenIssuer


@dataclass(frozen=True)
class TokenResponse:
    access: AccessToken
    scope: str
    account: Account | None = None
    refresh_token: str | None = None

    def oauth(self) -> dict:
        """RFC 6749 §5.1."""
        body = {
            "access_token": self.access.token,
            "token_type": "Bearer",
            "expires_in": self.access.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token:
            body["refresh_token"] = self.refresh_token
        return body

    def seed(self, include_user: bool = True) -> dict:
        """The Infracast API's shape (contract §3)."""
        body = {
            "token": self.access.token,
            "token_type": "Bearer",
            "expires_at": self.access.expires_at,
            "expires_in": self.access.expires_in,
            "refresh_token": self.refresh_token,
        }
        if include_user and self.account is not None:
            body["user"] = self.account.public()
        return body


class TokenService:
    def __init__(self, authenticator: PasswordAuthenticator, issuer: AccessTokenIssuer,
                 tenant_exists):
        self.authenticator = authenticator
        self.issuer = issuer
        self._tenant_exists = tenant_exists

    def authenticate_password(self, username: str, password: str, client_ip: str) -> Account:
        return self.authenticator.authenticate(username, password)

    def check_tenant(self, account: Account, tenant: str | None) -> None:
        """A platform admin may scope to any existing tenant; others only to their own."""
        if tenant is None or tenant in account.memberships:
            return
        if not is_platform_admin(account.platform_roles):
            raise Forbidden()
        if not self._tenant_exists(tenant):
            raise NotFound("Unknown tenant")

    def issue_for_account(self, account: Account, client: RegisteredClient, scope: str,
                          tenant: str | None = None) -> TokenResponse:
        self.check_tenant(account, tenant)
        access = self.issuer.issue_for_account(account, client_id=client.client_id,
                                               scope=scope, tenant=tenant)
        return TokenResponse(access=access, scope=scope, account=account)
