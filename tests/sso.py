"""Helpers for the app's SSO tests (integration and end-to-end; no fixtures here): the
bodies an admin posts, and the SAML Responses — genuine and forged — of a signing IdP."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from tests.federation.conftest import AZURE_TENANT, CREDENTIALS, IDP_ENTITY_ID, SSO_URL
from tests.federation.saml_idp import AUDIENCE, AuthnRequest, SigningIdP, set_attr, set_text

OKTA_DOMAIN = "dev-123456.okta.com"


def okta_body(upstream, **fields) -> dict:
    """An Okta connection whose (custom) issuer is the upstream process."""
    return {"domain": OKTA_DOMAIN, "issuer": upstream.url, **CREDENTIALS, **fields}


def azure_body(**fields) -> dict:
    """An Azure AD connection (``AZURE_AUTHORITY_HOST`` points at the upstream process)."""
    return {"tenant_id": AZURE_TENANT, **CREDENTIALS, **fields}


def saml_body(idp: SigningIdP, **fields) -> dict:
    return {"entity_id": IDP_ENTITY_ID, "sso_url": SSO_URL, "certificate": idp.keys.cert_pem,
            **fields}


@dataclass
class SamlAnswers:
    """The IdP answering one AuthnRequest it read, for the SP at ``acs_url``/``audience``."""

    idp: SigningIdP
    request: AuthnRequest
    acs_url: str
    audience: str

    def respond(self, **options) -> str:
        """A Response XML (``SigningIdP.response`` options), in response to the request."""
        options.setdefault("in_response_to", self.request.id)
        return self.idp.response(acs_url=self.acs_url, audience=self.audience, **options)


def _assertion_of(xml: str) -> str:
    return re.search(r"<saml:Assertion .*?</saml:Assertion>", xml, re.S).group(0)


def _second_unsigned_assertion(answers: SamlAnswers) -> str:
    xml = answers.respond()
    signed = _assertion_of(xml)
    forged = re.sub(r"<ds:Signature>.*?</ds:Signature>", "", signed, flags=re.S)
    forged = forged.replace('ID="', 'ID="forged-').replace(">user-1<", ">admin<")
    return xml.replace(signed, forged + signed)


def _xxe(answers: SamlAnswers) -> str:
    declaration, body = answers.respond(name_id="placeholder").split("\n", 1)
    return (f'{declaration}\n<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            + body.replace(">placeholder<", ">&xxe;<"))


def _ago(hours: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=hours)


# attack -> (the Response it posts, the rule that refuses it as the audit log names it)
SAML_ATTACKS = {
    "unsigned": (lambda answers: answers.respond(sign=None),
                 "neither the Response nor the Assertion"),
    "another-key": (lambda answers: answers.respond(keys=answers.idp.attacker_keys),
                    "does not verify with the configured certificate"),
    "second-unsigned-assertion": (_second_unsigned_assertion, "2 assertions"),
    "attribute-changed-after-signing": (lambda answers: answers.respond().replace(
        "ada@example.test", "root@infracast.test"), "does not verify"),
    "expired": (lambda answers: answers.respond(at=_ago(1)), "NotOnOrAfter has passed"),
    "wrong-audience": (lambda answers: answers.respond(
        edit=set_text(AUDIENCE, "https://other-sp.example.test/")), "Audience"),
    "wrong-destination": (lambda answers: answers.respond(
        sign="both", edit=set_attr(".", "Destination", "https://other-sp.example.test/acs")),
        "Destination"),
    "unsolicited": (lambda answers: answers.respond(in_response_to=None), "InResponseTo"),
    "another-request": (lambda answers: answers.respond(
        in_response_to="id-someone-elses-request"), "InResponseTo"),
    "xxe": (_xxe, "DTD"),
}
