"""SAML 2.0 service provider: the Web Browser SSO profile, on pysaml2 and xmlsec1.

We send an AuthnRequest by HTTP-Redirect (saml-bindings-2.0-os §3.4) and accept a Response
by HTTP-POST (§3.5). A Response becomes an ``Identity`` only when every rule of
saml-profiles-2.0-os §4.1.4.2–4.1.4.3 and of the XML signature profile (saml-core-2.0-os
§5.4) holds, checked here on the very bytes xmlsec1 verified:

1. no DTD: a ``<!DOCTYPE``/``<!ENTITY`` anywhere is refused before any parser sees the
   document (libxml2 inside xmlsec1 would otherwise expand entities), and it must be UTF-8;
2. one ``samlp:Response`` holding exactly one ``saml:Assertion`` as a direct child, no other
   Assertion anywhere (no wrapping), nothing encrypted, every ``ID`` unique;
3. a signature on the Assertion and/or the Response, each an enveloped signature of its own
   parent (``Reference URI="#<parent ID>"``, saml-core §5.4.2), SHA-256 or stronger, and
   each verified by xmlsec1 against the configured certificate alone;
4. status Success; Issuer of the Assertion (and of the Response, if any) is the IdP;
5. Destination and the bearer ``SubjectConfirmationData`` Recipient are our ACS URL; an
   ``AudienceRestriction`` names our entity id; NotBefore/NotOnOrAfter of the Conditions and
   of the SubjectConfirmationData hold within ``allowed_clock_skew``;
6. InResponseTo (Response and SubjectConfirmationData) is the request id the server kept;
   without one, the Response is unsolicited and refused unless the connection allows
   IdP-initiated login and the RelayState is on its allowlist;
7. pysaml2 then parses and validates the same bytes itself (schema, signatures against the
   IdP's metadata, conditions, subject confirmation) as a second, independent gate;
8. the NameID, when it is read (as the subject, or as an e-mail), comes in the configured
   format, and its NameQualifier and SPNameQualifier, when present, name the IdP and us
   (saml-core §2.2.2, §8.3): the unsigned AuthnRequest that asks for the format passes
   through the user's browser;
9. last, the server's replay cache (``seen``) must not know the assertion id.

pysaml2 objects never leave this module; every failure is a ``ConnectorError`` whose
message is safe to show and whose reason names the broken rule (never XML or a secret).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import shutil
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Mapping
from xml.sax.saxutils import quoteattr

import defusedxml.ElementTree as SafeET
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from saml2.cache import Cache
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor

from federation.connector import (ConnectorError, Identity, LoginStart, SeenAssertion,
                                  checked_subject, group_names, optional_text)
from federation.config import url_problem
from federation.grants import (MAPPING_FIELDS, InvalidConfig, TenantMapping, known_fields,
                               printable)

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
BINDING_HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"

NAME_ID_FORMATS = {
    "persistent": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "emailAddress": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "unspecified": "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    "transient": "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
}
# the NameID formats our metadata offers (a transient NameID only with subject_attribute)
SP_NAME_ID_FORMATS = tuple(NAME_ID_FORMATS[name] for name in ("persistent", "emailAddress",
                                                               "unspecified"))

# saml-core §5.4.3-5.4.4: exclusive canonicalisation, the enveloped-signature transform
C14N_ALGORITHMS = {
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
}
TRANSFORM_ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
TRANSFORMS = C14N_ALGORITHMS | {TRANSFORM_ENVELOPED}
# SHA-1 is refused: collisions are practical, and every current IdP signs with SHA-256
SIGNATURE_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
}
DIGEST_ALGORITHMS = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
}

# attribute names tried when a connection names none (Name or FriendlyName, in this order):
# plain names, the LDAP/eduPerson OIDs and Microsoft's claim URIs
DEFAULT_ATTRIBUTES = {
    "email": ("email", "mail", "emailAddress", "urn:oid:0.9.2342.19200300.100.1.3",
              "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"),
    "name": ("name", "displayName", "urn:oid:2.16.840.1.113730.3.1.241",
             "http://schemas.microsoft.com/identity/claims/displayname",
             "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"),
    "groups": ("groups", "memberOf", "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
               "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"),
}

DEFAULT_CLOCK_SKEW = 120
MAX_CLOCK_SKEW = 600
CERTIFICATE_WARNING_DAYS = 30
MIN_RSA_BITS = 2048
MAX_RESPONSE_CHARS = 512 * 1024
MAX_RELAY_STATE_BYTES = 80  # saml-bindings §3.4.3
MAX_ENTITY_ID_LENGTH = 1024  # saml-core §8.3.6
MAX_ATTRIBUTE_NAME_LENGTH = 256
MAX_SUBJECT_LENGTH = 1024  # what FederatedIdentity.subject holds
MAX_RELAY_STATES = 50

# messages a user may see
UNAVAILABLE = "SAML sign-in is not available on this server"
UNREADABLE = "The SAML response could not be read"
UNSUPPORTED = "The SAML response uses a feature this service does not support"
NOT_SIGNED = "The SAML response is not signed by the identity provider"
DENIED = "The identity provider did not sign you in"
WRONG_ISSUER = "The SAML response comes from another identity provider"
NOT_FOR_US = "The SAML response is not addressed to this service"
EXPIRED = "The SAML response has expired or is not valid yet"
UNSOLICITED = "The SAML response does not answer a sign-in started here"
NO_SUBJECT = "The SAML response does not identify the user"
INVALID = "The SAML response is not valid"
REPLAYED = "The SAML response was already used"


# --- xmlsec1 -----------------------------------------------------------------------------

class XmlsecMissing(RuntimeError):
    """The ``xmlsec1`` binary pysaml2 verifies signatures with is not installed."""


def xmlsec_binary() -> str:
    """The path of ``xmlsec1``; the app calls this at start to fail clearly when it is absent."""
    path = shutil.which("xmlsec1")
    if path is None:
        raise XmlsecMissing(
            "SAML sign-in needs the xmlsec1 program, which is not installed or not on PATH: "
            "run `make install` (it installs the Debian package xmlsec1) or "
            "`apt-get install xmlsec1`")
    return path


# --- configuration -----------------------------------------------------------------------

@dataclass(frozen=True)
class SAMLConfig:
    """One SAML identity provider, validated. ``warnings`` are for the admin (not errors)."""

    entity_id: str
    sso_url: str
    certificate: str  # PEM, as re-encoded after parsing
    certificate_not_after: datetime
    name_id_format: str = NAME_ID_FORMATS["persistent"]
    subject_attribute: str | None = None
    email_attribute: str | None = None
    name_attribute: str | None = None
    groups_attribute: str | None = None
    tenants: TenantMapping = field(default_factory=TenantMapping)
    allowed_clock_skew: int = DEFAULT_CLOCK_SKEW
    allow_idp_initiated: bool = False
    relay_state_allowlist: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    REQUIRED = ("entity_id", "sso_url", "certificate")
    OPTIONAL = ("name_id_format", "subject_attribute", "email_attribute", "name_attribute",
                "groups_attribute", *MAPPING_FIELDS, "allowed_clock_skew", "allow_idp_initiated",
                "relay_state_allowlist")

    @classmethod
    def from_dict(cls, raw: object, *, allow_http: bool = False,
                  now: float | None = None) -> SAMLConfig:
        """Validate an admin's JSON (contract §3 ``{"entity_id", "sso_url", "certificate"}``
        plus the optional fields); raises ``InvalidConfig`` naming the field.

        ``allow_http`` (``IDP_ALLOW_HTTP_UPSTREAMS``) lets ``sso_url`` be ``http://`` on a
        loopback host. An expired certificate is refused; one expiring within
        ``CERTIFICATE_WARNING_DAYS`` adds a warning.
        """
        raw = known_fields(raw, cls.REQUIRED, cls.OPTIONAL)
        now = time.time() if now is None else now
        skew = _clock_skew(raw.get("allowed_clock_skew", DEFAULT_CLOCK_SKEW))
        certificate, not_after, warnings = _certificate(raw["certificate"], now, skew)
        allow_idp_initiated = raw.get("allow_idp_initiated", False)
        if not isinstance(allow_idp_initiated, bool):
            raise InvalidConfig("allow_idp_initiated", "must be true or false")
        relay_states = _relay_state_allowlist(raw.get("relay_state_allowlist", []))
        if allow_idp_initiated and not relay_states:
            raise InvalidConfig("relay_state_allowlist", "must list the RelayState values "
                                "accepted on IdP-initiated logins when allow_idp_initiated is true")
        name_id_format = raw.get("name_id_format", "persistent")
        if not isinstance(name_id_format, str) or name_id_format not in NAME_ID_FORMATS:
            raise InvalidConfig("name_id_format", f"must be one of {', '.join(NAME_ID_FORMATS)}")
        subject_attribute = _attribute_name("subject_attribute", raw.get("subject_attribute"))
        if name_id_format == "transient" and subject_attribute is None:
            raise InvalidConfig("name_id_format", "transient NameIDs change at every login: "
                                "set subject_attribute to name a stable attribute")
        return cls(
            entity_id=printable("entity_id", raw["entity_id"], MAX_ENTITY_ID_LENGTH),
            sso_url=_sso_url(raw["sso_url"], allow_http),
            certificate=certificate,
            certificate_not_after=not_after,
            name_id_format=NAME_ID_FORMATS[name_id_format],
            subject_attribute=subject_attribute,
            email_attribute=_attribute_name("email_attribute", raw.get("email_attribute")),
            name_attribute=_attribute_name("name_attribute", raw.get("name_attribute")),
            groups_attribute=_attribute_name("groups_attribute", raw.get("groups_attribute")),
            tenants=TenantMapping.parse(raw.get("default_tenants"), raw.get("group_mappings")),
            allowed_clock_skew=skew,
            allow_idp_initiated=allow_idp_initiated,
            relay_state_allowlist=relay_states,
            warnings=warnings,
        )

    def to_dict(self) -> dict:
        """The stored (and listed) form; ``from_dict`` reads it back. Nothing in it is secret."""
        short_format = {urn: name for name, urn in NAME_ID_FORMATS.items()}[self.name_id_format]
        optional = {"subject_attribute": self.subject_attribute,
                    "email_attribute": self.email_attribute,
                    "name_attribute": self.name_attribute,
                    "groups_attribute": self.groups_attribute}
        return {
            "entity_id": self.entity_id,
            "sso_url": self.sso_url,
            "certificate": self.certificate,
            "name_id_format": short_format,
            **{name: value for name, value in optional.items() if value is not None},
            **self.tenants.to_dict(),
            "allowed_clock_skew": self.allowed_clock_skew,
            "allow_idp_initiated": self.allow_idp_initiated,
            "relay_state_allowlist": list(self.relay_state_allowlist),
        }

    @property
    def upstream(self) -> str:
        """What its subjects are unique within: the IdP's entity id."""
        return self.entity_id

    @property
    def certificate_base64(self) -> str:
        """The DER certificate in base64, as metadata and KeyInfo carry it."""
        return "".join(self.certificate.strip().splitlines()[1:-1])


def _attribute_name(name: str, value: object) -> str | None:
    return None if value is None else printable(name, value, MAX_ATTRIBUTE_NAME_LENGTH)


def _sso_url(value: object, allow_http: bool) -> str:
    url = printable("sso_url", value, 2048)
    problem = url_problem(url, allow_http, allow_query=True)
    if problem:
        raise InvalidConfig("sso_url", problem)
    return url


def _clock_skew(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CLOCK_SKEW:
        raise InvalidConfig("allowed_clock_skew", f"must be a whole number of seconds from 0 to {MAX_CLOCK_SKEW}")
    return value


def _relay_state_allowlist(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_RELAY_STATES:
        raise InvalidConfig("relay_state_allowlist", f"must be a list of at most {MAX_RELAY_STATES} strings")
    for entry in value:
        if not _is_relay_state(entry):
            raise InvalidConfig("relay_state_allowlist",
                                f"entries must be printable strings of 1 to {MAX_RELAY_STATE_BYTES} bytes")
    return tuple(value)


def _is_relay_state(value: object) -> bool:
    return (isinstance(value, str) and value.isprintable()
            and 0 < len(value.encode()) <= MAX_RELAY_STATE_BYTES)


def _certificate(value: object, now: float, skew: int) -> tuple[str, datetime, tuple[str, ...]]:
    """The IdP's signing certificate: one PEM X.509 certificate, current, RSA >= 2048 or EC."""
    if not isinstance(value, str):
        raise InvalidConfig("certificate", "must be a PEM string")
    if value.count("-----BEGIN CERTIFICATE-----") != 1:
        raise InvalidConfig("certificate", "must hold exactly one PEM certificate "
                                           "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)")
    try:
        cert = x509.load_pem_x509_certificate(value.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidConfig("certificate", "is not a valid PEM X.509 certificate") from None
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidConfig("certificate", f"holds an RSA key of {key.key_size} bits "
                                               f"(at least {MIN_RSA_BITS} are required)")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise InvalidConfig("certificate", "must hold an RSA or EC public key")
    not_after = cert.not_valid_after_utc
    if not_after.timestamp() <= now:
        raise InvalidConfig("certificate", f"expired on {not_after:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc.timestamp() > now + skew:
        raise InvalidConfig("certificate", f"is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    warnings = ()
    days_left = (not_after.timestamp() - now) / 86400
    if days_left < CERTIFICATE_WARNING_DAYS:
        warnings = (f"The identity provider's certificate expires on {not_after:%Y-%m-%d} "
                    f"(in {math.floor(days_left)} days); add its next certificate before then.",)
    return cert.public_bytes(Encoding.PEM).decode("ascii"), not_after, warnings


# --- SP metadata -------------------------------------------------------------------------

def sp_metadata(sp_entity_id: str, acs_url: str) -> str:
    """Our SP metadata (saml-metadata-2.0-os §2.4.4): entity id, the ACS (HTTP-POST), the
    NameID formats we take, unsigned AuthnRequests, and that we want signed assertions.

    It needs no IdP configuration, so an admin can register us at the IdP first.
    """
    descriptor = entity_descriptor(_sp_config(sp_entity_id, acs_url))
    body = descriptor.to_string({"md": MD})
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body.decode("utf-8")


def _sp_config(sp_entity_id: str, acs_url: str, idp: SAMLConfig | None = None,
               allow_unsolicited: bool = False) -> SPConfig:
    """pysaml2's view of us: for the metadata alone (``idp`` None), or facing ``idp``."""
    sp = {
        "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
        "name_id_format": list(SP_NAME_ID_FORMATS),
        "authn_requests_signed": False,
        "want_assertions_signed": True,
        "want_response_signed": False,
    }
    settings = {"entityid": sp_entity_id, "service": {"sp": sp}}
    if idp is not None:
        sp.update({
            "name_id_policy_format": idp.name_id_format,  # what an AuthnRequest asks for
            "name_id_format_allow_create": True,
            # the metadata asks for signed assertions; a signed Response enclosing the
            # assertion is as good (rule 3), so either signature satisfies pysaml2
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,
            "only_use_keys_in_metadata": True,  # never a certificate carried by the message
            "allow_unsolicited": allow_unsolicited,
        })
        settings.update({
            "xmlsec_binary": xmlsec_binary(),
            "metadata": {"inline": [_idp_metadata(idp)]},
            "accepted_time_diff": idp.allowed_clock_skew,
            "allow_unknown_attributes": True,
        })
    config = SPConfig()
    config.load(settings)
    return config


def _idp_metadata(config: SAMLConfig) -> str:
    """The configured IdP as pysaml2 reads it: entity id, signing certificate, SSO URL."""
    return (
        f'<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID={quoteattr(config.entity_id)}>'
        f'<md:IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
        f'{config.certificate_base64}'
        '</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>'
        f'<md:SingleSignOnService Binding="{BINDING_HTTP_REDIRECT}" Location={quoteattr(config.sso_url)}/>'
        '</md:IDPSSODescriptor></md:EntityDescriptor>'
    )


# --- the connector -----------------------------------------------------------------------

class _NoIdentities(Cache):
    """An identity cache that keeps nothing: a Saml2Client stores every subject it parses
    in its cache, which would grow for as long as the connector lives."""

    def set(self, name_id, entity_id, info, not_on_or_after=0):
        pass


class SAMLServiceProvider:
    """``SAMLConnector`` for one IdP. Keeps no request state: the server stores ``saved``
    under the RelayState it chose and records assertion ids through ``seen``."""

    def __init__(self, config: SAMLConfig, sp_entity_id: str):
        self.config = config
        self.sp_entity_id = printable("sp_entity_id", sp_entity_id, MAX_ENTITY_ID_LENGTH)
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, bool], Saml2Client] = {}

    def _client(self, acs_url: str, allow_unsolicited: bool = False) -> Saml2Client:
        """pysaml2's client facing the IdP, built (xmlsec1 found, metadata parsed) once per
        ACS URL and per whether an unsolicited Response is allowed. It remembers no
        identity (``_NoIdentities``), so sharing it keeps no request state."""
        key = (acs_url, allow_unsolicited)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = Saml2Client(_sp_config(self.sp_entity_id, acs_url, self.config,
                                                allow_unsolicited),
                                     identity_cache=_NoIdentities())
                self._clients[key] = client
            return client

    def login(self, acs_url: str, relay_state: str, *, force_authn: bool = False,
              max_age: int | None = None) -> LoginStart:
        """The HTTP-Redirect URL of an AuthnRequest to ``sso_url``; ``saved`` holds its id,
        which the server keeps (single use) under ``relay_state``. With ``force_authn`` or
        any ``max_age`` the request says ``ForceAuthn="true"`` (saml-core §3.4.1): the IdP
        must authenticate the user again rather than rely on its session."""
        if not _is_relay_state(relay_state):
            raise ConnectorError(UNAVAILABLE, f"RelayState must be 1 to {MAX_RELAY_STATE_BYTES} printable bytes")
        request_id = "id-" + secrets.token_hex(20)  # 160 bits; an NCName
        try:
            client = self._client(acs_url)
            fresh = {"force_authn": "true"} if force_authn or max_age is not None else {}
            _, info = client.prepare_for_authenticate(
                entityid=self.config.entity_id, relay_state=relay_state,
                binding=BINDING_HTTP_REDIRECT, message_id=request_id, **fresh)
            location = dict(info["headers"])["Location"]
        except XmlsecMissing:
            raise ConnectorError(UNAVAILABLE, "xmlsec1 is not installed") from None
        except Exception as exc:  # noqa: BLE001 - nothing from pysaml2 leaves the connector
            raise ConnectorError(UNAVAILABLE, f"could not build the AuthnRequest ({type(exc).__name__})") from None
        saved = {"request_id": request_id}
        if fresh:
            saved["login_at"] = int(time.time())  # the sign-in must come after this
        return LoginStart(redirect_url=location, saved=saved)

    def handle_post(self, acs_url: str, saml_response: str, saved: Mapping | None, *,
                    seen: SeenAssertion, relay_state: str | None = None) -> Identity:
        """The ``Identity`` of a posted ``SAMLResponse``, or ``ConnectorError``.

        ``seen`` is called last, with the assertion id and the time until which the
        assertion would be accepted (its earliest NotOnOrAfter plus the clock skew);
        exceptions it raises (the server's store) pass through unchanged.
        """
        try:
            identity, assertion_id, expires_at = self._accept(acs_url, saml_response, saved, relay_state)
        except ConnectorError:
            raise
        except XmlsecMissing:
            raise ConnectorError(UNAVAILABLE, "xmlsec1 is not installed") from None
        except Exception as exc:  # noqa: BLE001 - pysaml2, xmlsec1 and XML errors stop here
            raise ConnectorError(INVALID, f"unexpected {type(exc).__name__}") from None
        if seen(assertion_id, expires_at):
            raise ConnectorError(REPLAYED, "assertion id already seen (replay)")
        return identity

    def _accept(self, acs_url: str, saml_response: str, saved: Mapping | None,
                relay_state: str | None) -> tuple[Identity, str, float]:
        request_id = _request_id(saved)
        xml = _decode(saml_response)
        doc = _Document.parse(xml)
        doc.check_issuers(self.config.entity_id)
        client = self._client(acs_url, allow_unsolicited=request_id is None)
        doc.verify_signatures(client.sec, self.config.certificate)
        expires_at = doc.check_conditions(
            acs_url=acs_url, audience=self.sp_entity_id, request_id=request_id,
            skew=self.config.allowed_clock_skew, now=time.time())
        if request_id is None:
            self._check_idp_initiated(relay_state)
        else:
            _check_forced_authn(doc.assertion, saved.get("login_at"),
                                self.config.allowed_clock_skew)
        self._second_gate(client, xml, request_id, doc.assertion_id)
        return self._identity(doc.assertion), doc.assertion_id, expires_at

    def _check_idp_initiated(self, relay_state: str | None) -> None:
        if not self.config.allow_idp_initiated:
            raise ConnectorError(UNSOLICITED, "unsolicited Response and IdP-initiated login is off")
        if relay_state not in self.config.relay_state_allowlist:
            raise ConnectorError(UNSOLICITED, "unsolicited Response with a RelayState not on the allowlist")

    @staticmethod
    def _second_gate(client, xml: bytes, request_id: str | None, assertion_id: str) -> None:
        """pysaml2's own validation of the same bytes (binding None: no re-decoding)."""
        outstanding = {request_id: "acs"} if request_id else {}
        try:
            response = client.parse_authn_request_response(xml.decode("utf-8"), None,
                                                           outstanding=outstanding)
        except Exception as exc:  # noqa: BLE001
            raise ConnectorError(INVALID, f"pysaml2 refused the Response ({type(exc).__name__})") from None
        if response is None or response.assertion is None or response.assertion.id != assertion_id:
            raise ConnectorError(INVALID, "pysaml2 read another assertion than the one verified")

    def _identity(self, assertion: ET.Element) -> Identity:
        attributes = _attributes(assertion)
        name_id = assertion.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID")
        email = optional_text(_first(attributes, self._names("email")))
        # the NameID is read only as the subject, or as the e-mail of an emailAddress
        # connection without an e-mail attribute: only then must it be of the right kind
        email_from_name_id = (email is None and self.config.name_id_format
                              == NAME_ID_FORMATS["emailAddress"])
        if name_id is not None and (not self.config.subject_attribute or email_from_name_id):
            self._check_name_id(name_id)
        name_id_value = (name_id.text or "").strip() if name_id is not None else ""
        if self.config.subject_attribute:
            subject = _first(attributes, (self.config.subject_attribute,))
            if not subject:
                raise ConnectorError(NO_SUBJECT, "the subject attribute is missing")
            subject = checked_subject(subject, MAX_SUBJECT_LENGTH, NO_SUBJECT,
                                      name="the subject attribute")
        else:
            # a transient NameID never gets here: that format needs subject_attribute
            if not name_id_value:
                raise ConnectorError(NO_SUBJECT, "no NameID")
            subject = checked_subject(name_id_value, MAX_SUBJECT_LENGTH, NO_SUBJECT, name="NameID")
        if email_from_name_id:
            email = optional_text(name_id_value)
        groups = group_names(value for name in self._names("groups")
                             for value in attributes.get(name, ()))
        return Identity(subject=subject, email=email,
                        name=optional_text(_first(attributes, self._names("name"))),
                        groups=groups)

    def _check_name_id(self, name_id: ET.Element) -> None:
        """A NameID value names a user only together with its Format and qualifiers
        (saml-core §2.2.2, §8.3). Our AuthnRequest asks for the configured format (§3.4.1.1
        NameIDPolicy) but is unsigned and passes through the user's browser, which can ask
        for another format, whose value may be another user's link key: so the NameID must
        come in the configured format, an absent Format meaning unspecified (§8.3.1), and
        its qualifiers, when present, must be the IdP's and our entity ids."""
        received = name_id.get("Format", NAME_ID_FORMATS["unspecified"])
        if received != self.config.name_id_format:
            raise ConnectorError(NO_SUBJECT, f"NameID Format {_format_name(received)!r} is not the "
                                             f"configured {_format_name(self.config.name_id_format)!r}")
        if name_id.get("NameQualifier", self.config.entity_id) != self.config.entity_id:
            raise ConnectorError(NO_SUBJECT, "NameID NameQualifier is not the IdP's entity id")
        if name_id.get("SPNameQualifier", self.sp_entity_id) != self.sp_entity_id:
            raise ConnectorError(NO_SUBJECT, "NameID SPNameQualifier is not our entity id")

    def _names(self, kind: str) -> tuple[str, ...]:
        configured = getattr(self.config, f"{kind}_attribute")
        return (configured,) if configured else DEFAULT_ATTRIBUTES[kind]


def _format_name(urn: str) -> str:
    """A NameID Format for reasons: its last part, as short as a status code's."""
    return urn.rsplit(":", 1)[-1][:40]


def _request_id(saved: Mapping | None) -> str | None:
    if saved is None:
        return None
    request_id = saved.get("request_id") if isinstance(saved, Mapping) else None
    if not isinstance(request_id, str) or not request_id:
        raise ConnectorError(UNSOLICITED, "saved state holds no request id")
    return request_id


def _decode(saml_response: object) -> bytes:
    """The posted base64 (saml-bindings §3.5.4), whitespace allowed, nothing else."""
    if not isinstance(saml_response, str) or not saml_response:
        raise ConnectorError(UNREADABLE, "no SAMLResponse")
    if len(saml_response) > MAX_RESPONSE_CHARS:
        raise ConnectorError(UNREADABLE, "SAMLResponse too large")
    try:
        return base64.b64decode("".join(saml_response.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ConnectorError(UNREADABLE, "SAMLResponse is not base64") from None


_XML_DECLARATION = re.compile(r"^<\?xml[^>]*\?>")
_ENCODING = re.compile(r"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _refuse_dtd(xml: bytes) -> None:
    """No DTD, entity or other markup declaration may reach a parser, in any spelling.

    The document must be UTF-8 (declared or not) so that no other encoding can hide a
    ``<!DOCTYPE``; then the only ``<!`` allowed open a comment or a CDATA section.
    """
    try:
        text = xml.decode("utf-8")
    except UnicodeDecodeError:
        raise ConnectorError(UNREADABLE, "document is not UTF-8") from None
    text = text.removeprefix("\ufeff")
    declaration = _XML_DECLARATION.match(text)
    if declaration:
        encoding = _ENCODING.search(declaration.group(0))
        if encoding and encoding.group(1).lower() not in ("utf-8", "utf8"):
            raise ConnectorError(UNREADABLE, "document declares an encoding other than UTF-8")
    for match in re.finditer(r"<!", text):
        if not (text.startswith("<!--", match.start()) or text.startswith("<![CDATA[", match.start())):
            raise ConnectorError(UNREADABLE, "document has a DTD or markup declaration")


def _q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


def _local(element: ET.Element) -> str:
    """An element's name without its namespace, for reasons."""
    return element.tag.rsplit("}", 1)[-1]


def _check_forced_authn(assertion: ET.Element, login_at: object, skew: int) -> None:
    """saml-core §3.4.1: a request with ``ForceAuthn`` (our relying party's ``prompt=login``,
    ``select_account`` or ``max_age``) must be answered by a fresh authentication. Its
    ``AuthnInstant`` (required, §2.7.2) must not predate the request, or our ID token would
    claim a sign-in the IdP did not make."""
    if not isinstance(login_at, int):
        return
    instants = [_instant(statement.get("AuthnInstant"))
                for statement in assertion.findall(_q(SAML, "AuthnStatement"))]
    if not instants or any(instant is None or instant + skew < login_at
                           for instant in instants):
        raise ConnectorError(INVALID, "AuthnInstant is missing or predates the ForceAuthn "
                                      "request")


def _instant(value: str | None) -> float | None:
    """An xs:dateTime (saml-core §1.3.3: UTC) as Unix time; None when absent."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConnectorError(INVALID, "malformed time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@dataclass(frozen=True)
class _Document:
    """A Response read with defusedxml, its shape checked (rules 1-3 of the module doc)."""

    xml_text: str
    response: ET.Element
    assertion: ET.Element
    signed: tuple[ET.Element, ...]  # the Response and/or the Assertion, each enveloping its signature

    @property
    def assertion_id(self) -> str:
        return self.assertion.get("ID")

    @classmethod
    def parse(cls, xml: bytes) -> _Document:
        _refuse_dtd(xml)
        try:
            root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
        except Exception:  # noqa: BLE001 - ParseError and defusedxml's refusals alike
            raise ConnectorError(UNREADABLE, "not well-formed XML") from None
        if root.tag != _q(SAMLP, "Response"):
            raise ConnectorError(UNREADABLE, "not a samlp:Response")
        # first: a failed login usually comes unsigned and without an assertion
        _check_status(root)
        elements = list(root.iter())
        if any(e.tag.startswith(f"{{{SAML}}}Encrypted") or e.tag.startswith(f"{{{XENC}}}")
               for e in elements):
            raise ConnectorError(UNSUPPORTED, "encrypted content (EncryptedAssertion/ID/Attribute)")
        ids = [e.get("ID") for e in elements if e.get("ID") is not None]
        if len(ids) != len(set(ids)):
            raise ConnectorError(NOT_SIGNED, "duplicate ID attributes")
        assertions = [e for e in elements if e.tag == _q(SAML, "Assertion")]
        if len(assertions) != 1 or assertions[0] not in list(root):
            raise ConnectorError(NOT_SIGNED, f"{len(assertions)} assertions, or one not directly in the Response")
        assertion = assertions[0]
        if not assertion.get("ID"):
            raise ConnectorError(INVALID, "assertion without an ID")
        parents = {child: parent for parent in elements for child in parent}
        signed = []
        for signature in (e for e in elements if e.tag == _q(DS, "Signature")):
            parent = parents.get(signature)
            if parent is not root and parent is not assertion:
                raise ConnectorError(NOT_SIGNED, "a signature outside the Response and the Assertion")
            if parent in signed:
                raise ConnectorError(NOT_SIGNED, "two signatures on one element")
            _check_signature_shape(signature, parent)
            signed.append(parent)
        if not signed:
            raise ConnectorError(NOT_SIGNED, "neither the Response nor the Assertion is signed")
        return cls(xml.decode("utf-8"), root, assertion, tuple(signed))

    def check_issuers(self, idp_entity_id: str) -> None:
        """saml-profiles §4.1.4.2: the Assertion's Issuer is the IdP; so is the Response's,
        which may be left out only when the Response is not signed."""
        for element, required in ((self.assertion, True), (self.response, self.response in self.signed)):
            issuer = element.find(_q(SAML, "Issuer"))
            where = _local(element)
            if issuer is None:
                if required:
                    raise ConnectorError(WRONG_ISSUER, f"{where} without an Issuer")
                continue
            if (issuer.text or "").strip() != idp_entity_id or issuer.get("Format", ENTITY) != ENTITY:
                raise ConnectorError(WRONG_ISSUER, f"{where} Issuer is not the configured IdP")

    def verify_signatures(self, security_context, certificate_pem: str) -> None:
        """Each signature, on the very element we read, against the configured certificate
        only (``--enabled-key-data raw-x509-cert``: no key from the document is trusted)."""
        with tempfile.NamedTemporaryFile("w", suffix=".pem") as cert_file:
            cert_file.write(certificate_pem)
            cert_file.flush()
            for element in self.signed:
                node_name = element.tag[1:].replace("}", ":")
                try:
                    ok = security_context.verify_signature(
                        self.xml_text, cert_file=cert_file.name, cert_type="pem",
                        node_name=node_name, node_id=element.get("ID"))
                except Exception:  # noqa: BLE001 - xmlsec1 says FAIL through exceptions
                    ok = False
                if not ok:
                    raise ConnectorError(NOT_SIGNED, f"signature on the {_local(element)} "
                                                     "does not verify with the configured certificate")

    def check_conditions(self, *, acs_url: str, audience: str, request_id: str | None,
                         skew: int, now: float) -> float:
        """Rules 5-6; returns until when the assertion would be accepted (for ``seen``)."""
        if self.response.get("Destination") != acs_url:
            raise ConnectorError(NOT_FOR_US, "Destination is not our ACS URL")
        _check_in_response_to(self.response.get("InResponseTo"), request_id, "Response")
        conditions = self.assertion.find(_q(SAML, "Conditions"))
        if conditions is None:
            raise ConnectorError(NOT_FOR_US, "no Conditions (and so no AudienceRestriction)")
        restrictions = conditions.findall(_q(SAML, "AudienceRestriction"))
        if not restrictions or any(
                audience not in [(a.text or "").strip() for a in r.findall(_q(SAML, "Audience"))]
                for r in restrictions):
            raise ConnectorError(NOT_FOR_US, "our entity id is not the Audience")
        not_on_or_after = [_check_window(conditions, now, skew, required=False)]
        if self.assertion.find(_q(SAML, "AuthnStatement")) is None:
            raise ConnectorError(INVALID, "no AuthnStatement")
        confirmations = self.assertion.findall(f"{_q(SAML, 'Subject')}/{_q(SAML, 'SubjectConfirmation')}")
        bearer = [c for c in confirmations if c.get("Method") == CM_BEARER]
        if not bearer:
            raise ConnectorError(INVALID, "no bearer SubjectConfirmation")
        problem = None
        for confirmation in bearer:
            try:
                not_on_or_after.append(_check_bearer(confirmation, acs_url, request_id, now, skew))
                break
            except ConnectorError as error:
                problem = problem or error
        else:
            raise problem
        return min(t for t in not_on_or_after if t is not None) + skew


def _check_status(response: ET.Element) -> None:
    code = response.find(f"{_q(SAMLP, 'Status')}/{_q(SAMLP, 'StatusCode')}")
    if code is None or code.get("Value") != STATUS_SUCCESS:
        value = code.get("Value", "") if code is not None else ""
        second = code.find(_q(SAMLP, "StatusCode")) if code is not None else None
        detail = value.rsplit(":", 1)[-1][:40]
        if second is not None:
            detail += "/" + second.get("Value", "").rsplit(":", 1)[-1][:40]
        raise ConnectorError(DENIED, f"status {detail!r}")


def _check_in_response_to(value: str | None, request_id: str | None, where: str) -> None:
    if request_id is None and value is not None:
        raise ConnectorError(UNSOLICITED, f"{where} InResponseTo names a request we do not hold")
    if request_id is not None and value != request_id:
        raise ConnectorError(UNSOLICITED, f"{where} InResponseTo is not our request id")


def _check_window(element: ET.Element, now: float, skew: int, required: bool) -> float | None:
    not_before = _instant(element.get("NotBefore"))
    not_on_or_after = _instant(element.get("NotOnOrAfter"))
    if not_on_or_after is None and required:
        raise ConnectorError(EXPIRED, f"{_local(element)} without NotOnOrAfter")
    if not_before is not None and now + skew < not_before:
        raise ConnectorError(EXPIRED, f"{_local(element)} NotBefore is in the future")
    if not_on_or_after is not None and now - skew >= not_on_or_after:
        raise ConnectorError(EXPIRED, f"{_local(element)} NotOnOrAfter has passed")
    return not_on_or_after


def _check_bearer(confirmation: ET.Element, acs_url: str, request_id: str | None,
                  now: float, skew: int) -> float:
    """saml-profiles §4.1.4.2: Recipient, NotOnOrAfter and (if solicited) InResponseTo."""
    data = confirmation.find(_q(SAML, "SubjectConfirmationData"))
    if data is None:
        raise ConnectorError(INVALID, "bearer SubjectConfirmation without data")
    if data.get("Recipient") != acs_url:
        raise ConnectorError(NOT_FOR_US, "SubjectConfirmationData Recipient is not our ACS URL")
    _check_in_response_to(data.get("InResponseTo"), request_id, "SubjectConfirmationData")
    return _check_window(data, now, skew, required=True)


def _check_signature_shape(signature: ET.Element, parent: ET.Element) -> None:
    """saml-core §5.4: an enveloped signature of ``parent`` alone, placed where the schema
    puts it (first child, or right after the Issuer) so that xmlsec1, which verifies the
    first Signature below the node it is given, verifies this one."""
    children = list(parent)
    position = children.index(signature)
    if not (position == 0 or (position == 1 and children[0].tag == _q(SAML, "Issuer"))):
        raise ConnectorError(NOT_SIGNED, "signature not in its schema position")
    signed_info = signature.find(_q(DS, "SignedInfo"))
    references = signed_info.findall(_q(DS, "Reference")) if signed_info is not None else []
    if len(references) != 1 or references[0].get("URI") != "#" + (parent.get("ID") or "\0"):
        raise ConnectorError(NOT_SIGNED, "signature does not reference exactly its own element")
    c14n = signed_info.find(_q(DS, "CanonicalizationMethod"))
    method = signed_info.find(_q(DS, "SignatureMethod"))
    digest = references[0].find(_q(DS, "DigestMethod"))
    transforms = [t.get("Algorithm") for t in references[0].iter(_q(DS, "Transform"))]
    if (c14n is None or c14n.get("Algorithm") not in C14N_ALGORITHMS
            or TRANSFORM_ENVELOPED not in transforms or not set(transforms) <= TRANSFORMS
            or len(transforms) > 2):
        raise ConnectorError(NOT_SIGNED, "signature uses transforms other than enveloped + exc-c14n")
    if method is None or method.get("Algorithm") not in SIGNATURE_ALGORITHMS:
        raise ConnectorError(NOT_SIGNED, "signature algorithm not allowed (SHA-256 or stronger)")
    if digest is None or digest.get("Algorithm") not in DIGEST_ALGORITHMS:
        raise ConnectorError(NOT_SIGNED, "digest algorithm not allowed (SHA-256 or stronger)")
    if signature.find(_q(DS, "Object")) is not None:
        raise ConnectorError(NOT_SIGNED, "signature carries a ds:Object")


def _attributes(assertion: ET.Element) -> dict[str, list[str]]:
    """Attribute values by Name and by FriendlyName (saml-core §2.7.3.1)."""
    values: dict[str, list[str]] = {}
    for attribute in assertion.iterfind(f"{_q(SAML, 'AttributeStatement')}/{_q(SAML, 'Attribute')}"):
        texts = [(v.text or "").strip() for v in attribute.findall(_q(SAML, "AttributeValue"))]
        texts = [t for t in texts if t]
        for name in {attribute.get("Name"), attribute.get("FriendlyName")} - {None, ""}:
            values.setdefault(name, []).extend(texts)
    return values


def _first(attributes: Mapping[str, list[str]], names: tuple[str, ...]) -> str | None:
    for name in names:
        if attributes.get(name):
            return attributes[name][0]
    return None
