"""A real signing SAML identity provider for the tests: pysaml2's ``Server`` (its IdP
classes) with RSA key pairs and self-signed certificates made here with ``cryptography``.

It reads the AuthnRequest our connector sends by HTTP-Redirect and answers with Responses
signed by xmlsec1, exactly as a production IdP would. ``response`` builds one unsigned,
lets a test ``edit`` it (the knob for every attack that needs a signature over bad data),
then signs the Assertion, the Response or both, with the IdP's key or another one. Attacks
on a signed document (tampering, wrapping, DOCTYPE) are plain string edits of the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from freezegun import freeze_time
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import pre_signature_part

from federation.saml import DS, SAML, SAMLP, xmlsec_binary

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"

for _prefix, _uri in (("samlp", SAMLP), ("saml", SAML), ("ds", DS)):
    ET.register_namespace(_prefix, _uri)


def q(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


@dataclass(frozen=True)
class KeyPair:
    key_file: Path
    cert_file: Path
    cert_pem: str

    @property
    def cert_base64(self) -> str:
        return "".join(self.cert_pem.strip().splitlines()[1:-1])


def make_key_pair(directory: Path, name: str, *, days: float = 365, key_size: int = 2048,
                  valid_from: dt.datetime | None = None) -> KeyPair:
    """An RSA key and a self-signed certificate valid ``days`` from ``valid_from`` (a day ago)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = valid_from or dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=1 + days))
            .sign(key, hashes.SHA256()))
    key_file, cert_file = directory / f"{name}.key", directory / f"{name}.crt"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file.write_text(cert_pem)
    return KeyPair(key_file, cert_file, cert_pem)


@dataclass(frozen=True)
class AuthnRequest:
    id: str
    acs_url: str
    issuer: str
    destination: str
    relay_state: str
    name_id_format: str | None
    force_authn: bool  # ForceAuthn="true"


class SigningIdP:
    """pysaml2's IdP, trusting our SP metadata; ``keys`` sign, ``attacker_keys`` are foreign."""

    def __init__(self, directory: Path, entity_id: str, sso_url: str, sp_metadata: str):
        self.entity_id = entity_id
        self.sso_url = sso_url
        self.keys = make_key_pair(directory, "idp")
        self.attacker_keys = make_key_pair(directory, "attacker")
        config = IdPConfig()
        config.load({
            "entityid": entity_id,
            "key_file": str(self.keys.key_file),
            "cert_file": str(self.keys.cert_file),
            "xmlsec_binary": xmlsec_binary(),
            "metadata": {"inline": [sp_metadata]},
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]},
                "policy": {"default": {
                    "lifetime": {"minutes": 5},
                    "attribute_restrictions": None,
                    "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
                }},
            }},
        })
        self.server = Server(config=config)

    def read_request(self, redirect_url: str) -> AuthnRequest:
        """The AuthnRequest of an HTTP-Redirect URL, parsed and checked by pysaml2's IdP."""
        query = parse_qs(urlsplit(redirect_url).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
        message = request.message
        policy = message.name_id_policy
        return AuthnRequest(id=message.id, acs_url=message.assertion_consumer_service_url,
                            issuer=message.issuer.text, destination=message.destination,
                            relay_state=query["RelayState"][0],
                            name_id_format=policy.format if policy is not None else None,
                            force_authn=str(message.force_authn).lower() in ("true", "1"))

    def response(self, in_response_to: str | None, acs_url: str, audience: str, *,
                 name_id: str = "user-1", name_id_format: str = NAMEID_FORMAT_PERSISTENT,
                 attributes: dict | None = None, sign: str | None = "assertion",
                 keys: KeyPair | None = None, response_keys: KeyPair | None = None,
                 edit: Callable[[ET.Element], None] | None = None,
                 at: dt.datetime | None = None, sign_alg: str = RSA_SHA256,
                 digest_alg: str = SHA256) -> str:
        """A Response XML. ``sign``: "assertion", "response", "both" or None, with ``keys``
        (``response_keys`` for the Response, when they differ); ``at``: the IdP's clock when
        it issues it; ``edit`` changes the tree before signing."""
        if attributes is None:
            attributes = {"email": ["ada@example.test"], "name": ["Ada Lovelace"],
                          "groups": ["engineering", "ops"]}
        with freeze_time(at or dt.datetime.now(dt.timezone.utc)):
            response = self.server.create_authn_response(
                attributes, in_response_to, acs_url, audience,
                name_id=NameID(format=name_id_format, text=name_id),
                authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
                sign_assertion=False, sign_response=False)
        root = ET.fromstring(str(response))
        for value in root.iter(q(SAML, "AttributeValue")):
            # xsi:type="xs:string" names a prefix ElementTree does not keep when it re-serialises
            value.attrib.pop(XSI_TYPE, None)
        if edit is not None:
            edit(root)
        keys = keys or self.keys
        assertion = root.find(q(SAML, "Assertion"))
        targets = {"assertion": [(assertion, keys)], "response": [(root, response_keys or keys)],
                   "both": [(assertion, keys), (root, response_keys or keys)], None: []}[sign]
        for element, signer in targets:
            template = pre_signature_part(element.get("ID"), public_key=signer.cert_base64,
                                          sign_alg=sign_alg, digest_alg=digest_alg)
            after_issuer = 1 if len(element) and element[0].tag == q(SAML, "Issuer") else 0
            element.insert(after_issuer, ET.fromstring(template.to_string()))
        xml = ET.tostring(root, encoding="unicode")
        for element, signer in targets:  # the assertion first: the Response signature covers it
            xml = self.server.sec.sign_statement(
                xml, element.tag[1:].replace("}", ":"), key_file=str(signer.key_file),
                node_id=element.get("ID"))
        return xml


def post(xml: str) -> str:
    """The ``SAMLResponse`` form field of the HTTP-POST binding."""
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")


def set_attr(path: str, name: str, value: str | None) -> Callable[[ET.Element], None]:
    """An ``edit``: set (or with None, remove) attribute ``name`` of every element at ``path``
    (an ElementTree path below the Response, "." for the Response itself)."""
    def edit(root: ET.Element) -> None:
        for element in [root] if path == "." else root.findall(path, NAMESPACES):
            if value is None:
                element.attrib.pop(name, None)
            else:
                element.set(name, value)
    return edit


def set_text(path: str, value: str) -> Callable[[ET.Element], None]:
    def edit(root: ET.Element) -> None:
        for element in root.findall(path, NAMESPACES):
            element.text = value
    return edit


NAMESPACES = {"samlp": SAMLP, "saml": SAML, "ds": DS}
ASSERTION = "saml:Assertion"
SUBJECT_CONFIRMATION_DATA = "saml:Assertion/saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
AUDIENCE = "saml:Assertion/saml:Conditions/saml:AudienceRestriction/saml:Audience"
ISSUERS = ".//saml:Issuer"
