"""OAuth requests built from parameters rather than from the Flask request.

Authlib reads a request's parameters through ``OAuth2Request.payload``. The authorization
endpoint resumes a request after the login and consent pages from the parameters kept in
the store, and the seed's JSON code exchange (``POST /api/v1/auth/token``) carries them in a
JSON body; both become this request, so the same grant code validates them.
"""

from __future__ import annotations

from typing import Mapping

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidRequestError


class ParamsPayload(OAuth2Payload):
    def __init__(self, params: Mapping[str, list[str]]):
        self._datalist = {name: list(values) for name, values in params.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._datalist.items()}

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._datalist


class ParamsRequest(OAuth2Request):
    """An ``OAuth2Request`` whose parameters are given (every value a list, as in a query)."""

    def __init__(self, method: str, uri: str, params: Mapping[str, list[str]],
                 headers: dict | None = None):
        super().__init__(method=method, uri=uri, headers=headers or {})
        self.payload = ParamsPayload(params)
        # set by the grants: what the authorization code grant issued, and when the
        # end-user authenticated / which tenant the tokens are for (authorization endpoint)
        self.token_response = None
        self.auth_time: float | None = None
        # when the user's consent was read for this request, and whom its id_token_hint
        # names, once verified (idp.authorize)
        self.consent_read_at: float | None = None
        self.hint_subject: str | None = None

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


def single_values(values: Mapping[str, str]) -> dict[str, list[str]]:
    return {name: [value] for name, value in values.items() if value is not None}


def refuse_repeated_parameters(request: OAuth2Request) -> None:
    """RFC 6749 §3.1/§3.2: request parameters MUST NOT be included more than once."""
    repeated = sorted(name for name, values in request.payload.datalist.items() if len(values) > 1)
    if repeated:
        raise InvalidRequestError(_repeated_description(repeated[0]))


def _repeated_description(name: str) -> str:
    # the name is quoted only when an error description may hold it (RFC 6749 §5.2:
    # printable ASCII without double quote or backslash); Authlib raises ValueError otherwise
    if invalid_error_characters(name):
        return "A parameter is given more than once"
    return f"'{name}' is given more than once"


def check_token_parameters(request: OAuth2Request) -> None:
    """Revocation and introspection (RFC 7009 §2.1, RFC 7662 §2.1): a ``token``, once.

    An unknown ``token_type_hint`` is ignored, as both RFCs allow: the server searches every
    kind of token it has anyway.
    """
    refuse_repeated_parameters(request)
    if not request.form.get("token"):
        raise InvalidRequestError("'token' is required")
