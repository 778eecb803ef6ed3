"""RP-Initiated Logout 1.0 (``/oauth/logout``) on Authlib's ``EndSessionEndpoint``.

Authlib checks that ``client_id`` matches the hint's ``aud`` and that a
``post_logout_redirect_uri`` is registered for the client (exactly), and adds ``state``
to it; it only redirects when the request carries a valid ``id_token_hint`` (§3). The hint
itself is checked by our ``IdTokenIssuer``: our signature, ``typ`` JWT (an access token is
no hint) and our ``iss``; an expired ID token is still a hint (§2).

The endpoint only validates (``validate_endpoint_request``): the browser session is the web
layer's (``app/web/logout.py``), which ends it itself, so Authlib's ``end_session`` is never
called.
"""

from __future__ import annotations

from authlib.oidc.rpinitiated import EndSessionEndpoint as _EndSessionEndpoint


class EndSessionEndpoint(_EndSessionEndpoint):
    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        return self.server.id_tokens.verify_hint(id_token_hint)
