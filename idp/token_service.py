"""The one token service behind every grant and both login APIs.

``/api/v1/auth/*`` and Authlib's grants on ``/oauth/token`` authenticate, issue, refresh
and revoke through these methods, so a token means the same thing whichever door it came
through.
"""

from __future__ import annotations

from dataclasses import dataclass

from .clock import now, to_millisecond
from .accounts import (MAX_PASSWORD, MAX_USERNAME, Account, AccountDirectory,
                       PasswordAuthenticator)
from .audit import Audit
from .clients import RegisteredClient
from .errors import Forbidden, InvalidCredentials, InvalidGrant, NotFound
from .permissions import is_platform_admin, is_tenant_id, permissions_in
from .refresh import RefreshFamilies, ReuseDetected
from .revocation import RevocationList
from .throttle import LoginThrottle
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
    def __init__(self, *, authenticator: PasswordAuthenticator, issuer: AccessTokenIssuer,
                 accounts: AccountDirectory, families: RefreshFamilies,
                 revocations: RevocationList, throttle: LoginThrottle, audit: Audit,
                 tenant_exists, clock=now):
        self.authenticator = authenticator
        self.issuer = issuer
        self.accounts = accounts
        self.families = families
        self.revocations = revocations
        self.throttle = throttle
        self.audit = audit
        self._tenant_exists = tenant_exists
        self.clock = clock

    # -- signing in ---------------------------------------------------------------------
    def authenticate_password(self, username: str, password: str, client_ip: str) -> Account:
        """The account, or one uniform failure; every attempt passes the brute-force gate.

        Every password path comes through here (the login API, the password grant, the
        login page), so the length caps live here too: an empty or overlong name or
        password is refused before anything is counted, hashed, looked up or audited.
        """
        if not username or not password or len(username) > MAX_USERNAME \
                or len(password) > MAX_PASSWORD or "\x00" in username:  # no name holds a NUL
            raise InvalidCredentials()
        self.throttle.begin(username, client_ip)
        try:
            account = self.authenticator.authenticate(username, password)
        except InvalidCredentials:
            self.audit("login", "failure", actor=username)
            raise
        self.throttle.succeeded(username, client_ip)
        self.audit("login", "success", actor=account.id, username=account.username)
        return account

    def check_tenant(self, account: Account, tenant: str | None,
                     refusal: str = "escalation") -> None:
        """A platform admin may scope to any existing tenant; others only to their own. A
        refusal is audited, by default as an escalation (the user asks for a tenant that is
        not theirs); ``refusal`` names another reason."""
        if tenant is None or tenant in account.memberships:
            return
        if not is_platform_admin(account.platform_roles):
            self.audit("tenant.access", "denied", actor=account.id, target=tenant,
                       reason=refusal)
            raise Forbidden()
        if not is_tenant_id(tenant) or not self._tenant_exists(tenant):
            raise NotFound("Unknown tenant")

    def issue_for_account(self, account: Account, client: RegisteredClient, scope: str, *,
                          tenant: str | None = None, with_refresh: bool = False,
                          auth_time: float | None = None,
                          tenant_refusal: str = "escalation") -> TokenResponse:
        """Tokens after a login at ``auth_time`` (now when not given, to the millisecond);
        ``with_refresh`` begins a refresh-token family. Both count from when the account and
        its watermarks were read (``Account.read_at``), so that a revocation landing since
        still covers them. ``tenant_refusal``: ``check_tenant``'s ``refusal``."""
        self.check_tenant(account, tenant, tenant_refusal)
        checked_at = account.read_at
        auth_time = auth_time or to_millisecond(checked_at if checked_at is not None
                                                else self.clock())
        family_id = refresh_token = None
        if with_refresh:
            rotation = self.families.start(user_id=account.id, client_id=client.client_id,
                                           scope=scope, tenant=tenant, auth_time=auth_time,
                                           started_at=checked_at)
            family_id, refresh_token = rotation.family.id, rotation.refresh_token
        access = self.issuer.issue_for_account(account, client_id=client.client_id, scope=scope,
                                               tenant=tenant, sid=family_id, auth_time=auth_time,
                                               with_rights=client.first_party,
                                               checked_at=checked_at)
        return TokenResponse(access=access, scope=scope, account=account,
                             refresh_token=refresh_token)

    def issue_for_client(self, client: RegisteredClient, scope: str, *,
                         tenant: str | None = None) -> TokenResponse:
        """``client_credentials``: the client is the subject, with the rights it was given.

        Its ``tenants`` claim is the client's ``tenant_permissions``; with ``tenant``, that
        tenant alone (403 when the client holds nothing there). No refresh token (RFC 6749
        §4.4.3), no platform roles.
        """
        tenants = {t: sorted(set(p)) for t, p in sorted(client.tenant_permissions.items())}
        if tenant is not None:
            held = permissions_in(tenants, tenant)
            if not held:
                raise Forbidden()
            tenants = {tenant: sorted(held)}
        access = self.issuer.issue(subject=client.client_id, client_id=client.client_id,
                                   scope=scope, roles=[], tenants=tenants)
        return TokenResponse(access=access, scope=scope)

    def account_if_valid(self, user_id: str, auth_time: float, *, client_id: str | None = None,
                         granted_at: float | None = None,
                         family_id: str | None = None) -> Account | None:
        """The account of a sign-in at ``auth_time``, if that sign-in still stands: the user
        exists, is enabled, and was not revoked since; with ``client_id``, if what the
        client was given at ``granted_at`` (a code, a refresh family) was not withdrawn since
        (the user withdrew its consent); and with ``family_id``, if that refresh family was
        not ended (logout, reuse, revocation) by the durable record."""
        account = self.accounts.find_by_id(user_id, client_id, family_id)
        if account is None or account.disabled or account.family_ended:
            return None
        # the directory loads the watermarks with the account, in the same query
        if account.revoked_before is not None and auth_time <= account.revoked_before:
            return None
        withdrawn = account.grant_revoked_before
        since = auth_time if granted_at is None else granted_at
        if withdrawn is not None and since <= withdrawn:
            return None
        return account

    # -- refreshing ---------------------------------------------------------------------
    def refresh(self, refresh_token: str, client: RegisteredClient,
                scope: str | None = None) -> TokenResponse:
        """Rotate the refresh token and issue an access token with the user's current roles."""
        try:
            rotation = self.families.rotate(refresh_token, client.client_id, scope or "")
        except ReuseDetected as reuse:
            self.revocations.revoke_family(reuse.family.id)
            self.audit("refresh.reuse_detected", "family_revoked", actor=reuse.family.user_id,
                       target=reuse.family.id, client_id=reuse.family.client_id)
            raise
        family = rotation.family
        # the family's end is read from the database too: a Redis restored from an older
        # copy (a snapshot, a lagging replica) may have lost it, and the family come back
        account = self.account_if_valid(family.user_id, family.auth_time,
                                        client_id=family.client_id, granted_at=family.started_at,
                                        family_id=family.id)
        if account is None:
            self.end_family(family.id)
            raise InvalidGrant()
        granted = " ".join(scope.split()) if scope else family.scope
        try:
            access = self.issuer.issue_for_account(
                account, client_id=family.client_id, scope=granted, tenant=family.tenant,
                sid=family.id, auth_time=family.auth_time, with_rights=client.first_party,
                checked_at=account.read_at)
        except Forbidden:
            # the user no longer holds a role in the family's tenant (audited as the code
            # exchange audits it: check_tenant)
            self.audit("tenant.access", "denied", actor=account.id, target=family.tenant,
                       reason="role_lost")
            self.end_family(family.id)
            raise InvalidGrant() from None
        return TokenResponse(access=access, scope=granted, account=account,
                             refresh_token=rotation.refresh_token)

    # -- revoking -----------------------------------------------------------------------
    def end_family(self, family_id: str) -> None:
        """The family's refresh token and every access token issued from it stop working."""
        self.revocations.revoke_family(family_id)
        self.families.end(family_id)

    def revoke_access_token(self, claims: dict) -> None:
        self.revocations.revoke_access_token(str(claims["jti"]), int(claims["exp"]))

    def revoke_issued(self, sid: str | None, jti: str | None, exp: int | None) -> None:
        """End what one grant produced: its refresh family and its access token."""
        if sid:
            self.end_family(sid)
        if jti and exp:
            self.revocations.revoke_access_token(jti, exp)

    def logout(self, claims: dict, refresh_token: str | None = None) -> None:
        """End the caller's access token, its family, and a refresh family it names."""
        self.revoke_access_token(claims)
        if claims.get("sid"):
            self.end_family(str(claims["sid"]))
        if refresh_token:
            family = self.families.find(refresh_token)
            if family is not None and family.user_id == claims.get("sub"):
                self.end_family(family.id)

    def revoke_user(self, user_id: str) -> None:
        """Every access token and refresh family of the user stops working at once."""
        self.revocations.revoke_user(user_id)
