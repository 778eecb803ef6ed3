"""Connection configuration: validation with clear messages, issuers, group mappings."""

from __future__ import annotations

import pytest

from federation.config import (
    AZURE_SCOPES, CONFIG_BUILDERS, OKTA_SCOPES, InvalidConfig, TenantGrant, azure_config,
    okta_config,
)

CREDENTIALS = {"client_id": "0oa1b2c3d4", "client_secret": "s3cret-value"}
GUID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PRODUCTION = {}  # the defaults: no http upstreams, the public Azure cloud
DEVELOPMENT = {"ALLOW_HTTP_UPSTREAMS": True}


def okta(settings=PRODUCTION, **fields):
    return okta_config({"domain": "dev-123456.okta.com", **CREDENTIALS, **fields}, settings)


def azure(settings=PRODUCTION, **fields):
    return azure_config({"tenant_id": GUID, **CREDENTIALS, **fields}, settings)


def refused(build, field, *args, **fields) -> str:
    with pytest.raises(InvalidConfig) as caught:
        build(*args, **fields)
    assert caught.value.field == field
    return caught.value.message


def test_the_config_builders_know_the_providers():
    bodies = {"okta": {"domain": "dev-123456.okta.com", **CREDENTIALS},
              "azure": {"tenant_id": GUID, **CREDENTIALS}}
    assert set(CONFIG_BUILDERS) == set(bodies)
    for provider, build in CONFIG_BUILDERS.items():
        assert build(bodies[provider], PRODUCTION).provider == provider


def test_okta_issuer_is_the_domain_by_default():
    config = okta()
    assert config.provider == "okta"
    assert config.issuer == "https://dev-123456.okta.com"
    assert config.scopes == OKTA_SCOPES and "groups" in config.scopes
    assert (config.client_id, config.client_secret) == ("0oa1b2c3d4", "s3cret-value")


def test_okta_custom_authorization_server():
    assert okta(issuer="https://dev-123456.okta.com/oauth2/default").issuer == \
        "https://dev-123456.okta.com/oauth2/default"
    assert okta(domain="Login.Customer.Example").issuer == "https://login.customer.example"


@pytest.mark.parametrize("domain", [
    "https://dev-123456.okta.com", "dev-123456.okta.com/", "dev-123456.okta.com/oauth2/default",
    "dev-123456.okta.com:8443", "user@dev-123456.okta.com", "dev-123456.okta.com?x=1",
    "evil.example#.okta.com", "dev 123456.okta.com", "-dev.okta.com", "dev-.okta.com",
    "dev..okta.com", "dev.okta.com.", "okta", "127.0.0.1", "[::1]", "a" * 64 + ".okta.com",
    "ökta.com", 42, ["dev.okta.com"],
])
def test_okta_domain_must_be_a_host_name(domain):
    assert "host name" in refused(okta, "domain", domain=domain)


@pytest.mark.parametrize("issuer, problem", [
    ("https://evil.example/oauth2/default", "must be on the domain dev-123456.okta.com"),
    ("https://dev-123456.okta.com:8443", "must be on the domain"),
    ("https://DEV-123456.okta.com", "must be on the domain"),
    ("https://dev-123456.okta.com/oauth2/default/", "custom authorization server"),
    ("https://dev-123456.okta.com/somewhere/else", "custom authorization server"),
    ("https://dev-123456.okta.com@evil.example", "no user name or password"),
    ("https://dev-123456.okta.com/oauth2/default?x=1", "query or fragment"),
    ("http://dev-123456.okta.com", "must be an https:// URL"),
    ("http://127.0.0.1:9000", "must be an https:// URL"),
    ("dev-123456.okta.com", "with a host"),
    ("https://", "with a host"),
    ("https://dev-123456.okta.com:99999", "not a valid URL"),
])
def test_okta_issuer_refused(issuer, problem):
    assert problem in refused(okta, "issuer", issuer=issuer)


def test_http_issuers_only_on_loopback_and_only_when_allowed():
    for issuer in ("http://127.0.0.1:9000", "http://localhost:9000/oauth2/default",
                   "http://[::1]:9000", "http://127.0.0.2:9000"):
        assert okta(DEVELOPMENT, issuer=issuer).issuer == issuer
        assert "https://" in refused(okta, "issuer", PRODUCTION, issuer=issuer)
    for issuer in ("http://dev-123456.okta.com", "http://10.0.0.1:9000",
                   "http://localhost.evil.example"):
        assert "http:// only on a loopback host" in refused(okta, "issuer", DEVELOPMENT,
                                                           issuer=issuer)


def test_azure_issuer_is_tenant_specific():
    config = azure()
    assert config.provider == "azure"
    assert config.issuer == f"https://login.microsoftonline.com/{GUID}/v2.0"
    assert config.scopes == AZURE_SCOPES and "groups" not in config.scopes
    assert azure(tenant_id=GUID.upper()).issuer.endswith(f"/{GUID}/v2.0")


def test_azure_authority_host_comes_from_the_settings():
    assert azure({"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/"}).issuer == \
        f"https://login.microsoftonline.us/{GUID}/v2.0"
    local = {"ALLOW_HTTP_UPSTREAMS": True, "AZURE_AUTHORITY_HOST": "http://127.0.0.1:9000"}
    assert azure(local).issuer == f"http://127.0.0.1:9000/{GUID}/v2.0"
    for host in ("http://127.0.0.1:9000", "https://login.example/path", "login.example"):
        refused(azure, "AZURE_AUTHORITY_HOST", {"AZURE_AUTHORITY_HOST": host})


@pytest.mark.parametrize("tenant_id", [
    "common", "organizations", "contoso.onmicrosoft.com", GUID[:-1], GUID + "0",
    "{" + GUID + "}", GUID.replace("-", ""), "../" + GUID, 7,
])
def test_azure_tenant_id_must_be_a_guid(tenant_id):
    assert "GUID" in refused(azure, "tenant_id", tenant_id=tenant_id)


@pytest.mark.parametrize("build", [okta, azure])
@pytest.mark.parametrize("name", ["client_id", "client_secret"])
@pytest.mark.parametrize("value, problem", [
    (None, "is required"), ("", "is required"), (12345, "must be a string"),
    ("x" * 513, "1 to 512 characters"), (" padded", "surrounding spaces"),
    ("line\nbreak", "control characters"),
])
def test_credentials_must_be_sane_strings(build, name, value, problem):
    assert problem in refused(build, name, **{name: value})


def test_required_and_unknown_fields():
    assert refused(okta_config, "domain", dict(CREDENTIALS), PRODUCTION) == "domain is required"
    assert "is not a known field" in refused(okta, "tenantId", tenantId=GUID)
    assert "is not a known field" in refused(azure, "domain", domain="dev-123456.okta.com")
    assert "JSON object" in refused(okta_config, "configuration", ["domain"], PRODUCTION)


@pytest.mark.parametrize("build, fields, subjects_within", [
    (okta_config, {"domain": "Dev-123456.okta.com"}, "dev-123456.okta.com"),
    (okta_config, {"domain": "dev-123456.okta.com",
                   "issuer": "https://dev-123456.okta.com/oauth2/default"}, "dev-123456.okta.com"),
    (azure_config, {"tenant_id": GUID.upper()}, GUID),
])
def test_the_stored_form_reads_back_to_the_same_config(build, fields, subjects_within):
    config = build({**fields, **CREDENTIALS,
                    "group_mappings": {"ops": [{"id": "acme", "role": "admin"}]}}, PRODUCTION)
    stored = config.to_dict()
    assert config.upstream == subjects_within and "client_secret" not in stored
    assert build({**stored, "client_secret": config.client_secret}, PRODUCTION) == config


def test_client_secret_stays_out_of_repr():
    assert "s3cret-value" not in repr(okta()) and "s3cret-value" not in repr(azure())


def test_group_mappings_and_default_tenants():
    config = okta(
        default_tenants=[{"id": "acme", "role": "viewer"}],
        group_mappings={
            "infra-admins": [{"id": "acme", "role": "admin"}, {"id": "ops", "role": "editor"}],
            "auditors": [{"id": "ops", "role": "viewer"}],
        },
    )
    assert config.tenants.default_tenants == (TenantGrant("acme", "viewer"),)
    assert config.tenants.group_mappings["auditors"] == (TenantGrant("ops", "viewer"),)
    assert config.tenants.tenant_roles([]) == {"acme": "viewer"}
    assert config.tenants.tenant_roles(["Everyone"]) == {"acme": "viewer"}
    assert config.tenants.tenant_roles(["auditors"]) == {"acme": "viewer", "ops": "viewer"}
    # the strongest role wins, whatever the order of the groups
    assert config.tenants.tenant_roles(["auditors", "infra-admins"]) == {"acme": "admin", "ops": "editor"}
    assert config.tenants.tenant_roles(["infra-admins", "auditors"]) == {"acme": "admin", "ops": "editor"}
    assert okta().tenants.tenant_roles(["infra-admins"]) == {}


@pytest.mark.parametrize("fields, field, problem", [
    ({"default_tenants": {"id": "acme", "role": "viewer"}}, "default_tenants", "must be a list"),
    ({"default_tenants": [{"id": "acme"}]}, "default_tenants", 'entries must be {"id"'),
    ({"default_tenants": [{"tenant": "acme", "role": "viewer"}]}, "default_tenants", "entries"),
    ({"default_tenants": [{"id": "acme", "role": "owner"}]}, "default_tenants",
     "role must be one of viewer, editor, admin"),
    ({"default_tenants": [{"id": "", "role": "viewer"}]}, "default_tenants", "invalid tenant id"),
    ({"default_tenants": [{"id": 7, "role": "viewer"}]}, "default_tenants", "invalid tenant"),
    ({"default_tenants": [{"id": "t" * 64, "role": "viewer"}]}, "default_tenants", "invalid"),
    # what no tenant can be called (app.tenants creates them by the same rule)
    ({"default_tenants": [{"id": "ac\x00me", "role": "viewer"}]}, "default_tenants", "invalid"),
    ({"default_tenants": [{"id": "Acme", "role": "viewer"}]}, "default_tenants", "invalid"),
    ({"default_tenants": [{"id": "*", "role": "admin"}]}, "default_tenants", "invalid"),
    ({"default_tenants": [{"id": "acme", "role": "viewer"}] * 101}, "default_tenants",
     "at most 100"),
    ({"group_mappings": [["admins", "acme"]]}, "group_mappings", "must be an object"),
    ({"group_mappings": {"": [{"id": "acme", "role": "admin"}]}}, "group_mappings",
     "1 to 256 printable characters"),
    # a name no upstream group can carry into an identity (connector.group_names)
    ({"group_mappings": {"a\nb": [{"id": "acme", "role": "admin"}]}}, "group_mappings",
     "printable"),
    ({"group_mappings": {"admins": {"id": "acme", "role": "admin"}}},
     "group_mappings['admins']", "must be a list"),
    ({"group_mappings": {"admins": [{"id": "acme", "role": "root"}]}},
     "group_mappings['admins']", "role must be one of"),
])
def test_mapping_shapes_refused(fields, field, problem):
    assert problem in refused(okta, field, **fields)
    assert problem in refused(azure, field, **fields)

