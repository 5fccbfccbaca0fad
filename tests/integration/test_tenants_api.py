"""GET /v1/tenants, GET and PATCH /v1/tenants/{id}: a caller sees only its
own tenant (any other id is 404, as if it did not exist), a tenant without
a row shows its defaults, and PATCH is a JSON merge patch whose settings
are checked by the same parser the limits are enforced with."""

import uuid

import pytest


def _fields(t):
    assert set(t) == {"id", "name", "settings", "created_at", "links"}, t
    return t


def test_list_is_the_callers_own_tenant_with_defaults(stack, tenant, other_tenant):
    body = tenant.request("GET", "/v1/tenants").expect_json(200)
    assert body["next_cursor"] is None, body
    assert [_fields(t) for t in body["items"]] == [{
        "id": tenant.tenant_id, "name": tenant.tenant_id, "settings": {},
        "created_at": None, "links": {"self": f"/v1/tenants/{tenant.tenant_id}"}}], body
    got = tenant.request("GET", f"/v1/tenants/{tenant.tenant_id}").expect_json(200)
    assert got == body["items"][0], got
    # Reading writes nothing.
    assert stack.sql("SELECT count(*) FROM tenants WHERE id = :'p1'",
                     tenant.tenant_id) == [["0"]]


def test_another_tenant_is_404_even_when_it_exists(stack, tenant, other_tenant):
    other_tenant.request("PATCH", f"/v1/tenants/{other_tenant.tenant_id}",
                         body={"name": "Other Co"}).expect_json(200)
    for method, body in (("GET", None), ("PATCH", {"name": "hijack"})):
        for tid in (other_tenant.tenant_id, "no-such-" + uuid.uuid4().hex[:6]):
            p = tenant.request(method, f"/v1/tenants/{tid}", body=body).expect_problem(404)
            assert p["detail"] == "no tenant with this id", p
    assert stack.sql("SELECT name FROM tenants WHERE id = :'p1'",
                     other_tenant.tenant_id) == [["Other Co"]]
    items = tenant.request("GET", "/v1/tenants").expect_json(200)["items"]
    assert [t["id"] for t in items] == [tenant.tenant_id], items


def test_patch_creates_then_merges(stack, tenant):
    path = f"/v1/tenants/{tenant.tenant_id}"
    t = tenant.request("PATCH", path, body={"name": "Acme"}).expect_json(200)
    assert _fields(t)["name"] == "Acme" and t["settings"] == {} and t["created_at"], t
    assert tenant.request("GET", path).expect_json(200) == t
    # A patch without name keeps it; an empty patch changes nothing.
    again = tenant.request("PATCH", path, body={}).expect_json(200)
    assert again == t, again
    t2 = tenant.request("PATCH", path, body={"name": "Acme 2"}).expect_json(200)
    assert t2["name"] == "Acme 2" and t2["created_at"] == t["created_at"], t2
    # merge-patch media type is accepted
    r = tenant.request("PATCH", path, raw=b'{"name":"Acme 3"}',
                       headers={"Content-Type": "application/merge-patch+json"})
    assert r.expect_json(200)["name"] == "Acme 3"


def test_patch_settings_are_validated_and_merged(stack, tenant):
    path = f"/v1/tenants/{tenant.tenant_id}"
    t = tenant.request("PATCH", path, body={"settings": {"max_running": 5}}).expect_json(200)
    assert t["settings"] == {"max_running": 5}, t
    limits = {"principal": {"jobs.create": {"capacity": 10, "period_ms": 1000}}}
    t = tenant.request("PATCH", path,
                       body={"settings": {"rate_limits": limits}}).expect_json(200)
    assert t["settings"] == {"max_running": 5, "rate_limits": limits}, t
    # null removes a member; settings: null clears them all.
    t = tenant.request("PATCH", path, body={"settings": {"max_running": None}}).expect_json(200)
    assert t["settings"] == {"rate_limits": limits}, t
    t = tenant.request("PATCH", path, body={"settings": None}).expect_json(200)
    assert t["settings"] == {}, t


@pytest.mark.parametrize("body,pointer", [
    ({"settings": {"no_such_member": 1}}, "/settings"),
    ({"settings": {"max_running": -1}}, "/settings"),
    ({"settings": {"max_running": "many"}}, "/settings"),
    ({"settings": [1]}, "/settings"),
    ({"settings": "x"}, "/settings"),
    ({"name": ""}, "/name"),
    ({"name": None}, "/name"),
    ({"name": 7}, "/name"),
    ({"name": "a\nb"}, "/name"),
    ({"name": "x" * 257}, "/name"),
    ({"id": "other"}, "/id"),
])
def test_bad_patch_is_422_and_changes_nothing(stack, tenant, body, pointer):
    path = f"/v1/tenants/{tenant.tenant_id}"
    before = tenant.request("PATCH", path, body={"name": "Before"}).expect_json(200)
    p = tenant.request("PATCH", path, body=body).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == [pointer], p
    assert tenant.request("GET", path).expect_json(200) == before


def test_malformed_body_is_400(stack, tenant):
    path = f"/v1/tenants/{tenant.tenant_id}"
    tenant.request("PATCH", path, raw=b"{").expect_problem(400)
    tenant.request("PATCH", path, raw=b"{}",
                   headers={"Content-Type": "text/plain"}).expect_problem(415)


def test_only_admin_may_patch(stack, tenant):
    path = f"/v1/tenants/{tenant.tenant_id}"
    for role in ("operator", "user", "viewer"):
        tok = tenant.make_token(roles=[role], scope="tenants:read tenants:write")
        p = tenant.request("PATCH", path, body={"name": role}, token=tok).expect_problem(403)
        assert p["detail"] == "your roles do not allow update on tenants", p
    assert stack.sql("SELECT count(*) FROM tenants WHERE id = :'p1'",
                     tenant.tenant_id) == [["0"]]


@pytest.mark.parametrize("method,path,allow", [
    ("POST", "/v1/tenants", "GET"),
    ("DELETE", "/v1/tenants/x", "GET, PATCH"),
    ("PUT", "/v1/tenants/x", "GET, PATCH"),
])
def test_wrong_method_is_405(tenant, method, path, allow):
    r = tenant.request(method, path, raw=b"{}")
    r.expect_problem(405)
    assert r.header("Allow") == allow, r.describe()


def test_tenants_need_a_token(tenant):
    tenant.request("GET", "/v1/tenants", token=None).expect_problem(401)


# The stack runs with AGENTGATE_TENANT_MAX_RUNNING at its default, 64: a
# ceiling the tenant's own max_running can only lower.
OPERATOR_CAP = 64


@pytest.mark.parametrize("max_running", [0, OPERATOR_CAP + 1, 1000000])
def test_max_running_over_the_operators_cap_is_422(stack, tenant, max_running):
    path = f"/v1/tenants/{tenant.tenant_id}"
    before = tenant.request("PATCH", path, body={"settings": {"max_running": 3}}).expect_json(200)
    p = tenant.request("PATCH", path,
                       body={"settings": {"max_running": max_running}}).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/settings/max_running"], p
    assert f"at most {OPERATOR_CAP}" in p["detail"], p
    assert "AGENTGATE_TENANT_MAX_RUNNING" in p["detail"], p
    assert tenant.request("GET", path).expect_json(200) == before


def test_max_running_up_to_the_operators_cap_is_stored(stack, tenant):
    path = f"/v1/tenants/{tenant.tenant_id}"
    for n in (1, OPERATOR_CAP):
        t = tenant.request("PATCH", path, body={"settings": {"max_running": n}}).expect_json(200)
        assert t["settings"] == {"max_running": n}, t


def test_settings_stored_over_the_cap_do_not_block_other_changes(stack, tenant):
    # A row from before the ceiling was checked: its max_running 0 is held
    # to the operator's cap by the workers, and a patch of something else
    # still goes through; changing it to another value over the cap does not.
    stack.sql("INSERT INTO tenants (id, name, settings)"
              " VALUES (:'p1', 'old', '{\"max_running\": 0}')", tenant.tenant_id)
    path = f"/v1/tenants/{tenant.tenant_id}"
    t = tenant.request("PATCH", path, body={"name": "renamed"}).expect_json(200)
    assert t["name"] == "renamed" and t["settings"] == {"max_running": 0}, t
    tenant.request("PATCH", path,
                   body={"settings": {"max_running": OPERATOR_CAP + 1}}).expect_problem(422)
    t = tenant.request("PATCH", path, body={"settings": {"max_running": 2}}).expect_json(200)
    assert t["settings"] == {"max_running": 2}, t
