"""Single sign-on through upstream identity providers (contract §3, §7): the app's side.

``federation/`` holds the protocol connectors (they turn an upstream login into an
``Identity`` and nothing more); this package wires them into the service:

* ``connections``: what platform admins configure (``/api/v1/admin/sso``), stored with the
  client secret sealed;
* ``registry``: each worker's connectors, built from the stored configuration;
* ``identities``: brokering — an upstream ``Identity`` to a local user;
* ``login``: the browser flow — ``state``/RelayState in the store, the callback and the ACS,
  signing the browser in and resuming the authorization request.
"""

from __future__ import annotations

PROVIDERS = ("okta", "azure", "saml")
OIDC_PROVIDERS = ("okta", "azure")


def provider_converter(providers: tuple[str, ...] = PROVIDERS) -> str:
    """A URL rule's ``<...:provider>`` part that matches exactly these providers."""
    return f"<any({', '.join(providers)}):provider>"

# what the login page's buttons say: "Sign in with <name>"
DISPLAY_NAMES = {"okta": "Okta", "azure": "Microsoft Entra ID",
                 "saml": "your organisation's single sign-on"}

SSO_PATH = "/api/v1/auth/sso"


def login_url(issuer: str, provider: str) -> str:
    return f"{issuer}{SSO_PATH}/{provider}/login"


def callback_url(issuer: str, provider: str) -> str:
    """The OIDC redirect URI to register at the upstream."""
    return f"{issuer}{SSO_PATH}/{provider}/callback"


def sp_entity_id(issuer: str) -> str:
    """Our SAML entity id: the URL of our metadata."""
    return f"{issuer}{SSO_PATH}/saml/metadata"


def acs_url(issuer: str) -> str:
    return f"{issuer}{SSO_PATH}/saml/acs"
