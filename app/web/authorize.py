"""``/oauth/authorize`` and the pages it may send the user through: login and consent.

Thin views: the pipeline is ``idp/authorize.py``; these read the request, call it, and turn
its outcome into a redirect or a page.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from idp.accounts import MAX_USERNAME
from idp.authorize import Outcome, Redirect, Refused, ShowConsent, ShowLogin, SignInUpstream
from idp.consents import SCOPE_DESCRIPTIONS
from idp.errors import InvalidCredentials

from ..extensions import services
from ..services import client_ip
from . import bp
from .session import browser_session, remember, require_csrf


def sign_in_providers(interaction_id: str) -> list[dict]:
    """Other ways to sign in, as ``{"name", "url"}`` buttons under the form: one for each
    configured upstream identity provider (Okta, Azure AD, SAML)."""
    return [{"name": name, "url": url_for("web.login_upstream", interaction_id=interaction_id,
                                          provider=provider)}
            for provider, name in services().sso.providers()]


def request_params() -> dict[str, list[str]]:
    values = request.form if request.method == "POST" else request.args
    return {name: values.getlist(name) for name in values}


def _redirect(location: str):
    # after a form, 303 makes the browser GET the next page
    return redirect(location, code=303 if request.method == "POST" else 302)


def _login_page(outcome: ShowLogin, error: str | None = None, username: str = "",
                status: int = 200):
    session = browser_session()
    page = render_template(
        "login.html", client_name=outcome.client.client_name, error=error, username=username,
        action=url_for("web.login", interaction_id=outcome.interaction.id),
        csrf_token=session.csrf_token, providers=sign_in_providers(outcome.interaction.id))
    return page, status


def _consent_page(outcome: ShowConsent):
    return render_template(
        "consent.html", client_name=outcome.client.client_name, username=outcome.username,
        scopes=[SCOPE_DESCRIPTIONS.get(scope, scope) for scope in outcome.scopes],
        action=url_for("web.consent", interaction_id=outcome.interaction.id),
        csrf_token=browser_session().csrf_token)


def show_outcome(outcome: Outcome):
    """A redirect, or the page the outcome asks for (at its own address)."""
    if isinstance(outcome, Redirect):
        return _redirect(outcome.location)
    if isinstance(outcome, Refused):
        raise outcome.error  # answered by the error handler: a redirect or a page
    if isinstance(outcome, SignInUpstream):
        return _redirect(services().sso.start(outcome.provider, outcome.interaction))
    endpoint = "web.login" if isinstance(outcome, ShowLogin) else "web.consent"
    if request.endpoint != endpoint or request.method != "GET":
        return _redirect(url_for(endpoint, interaction_id=outcome.interaction.id))
    return _login_page(outcome) if isinstance(outcome, ShowLogin) else _consent_page(outcome)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    outcome, session = services().flow.authorize(request_params(), browser_session())
    remember(session)
    return show_outcome(outcome)


@bp.get("/login/<interaction_id>")
def login(interaction_id):
    return show_outcome(services().flow.pending(interaction_id, browser_session()))


@bp.post("/login/<interaction_id>")
def login_submit(interaction_id):
    flow = services().flow
    session = require_csrf(browser_session())
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    try:
        outcome, signed_in = flow.sign_in(interaction_id, session, username, password,
                                          client_ip())
    except InvalidCredentials as failure:
        outcome = flow.pending(interaction_id, session)
        if not isinstance(outcome, ShowLogin):
            return show_outcome(outcome)
        return _login_page(outcome, error=failure.message, username=username[:MAX_USERNAME],
                           status=401)
    remember(signed_in)
    return show_outcome(outcome)


@bp.get("/consent/<interaction_id>")
def consent(interaction_id):
    return show_outcome(services().flow.pending(interaction_id, browser_session()))


@bp.post("/consent/<interaction_id>")
def consent_submit(interaction_id):
    session = require_csrf(browser_session())
    allow = request.form.get("decision") == "allow"
    return show_outcome(services().flow.decide(interaction_id, session, allow))
