"""A SAML connection's configuration, the SP metadata, and finding xmlsec1."""

from __future__ import annotations

import datetime as dt

import defusedxml.ElementTree as SafeET
import pytest

from federation.grants import InvalidConfig, TenantMapping
from federation.saml import (MD, NAME_ID_FORMATS, SAMLConfig, XmlsecMissing, sp_metadata,
                             xmlsec_binary)
from tests.federation.conftest import ACS_URL, SP_ENTITY_ID, SSO_URL, idp_config
from tests.federation.saml_idp import make_key_pair


def invalid(raw, field: str, words: str, **options) -> None:
    with pytest.raises(InvalidConfig) as caught:
        SAMLConfig.from_dict(raw, **options)
    assert caught.value.field == field
    assert words in caught.value.message


def test_the_seed_fields_make_a_config_with_safe_defaults(idp):
    config = SAMLConfig.from_dict(idp_config(idp))

    assert (config.sso_url, config.allowed_clock_skew, config.allow_idp_initiated) == (SSO_URL, 120, False)
    assert config.name_id_format == NAME_ID_FORMATS["persistent"]
    assert config.warnings == ()
    assert config.tenants == TenantMapping()


def test_the_stored_form_reads_back_to_the_same_config(idp):
    raw = idp_config(idp, email_attribute="mail", groups_attribute="memberOf",
                     name_id_format="emailAddress", allowed_clock_skew=60,
                     allow_idp_initiated=True, relay_state_allowlist=["https://app.example.test/"],
                     default_tenants=[{"id": "acme", "role": "viewer"}],
                     group_mappings={"acme-admins": [{"id": "acme", "role": "admin"}]})
    config = SAMLConfig.from_dict(raw)

    assert SAMLConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["group_mappings"] == raw["group_mappings"]


@pytest.mark.parametrize("field", ["entity_id", "sso_url", "certificate"])
def test_the_seed_fields_are_required(idp, field):
    invalid({**idp_config(idp), field: ""}, field, "is required")


def test_unknown_fields_are_refused(idp):
    invalid(idp_config(idp, metadata_url="https://idp.example.test/md"), "metadata_url", "not a known field")


@pytest.mark.parametrize("url, allow_http, words", [
    ("http://idp.example.test/sso", False, "https://"),
    ("http://idp.example.test/sso", True, "loopback"),
    ("https://user:pw@idp.example.test/sso", False, "no user name"),
    ("https://idp.example.test/sso#top", False, "fragment"),
    ("idp.example.test/sso", False, "absolute URL"),
    ("https://idp.example.test:99999/sso", False, "not a valid URL"),
])
def test_the_sso_url_must_be_https(idp, url, allow_http, words):
    invalid(idp_config(idp, sso_url=url), "sso_url", words, allow_http=allow_http)


def test_http_on_loopback_is_allowed_only_when_asked(idp):
    raw = idp_config(idp, sso_url="http://127.0.0.1:8080/sso?realm=test")
    assert SAMLConfig.from_dict(raw, allow_http=True).sso_url == raw["sso_url"]
    invalid(raw, "sso_url", "https://")


@pytest.mark.parametrize("certificate, words", [
    ("not a certificate", "exactly one PEM certificate"),
    ("-----BEGIN CERTIFICATE-----\nMIIBroken\n-----END CERTIFICATE-----", "not a valid PEM X.509"),
])
def test_the_certificate_must_parse_as_x509(idp, certificate, words):
    invalid(idp_config(idp, certificate=certificate), "certificate", words)


def test_a_certificate_bundle_is_refused(idp):
    invalid(idp_config(idp, certificate=idp.keys.cert_pem + idp.attacker_keys.cert_pem),
            "certificate", "exactly one")


def test_an_expired_certificate_is_refused(idp, tmp_path):
    old = make_key_pair(tmp_path, "old", days=30,
                        valid_from=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=90))
    invalid(idp_config(idp, certificate=old.cert_pem), "certificate", "expired on")


def test_a_certificate_not_valid_yet_is_refused(idp, tmp_path):
    future = make_key_pair(tmp_path, "future",
                           valid_from=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2))
    invalid(idp_config(idp, certificate=future.cert_pem), "certificate", "not valid before")


def test_a_certificate_near_its_end_is_accepted_with_a_warning(idp, tmp_path):
    ending = make_key_pair(tmp_path, "ending", days=10)
    not_after = SAMLConfig.from_dict(idp_config(idp, certificate=ending.cert_pem)).certificate_not_after
    config = SAMLConfig.from_dict(idp_config(idp, certificate=ending.cert_pem),
                                  now=not_after.timestamp() - 10.5 * 86400)
    assert config.warnings == (f"The identity provider's certificate expires on {not_after:%Y-%m-%d} "
                               "(in 10 days); add its next certificate before then.",)
    # and refused once that day has passed
    invalid(idp_config(idp, certificate=ending.cert_pem), "certificate", "expired",
            now=not_after.timestamp() + 1)


def test_a_weak_rsa_key_is_refused(idp, tmp_path):
    weak = make_key_pair(tmp_path, "weak", key_size=1024)
    invalid(idp_config(idp, certificate=weak.cert_pem), "certificate", "at least 2048")


@pytest.mark.parametrize("skew", [-1, 601, "120", True, 1.5])
def test_the_clock_skew_is_bounded(idp, skew):
    invalid(idp_config(idp, allowed_clock_skew=skew), "allowed_clock_skew", "0 to 600")


def test_idp_initiated_login_needs_a_relay_state_allowlist(idp):
    invalid(idp_config(idp, allow_idp_initiated=True), "relay_state_allowlist", "must list")
    invalid(idp_config(idp, allow_idp_initiated="yes"), "allow_idp_initiated", "true or false")
    invalid(idp_config(idp, allow_idp_initiated=True, relay_state_allowlist=["x" * 81]),
            "relay_state_allowlist", "1 to 80 bytes")


def test_name_id_formats(idp):
    invalid(idp_config(idp, name_id_format="kerberos"), "name_id_format", "one of")
    for not_a_name in ([], ["persistent"], {}, 1):  # a list or an object was a TypeError
        invalid(idp_config(idp, name_id_format=not_a_name), "name_id_format", "one of")
    invalid(idp_config(idp, name_id_format="transient"), "name_id_format", "subject_attribute")
    config = SAMLConfig.from_dict(idp_config(idp, name_id_format="transient", subject_attribute="uid"))
    assert config.name_id_format == NAME_ID_FORMATS["transient"]


@pytest.mark.parametrize("field, value", [
    ("email_attribute", ""), ("name_attribute", 7), ("groups_attribute", " groups"),
    ("entity_id", "x" * 1025),
])
def test_names_must_be_printable_strings(idp, field, value):
    invalid(idp_config(idp, **{field: value}), field, "must")


@pytest.mark.parametrize("field, value, words", [
    ("default_tenants", {"id": "acme"}, "must be a list"),
    ("default_tenants", [{"id": "acme", "role": "owner"}], "role must be one of"),
    ("default_tenants", [{"id": "acme"}], "entries must be"),
    ("default_tenants", [{"id": "t" * 65, "role": "viewer"}], "invalid tenant id"),
    ("group_mappings", ["admins"], "must be an object"),
    ("group_mappings", {"admins": {"id": "acme", "role": "admin"}}, "must be a list"),
])
def test_tenant_mapping_shapes(idp, field, value, words):
    with pytest.raises(InvalidConfig) as caught:
        SAMLConfig.from_dict(idp_config(idp, **{field: value}))
    assert field in caught.value.field
    assert words in caught.value.message


def test_sp_metadata_describes_the_acs_and_what_we_want():
    xml = sp_metadata(SP_ENTITY_ID, ACS_URL)
    root = SafeET.fromstring(xml, forbid_dtd=True)
    descriptor = root.find(f"{{{MD}}}SPSSODescriptor")
    acs = descriptor.find(f"{{{MD}}}AssertionConsumerService")

    assert root.get("entityID") == SP_ENTITY_ID
    assert (acs.get("Location"), acs.get("Binding")) == (
        ACS_URL, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    assert descriptor.get("AuthnRequestsSigned") == "false"
    assert descriptor.get("WantAssertionsSigned") == "true"
    assert [f.text for f in descriptor.findall(f"{{{MD}}}NameIDFormat")] == [
        NAME_ID_FORMATS["persistent"], NAME_ID_FORMATS["emailAddress"], NAME_ID_FORMATS["unspecified"]]


def test_xmlsec1_is_found_or_its_absence_is_explained(monkeypatch, tmp_path):
    assert xmlsec_binary().endswith("xmlsec1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(XmlsecMissing, match="xmlsec1.*make install"):
        xmlsec_binary()
