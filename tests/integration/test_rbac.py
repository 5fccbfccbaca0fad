"""RBAC: for each role alone, one real endpoint per (resource,
action) that has one is allowed (anything but 403) or refused with 403
exactly as the matrix says; a role without the scope is 403 too; the
problem names what was missing. The expected matrix is written here from
docs/security.md ("The matrix"), not read from the gateway."""

import uuid

import pytest

ROLES = ("admin", "operator", "user", "viewer")
ALL_SCOPES = ("agent-runs:read agent-runs:write jobs:read jobs:write tools:read "
              "tools:write tenants:read tenants:write models:read models:write")

# role -> resource -> the actions it may take ("c", "r", "u", "d").
MATRIX = {
    "admin":    {"agent-runs": "crud", "jobs": "crud", "tools": "crud",
                 "tenants": "crud", "models": "crud"},
    "operator": {"agent-runs": "cru", "jobs": "crud", "tools": "r",
                 "tenants": "r", "models": "cru"},
    "user":     {"agent-runs": "cr", "jobs": "crd", "tools": "r",
                 "tenants": "", "models": "r"},
    "viewer":   {"agent-runs": "r", "jobs": "r", "tools": "r",
                 "tenants": "r", "models": "r"},
}
ACTION = {"c": "create", "r": "read", "u": "update", "d": "delete"}


def _calls(tenant):
    """(resource, action letter, method, path, body) for every cell that
    has an endpoint. Deletes and updates name ids that do not exist: an
    allowed call is then 404, a refused one 403."""
    missing = str(uuid.uuid4())
    return [
        ("agent-runs", "c", "POST", "/v1/agent-runs",
         {"prompt": "hello", "planning_mode": "none", "response_mode": "fallback-only"}),
        ("agent-runs", "c", "POST", "/v1/sessions", {"title": "rbac"}),
        ("agent-runs", "r", "GET", f"/v1/agent-runs/{missing}", None),
        ("agent-runs", "r", "GET", "/v1/sessions", None),
        ("agent-runs", "d", "DELETE", f"/v1/agent-runs/{missing}", None),
        ("agent-runs", "d", "DELETE", f"/v1/sessions/{missing}", None),
        ("jobs", "c", "POST", "/v1/jobs", {"type": "demo", "payload": {}}),
        ("jobs", "r", "GET", "/v1/jobs", None),
        ("jobs", "d", "DELETE", f"/v1/jobs/{missing}", None),
        ("tools", "r", "GET", "/v1/tools", None),
        ("tenants", "r", "GET", "/v1/tenants", None),
        ("tenants", "r", "GET", f"/v1/tenants/{tenant.tenant_id}", None),
        ("tenants", "u", "PATCH", f"/v1/tenants/{tenant.tenant_id}", {}),
        ("models", "c", "POST", "/v1/models",
         {"provider": "builtin", "model": "rbac-" + uuid.uuid4().hex[:8]}),
        ("models", "r", "GET", "/v1/models", None),
        ("models", "u", "PATCH", "/v1/models/999999999999", {"is_default": False}),
        ("models", "d", "DELETE", "/v1/models/999999999999", None),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_its_cells(stack, tenant, role):
    token = tenant.make_token(roles=[role], scope=ALL_SCOPES)
    seen = set()
    for res, act, method, path, body in _calls(tenant):
        seen.add((res, act))
        r = tenant.request(method, path, body=body, token=token)
        if act in MATRIX[role][res]:
            assert r.status != 403, f"{role} should {ACTION[act]} {res}: " + r.describe()
            assert r.status < 500, r.describe()
        else:
            p = r.expect_problem(403)
            assert p["detail"] == f"your roles do not allow {ACTION[act]} on {res}", p
    # Every (resource, action) with an endpoint was called.
    assert len(seen) == 13, seen


@pytest.mark.parametrize("res,act,method,path_fmt,body", [
    ("agent-runs", "create", "POST", "/v1/agent-runs", {"prompt": "hello"}),
    ("agent-runs", "read", "GET", "/v1/sessions", None),
    ("jobs", "create", "POST", "/v1/jobs", {"type": "demo", "payload": {}}),
    ("jobs", "read", "GET", "/v1/jobs", None),
    ("jobs", "delete", "DELETE", "/v1/jobs/{uuid}", None),
    ("tools", "read", "GET", "/v1/tools", None),
    ("tenants", "read", "GET", "/v1/tenants", None),
    ("tenants", "update", "PATCH", "/v1/tenants/{tenant}", {}),
    ("models", "read", "GET", "/v1/models", None),
    ("models", "create", "POST", "/v1/models", {"provider": "builtin", "model": "m"}),
])
def test_role_without_the_scope_is_403(stack, tenant, res, act, method, path_fmt, body):
    path = path_fmt.format(uuid=uuid.uuid4(), tenant=tenant.tenant_id)
    need = f"{res}:{'read' if act == 'read' else 'write'}"
    # Every scope but the one needed; admin has every role right.
    others = " ".join(s for s in ALL_SCOPES.split() if s != need)
    token = tenant.make_token(roles=["admin"], scope=others)
    p = tenant.request(method, path, body=body, token=token).expect_problem(403)
    assert p["detail"] == f"the token's scopes do not allow {act} on {res}", p
    # The scope of another action does not stand in for it.
    token = tenant.make_token(roles=["admin"], scope=f"{res}:{'write' if act == 'read' else 'read'}")
    tenant.request(method, path, body=body, token=token).expect_problem(403)
    # With it, the same call passes the check.
    token = tenant.make_token(roles=["admin"], scope=need)
    r = tenant.request(method, path, body=body, token=token)
    assert r.status != 403, r.describe()


def test_refused_calls_change_nothing(stack, tenant):
    viewer = tenant.make_token(roles=["viewer"], scope=ALL_SCOPES)
    tenant.request("POST", "/v1/jobs", body={"type": "demo", "payload": {}},
                   token=viewer).expect_problem(403)
    tenant.request("POST", "/v1/models", body={"provider": "builtin", "model": "v"},
                   token=viewer).expect_problem(403)
    tenant.request("PATCH", f"/v1/tenants/{tenant.tenant_id}", body={"name": "x"},
                   token=viewer).expect_problem(403)
    assert stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'",
                     tenant.tenant_id) == [["0"]]
    assert stack.sql("SELECT count(*) FROM model_defaults WHERE tenant_id = :'p1'",
                     tenant.tenant_id) == [["0"]]
    assert stack.sql("SELECT count(*) FROM tenants WHERE id = :'p1'",
                     tenant.tenant_id) == [["0"]]


def test_roles_add_up(stack, tenant):
    # user cannot read tenants, viewer can; together they can. Neither can
    # update models; operator can.
    both = tenant.make_token(roles=["user", "viewer"], scope=ALL_SCOPES)
    tenant.request("GET", "/v1/tenants", token=both).expect_json(200)
    tenant.request("PATCH", "/v1/models/1", body={}, token=both).expect_problem(403)
    op = tenant.make_token(roles=["viewer", "operator"], scope=ALL_SCOPES)
    tenant.request("PATCH", "/v1/models/999999999", body={}, token=op).expect_problem(404)


def test_public_routes_need_no_role(stack, tenant):
    tenant.request("GET", "/v1/health/live", token=None).expect(200)
    tenant.request("GET", "/metrics", token=None).expect(200)


def test_event_streams_are_reads(stack, tenant):
    job = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    viewer = tenant.make_token(roles=["viewer"], scope="jobs:read")
    s = tenant.sse(f"/v1/jobs/{job['id']}/events", token=viewer)
    assert s.status == 200, s.response().describe()
    s.close()
    no_scope = tenant.make_token(roles=["viewer"], scope="jobs:write")
    s = tenant.sse(f"/v1/jobs/{job['id']}/events", token=no_scope)
    s.response().expect_problem(403)
