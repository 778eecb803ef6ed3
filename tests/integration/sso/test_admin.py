"""``/api/v1/admin/sso``: configuring Okta, Azure AD and SAML connections (platform admins)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from cryptography import x509

from app.extensions import db, services
from app.models import SsoConnection
from idp.tokens import rfc3339
from tests.conftest import audit_events, bearer
from tests.federation.conftest import AZURE_TENANT, CLIENT_SECRET
from tests.federation.saml_idp import make_key_pair
from tests.integration.sso.conftest import ACS_URL, ISSUER, SP_ENTITY_ID
from tests.sso import azure_body, okta_body, saml_body


def stored_row(application, provider: str) -> dict:
    with application.app_context():
        row = db.session.execute(sa.select(SsoConnection.__table__)
                                 .where(SsoConnection.provider == provider)).mappings().one()
        return dict(row)


def test_only_platform_admins_manage_connections(sso_app, browser, make_user, upstream):
    viewer = make_user()
    token = browser.post("/api/v1/auth/token", json={"username": viewer["username"],
                                                     "password": viewer["password"]})
    headers = bearer(token.get_json()["token"])
    for method, path, body in (("post", "/api/v1/admin/sso/okta", okta_body(upstream)),
                               ("get", "/api/v1/admin/sso", None),
                               ("get", "/api/v1/admin/sso/okta", None),
                               ("delete", "/api/v1/admin/sso/okta", None)):
        denied = getattr(browser, method)(path, json=body, headers=headers)
        assert denied.status_code == 403, path
        assert denied.get_json() == {"error": {"code": "FORBIDDEN",
                                               "message": "Insufficient permissions"}}
        assert getattr(browser, method)(path, json=body).status_code == 401
    assert stored_count(sso_app) == 0


def stored_count(application) -> int:
    with application.app_context():
        return db.session.execute(sa.select(sa.func.count()).select_from(SsoConnection)).scalar()


def test_an_okta_connection_is_created_replaced_listed_and_deleted(sso_app, browser, admin,
                                                                    upstream, make_tenant):
    acme = make_tenant("acme")
    created = browser.post("/api/v1/admin/sso/okta", headers=admin, json=okta_body(
        upstream, group_mappings={"infra-admins": [{"id": acme, "role": "admin"}]}))
    assert created.status_code == 201
    body = created.get_json()
    assert CLIENT_SECRET not in json.dumps(body) and "client_secret" not in body
    assert body == {**body, "provider": "okta", "domain": "dev-123456.okta.com",
                    "client_id": "0oa-infracast-test", "issuer": upstream.url,
                    "default_tenants": [],
                    "group_mappings": {"infra-admins": [{"id": acme, "role": "admin"}]},
                    "redirect_uri": f"{ISSUER}/api/v1/auth/sso/okta/callback",
                    "login_url": f"{ISSUER}/api/v1/auth/sso/okta/login",
                    "usable": True, "warnings": []}

    # sealed at rest: neither the secret nor any part of it is in the row
    row = stored_row(sso_app, "okta")
    assert CLIENT_SECRET.encode() not in row["sealed_client_secret"]
    assert CLIENT_SECRET not in json.dumps(row["config"])
    assert "client_secret" not in row["config"]

    replaced = browser.post("/api/v1/admin/sso/okta", headers=admin,
                            json=okta_body(upstream, client_secret="a-new-secret-9c1"))
    assert replaced.status_code == 200 and replaced.get_json()["group_mappings"] == {}
    again = stored_row(sso_app, "okta")
    assert again["updated_at"] > row["updated_at"] and again["created_at"] == row["created_at"]
    assert again["sealed_client_secret"] != row["sealed_client_secret"]

    listed = browser.get("/api/v1/admin/sso", headers=admin).get_json()
    assert [c["provider"] for c in listed["items"]] == ["okta"]
    assert "a-new-secret-9c1" not in json.dumps(listed)
    assert browser.get("/api/v1/admin/sso/okta", headers=admin).get_json() == listed["items"][0]

    assert browser.delete("/api/v1/admin/sso/okta", headers=admin).status_code == 204
    assert browser.delete("/api/v1/admin/sso/okta", headers=admin).status_code == 404
    missing = browser.get("/api/v1/admin/sso/okta", headers=admin)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "NOT_FOUND"
    assert browser.get("/api/v1/admin/sso", headers=admin).get_json()["items"] == []

    actions = [(e["action"], e["target"]) for e in _admin_sso_events(sso_app)]
    assert actions == [("admin.sso.create", "okta"), ("admin.sso.update", "okta"),
                       ("admin.sso.delete", "okta")]
    for secret in (CLIENT_SECRET, "a-new-secret-9c1"):  # nor in the audit trail
        assert secret not in json.dumps(_admin_sso_events(sso_app), default=str)


def _admin_sso_events(application) -> list[dict]:
    return [{**event, "action": action} for action in
            ("admin.sso.create", "admin.sso.update", "admin.sso.delete")
            for event in audit_events(application, action)]


def test_an_azure_connection(browser, admin, upstream):
    created = browser.post("/api/v1/admin/sso/azure", headers=admin,
                           json=azure_body(tenant_id=AZURE_TENANT.upper()))
    assert created.status_code == 201
    body = created.get_json()
    assert body["tenant_id"] == AZURE_TENANT and body["issuer"] == f"{upstream.url}/{AZURE_TENANT}/v2.0"
    assert CLIENT_SECRET not in json.dumps(body)


@pytest.mark.parametrize("provider, body, field", [
    ("okta", {"domain": "https://dev-1.okta.com", "client_id": "a", "client_secret": "b"}, "domain"),
    ("okta", {"domain": "10.0.0.1", "client_id": "a", "client_secret": "b"}, "domain"),
    ("okta", {"domain": "dev-1.okta.com", "client_id": "a"}, "client_secret"),
    ("okta", {"domain": "dev-1.okta.com", "client_id": "a", "client_secret": "b",
              "issuer": "http://evil.example.test"}, "issuer"),
    ("okta", {"domain": "dev-1.okta.com", "client_id": "a", "client_secret": "b", "admin": True},
     "admin"),
    ("okta", {"domain": "dev-1.okta.com", "client_id": "a", "client_secret": "b",
              "default_tenants": [{"id": "acme", "role": "owner"}]}, "default_tenants"),
    ("azure", {"tenant_id": "common", "client_id": "a", "client_secret": "b"}, "tenant_id"),
    ("azure", {"tenant_id": AZURE_TENANT, "client_id": "a", "client_secret": " b"}, "client_secret"),
    ("saml", {"entity_id": "https://idp.example.test", "sso_url": "https://idp.example.test/sso",
              "certificate": "not a certificate"}, "certificate"),
    ("saml", {"entity_id": "https://idp.example.test", "sso_url": "https://idp.example.test/sso"},
     "certificate"),
])
def test_invalid_configurations_are_400_naming_the_field(browser, admin, provider, body, field):
    response = browser.post(f"/api/v1/admin/sso/{provider}", headers=admin, json=body)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "INVALID_REQUEST" and error["message"].startswith(field)


def test_a_body_that_is_not_a_json_object_is_400(browser, admin):
    for body in ([], "okta", None):
        response = browser.post("/api/v1/admin/sso/okta", headers=admin, json=body)
        assert response.status_code == 400
    assert browser.post("/api/v1/admin/sso/github", headers=admin, json={}).status_code == 404


def test_tenants_named_in_the_mapping_must_exist(browser, admin, upstream, make_tenant):
    acme = make_tenant("acme")
    for fields in ({"default_tenants": [{"id": "nope", "role": "viewer"}]},
                   {"group_mappings": {"ops": [{"id": acme, "role": "editor"},
                                               {"id": "nope", "role": "viewer"}]}}):
        response = browser.post("/api/v1/admin/sso/okta", headers=admin,
                                json=okta_body(upstream, **fields))
        assert response.status_code == 404
        assert response.get_json()["error"] == {"code": "NOT_FOUND",
                                                "message": "Unknown tenant: nope"}
    # an id no tenant can have (the tenant-id rule) is a bad field, named as such
    odd = browser.post("/api/v1/admin/sso/okta", headers=admin, json=okta_body(
        upstream, default_tenants=[{"id": "not a tenant!", "role": "viewer"}]))
    assert odd.status_code == 400
    error = odd.get_json()["error"]
    assert error["code"] == "INVALID_REQUEST" and "default_tenants" in error["message"]


def test_a_saml_connection_shows_what_to_register_and_when_its_certificate_expires(
        sso_app, browser, admin, saml_idp, tmp_path):
    created = browser.post("/api/v1/admin/sso/saml", headers=admin, json=saml_body(saml_idp))
    assert created.status_code == 201
    body = created.get_json()
    assert body["sp_entity_id"] == SP_ENTITY_ID == body["metadata_url"]
    assert body["acs_url"] == ACS_URL and body["usable"] is True and body["warnings"] == []
    assert body["certificate_expires_at"].endswith("Z") and body["allow_idp_initiated"] is False
    assert stored_row(sso_app, "saml")["sealed_client_secret"] is None

    soon = make_key_pair(tmp_path, "soon", days=10)
    replaced = browser.post("/api/v1/admin/sso/saml", headers=admin,
                            json={**saml_body(saml_idp), "certificate": soon.cert_pem})
    assert replaced.status_code == 200
    [warning] = replaced.get_json()["warnings"]
    assert "expires on" in warning
    not_after = x509.load_pem_x509_certificate(soon.cert_pem.encode()).not_valid_after_utc
    assert replaced.get_json()["certificate_expires_at"] == rfc3339(not_after.timestamp())
    listed = browser.get("/api/v1/admin/sso", headers=admin).get_json()["items"]
    assert listed[0]["warnings"] == [warning]

    for sso_url in ("ftp://idp.example.test/sso", "http://idp.example.test/sso"):
        bad_url = browser.post("/api/v1/admin/sso/saml", headers=admin,
                               json={**saml_body(saml_idp), "sso_url": sso_url})
        assert bad_url.get_json()["error"]["message"].startswith("sso_url must be an https://")

    expired = make_key_pair(tmp_path, "old", days=30,
                            valid_from=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60))
    refused = browser.post("/api/v1/admin/sso/saml", headers=admin,
                           json={**saml_body(saml_idp), "certificate": expired.cert_pem})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["message"].startswith("certificate expired on")


def test_a_saml_connection_whose_certificate_expired_since_is_shown_unusable(
        sso_app, browser, admin, saml_idp, tmp_path):
    assert browser.post("/api/v1/admin/sso/saml", headers=admin,
                        json=saml_body(saml_idp)).status_code == 201
    expired = make_key_pair(tmp_path, "old", days=30,
                            valid_from=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60))
    row = stored_row(sso_app, "saml")
    with sso_app.app_context():  # as if the certificate had expired since it was posted
        db.session.execute(sa.update(SsoConnection).values(
            config={**row["config"], "certificate": expired.cert_pem}))
        db.session.commit()
    shown = browser.get("/api/v1/admin/sso/saml", headers=admin).get_json()
    assert shown["usable"] is False and shown["certificate_expires_at"] is None
    assert shown["warnings"][0].startswith("This connection cannot be used now: certificate "
                                           "expired on")


def test_idp_initiated_saml_needs_an_allowlist_of_https_pages(browser, admin, saml_idp):
    for allowlist, status in (([], 400), (["not-a-url"], 400),
                              (["http://app.example.test/"], 400),
                              (["https://app.example.test/start"], 201)):
        response = browser.post("/api/v1/admin/sso/saml", headers=admin, json=saml_body(
            saml_idp, allow_idp_initiated=True, relay_state_allowlist=allowlist))
        assert response.status_code == status, response.get_json()
        if status == 400:
            assert response.get_json()["error"]["message"].startswith("relay_state_allowlist")


def test_a_secret_that_no_longer_opens_makes_the_connection_unusable(sso_app, browser, admin,
                                                                     upstream, rp):
    browser.post("/api/v1/admin/sso/okta", headers=admin, json=okta_body(upstream))
    row = stored_row(sso_app, "okta")
    with sso_app.app_context():
        # a secret sealed for another connection does not open here (the context differs)
        moved = services().sealer.seal(b"secret", "sso:azure:client_secret")
        db.session.execute(sa.update(SsoConnection).values(
            sealed_client_secret=moved, updated_at=row["updated_at"] + dt.timedelta(seconds=1)))
        db.session.commit()
    [listed] = browser.get("/api/v1/admin/sso", headers=admin).get_json()["items"]
    assert listed["usable"] is False and "does not open" in listed["warnings"][0]
    page = browser.get("/api/v1/auth/sso/okta/login", query_string=rp.params())
    assert page.status_code == 503 and "not available" in page.get_data(True)
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "misconfigured"
