"""``/oauth/logout``: RP-Initiated Logout 1.0.

Authlib's endpoint validates the request (``idp/end_session.py``). A request carrying an
``id_token_hint`` issued in this browser's session ends it at once; any other request
to end a live session is confirmed by the user first (a CSRF-protected form, §6: a bare
link must not sign people out). Then the browser goes to the ``post_logout_redirect_uri``
— only a registered one, with ``state`` — or sees the signed-out page.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ..extensions import services
from . import bp
from .session import browser_session, forget, require_csrf

_LOGOUT_PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state",
                  "logout_hint", "ui_locales")


@bp.route("/oauth/logout", methods=["GET", "POST"])
def logout():
    svc = services()
    values = request.form if request.method == "POST" else request.args
    params = {name: values.getlist(name)[:1] for name in _LOGOUT_PARAMS if name in values}
    end = svc.authorization.end_session_request(params)
    session = browser_session()
    if session is not None and session.signed_in and not _of_this_session(
            end.id_token_claims or {}, session):
        if request.method != "POST" or "confirm" not in request.form:
            account = svc.accounts.find_by_id(session.user_id)
            return render_template(
                "logout.html", username=account.username if account else "",
                action=url_for("web.logout"), csrf_token=session.csrf_token,
                params=[(name, values[0]) for name, values in params.items()])
        require_csrf(session)
    if session is not None:
        svc.sessions.end(session)
        forget()
    if end.redirect_uri:
        return redirect(end.redirect_uri, code=303 if request.method == "POST" else 302)
    return render_template("signed_out.html")


def _of_this_session(hint: dict, session) -> bool:
    """Was the ``id_token_hint`` issued in this browser's session? Its user, and its
    ``auth_time``, the second this session signed in (RP-Initiated Logout §2: the user is
    asked unless the ID token belongs to the current session). An old ID token of the same
    user, from a session since ended or from another browser, no longer signs them out
    unasked; two sessions of one user begun in the same second are not told apart."""
    return (hint.get("sub") == session.user_id and session.auth_time is not None
            and hint.get("auth_time") == int(session.auth_time))

