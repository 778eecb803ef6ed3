"""OAuth requests built from parameters rather than from the Flask request.

Authlib reads a request's parameters through ``OAuth2Request.payload``. The authorization
endpoint resumes a request after the login and consent pages from the parameters kept in
the store, and the seed's JSON code exchange (``POST /api/v1/auth/token``) carries them in a
JSON body; both become this request, so the same grant code validates them.
"""

from __future__ import annotations

from typing import Mapping

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request


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
        self.auth_time: int | None = None

    @property
    def params(self) -> dict[str, list[str]]:
        return dict(self.payload.datalist)

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


def single_values(values: Mapping[str, str]) -> dict[str, list[str]]:
    return {name: [value] for name, value in values.items() if value is not None}
