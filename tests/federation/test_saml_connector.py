"""The SAML connector against a real signing IdP (pysaml2's IdP, xmlsec1 signatures).

First the logins that must work, then one test per acceptance rule of issue 8 / the module
doc of ``federation.saml``: each posts a Response that breaks exactly that rule and expects
a ``ConnectorError`` for that reason, with no Identity returned and no assertion recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2.saml import (NAMEID_FORMAT_EMAILADDRESS, NAMEID_FORMAT_PERSISTENT,
                        NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_UNSPECIFIED)

from federation import saml
from federation.connector import ConnectorError, Identity
from federation.saml import SAMLConfig, SAMLServiceProvider
from tests.federation.conftest import (ACS_URL, IDP_ENTITY_ID, RELAY_STATE, SP_ENTITY_ID,
                                       SSO_URL, Flow, idp_config, start_flow)
from tests.federation.saml_idp import (AUDIENCE, ISSUERS, NAMESPACES, RSA_SHA1, SHA1,
                                       SUBJECT_CONFIRMATION_DATA, post, set_attr, set_text)

ADA = Identity(subject="user-1", email="ada@example.test", name="Ada Lovelace",
               groups=("engineering", "ops"))


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def assertion_of(xml: str) -> str:
    return re.search(r"<saml:Assertion .*?</saml:Assertion>", xml, re.S).group(0)


# --- login -------------------------------------------------------------------------------

def test_login_sends_an_authn_request_by_http_redirect(idp):
    sp = SAMLServiceProvider(SAMLConfig.from_dict(idp_config(idp)), SP_ENTITY_ID)
    started = sp.login(ACS_URL, RELAY_STATE)

    assert started.redirect_url.startswith(SSO_URL + "?")
    assert set(parse_qs(urlsplit(started.redirect_url).query)) == {"SAMLRequest", "RelayState"}
    request = idp.read_request(started.redirect_url)  # pysaml2's IdP parses and checks it
    assert started.saved == {"request_id": request.id}
    assert (request.acs_url, request.issuer, request.destination, request.relay_state) == (
        ACS_URL, SP_ENTITY_ID, SSO_URL, RELAY_STATE)
    assert request.name_id_format == saml.NAME_ID_FORMATS["persistent"]
    assert len(request.id) >= 40  # 160 random bits
    assert sp.login(ACS_URL, RELAY_STATE).saved != started.saved


@pytest.mark.parametrize("fresh, force_authn", [
    ({}, False), ({"force_authn": True}, True), ({"max_age": 0}, True), ({"max_age": 3600}, True),
])
def test_login_asks_for_a_fresh_authentication_when_told(idp, fresh, force_authn):
    sp = SAMLServiceProvider(SAMLConfig.from_dict(idp_config(idp)), SP_ENTITY_ID)
    request = idp.read_request(sp.login(ACS_URL, RELAY_STATE, **fresh).redirect_url)
    assert request.force_authn is force_authn


AUTHN_STATEMENT = "saml:Assertion/saml:AuthnStatement"


@pytest.mark.parametrize("fresh", [{"force_authn": True}, {"max_age": 600}])
def test_a_forced_authentication_must_be_a_fresh_one(idp, fresh):
    """saml-core §3.4.1: ForceAuthn is answered by a new authentication, which its
    AuthnInstant shows; an IdP that answered from its session is refused."""
    sp = SAMLServiceProvider(SAMLConfig.from_dict(idp_config(idp)), SP_ENTITY_ID)
    started = sp.login(ACS_URL, RELAY_STATE, **fresh)
    flow = Flow(sp, idp, started.saved, idp.read_request(started.redirect_url).id)
    an_hour_ago = (now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    flow.refused(flow.respond(edit=set_attr(AUTHN_STATEMENT, "AuthnInstant", an_hour_ago)),
                 saml.INVALID, "AuthnInstant")
    flow.refused(flow.respond(edit=set_attr(AUTHN_STATEMENT, "AuthnInstant", None)),
                 saml.INVALID, "AuthnInstant")
    assert flow.post(flow.respond()) == ADA


def test_without_force_authn_an_older_authentication_is_fine(flow):
    an_hour_ago = (now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert flow.post(flow.respond(edit=set_attr(AUTHN_STATEMENT, "AuthnInstant",
                                                an_hour_ago))) == ADA


@pytest.mark.parametrize("relay_state", ["", "x" * 81, "line\nbreak"])
def test_login_refuses_a_relay_state_saml_cannot_carry(idp, relay_state):
    sp = SAMLServiceProvider(SAMLConfig.from_dict(idp_config(idp)), SP_ENTITY_ID)
    with pytest.raises(ConnectorError):
        sp.login(ACS_URL, relay_state)


# --- accepted ----------------------------------------------------------------------------

def test_a_signed_assertion_gives_the_identity_and_is_recorded_until_it_expires(flow):
    xml = flow.respond()

    assert flow.post(xml) == ADA
    assertion_id = re.search(r'<saml:Assertion [^>]*ID="([^"]+)"', xml).group(1)
    not_on_or_after = re.search(r'SubjectConfirmationData NotOnOrAfter="([^"]+)"', xml).group(1)
    expected = dt.datetime.fromisoformat(not_on_or_after).timestamp() + saml.DEFAULT_CLOCK_SKEW
    assert flow.seen.entries == {assertion_id: expected}


@pytest.mark.parametrize("sign", ["response", "both"])
def test_a_signature_on_the_enclosing_response_is_enough(flow, sign):
    assert flow.post(flow.respond(sign=sign)) == ADA


def test_a_late_response_within_the_clock_skew_is_accepted(flow):
    # issued 6 minutes ago for 5: expired a minute ago, inside the default 120 s of skew
    xml = flow.respond(at=now() - dt.timedelta(minutes=6))
    assert flow.post(xml) == ADA


def test_configured_attribute_names_replace_the_defaults(idp):
    flow = start_flow(idp, email_attribute="urn:mace:dir:attribute-def:mail",
                      name_attribute="displayName", groups_attribute="memberOf")
    xml = flow.respond(attributes={"mail": ["grace@example.test"], "displayName": ["Grace Hopper"],
                                   "memberOf": ["navy", "cobol"], "email": ["other@example.test"],
                                   "groups": ["ignored"]})
    assert flow.post(xml) == Identity(subject="user-1", email="grace@example.test",
                                      name="Grace Hopper", groups=("navy", "cobol"))


def test_a_subject_attribute_stands_in_for_a_transient_name_id(idp):
    flow = start_flow(idp, name_id_format="transient", subject_attribute="employeeNumber")
    xml = flow.respond(name_id="_a1b2c3", name_id_format=NAMEID_FORMAT_TRANSIENT,
                       attributes={"employeeNumber": ["E-1042"], "email": ["ada@example.test"]})
    assert flow.post(xml).subject == "E-1042"


def test_a_name_id_a_subject_attribute_makes_unused_may_come_in_any_format(idp):
    """With subject_attribute the NameID names nobody here: its format is the IdP's affair,
    unless it is to be the e-mail (below)."""
    flow = start_flow(idp, name_id_format="transient", subject_attribute="employeeNumber")
    xml = flow.respond(name_id="ada@example.test", name_id_format=NAMEID_FORMAT_PERSISTENT,
                       attributes={"employeeNumber": ["E-1042"], "email": ["ada@example.test"]})
    assert flow.post(xml) == Identity(subject="E-1042", email="ada@example.test")
    flow = start_flow(idp, name_id_format="emailAddress", subject_attribute="employeeNumber")
    xml = flow.respond(name_id="mallory", name_id_format=NAMEID_FORMAT_UNSPECIFIED,
                       attributes={"employeeNumber": ["E-1042"]})
    flow.refused(xml, saml.NO_SUBJECT, "is not the configured")  # it would be the e-mail


def test_an_email_address_name_id_is_the_email_when_no_attribute_says_otherwise(idp):
    flow = start_flow(idp, name_id_format="emailAddress")
    xml = flow.respond(name_id="ada@example.test", name_id_format=NAMEID_FORMAT_EMAILADDRESS,
                       attributes={"name": ["Ada"]})
    assert flow.post(xml) == Identity(subject="ada@example.test", email="ada@example.test", name="Ada")


def test_a_comment_in_the_name_id_does_not_truncate_it(flow):
    # the comment trick (CVE-2017-11427 and kin): exclusive c14n ignores comments, so the
    # signature still verifies; a parser reading only the first text node would see "victim"
    xml = flow.respond(name_id="victim@example.test.evil.test")
    xml = xml.replace("victim@example.test.evil.test", "victim@example.test<!---->.evil.test")
    assert flow.post(xml).subject == "victim@example.test.evil.test"


def test_idp_initiated_login_when_enabled_and_the_relay_state_is_allowed(idp):
    flow = start_flow(idp, allow_idp_initiated=True, relay_state_allowlist=["https://app.example.test/"])
    xml = flow.respond(in_response_to=None)
    assert 'InResponseTo="' not in xml
    assert flow.post(xml, saved=None, relay_state="https://app.example.test/") == ADA


# --- signature ---------------------------------------------------------------------------

def test_an_unsigned_response_is_refused(flow):
    flow.refused(flow.respond(sign=None), saml.NOT_SIGNED, "neither the Response nor the Assertion")


@pytest.mark.parametrize("sign", ["assertion", "response"])
def test_a_signature_by_another_key_is_refused_even_with_its_certificate_inside(flow, idp, sign):
    # the attacker's certificate travels in KeyInfo: only the configured one may count
    xml = flow.respond(sign=sign, keys=idp.attacker_keys)
    assert idp.attacker_keys.cert_base64 in xml
    flow.refused(xml, saml.NOT_SIGNED, "does not verify with the configured certificate")


def test_a_bad_response_signature_is_refused_beside_a_good_assertion_signature(flow, idp):
    xml = flow.respond(sign="both", response_keys=idp.attacker_keys)
    flow.refused(xml, saml.NOT_SIGNED, "signature on the Response does not verify")


def test_a_sha1_signature_is_refused(flow):
    flow.refused(flow.respond(sign_alg=RSA_SHA1, digest_alg=SHA1), saml.NOT_SIGNED,
                 "algorithm not allowed")


@pytest.mark.parametrize("sign", ["assertion", "response"])
def test_a_name_id_changed_after_signing_is_refused(flow, sign):
    xml = flow.respond(sign=sign).replace(">user-1<", ">admin<")
    flow.refused(xml, saml.NOT_SIGNED, "does not verify")


def test_an_attribute_changed_after_signing_is_refused(flow):
    xml = flow.respond().replace("ada@example.test", "root@infracast.test")
    flow.refused(xml, saml.NOT_SIGNED, "does not verify")


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_second_unsigned_assertion_beside_the_signed_one_is_refused(flow, where):
    xml = flow.respond()
    signed = assertion_of(xml)
    forged = re.sub(r"<ds:Signature>.*?</ds:Signature>", "", signed, flags=re.S)
    forged = forged.replace('ID="', 'ID="forged-').replace(">user-1<", ">admin<")
    pair = forged + signed if where == "before" else signed + forged
    flow.refused(xml.replace(signed, pair), saml.NOT_SIGNED, "2 assertions")


@pytest.mark.parametrize("same_id", [True, False])
def test_a_signed_assertion_moved_aside_for_a_forged_one_is_refused(flow, same_id):
    # classic XML signature wrapping: the signed assertion hides in Extensions, where an
    # ID lookup still finds it, while a forged one stands where the data is read
    xml = flow.respond()
    signed = assertion_of(xml)
    forged = re.sub(r"<ds:Signature>.*?</ds:Signature>", "", signed, flags=re.S)
    forged = forged.replace(">user-1<", ">admin<")
    if not same_id:
        forged = forged.replace('ID="', 'ID="forged-')
    wrapped = xml.replace(signed, forged).replace(
        "<samlp:Status>", f"<samlp:Extensions>{signed}</samlp:Extensions><samlp:Status>")
    flow.refused(wrapped, saml.NOT_SIGNED, "duplicate ID" if same_id else "2 assertions")


def test_a_signature_moved_onto_the_response_is_refused(flow):
    # the assertion's signature, now under the Response, still points at the assertion:
    # it no longer signs the element it sits in
    xml = flow.respond()
    signature = re.search(r"<ds:Signature>.*?</ds:Signature>", xml, re.S).group(0)
    issuer_end = xml.index("</saml:Issuer>") + len("</saml:Issuer>")
    moved = xml.replace(signature, "")
    moved = moved[:issuer_end] + signature + moved[issuer_end:]
    flow.refused(moved, saml.NOT_SIGNED, "does not reference exactly its own element")


def test_an_encrypted_assertion_is_refused(flow):
    xml = flow.respond()
    encrypted = ('<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">'
                 '<xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData>'
                 '</xenc:EncryptedData></saml:EncryptedAssertion>')
    flow.refused(xml.replace("</samlp:Response>", encrypted + "</samlp:Response>"),
                 saml.UNSUPPORTED, "encrypted")


# --- who and whom ------------------------------------------------------------------------

def test_another_issuer_is_refused_even_when_signed_with_the_configured_key(flow):
    xml = flow.respond(edit=set_text(ISSUERS, "https://other-idp.example.test/"))
    flow.refused(xml, saml.WRONG_ISSUER, "Assertion Issuer is not the configured IdP")


def test_a_signed_response_without_an_issuer_is_refused(flow):
    def drop_response_issuer(root):
        root.remove(root.find("saml:Issuer", NAMESPACES))
    flow.refused(flow.respond(sign="both", edit=drop_response_issuer), saml.WRONG_ISSUER,
                 "Response without an Issuer")


def test_a_failed_status_is_refused(flow):
    failed = set_attr("samlp:Status/samlp:StatusCode", "Value",
                      "urn:oasis:names:tc:SAML:2.0:status:Responder")
    flow.refused(flow.respond(sign="response", edit=failed), saml.DENIED, "Responder")
    # as IdPs send them: unsigned, and still not a sign-in
    flow.refused(flow.respond(sign=None, edit=failed), saml.DENIED, "Responder")


def test_another_audience_is_refused(flow):
    xml = flow.respond(edit=set_text(AUDIENCE, "https://other-sp.example.test/"))
    flow.refused(xml, saml.NOT_FOR_US, "Audience")


def test_an_assertion_without_an_audience_restriction_is_refused(flow):
    def drop_audience(root):
        conditions = root.find("saml:Assertion/saml:Conditions", NAMESPACES)
        for restriction in list(conditions):
            conditions.remove(restriction)
    flow.refused(flow.respond(edit=drop_audience), saml.NOT_FOR_US, "Audience")


@pytest.mark.parametrize("destination", ["https://other-sp.example.test/acs", None])
def test_another_or_no_destination_is_refused(flow, destination):
    xml = flow.respond(sign="both", edit=set_attr(".", "Destination", destination))
    flow.refused(xml, saml.NOT_FOR_US, "Destination")


def test_another_recipient_is_refused(flow):
    xml = flow.respond(edit=set_attr(SUBJECT_CONFIRMATION_DATA, "Recipient",
                                     "https://other-sp.example.test/acs"))
    flow.refused(xml, saml.NOT_FOR_US, "Recipient")


# --- time --------------------------------------------------------------------------------

def test_an_expired_response_is_refused(flow):
    flow.refused(flow.respond(at=now() - dt.timedelta(hours=1)), saml.EXPIRED, "NotOnOrAfter has passed")


def test_a_response_from_the_future_is_refused(flow):
    flow.refused(flow.respond(at=now() + dt.timedelta(hours=1)), saml.EXPIRED, "NotBefore is in the future")


def test_the_clock_skew_is_configurable(idp):
    flow = start_flow(idp, allowed_clock_skew=30)
    flow.refused(flow.respond(at=now() - dt.timedelta(minutes=6)), saml.EXPIRED, "NotOnOrAfter has passed")


def test_a_subject_confirmation_without_not_on_or_after_is_refused(flow):
    xml = flow.respond(edit=set_attr(SUBJECT_CONFIRMATION_DATA, "NotOnOrAfter", None))
    flow.refused(xml, saml.EXPIRED, "without NotOnOrAfter")


# --- solicited, once ---------------------------------------------------------------------

def test_a_replayed_response_is_refused(flow):
    xml = flow.respond()
    assert flow.post(xml) == ADA
    with pytest.raises(ConnectorError) as caught:
        flow.post(xml)
    assert caught.value.message == saml.REPLAYED


def test_a_replayed_idp_initiated_response_is_refused(idp):
    flow = start_flow(idp, allow_idp_initiated=True, relay_state_allowlist=[RELAY_STATE])
    xml = flow.respond(in_response_to=None)
    assert flow.post(xml, saved=None) == ADA
    with pytest.raises(ConnectorError) as caught:
        flow.post(xml, saved=None)
    assert caught.value.message == saml.REPLAYED


def test_an_unsolicited_response_is_refused_when_idp_initiated_login_is_off(flow):
    flow.refused(flow.respond(in_response_to=None), saml.UNSOLICITED, "IdP-initiated login is off",
                 saved=None)


def test_an_unsolicited_response_is_refused_with_a_relay_state_off_the_allowlist(idp):
    flow = start_flow(idp, allow_idp_initiated=True, relay_state_allowlist=["https://app.example.test/"])
    flow.refused(flow.respond(in_response_to=None), saml.UNSOLICITED, "not on the allowlist",
                 saved=None, relay_state="https://evil.example.test/")


def test_a_response_to_a_request_the_server_does_not_hold_is_refused(idp):
    # the server found no saved state for the RelayState (expired, used, or never issued)
    flow = start_flow(idp, allow_idp_initiated=True, relay_state_allowlist=[RELAY_STATE])
    flow.refused(flow.respond(), saml.UNSOLICITED, "names a request we do not hold", saved=None)


def test_a_response_to_another_request_is_refused(flow):
    flow.refused(flow.respond(in_response_to="id-someone-elses-request"), saml.UNSOLICITED,
                 "not our request id")


def test_a_response_without_in_response_to_is_refused_for_a_solicited_login(flow):
    flow.refused(flow.respond(in_response_to=None), saml.UNSOLICITED, "not our request id")


def test_a_subject_confirmation_for_another_request_is_refused(flow):
    xml = flow.respond(sign="both", edit=set_attr(SUBJECT_CONFIRMATION_DATA, "InResponseTo",
                                                  "id-someone-elses-request"))
    flow.refused(xml, saml.UNSOLICITED, "SubjectConfirmationData InResponseTo")


def test_errors_of_the_servers_replay_cache_pass_through(flow):
    def broken(assertion_id, expires_at):
        raise RuntimeError("store down")
    with pytest.raises(RuntimeError, match="store down"):
        flow.sp.handle_post(ACS_URL, post(flow.respond()), flow.saved, seen=broken)


# --- XML ---------------------------------------------------------------------------------

def test_an_external_entity_is_never_resolved(flow, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-9f2c")
    xml = flow.respond(name_id="placeholder")
    declaration, body = xml.split("\n", 1)
    xxe = (f'{declaration}\n<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
           + body.replace(">placeholder<", ">&xxe;<"))
    error = flow.refused(xxe, saml.UNREADABLE, "DTD")
    assert "TOP-SECRET" not in f"{error.message} {error.reason} {error!r}"


def test_a_doctype_is_refused_even_on_a_validly_signed_response(flow):
    # unreferenced, the entity changes no signed byte: only the DTD rule stops xmlsec1's
    # libxml2 from loading it
    xml = flow.respond()
    declaration, body = xml.split("\n", 1)
    with_dtd = (f'{declaration}\n<!DOCTYPE samlp:Response '
                f'[<!ENTITY ping SYSTEM "http://127.0.0.1:9/">]>\n{body}')
    flow.refused(with_dtd, saml.UNREADABLE, "DTD")


def test_an_entity_expansion_bomb_is_refused(flow):
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    bomb = f'<?xml version="1.0"?><!DOCTYPE samlp:Response [{entities}]><samlp:Response>&i;</samlp:Response>'
    flow.refused(bomb, saml.UNREADABLE, "DTD")


def test_a_doctype_hidden_in_another_encoding_is_refused(flow):
    xml = flow.respond().replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    utf16 = base64.b64encode(xml.encode("utf-16")).decode()
    with pytest.raises(ConnectorError) as caught:
        flow.sp.handle_post(ACS_URL, utf16, flow.saved, seen=flow.seen)
    assert caught.value.message == saml.UNREADABLE
    assert "UTF-8" in caught.value.reason


@pytest.mark.parametrize("saml_response", ["not base64!", "", "PGZvbz4=", "PHNhbWxwOlJlc3BvbnNl"])
def test_a_response_that_is_not_a_saml_document_is_refused(flow, saml_response):
    # in turn: not base64, empty, <foo>, a truncated <samlp:Response
    with pytest.raises(ConnectorError) as caught:
        flow.sp.handle_post(ACS_URL, saml_response, flow.saved, seen=flow.seen)
    assert caught.value.message == saml.UNREADABLE
    assert flow.seen.entries == {}


# --- the subject -------------------------------------------------------------------------

NAME_ID = "saml:Assertion/saml:Subject/saml:NameID"


def test_a_transient_name_id_is_refused_as_the_subject(flow):
    xml = flow.respond(name_id="_transient-42", name_id_format=NAMEID_FORMAT_TRANSIENT)
    flow.refused(xml, saml.NO_SUBJECT, "NameID Format 'transient' is not the configured 'persistent'")


@pytest.mark.parametrize("configured, sent", [
    ("persistent", NAMEID_FORMAT_EMAILADDRESS),
    ("emailAddress", NAMEID_FORMAT_UNSPECIFIED),
    ("emailAddress", None),  # an absent Format is unspecified (saml-core §8.3.1)
    ("unspecified", NAMEID_FORMAT_PERSISTENT),
])
def test_a_name_id_of_another_format_than_configured_is_refused(idp, configured, sent):
    """saml-core §2.2.2, §8.3: a NameID value is unique only with its Format, and the
    unsigned AuthnRequest's NameIDPolicy is the user's to rewrite."""
    flow = start_flow(idp, name_id_format=configured)
    flow.refused(flow.respond(name_id="ada@example.test", edit=set_attr(NAME_ID, "Format", sent)),
                 saml.NO_SUBJECT, "is not the configured")


@pytest.mark.parametrize("sent", [NAMEID_FORMAT_UNSPECIFIED, None])
def test_an_unspecified_name_id_format_takes_a_name_id_without_a_format(idp, sent):
    flow = start_flow(idp, name_id_format="unspecified")
    assert flow.post(flow.respond(edit=set_attr(NAME_ID, "Format", sent))) == ADA


@pytest.mark.parametrize("qualifier, value", [
    ("NameQualifier", "https://other-idp.example.test/saml/metadata"),
    ("SPNameQualifier", "https://other-sp.example.test/saml/metadata"),
])
def test_a_name_id_qualified_for_another_idp_or_sp_is_refused(flow, qualifier, value):
    flow.refused(flow.respond(edit=set_attr(NAME_ID, qualifier, value)),
                 saml.NO_SUBJECT, f"NameID {qualifier} is not")


def test_a_name_id_qualified_for_this_idp_and_sp_is_accepted(flow):
    def qualify(root):
        set_attr(NAME_ID, "NameQualifier", IDP_ENTITY_ID)(root)
        set_attr(NAME_ID, "SPNameQualifier", SP_ENTITY_ID)(root)
    assert flow.post(flow.respond(edit=qualify)) == ADA


@pytest.mark.parametrize("name_id, reason", [
    ("user\t1", "NameID has control characters"),
    ("u" * 1025, "NameID is longer than 1024 characters"),
])
def test_a_name_id_the_database_could_not_hold_is_refused(flow, name_id, reason):
    flow.refused(flow.respond(name_id=name_id), saml.NO_SUBJECT, reason)


def test_a_subject_attribute_with_control_characters_is_refused(idp):
    flow = start_flow(idp, subject_attribute="employeeNumber")
    xml = flow.respond(attributes={"employeeNumber": ["E-10\x7f42"]})
    flow.refused(xml, saml.NO_SUBJECT, "the subject attribute has control characters")


def test_attribute_values_that_are_not_printable_or_too_long_are_dropped(flow):
    xml = flow.respond(attributes={"email": ["ada@exam\u2028ple.test"], "name": ["Ada\tLovelace"],
                                   "groups": ["engineering", "g" * 257, "o\u200bps", "ops"]})
    assert flow.post(xml) == Identity(subject="user-1", groups=("engineering", "ops"))


def test_a_missing_subject_attribute_is_refused(idp):
    flow = start_flow(idp, subject_attribute="employeeNumber")
    flow.refused(flow.respond(), saml.NO_SUBJECT, "subject attribute is missing")


def test_xmlsec1_missing_is_a_connector_error(flow, monkeypatch, tmp_path):
    # a connector looks xmlsec1 up when it first builds pysaml2's client: one built while
    # it is missing refuses the Response, and the login
    xml = flow.respond()
    monkeypatch.setenv("PATH", str(tmp_path))
    flow.sp = SAMLServiceProvider(flow.sp.config, SP_ENTITY_ID)
    flow.refused(xml, saml.UNAVAILABLE, "xmlsec1 is not installed")
    with pytest.raises(ConnectorError) as caught:
        flow.sp.login(ACS_URL, RELAY_STATE)
    assert caught.value.message == saml.UNAVAILABLE


def test_pysaml2_is_set_up_once_per_connector_and_remembers_no_one(idp, monkeypatch):
    lookups = []
    monkeypatch.setattr(saml, "xmlsec_binary", lambda: lookups.append(1) or "/usr/bin/xmlsec1")
    flow = start_flow(idp, allow_idp_initiated=True, relay_state_allowlist=[RELAY_STATE])
    for _ in range(2):
        started = flow.sp.login(ACS_URL, RELAY_STATE)
        request = idp.read_request(started.redirect_url)
        assert flow.post(flow.respond(in_response_to=request.id), saved=started.saved) == ADA
    assert len(lookups) == 1  # one client for solicited Responses
    assert flow.post(flow.respond(in_response_to=None), saved=None) == ADA
    assert len(lookups) == 2  # and one for unsolicited ones
    for allow_unsolicited in (False, True):
        assert flow.sp._client(ACS_URL, allow_unsolicited).users.subjects() == []

