from idp.permissions import ADMIN_ALL, allows, tenant_permissions


def test_role_map_of_the_contract():
    claim = tenant_permissions((), {"a": "viewer", "b": "editor", "c": "admin"})
    assert claim["a"] == ["nodes:read", "findings:read", "jobs:read", "reports:read"]
    assert set(claim["b"]) == set(claim["a"]) | {"nodes:write", "findings:write", "jobs:write"}
    assert claim["c"] == [ADMIN_ALL]


def test_allows():
    claim = tenant_permissions((), {"a": "viewer", "c": "admin"})
    assert allows(claim, "a", "nodes:read")
    assert not allows(claim, "a", "nodes:write")
    assert allows(claim, "c", "nodes:write")  # admin:* satisfies every permission
    assert not allows(claim, "b", "nodes:read")


def test_platform_admin_holds_every_tenant():
    claim = tenant_permissions(("admin",), {})
    assert claim == {"*": [ADMIN_ALL]}
    assert allows(claim, "any-tenant", "jobs:write")
