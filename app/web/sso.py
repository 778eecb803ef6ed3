"""The browser's side of signing in through an upstream identity provider (contract §3).

Thin views over ``app/sso/login.py``. They live on the pages' blueprint, so a failure is an
HTML page (or the RFC 6749 error redirect) rather than JSON, although the paths are under
``/api/v1`` as the contract names them.

* ``GET /api/v1/auth/sso/{okta|azure|saml}/login`` takes the parameters of
  ``/oauth/authorize`` and is ``/oauth/authorize?…&idp_hint={provider}``;
* ``GET /login/{interaction}/sso/{provider}``: a button of the login page;
* ``GET /api/v1/auth/sso/{okta|azure}/callback``: the OIDC redirect URI;
* ``POST /api/v1/auth/sso/saml/acs`` then ``GET /api/v1/auth/sso/saml/complete?id=…``.
"""

from __future__ import annotations

from flask import redirect, request, url_for

from federation.saml import MAX_RESPONSE_CHARS
from idp.authorize import ShowLogin

from ..extensions import services
from ..request_bodies import body_limit
from ..sso import OIDC_PROVIDERS, SSO_PATH, provider_converter
from . import bp
from .authorize import request_params, show_outcome
from .session import browser_session, remember

# URL converters admitting the providers' names
_PROVIDER = provider_converter()
_OIDC_PROVIDER = provider_converter(OIDC_PROVIDERS)
# a form with a SAMLResponse as large as the connector reads, and a RelayState. The form
# encoding sends base64's "+" and "/" (2 of its 64 characters) and any line breaks as three
# characters each: some 6 to 14 % more than the base64 itself; allow a quarter
_ACS_BODY_LIMIT = MAX_RESPONSE_CHARS * 5 // 4 + 4096


@bp.get(f"{SSO_PATH}/{_PROVIDER}/login")
def sso_login(provider):
    if provider == "saml":
        services().sso.require_saml()
    params = {**request_params(), "idp_hint": [provider]}
    outcome, session = services().flow.authorize(params, browser_session())
    remember(session)
    return show_outcome(outcome)


@bp.get(f"/login/<interaction_id>/sso/{_PROVIDER}")
def login_upstream(interaction_id, provider):
    outcome = services().flow.pending(interaction_id, browser_session())
    if not isinstance(outcome, ShowLogin):
        return show_outcome(outcome)
    return redirect(services().sso.start(provider, outcome.interaction))


@bp.get(f"{SSO_PATH}/{_OIDC_PROVIDER}/callback")
def sso_callback(provider):
    outcome, session = services().sso.oidc_callback(provider, request.args.to_dict(),
                                                     browser_session())
    remember(session)
    return show_outcome(outcome)


@bp.post(f"{SSO_PATH}/saml/acs")
@body_limit(_ACS_BODY_LIMIT)
def saml_acs():
    # a cross-site POST: no session cookie comes with it, and none is needed here
    completion = services().sso.saml_acs(request.form.get("SAMLResponse"),
                                         request.form.get("RelayState"))
    # the id in the query: request logs carry paths only
    return redirect(url_for("web.saml_complete", id=completion), code=303)


@bp.get(f"{SSO_PATH}/saml/complete")
def saml_complete():
    outcome, session = services().sso.saml_complete(request.args.get("id"), browser_session())
    remember(session)
    return show_outcome(outcome)
