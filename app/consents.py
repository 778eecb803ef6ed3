"""Withdrawing a consent: the client asks again, and what it holds for the user ends."""

from __future__ import annotations

import logging

from idp.errors import Unavailable

from .extensions import services

log = logging.getLogger("infracast.consents")


def withdraw_consent(user_id: str, client_id: str) -> bool:
    """End ``user_id``'s consent to ``client_id``; False when there was none.

    The grant watermark (``idp.revocation``) is recorded before the consent goes, so that a
    failure (503) leaves it to withdraw again; and once more after, for a code issued in
    between. That second one is best effort: the first already stands, and a failed copy is
    rebuilt before any token is accepted again, so answering 503 would only make a retry a
    404.
    """
    svc = services()
    if "\x00" in client_id or svc.consents.find(user_id, client_id) is None:  # no client has a NUL
        return False
    svc.revocations.revoke_grant(user_id, client_id)
    svc.consents.revoke(user_id, client_id)
    try:
        svc.revocations.revoke_grant(user_id, client_id)
    except Unavailable:
        log.warning("consent withdrawn; its second grant watermark could not be recorded",
                    extra={"fields": {"client_id": client_id}})
    return True
