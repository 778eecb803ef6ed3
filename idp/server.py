"""The OAuth 2.0 authorization server: Authlib's Flask server with our grants.

Authlib does the protocol (request parsing, client authentication, grant dispatch, RFC
6749 §5.2 errors); our grants call the one ``TokenService``. Access tokens are JWTs
nobody stores, so ``save_token`` has nothing to do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import (InvalidClientError, InvalidRequestError,
                                           UnsupportedResponseTypeError)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9207 import IssuerParameter

from .api_keys import ApiKeyDirectory
from .authorization_codes import AuthorizationCodes
from .clients import ClientDirectory
from .end_session import EndSessionEndpoint
from .grants.authorization_code import AuthorizationCodeGrant, PublicCodeExchange
from .grants.client_credentials import ClientCredentialsGrant
from .grants.openid import OpenIDCodeExtension
from .grants.password import PasswordGrant
from .grants.pkce import S256CodeChallenge
from .grants.refresh_token import RefreshTokenGrant
from .hashing import SecretHasher
from .id_tokens import IdTokenIssuer
from .introspection_endpoint import IntrospectionEndpoint
from .oauth_request import ParamsRequest, refuse_repeated_parameters, single_values
from .revocation_endpoint import RevocationEndpoint
from .token_service import TokenResponse, TokenService
from .token_validation import AccessTokenValidator

SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access"]


class AuthorizationResponseIssuer(IssuerParameter):
    """RFC 9207: ``iss`` in every authorization response, errors included (mix-up defence)."""

    def __init__(self, issuer: str):
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class AuthorizationServer(FlaskAuthorizationServer):
    def __init__(self, clients: ClientDirectory, tokens: TokenService,
                 validator: AccessTokenValidator, client_ip: Callable[[], str], *,
                 issuer: str, codes: AuthorizationCodes, id_tokens: IdTokenIssuer,
                 api_keys: ApiKeyDirectory, secrets: SecretHasher):
        super().__init__(query_client=clients.find, save_token=_tokens_are_not_stored)
        self.scopes_supported = SCOPES_SUPPORTED
        self.issuer = issuer
        self.tokens = tokens
        self.validator = validator
        self.api_keys = api_keys
        self.secret_digest = secrets.digest
        self.client_ip = client_ip
        self.codes = codes
        self.id_tokens = id_tokens
        self._code_extensions = [S256CodeChallenge(required=True), OpenIDCodeExtension()]
        self.register_grant(AuthorizationCodeGrant, self._code_extensions)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)
        self.register_endpoint(EndSessionEndpoint)
        self.iss_parameter = AuthorizationResponseIssuer(issuer)
        self.register_extension(self.iss_parameter)

    def grant_types_supported(self) -> list[str]:
        return sorted({grant.GRANT_TYPE for grant, _ in self._token_grants})

    def response_types_supported(self) -> list[str]:
        return sorted({rt for grant, _ in self._authorization_grants
                       for rt in getattr(grant, "RESPONSE_TYPES", ())})

    # -- requests -------------------------------------------------------------------------
    def authenticate_client(self, request, methods, endpoint="token"):
        basic_client_id = _basic_client_id(request)
        if basic_client_id is not None:
            params = request.payload.data
            # RFC 6749 §2.3 and §5.2: one authentication method per request
            if params.get("client_secret") is not None:
                raise InvalidRequestError("The client authenticates with the Authorization "
                                          "header and a 'client_secret' at once")
            if params.get("client_id") not in (None, basic_client_id):
                raise InvalidRequestError("'client_id' is not the client of the Authorization "
                                          "header")
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            # One answer, 401 (with which Authlib adds WWW-Authenticate: Basic): RFC 6749
            # §5.2 requires it after an attempt with the Authorization header and allows it
            # otherwise, RFC 7662 §2.3 asks it of introspection. Authlib's 400 and "does not
            # exist" for an unknown client_id, beside its 401 for a known one's wrong secret,
            # told anyone which client ids exist.
            error.status_code = 401
            error.description = "Client authentication failed"
            raise

    def get_token_grant(self, request):
        refuse_repeated_parameters(request)
        # RFC 6749 §5.2: a missing parameter is invalid_request; unsupported_grant_type is
        # for a grant_type this server does not offer
        if not request.payload.grant_type:
            raise InvalidRequestError("Missing 'grant_type'")
        return super().get_token_grant(request)

    def create_oauth2_request(self, request):
        """A request built from parameters is used as it is; otherwise Flask's request."""
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def authorization_request(self, params: Mapping[str, list[str]]) -> ParamsRequest:
        return ParamsRequest("GET", f"{self.issuer}/oauth/authorize", params)

    def end_session_request(self, params: Mapping[str, list[str]]):
        """A validated RP-Initiated Logout request (``idp/end_session.py``)."""
        return self.validate_endpoint_request(
            "end_session", ParamsRequest("GET", f"{self.issuer}/oauth/logout", params))

    def get_authorization_grant(self, request):
        # Authlib quotes an unknown response_type in its error description, where some
        # characters are forbidden (RFC 6749 §4.1.2.1) and would raise instead
        response_type = request.payload.response_type
        if response_type not in self.response_types_supported():
            redirect_uri = self.registered_redirect_uri(request)
            if not response_type:
                raise InvalidRequestError("Missing 'response_type'", redirect_uri=redirect_uri)
            raise UnsupportedResponseTypeError(response_type, redirect_uri=redirect_uri)
        return super().get_authorization_grant(request)

    def registered_redirect_uri(self, request) -> str | None:
        """Where an authorization error may go: a URI registered for a known client, or nowhere
        (RFC 6749 §4.1.2.1: never redirect to an unverified URI)."""
        client = self.query_client(request.payload.client_id) if request.payload.client_id else None
        if client is None:
            return None
        return client.redirect_uri_for(request.payload.redirect_uri, request.payload.scope)

    # -- responses ------------------------------------------------------------------------
    def authorization_location(self, grant, grant_user) -> str:
        """Where to send the browser with the code (§4.1.2) for a request ``grant`` has
        validated: its verified ``redirect_uri`` with ``code``, ``state`` and ``iss``.

        Authlib's ``create_authorization_response`` would validate the request again (the
        client, the redirect, the scope, the PKCE and ``nonce`` hooks) and turn an error
        into a response that may have no location; this issues from the validated grant.
        """
        response = self.handle_response(
            *grant.create_authorization_response(grant.redirect_uri, grant_user))
        self.iss_parameter.add_issuer_parameter(self, response)
        return response.location

    def authorization_error_location(self, error) -> str:
        """Where to send the browser for an authorization error that may redirect (§4.1.2.1):
        the registered ``redirect_uri`` with ``error``, ``error_description``, ``state``, ``iss``."""
        response = self.handle_error_response(None, error)
        self.iss_parameter.add_issuer_parameter(self, response)
        return response.location

    # -- the seed's code exchange ---------------------------------------------------------
    def exchange_code(self, params: Mapping[str, str]) -> TokenResponse:
        """``POST /api/v1/auth/token`` with a code: the code grant, for public clients only.

        Errors surface as Authlib's ``OAuth2Error`` (the app maps them to the envelope).
        """
        request = ParamsRequest("POST", f"{self.issuer}/oauth/token",
                                single_values({**params, "grant_type": "authorization_code"}))
        grant = PublicCodeExchange(request, self)
        for extension in self._code_extensions:
            extension(grant)
        grant.validate_token_request()
        grant.create_token_response()
        if not request.client.first_party:
            # the answer's "user" is the account (e-mail, roles, memberships), which a
            # third-party client is not given, as /auth/me refuses its token: what it may know
            # of the user is what its scopes allow at userinfo
            return replace(request.token_response, account=None)
        return request.token_response


def _tokens_are_not_stored(token, request):
    return None


def _basic_client_id(request) -> str | None:
    """The client id of an HTTP Basic ``Authorization`` header, read as Authlib reads it
    (None without one). A Basic header Authlib reads no client id from is ``invalid_client``
    (401, RFC 6749 §5.2): it raises on some (``Basic `` with nothing after it, credentials
    that are not UTF-8), reads none from others (not base64, nothing before the colon).
    Authlib splits any header holding a space in two, whatever its scheme: one that does not
    split (``Bearer `` followed by a blank a server leaves, such as U+00A0) is refused too."""
    header = request.headers.get("Authorization", "")
    if " " in header and len(header.split(None, 1)) < 2:
        raise InvalidClientError(status_code=401, description="Malformed client credentials")
    if header.lower().split()[:1] != ["basic"]:
        return None
    try:
        client_id, _ = extract_basic_authorization(request.headers)
    except ValueError:  # UnicodeDecodeError is one
        client_id = None
    if not client_id:
        raise InvalidClientError(status_code=401, description="Malformed client credentials")
    return client_id
