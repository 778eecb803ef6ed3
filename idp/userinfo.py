"""Claims about the end-user, by scope (OpenID Connect Core 1.0 §5.4), and ``/oauth/userinfo``.

``profile`` gives ``name`` and ``preferred_username``; ``email`` gives ``email`` and
``email_verified``. A claim without a value is left out (§5.3.2). The ID token carries the
same claims as the UserInfo response, so a relying party gets one answer from either.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.util import scope_to_list

from .accounts import Account, AccountDirectory
from .errors import IdpError, Unauthorized
from .token_validation import AccessTokenValidator

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "preferred_username"),
    "email": ("email", "email_verified"),
}


class InsufficientScope(IdpError):
    """RFC 6750 §3.1: the token is good but lacks the scope this resource needs."""
    status = 403
    code = "FORBIDDEN"
    oauth_error = "insufficient_scope"
    message = "Insufficient permissions"


def user_claims(account: Account, scope: str) -> dict:
    scopes = set(scope_to_list(scope) or ())
    values = {
        "name": account.name,
        "preferred_username": account.username,
        "email": account.email,
        "email_verified": bool(account.email_verified) if account.email else None,
    }
    claims = {"sub": account.id}
    for granted in sorted(scopes & set(SCOPE_CLAIMS)):
        claims.update({name: values[name] for name in SCOPE_CLAIMS[granted]
                       if values[name] is not None})
    return claims


class UserInfo:
    def __init__(self, validator: AccessTokenValidator, accounts: AccountDirectory):
        self.validator = validator
        self.accounts = accounts

    def claims_for(self, access_token: str) -> dict:
        """The UserInfo response for a current, unrevoked access token with ``openid``."""
        claims = self.validator.validate(access_token)
        if "openid" not in str(claims.get("scope", "")).split():
            raise InsufficientScope("The access token was not issued for 'openid'")
        account = self.accounts.find_by_id(str(claims["sub"]))
        if account is None or account.disabled:
            raise Unauthorized()
        return user_claims(account, str(claims["scope"]))
