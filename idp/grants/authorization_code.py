"""Authorization code grant (RFC 6749 §4.1) with PKCE and OpenID Connect.

Authlib validates the authorization request (client, registered ``redirect_uri``, response
type, scope; the extensions add PKCE, ``nonce`` and ``prompt``) and the token request (client
authentication, ``redirect_uri`` identical to the one of the authorization request, the
PKCE verifier). The code lives in the store (``idp/authorization_codes.py``), and tokens
come from the one ``TokenService``.

A refresh token is issued only when the granted scope holds ``offline_access`` *and* the
client is registered for the ``refresh_token`` grant (OpenID Connect Core 1.0 §11): a
relying party that only signs users in gets no long-lived credential. Without a refresh
token, ``offline_access`` is not part of the granted scope.
"""

from __future__ import annotations

import logging

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError

from ..authorization_codes import AuthorizationCode, CodeReused, IssuedTokens
from ..clients import AUTH_METHODS, PUBLIC
from ..errors import Forbidden, InvalidGrant

audit = logging.getLogger("infracast.audit")

OFFLINE_ACCESS = "offline_access"


def _refuse_what_is_not_offered(data, redirect_uri: str) -> None:
    """Refused as soon as the redirect_uri is known, before any other check: what a request
    object or another response mode carries (PKCE, a nonce, prompt=none) must not be found
    missing, nor the request answered as if it had not asked."""
    # OIDC Core §6.1 and §6.2: request objects are not supported, and MUST be refused
    if "request" in data:
        raise RequestNotSupportedError(redirect_uri=redirect_uri)
    if "request_uri" in data:
        raise RequestURINotSupportedError(redirect_uri=redirect_uri)
    # OAuth 2.0 Multiple Response Type Encoding Practices §2.1: the one mode offered
    # (response_modes_supported) is query; another is refused, not answered in query
    if data.get("response_mode") not in (None, "", "query"):
        raise InvalidRequestError("Only 'response_mode=query' is supported",
                                  redirect_uri=redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    # -- authorization endpoint -------------------------------------------------------------
    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """Exact match against the registered URIs (RFC 9700 §4.1.3), but for the port of a
        loopback IP URI (RFC 8252 §7.3; ``RegisteredClient.check_redirect_uri``).

        Authlib's own message quotes the URI, which may hold characters an error
        description must not (RFC 6749 §4.1.2.1); this one never does.
        """
        requested = request.payload.redirect_uri
        redirect_uri = client.redirect_uri_for(requested, request.payload.scope)
        if redirect_uri is None:
            raise InvalidRequestError("The redirect_uri is not registered for this client"
                                      if requested else "Missing 'redirect_uri' in request")
        _refuse_what_is_not_offered(request.payload.data, redirect_uri)
        return redirect_uri

    def save_authorization_code(self, code, request):
        data = request.payload.data
        codes = self.server.codes
        codes.save(code, AuthorizationCode(
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri,
            scope=request.scope,
            user_id=request.user.id,
            auth_time=request.auth_time,
            # from when the consent was read, if it was (idp.authorize): a withdrawal landing
            # before the code is saved must still find it older than its watermark
            expires_at=codes.new_expiry(request.consent_read_at),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            tenant=data.get("tenant"),
        ))

    # -- token endpoint -------------------------------------------------------------------
    def query_authorization_code(self, code, client):
        # looked at, not consumed: Authlib checks redirect_uri and PKCE against it next, and
        # only a request that passes redeems the code (create_token_response)
        record = self.server.codes.peek(code)
        if record is None:
            self._redeem(code, client)  # raises: unknown, expired, or reuse (revoking)
            raise InvalidGrant("The authorization code is invalid, expired or already used")
        if record.client_id != client.client_id:
            raise InvalidGrant("The authorization code was issued to another client")
        return record

    def _redeem(self, code: str, client) -> AuthorizationCode:
        try:
            return self.server.codes.redeem(code)
        except CodeReused as reuse:
            self.server.tokens.revoke_issued(reuse.issued.sid, reuse.issued.jti,
                                             reuse.issued.exp)
            audit.warning("authorization code reuse", extra={"fields": {
                "event": "audit", "action": "code.reuse_detected", "outcome": "tokens_revoked",
                "client_id": client.client_id, "sid": reuse.issued.sid}})
            raise

    def delete_authorization_code(self, authorization_code):
        """Nothing to do: redeeming consumed the code."""

    def authenticate_user(self, authorization_code):
        # a code issued before its client's consent was withdrawn gives nothing
        issued_at = authorization_code.expires_at - self.server.codes.ttl
        return self.server.tokens.account_if_valid(
            authorization_code.user_id, authorization_code.auth_time,
            client_id=authorization_code.client_id, granted_at=issued_at)

    @hooked
    def create_token_response(self):
        client = self.request.client
        # every check passed, the client's against the peeked record of this same code:
        # consume it now (atomically; a racing second request finds it used and revokes
        # what this one issues)
        code = self._redeem(self.request.form["code"], client)
        account = self.authenticate_user(code)
        if account is None:
            raise InvalidGrant("The user of this authorization code can no longer sign in")
        self.request.user = account
        scopes = scope_to_list(code.scope) or []
        with_refresh = OFFLINE_ACCESS in scopes and client.check_grant_type("refresh_token")
        if not with_refresh:
            scopes = [s for s in scopes if s != OFFLINE_ACCESS]
        tokens = self.server.tokens
        try:
            response = tokens.issue_for_account(account, client, " ".join(scopes),
                                                tenant=code.tenant, with_refresh=with_refresh,
                                                auth_time=code.auth_time,
                                                # it was theirs when the code was issued
                                                tenant_refusal="role_lost")
        except Forbidden:
            # the user no longer holds a role in the code's tenant: a grant no longer valid
            # is invalid_grant (RFC 6749 §5.2), as for a refresh token (TokenService.refresh)
            raise InvalidGrant("The user no longer holds a role in the tenant of this "
                               "authorization code") from None
        claims = response.access.claims
        issued = IssuedTokens(claims.get("sid"), claims["jti"], claims["exp"])
        if not self.server.codes.record_issued(self.request.form["code"], issued):
            tokens.revoke_issued(issued.sid, issued.jti, issued.exp)
            raise InvalidGrant("The authorization code was already used; "
                               "the tokens issued for it have been revoked")
        self.request.token_response = response
        return 200, response.oauth(), self.TOKEN_RESPONSE_HEADER


class PublicCodeExchange(AuthorizationCodeGrant):
    """The same exchange for the seed's JSON endpoint (``POST /api/v1/auth/token``).

    That endpoint takes no client credentials, so only public clients may use it: a
    confidential client's code is refused there before it is redeemed, and stays usable
    at ``/oauth/token`` with the client's authentication.
    """

    TOKEN_ENDPOINT_AUTH_METHODS = [PUBLIC]
