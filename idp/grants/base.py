"""What every token grant here shares: scope and tenant resolution."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidScopeError

from ..clients import RegisteredClient


class TokenGrantMixin:
    def resolve_scope(self, client: RegisteredClient) -> str:
        """The requested scope, or the client's registered scope when none is asked for.

        Every requested value must be supported by the server and registered for the
        client; anything else is ``invalid_scope`` rather than a silent narrowing.
        """
        requested = self.request.payload.scope
        self.server.validate_requested_scope(requested)
        scope = client.get_allowed_scope(requested)
        if scope is None:
            raise InvalidScopeError("The client may not request this scope")
        return scope

    def requested_tenant(self) -> str | None:
        return self.request.form.get("tenant") or None
