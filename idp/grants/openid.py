"""The OpenID Connect extension of the code grant (OpenID Connect Core 1.0 §3.1).

Authlib's ``OpenIDCode`` validates ``nonce`` and ``prompt`` at the authorization endpoint and
adds the ``id_token`` to the token response; the token itself comes from our
``IdTokenIssuer`` (``idp/id_tokens.py``), signed with the keyring's active key.
"""

from __future__ import annotations

from authlib.oidc.core import OpenIDCode
from authlib.oidc.core.grants.util import is_openid_scope


class OpenIDCodeExtension(OpenIDCode):
    def exists_nonce(self, nonce, request):
        # The nonce ties the ID token to the relying party's own session, and it is the RP
        # that must refuse a replay (§3.1.3.7). The server only carries the value: the
        # same request is validated again when it resumes after the login page.
        return False

    def process_token(self, grant, response):
        _, token, _ = response
        if not is_openid_scope(token.get("scope")):
            return token
        request = grant.request
        code = request.authorization_code
        token["id_token"] = grant.server.id_tokens.issue(
            request.user, client_id=request.client.client_id, scope=token["scope"],
            auth_time=code.auth_time, nonce=code.nonce, access_token=token["access_token"])
        return token
