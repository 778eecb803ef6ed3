"""What every token grant here shares: scope and tenant resolution."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.util import scope_to_list

from ..clients import RegisteredClient


class TokenGrantMixin:
    def resolve_scope(self, client: RegisteredClient) -> str:
        """The requested scope, or the client's registered scope when none is asked for.

        Every requested value must be supported by the server and registered for the
        client; anything else is ``invalid_scope`` rather than a silent narrowing.
        """
        requested = self.request.payload.scope
        if not requested:
            return client.scope
        self.server.validate_requested_scope(requested)
        allowed = set(scope_to_list(client.scope))
        if not set(scope_to_list(requested)) <= allowed:
            raise InvalidScopeError("The client may not request this scope")
        return " ".join(scope_to_list(requested))

    def requested_tenant(self) -> str | None:
        return self.request.form.get("tenant") or None
