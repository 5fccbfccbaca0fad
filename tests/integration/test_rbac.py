"""RBAC: for each role alone, one real endpoint per (resource,
action) that has one is allowed (anything but 403) or refused with 403
exactly as the matrix says; a role without the scope is 403 too; the
problem names what was missing. The expected matrix is written here from
docs/security.md ("The matrix"), not read from the gateway."""

import uuid

import pytest

ROLES = ("admin", "operator", "user", "viewer")
ALL_SCOPES = ("agent-runs:read agent-runs:write jobs:read jobs:write tools:read "
              "tools:write tenants:read tenants:write models:read models:write "
              "mcp-servers:read mcp-servers:write")

# role -> resource -> the actions it may take ("c", "r", "u", "d").
MATRIX = {
    "admin":    {"agent-runs": "crud", "jobs": "crud", "tools": "crud",
                 "tenants": "crud", "models": "crud", "mcp-servers": "crud"},
    "operator": {"agent-runs": "cru", "jobs": "crud", "tools": "r",
                 "tenants": "r", "models": "cru", "mcp-servers": "crud"},
    "user":     {"agent-runs": "cr", "jobs": "crd", "tools": "r",
                 "tenants": "", "models": "r", "mcp-servers": ""},
    "viewer":   {"agent-runs": "r", "jobs": "r", "tools": "r",
                 "tenants": "r", "models": "r", "mcp-servers": ""},
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
        ("jobs", "r", "GET", "/v1/queues", None),
        ("jobs", "r", "GET", "/v1/workers", None),
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
        ("mcp-servers", "c", "POST", "/v1/mcp-servers",
         {"name": "rbac-" + uuid.uuid4().hex[:8], "transport": "stdio", "server": "everything"}),
        ("mcp-servers", "r", "GET", "/v1/mcp-servers", None),
        ("mcp-servers", "u", "PATCH", "/v1/mcp-servers/rbac-missing", {"resource": "tools"}),
        ("mcp-servers", "u", "POST", "/v1/mcp-servers/rbac-missing/refresh", None),
        ("mcp-servers", "d", "DELETE", "/v1/mcp-servers/rbac-missing", None),
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
    assert len(seen) == 17, seen


@pytest.mark.parametrize("res,act,method,path_fmt,body", [
    ("agent-runs", "create", "POST", "/v1/agent-runs", {"prompt": "hello"}),
    ("agent-runs", "read", "GET", "/v1/sessions", None),
    ("jobs", "create", "POST", "/v1/jobs", {"type": "demo", "payload": {}}),
    ("jobs", "read", "GET", "/v1/jobs", None),
    ("jobs", "read", "GET", "/v1/queues", None),
    ("jobs", "read", "GET", "/v1/workers", None),
    ("jobs", "delete", "DELETE", "/v1/jobs/{uuid}", None),
    ("tools", "read", "GET", "/v1/tools", None),
    ("tenants", "read", "GET", "/v1/tenants", None),
    ("tenants", "update", "PATCH", "/v1/tenants/{tenant}", {}),
    ("models", "read", "GET", "/v1/models", None),
    ("models", "create", "POST", "/v1/models", {"provider": "builtin", "model": "m"}),
    ("mcp-servers", "read", "GET", "/v1/mcp-servers", None),
    ("mcp-servers", "delete", "DELETE", "/v1/mcp-servers/rbac-missing", None),
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


# -- jobs that belong to an agent run ----------------------------------------
# Every agent run is a job of type agent.run, which the job routes reach
# too; there it needs what the run needs, for the same action.

RUN_BODY = {"prompt": "hello", "planning_mode": "none", "response_mode": "fallback-only"}


def _finished_plain_job_and_run(tenant):
    """(plain job id, run id, the run's job id), both finished."""
    plain = tenant.submit("demo", {"events": 0, "duration_ms": 0})["id"]
    run = tenant.request("POST", "/v1/agent-runs", body=RUN_BODY).expect_json(202)
    tenant.wait_job(plain)
    tenant.wait_run(run["id"])
    return plain, run["id"], run["job_id"]


def _job_route(tenant, act, job_id, token):
    """The answer of the job route for action act ("r": GET the job, "e":
    its events, "d": DELETE) as a Resp."""
    if act == "e":
        s = tenant.sse(f"/v1/jobs/{job_id}/events", token=token)
        if s.status == 200:
            s.close()
            return None
        return s.response()
    method = "GET" if act == "r" else "DELETE"
    return tenant.request(method, f"/v1/jobs/{job_id}", token=token)


@pytest.mark.parametrize("role", ROLES)
def test_job_routes_by_role_and_job_kind(stack, tenant, role):
    plain, _, run_job = _finished_plain_job_and_run(tenant)
    token = tenant.make_token(roles=[role], scope=ALL_SCOPES)
    for kind, job_id in (("plain job", plain), ("agent run's job", run_job)):
        for act in ("r", "e", "d"):
            action = "d" if act == "d" else "r"
            need = ["jobs"] + (["agent-runs"] if kind != "plain job" else [])
            missing = [res for res in need if action not in MATRIX[role][res]]
            r = _job_route(tenant, act, job_id, token)
            what = f"{role}, {kind}, {act}"
            if not missing:
                # Allowed: the stream opens, the job is shown, or the cancel
                # of a finished job is 409.
                assert r is None or r.status in (200, 409), f"{what}: " + r.describe()
            else:
                assert r is not None, f"{what}: the event stream opened"
                p = r.expect_problem(403)
                assert p["detail"] == (f"your roles do not allow {ACTION[action]} "
                                       f"on {missing[0]}"), (what, p)


@pytest.mark.parametrize("scope,reads_run,cancels_run", [
    ("jobs:read jobs:write", False, False),
    ("jobs:read jobs:write agent-runs:read", True, False),
    ("jobs:read jobs:write agent-runs:write", False, True),
    ("jobs:read jobs:write agent-runs:read agent-runs:write", True, True),
])
def test_job_routes_by_scope_and_job_kind(stack, tenant, scope, reads_run, cancels_run):
    plain, run_id, run_job = _finished_plain_job_and_run(tenant)
    token = tenant.make_token(roles=["admin"], scope=scope)
    for act in ("r", "e", "d"):
        r = _job_route(tenant, act, plain, token)
        assert r is None or r.status in (200, 409), r.describe()
        allowed = cancels_run if act == "d" else reads_run
        r = _job_route(tenant, act, run_job, token)
        if allowed:
            assert r is None or r.status in (200, 409), r.describe()
        else:
            assert r is not None, f"{scope}: the run's event stream opened"
            p = r.expect_problem(403)
            action = "delete" if act == "d" else "read"
            assert p["detail"] == f"the token's scopes do not allow {action} on agent-runs", p
            # The refusal tells nothing of the run (no prompt, no output).
            assert b"hello" not in r.body and run_id.encode() not in r.body, r.describe()

    # The listing leaves the run's job out unless the token may read runs;
    # asking for agent.run jobs by type is refused like the run itself.
    r = tenant.request("GET", "/v1/jobs?limit=200", token=token)
    listed = [j["id"] for j in r.expect_json(200)["items"]]
    assert plain in listed, listed
    assert (run_job in listed) == reads_run, (scope, listed)
    r = tenant.request("GET", "/v1/jobs?type=agent.run", token=token)
    if reads_run:
        assert [j["id"] for j in r.expect_json(200)["items"]] == [run_job]
    else:
        p = r.expect_problem(403)
        assert p["detail"] == "the token's scopes do not allow read on agent-runs", p
    r = tenant.request("GET", "/v1/jobs?type=demo", token=token)
    assert [j["id"] for j in r.expect_json(200)["items"]] == [plain]


def test_a_user_cannot_cancel_a_queued_run_through_its_job(stack, tenant):
    # A running cap of 1 held by a long job keeps the run queued.
    stack.sql("INSERT INTO tenants (id, name, settings)"
              " VALUES (:'p1', :'p1', '{\"max_running\": 1}')", tenant.tenant_id)
    holder = tenant.submit("long-running", {"duration_ms": 60000, "progress_interval_ms": 500})
    try:
        tenant.wait_job(holder["id"], statuses=("running",))
        run = tenant.request("POST", "/v1/agent-runs", body=RUN_BODY).expect_json(202)
        user = tenant.make_token(roles=["user"], scope=ALL_SCOPES)
        tenant.request("DELETE", f"/v1/agent-runs/{run['id']}", token=user).expect_problem(403)
        p = tenant.request("DELETE", f"/v1/jobs/{run['job_id']}",
                           token=user).expect_problem(403)
        assert p["detail"] == "your roles do not allow delete on agent-runs", p
        got = tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)
        assert got["status"] == "queued", got
        assert stack.sql("SELECT status, cancel_requested_at IS NULL FROM jobs"
                         " WHERE id = :'p1'", run["job_id"]) == [["queued", "t"]]
        # The admin may, through either route.
        tenant.request("DELETE", f"/v1/jobs/{run['job_id']}").expect_json(200)
    finally:
        tenant.request("DELETE", f"/v1/jobs/{holder['id']}")


def test_internal_job_types_are_answered_as_unknown(stack, tenant):
    unknown = tenant.request("POST", "/v1/jobs", body={"type": "no.such.type", "payload": {}})
    want = unknown.expect_problem(422)
    for name in ("agent.run", "mcp.discover"):
        r = tenant.request("POST", "/v1/jobs", body={
            "type": name, "payload": {"run_id": str(uuid.uuid4()), "prompt": "hi"}})
        p = r.expect_problem(422)
        assert {k: p[k] for k in ("type", "detail", "errors")} == \
            {k: want[k] for k in ("type", "detail", "errors")}, (name, p, want)
    assert stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'",
                     tenant.tenant_id) == [["0"]]
