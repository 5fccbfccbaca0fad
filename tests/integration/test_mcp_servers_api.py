"""The tenant's MCP servers over the API (gateway/api/api_mcp_servers.c):
registering HTTP servers within the operator's allow-list and stdio
servers from the operator's servers file (the session's settings, see
agentgate_test/stack.py), the discovery job each registration, change and
refresh queues, write-only headers, RBAC, tenant isolation, PATCH, DELETE
and bad bodies. Whether a discovery succeeds is the worker's business
(its own tests); here the job only has to exist."""

import concurrent.futures
import json
import os
import time
import urllib.parse
import uuid

import pytest

from agentgate_test import stack as stack_lib
from agentgate_test.waiting import wait_for

MCP_URL = stack_lib.MCP_HTTP_URL
ROLES = ("admin", "operator", "user", "viewer")
SCOPES = ("jobs:read jobs:write agent-runs:read agent-runs:write tools:read tools:write "
          "tenants:read tenants:write models:read models:write "
          "mcp-servers:read mcp-servers:write graph:read graph:write")
SERVER_FIELDS = {"name", "transport", "url", "server", "header_names", "resource",
                 "require_approval", "status",
                 "protocol_version", "server_info", "tools", "tools_count",
                 "last_refresh_at", "last_error", "refresh_job_id", "created_by",
                 "created_at", "updated_at", "links"}


@pytest.fixture
def mcp(tenant):
    """The test's tenant, as an admin whose token holds the mcp-servers
    scopes."""
    tenant.token = tenant.make_token(scope=SCOPES)
    return tenant


def _name(prefix="s"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _post(t, body, **kw):
    return t.request("POST", "/v1/mcp-servers", body=body, **kw)


def _register_http(t, name=None, **extra):
    body = {"name": name or _name(), "transport": "http", "url": MCP_URL}
    body.update(extra)
    r = _post(t, body)
    server = r.expect_json(202)
    assert r.header("Location") == f"/v1/mcp-servers/{body['name']}", r.describe()
    return server


def _register_stdio(t, server="everything", name=None):
    r = _post(t, {"name": name or _name(), "transport": "stdio", "server": server})
    return r.expect_json(202)


def _path(name, tail=""):
    return "/v1/mcp-servers/" + urllib.parse.quote(name, safe="") + tail


def _job(stack, job_id):
    """(type, tenant, payload) of a job row, or None."""
    rows = stack.sql("SELECT type, tenant_id, payload::text FROM jobs WHERE id = :'p1'", job_id)
    return (rows[0][0], rows[0][1], json.loads(rows[0][2])) if rows else None


def _count_rows(stack, tenant_id):
    return (int(stack.sql("SELECT count(*) FROM mcp_servers WHERE tenant_id = :'p1'",
                          tenant_id)[0][0]),
            int(stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'",
                          tenant_id)[0][0]))


def _hold_running_cap(stack, t):
    """Caps the tenant at one running job and fills it with a long job, so
    its discovery jobs stay queued; returns the holder's id."""
    stack.sql("INSERT INTO tenants (id, name, settings) VALUES (:'p1', :'p1',"
              " '{\"max_running\": 1}') ON CONFLICT (id) DO UPDATE SET settings ="
              " '{\"max_running\": 1}'", t.tenant_id)
    holder = t.submit("long-running", {"duration_ms": 60000, "progress_interval_ms": 500})
    t.wait_job(holder["id"], statuses=("running",))
    return holder["id"]


# --------------------------------------------------------------------------
# Registering
# --------------------------------------------------------------------------

def test_http_server_within_the_allow_list_is_registered_with_a_discovery(stack, mcp):
    name = _name("http")
    s = _register_http(mcp, name)
    assert set(s) == SERVER_FIELDS, s
    assert s["name"] == name and s["transport"] == "http" and s["url"] == MCP_URL, s
    assert s["server"] is None and s["header_names"] == [] and s["resource"] == "tools", s
    assert s["require_approval"] is False, s
    assert s["status"] == "pending" and s["tools"] == [] and s["tools_count"] == 0, s
    assert s["created_by"] == mcp.sub, s
    assert s["links"] == {"self": f"/v1/mcp-servers/{name}",
                          "refresh": f"/v1/mcp-servers/{name}/refresh"}, s
    job_id = s["refresh_job_id"]
    assert str(uuid.UUID(job_id)) == job_id, s
    assert _job(stack, job_id) == ("mcp.discover", mcp.tenant_id, {"server": name})
    job = mcp.request("GET", f"/v1/jobs/{job_id}").expect_json(200)
    assert job["type"] == "mcp.discover", job
    # The first event is the job's queued event, like any job's.
    assert stack.sql("SELECT type FROM job_events WHERE job_id = :'p1' AND seq = 1",
                     job_id) == [["job.queued"]]
    got = mcp.request("GET", _path(name)).expect_json(200)
    assert got["name"] == name and got["refresh_job_id"] == job_id, got


@pytest.mark.parametrize("url", [
    f"http://127.0.0.1:{stack_lib.MCP_HTTP_PORT + 1}/mcp",         # another port
    f"https://127.0.0.1:{stack_lib.MCP_HTTP_PORT}/mcp",            # another scheme
    f"http://localhost:{stack_lib.MCP_HTTP_PORT}/mcp",             # another host
    f"http://127.0.0.1:{stack_lib.MCP_HTTP_PORT}/mcpx",            # not at a segment boundary
    f"http://127.0.0.1:{stack_lib.MCP_HTTP_PORT}/",
    "http://169.254.169.254/latest/meta-data/",
    # Redirect-looking and parser-confusing forms of the allowed URL.
    f"http://127.0.0.1:{stack_lib.MCP_HTTP_PORT}@evil.example/mcp",
    f"http://evil.example@127.0.0.1:{stack_lib.MCP_HTTP_PORT}/mcp",
    f"http://evil.example#@127.0.0.1:{stack_lib.MCP_HTTP_PORT}/mcp",
    f"http://127.0.0.1:{stack_lib.MCP_HTTP_PORT}\\@evil.example/mcp",
    f"{MCP_URL}/../admin",
    f"{MCP_URL}/%2e%2e/admin",
    f"{MCP_URL}%2f..%2fadmin",
    f"{MCP_URL}#fragment",
    f"{MCP_URL}/a b",
    "javascript:alert(1)",
    "file:///etc/passwd",
])
def test_url_outside_the_allow_list_is_refused(stack, mcp, url):
    p = _post(mcp, {"name": _name(), "transport": "http", "url": url}).expect_problem(422)
    assert p["type"] == "urn:agentgate:problem:url-not-allowed", p
    assert p["errors"][0]["pointer"] == "/url", p
    assert _count_rows(stack, mcp.tenant_id) == (0, 0)


def test_stdio_server_of_the_operator_file_is_registered(stack, mcp):
    s = _register_stdio(mcp, "everything")
    assert s["transport"] == "stdio" and s["server"] == "everything" and s["url"] is None, s
    assert _job(stack, s["refresh_job_id"])[0] == "mcp.discover"


@pytest.mark.parametrize("server", ["nope", "restricted"])
def test_stdio_server_unknown_or_not_for_this_tenant_is_refused(stack, mcp, server):
    p = _post(mcp, {"name": _name(), "transport": "stdio",
                    "server": server}).expect_problem(422)
    assert p["type"] == "urn:agentgate:problem:unknown-mcp-server", p
    assert p["errors"][0]["pointer"] == "/server", p
    # An unknown server and one for other tenants are answered alike.
    assert "restricted" not in json.dumps(p), p
    assert _count_rows(stack, mcp.tenant_id) == (0, 0)


def test_stdio_server_listed_for_the_tenant_is_registered(stack):
    t = stack.tenant(tenant_id=stack_lib.MCP_RESTRICTED_TENANT)
    t.token = t.make_token(scope=SCOPES)
    name = _name("restr")
    try:
        s = _register_stdio(t, "restricted", name)
        assert s["server"] == "restricted", s
    finally:
        t.request("DELETE", _path(name))


def test_duplicate_name_is_409_and_queues_nothing(stack, mcp):
    name = _name()
    _register_http(mcp, name)
    p = _post(mcp, {"name": name, "transport": "stdio",
                    "server": "everything"}).expect_problem(409)
    assert p["type"] == "urn:agentgate:problem:conflict", p
    assert _count_rows(stack, mcp.tenant_id) == (1, 1)
    got = mcp.request("GET", _path(name)).expect_json(200)
    assert got["transport"] == "http", got


def test_tenant_cap_holds_under_concurrent_registrations(stack, mcp):
    holder = _hold_running_cap(stack, mcp)
    cap = 32      # AGENTGATE_MCP_MAX_SERVERS's default, which the session keeps
    try:
        for i in range(cap - 2):
            _register_http(mcp, f"cap-{i}")
        # Six at once for the last two places: exactly two get in.
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(
                lambda i: _post(mcp, {"name": f"race-{i}", "transport": "http",
                                      "url": MCP_URL}), range(6)))
        statuses = sorted(r.status for r in answers)
        assert statuses == [202, 202, 409, 409, 409, 409], [r.describe() for r in answers]
        for r in answers:
            if r.status == 409:
                p = r.expect_problem(409)
                assert p["type"] == "urn:agentgate:problem:too-many-mcp-servers", p
        p = _post(mcp, {"name": "one-more", "transport": "http",
                        "url": MCP_URL}).expect_problem(409)
        assert p["type"] == "urn:agentgate:problem:too-many-mcp-servers", p
        listed = mcp.request("GET", "/v1/mcp-servers").expect_json(200)
        assert len(listed["items"]) == cap and listed["truncated"] is False, listed
        # One discovery per registered server, plus the holder.
        assert _count_rows(stack, mcp.tenant_id) == (cap, cap + 1)
        # A delete makes room again.
        mcp.request("DELETE", _path("cap-0")).expect(204)
        _register_http(mcp, "one-more")
    finally:
        for s in mcp.request("GET", "/v1/mcp-servers").expect_json(200)["items"]:
            mcp.request("DELETE", _path(s["name"]))
        mcp.request("DELETE", f"/v1/jobs/{holder}")


# --------------------------------------------------------------------------
# Headers are write-only
# --------------------------------------------------------------------------

def test_headers_are_never_returned_logged_or_audited(stack, mcp):
    secret = "it-secret-" + uuid.uuid4().hex
    name = _name("hdr")
    rid = "it-mcp-" + uuid.uuid4().hex
    r = _post(mcp, {"name": name, "transport": "http", "url": MCP_URL,
                    "headers": {"Authorization": f"Bearer {secret}", "X-Api-Key": secret}},
              headers={"X-Request-Id": rid})
    answers = [r]
    created = r.expect_json(202)
    assert created["header_names"] == ["Authorization", "X-Api-Key"], created
    answers.append(mcp.request("GET", _path(name)))
    answers.append(mcp.request("GET", "/v1/mcp-servers"))
    answers.append(mcp.request("POST", _path(name, "/refresh")))
    answers.append(mcp.request("PATCH", _path(name), body={"resource": "graph"}))
    answers.append(mcp.request("PATCH", _path(name),
                               body={"headers": {"Authorization": f"Bearer {secret}2"}}))
    # A refused PATCH names the header, never its value.
    answers.append(mcp.request("PATCH", _path(name),
                               body={"headers": {"Host": secret}}))
    for a in answers:
        assert a.status < 500, a.describe()
        assert secret.encode() not in a.body, a.describe()
    got = mcp.request("GET", _path(name)).expect_json(200)
    assert got["header_names"] == ["Authorization"], got
    # Stored as given, for the worker.
    stored = stack.sql("SELECT headers->>'Authorization' FROM mcp_servers"
                       " WHERE tenant_id = :'p1' AND name = :'p2'", mcp.tenant_id, name)
    assert stored == [[f"Bearer {secret}2"]], stored
    # Not in the jobs, their events or the audit rows.
    for table, col in (("jobs", "payload::text"), ("job_events", "body::text"),
                       ("audit_logs", "coalesce(detail::text, '') || resource")):
        n = stack.sql(f"SELECT count(*) FROM {table} WHERE tenant_id = :'p1'"
                      f" AND {col} LIKE '%' || :'p2' || '%'", mcp.tenant_id, secret)
        assert n == [["0"]], (table, n)
    rows = wait_for(lambda: stack.sql("SELECT action, resource FROM audit_logs"
                                      " WHERE request_id = :'p1'", rid), what="audit row")
    assert rows == [["mcp-servers.create", f"mcp-servers/{name}"]], rows
    with open(os.path.join(stack.dir, "logs", "gateway.log"), errors="replace") as f:
        assert secret not in f.read(), "a header value is in the gateway log"


@pytest.mark.parametrize("headers,pointer", [
    ([], "/headers"),
    ({"Bad Header": "x"}, "/headers"),
    ({"X-A": 1}, "/headers/X-A"),
    ({"X-A": "line\r\nInjected: yes"}, "/headers/X-A"),
    ({"X-A": "x" * 4097}, "/headers/X-A"),
    ({"X-A": "caf\u00e9"}, "/headers/X-A"),
    ({"Host": "internal.example"}, "/headers/Host"),
    ({"content-length": "0"}, "/headers/content-length"),
    ({"Mcp-Session-Id": "x"}, "/headers/Mcp-Session-Id"),
    ({"X-A": "1", "x-a": "2"}, "/headers/x-a"),
    ({f"X-{i}": "v" for i in range(17)}, "/headers"),
    ({"X~Y": 5}, "/headers/X~0Y"),
])
def test_bad_headers_are_422(stack, mcp, headers, pointer):
    p = _post(mcp, {"name": _name(), "transport": "http", "url": MCP_URL,
                    "headers": headers}).expect_problem(422)
    assert p["type"] == "urn:agentgate:problem:validation-failed", p
    assert p["errors"][0]["pointer"] == pointer, p
    assert _count_rows(stack, mcp.tenant_id) == (0, 0)


# --------------------------------------------------------------------------
# Bad bodies and names
# --------------------------------------------------------------------------

@pytest.mark.parametrize("body,pointer", [
    ({"transport": "http", "url": MCP_URL}, "/name"),
    ({"name": "Bad", "transport": "http", "url": MCP_URL}, "/name"),
    ({"name": "-x", "transport": "http", "url": MCP_URL}, "/name"),
    ({"name": "a" * 49, "transport": "http", "url": MCP_URL}, "/name"),
    ({"name": "a.b", "transport": "http", "url": MCP_URL}, "/name"),
    ({"name": 7, "transport": "http", "url": MCP_URL}, "/name"),
    ({"name": "x"}, "/transport"),
    ({"name": "x", "transport": "sse", "url": MCP_URL}, "/transport"),
    ({"name": "x", "transport": "http"}, "/url"),
    ({"name": "x", "transport": "http", "url": 5}, "/url"),
    ({"name": "x", "transport": "http", "url": ""}, "/url"),
    ({"name": "x", "transport": "http", "url": MCP_URL, "server": "everything"}, "/server"),
    ({"name": "x", "transport": "stdio"}, "/server"),
    ({"name": "x", "transport": "stdio", "server": "everything", "url": MCP_URL}, "/url"),
    ({"name": "x", "transport": "stdio", "server": "everything",
      "headers": {"X-A": "b"}}, "/headers"),
    ({"name": "x", "transport": "stdio", "server": "../bin/sh"}, "/server"),
    ({"name": "x", "transport": "stdio", "server": "/bin/sh"}, "/server"),
    ({"name": "x", "transport": "stdio", "command": "/bin/sh"}, "/command"),
    ({"name": "x", "transport": "http", "url": MCP_URL, "resource": "Tools"}, "/resource"),
    ({"name": "x", "transport": "http", "url": MCP_URL, "resource": "nope"}, "/resource"),
    ({"name": "x", "transport": "http", "url": MCP_URL, "resource": 1}, "/resource"),
    ({"name": "x", "transport": "http", "url": MCP_URL, "status": "ready"}, "/status"),
    ([], ""),
])
def test_bad_bodies_are_422_and_change_nothing(stack, mcp, body, pointer):
    p = _post(mcp, body).expect_problem(422)
    assert p["errors"][0]["pointer"] == pointer, p
    assert _count_rows(stack, mcp.tenant_id) == (0, 0)


def test_malformed_json_is_400(stack, mcp):
    mcp.request("POST", "/v1/mcp-servers", raw=b"{").expect_problem(400)
    mcp.request("POST", "/v1/mcp-servers", raw=b'{"name":"a","name":"b"}').expect_problem(400)


@pytest.mark.parametrize("name", ["Bad", "a" * 49, "a.b", "-a", "_a"])
def test_names_in_the_path_that_cannot_be_a_server_are_404(stack, mcp, name):
    for method, tail, body in (("GET", "", None), ("PATCH", "", {}), ("DELETE", "", None),
                               ("POST", "/refresh", None)):
        p = mcp.request(method, _path(name, tail), body=body).expect_problem(404)
        assert p["type"] == "urn:agentgate:problem:not-found", p


def test_resource_other_than_tools(stack, mcp):
    s = _register_http(mcp, resource="graph")
    assert s["resource"] == "graph", s


# --------------------------------------------------------------------------
# Tenants and roles
# --------------------------------------------------------------------------

def test_another_tenants_server_is_404(stack, mcp, other_tenant):
    other_tenant.token = other_tenant.make_token(scope=SCOPES)
    name = _name()
    s = _register_http(mcp, name)
    for method, tail, body in (("GET", "", None), ("PATCH", "", {"resource": "graph"}),
                               ("DELETE", "", None), ("POST", "/refresh", None)):
        p = other_tenant.request(method, _path(name, tail), body=body).expect_problem(404)
        assert p["type"] == "urn:agentgate:problem:not-found", p
    assert other_tenant.request("GET", "/v1/mcp-servers").expect_json(200)["items"] == []
    # The name is the other tenant's to use too.
    mine = _register_http(other_tenant, name)
    assert mine["refresh_job_id"] != s["refresh_job_id"]
    got = mcp.request("GET", _path(name)).expect_json(200)
    assert got["refresh_job_id"] == s["refresh_job_id"] and got["resource"] == "tools", got


@pytest.mark.parametrize("role", ROLES)
def test_each_role_on_every_route(stack, mcp, role):
    allowed = role in ("admin", "operator")
    existing = _register_http(mcp)["name"]
    token = mcp.make_token(roles=[role], scope=SCOPES)
    new = _name(role[:4])
    calls = [
        ("create", "POST", "/v1/mcp-servers",
         {"name": new, "transport": "http", "url": MCP_URL}, 202),
        ("read", "GET", "/v1/mcp-servers", None, 200),
        ("read", "GET", _path(existing), None, 200),
        ("update", "PATCH", _path(existing), {"resource": "graph"}, 200),
        ("update", "POST", _path(existing, "/refresh"), None, 202),
        ("delete", "DELETE", _path(existing), None, 204),
    ]
    for action, method, path, body, status in calls:
        r = mcp.request(method, path, body=body, token=token)
        if allowed:
            r.expect(status)
        else:
            p = r.expect_problem(403)
            assert p["detail"] == f"your roles do not allow {action} on mcp-servers", p
    if not allowed:
        # Nothing changed: one server, its one discovery.
        assert _count_rows(stack, mcp.tenant_id) == (1, 1)
        got = mcp.request("GET", _path(existing)).expect_json(200)
        assert got["resource"] == "tools", got


@pytest.mark.parametrize("method,tail,body,action", [
    ("POST", "", {"transport": "http", "url": MCP_URL}, "create"),
    ("GET", "", None, "read"),
    ("PATCH", "/NAME", {"resource": "graph"}, "update"),
    ("POST", "/NAME/refresh", None, "update"),
    ("DELETE", "/NAME", None, "delete"),
])
def test_scopes_narrow_the_routes(stack, mcp, method, tail, body, action):
    name = _register_http(mcp)["name"]
    path = "/v1/mcp-servers" + tail.replace("NAME", name)
    if body is not None and method == "POST":
        body = dict(body, name=_name())
    need = "mcp-servers:read" if action == "read" else "mcp-servers:write"
    others = " ".join(s for s in SCOPES.split() if s != need)
    p = mcp.request(method, path, body=body,
                    token=mcp.make_token(scope=others)).expect_problem(403)
    assert p["detail"] == f"the token's scopes do not allow {action} on mcp-servers", p
    r = mcp.request(method, path, body=body, token=mcp.make_token(scope=need))
    assert r.status < 300, r.describe()


def test_discovery_jobs_need_mcp_servers_read(stack, mcp):
    job_id = _register_http(mcp)["refresh_job_id"]
    no_mcp = mcp.make_token(scope="jobs:read jobs:write")
    p = mcp.request("GET", f"/v1/jobs/{job_id}", token=no_mcp).expect_problem(403)
    assert p["detail"] == "the token's scopes do not allow read on mcp-servers", p
    user = mcp.make_token(roles=["user"], scope=SCOPES)
    mcp.request("GET", f"/v1/jobs/{job_id}", token=user).expect_problem(403)


# --------------------------------------------------------------------------
# PATCH, DELETE, refresh
# --------------------------------------------------------------------------

def test_patch_of_resource_alone_queues_nothing(stack, mcp):
    s = _register_http(mcp)
    r = mcp.request("PATCH", _path(s["name"]), body={"resource": "graph"})
    got = r.expect_json(200)
    assert got["resource"] == "graph" and got["refresh_job_id"] == s["refresh_job_id"], got
    got = mcp.request("PATCH", _path(s["name"]), body={"resource": None}).expect_json(200)
    assert got["resource"] == "tools", got
    got = mcp.request("PATCH", _path(s["name"]), body={"url": MCP_URL}).expect_json(200)
    assert got["refresh_job_id"] == s["refresh_job_id"], got
    assert _count_rows(stack, mcp.tenant_id) == (1, 1)


def test_patch_of_how_it_is_reached_queues_a_discovery(stack, mcp):
    s = _register_http(mcp, headers={"X-Old": "1"})
    r = mcp.request("PATCH", _path(s["name"]),
                    body={"url": MCP_URL + "/v2", "headers": {"X-New": "2", "X-Other": "3"}})
    got = r.expect_json(202)
    assert got["url"] == MCP_URL + "/v2", got
    assert got["header_names"] == ["X-New", "X-Other"], got      # replaced, not merged
    assert got["status"] == "pending", got
    assert got["refresh_job_id"] != s["refresh_job_id"], got
    assert _job(stack, got["refresh_job_id"]) == ("mcp.discover", mcp.tenant_id,
                                                  {"server": s["name"]})
    got = mcp.request("PATCH", _path(s["name"]), body={"headers": None}).expect_json(202)
    assert got["header_names"] == [], got
    assert _count_rows(stack, mcp.tenant_id) == (1, 3)


def test_patch_of_a_stdio_server(stack, mcp):
    s = _register_stdio(mcp, "everything")
    got = mcp.request("PATCH", _path(s["name"]), body={"server": "memory"}).expect_json(202)
    assert got["server"] == "memory" and got["transport"] == "stdio", got
    for body, pointer in (({"url": MCP_URL}, "/url"), ({"headers": {"X-A": "b"}}, "/headers"),
                          ({"server": None}, "/server"), ({"server": "restricted"}, "/server"),
                          ({"server": "nope"}, "/server")):
        p = mcp.request("PATCH", _path(s["name"]), body=body).expect_problem(422)
        assert p["errors"][0]["pointer"] == pointer, (body, p)
    got = mcp.request("GET", _path(s["name"])).expect_json(200)
    assert got["server"] == "memory", got


@pytest.mark.parametrize("body,pointer,slug", [
    ({"url": "http://evil.example/mcp"}, "/url", "url-not-allowed"),
    ({"url": f"{MCP_URL}/../x"}, "/url", "url-not-allowed"),
    ({"url": None}, "/url", "validation-failed"),
    ({"server": "everything"}, "/server", "validation-failed"),
    ({"name": "other"}, "/name", "validation-failed"),
    ({"transport": "stdio"}, "/transport", "validation-failed"),
    ({"headers": {"Host": "x"}}, "/headers/Host", "validation-failed"),
    ({"resource": "Nope"}, "/resource", "validation-failed"),
    ({"status": "ready"}, "/status", "validation-failed"),
])
def test_bad_patches_are_422_and_change_nothing(stack, mcp, body, pointer, slug):
    s = _register_http(mcp, headers={"X-A": "1"})
    p = mcp.request("PATCH", _path(s["name"]), body=body).expect_problem(422)
    assert p["type"] == f"urn:agentgate:problem:{slug}", p
    assert p["errors"][0]["pointer"] == pointer, p
    got = mcp.request("GET", _path(s["name"])).expect_json(200)
    for k in ("url", "server", "header_names", "resource", "refresh_job_id", "updated_at"):
        assert got[k] == s[k], (k, got, s)
    assert _count_rows(stack, mcp.tenant_id) == (1, 1)


def test_patch_and_delete_of_a_missing_server_are_404(stack, mcp):
    mcp.request("PATCH", _path("missing"), body={"resource": "graph"}).expect_problem(404)
    mcp.request("DELETE", _path("missing")).expect_problem(404)
    mcp.request("POST", _path("missing", "/refresh")).expect_problem(404)
    mcp.request("GET", _path("missing")).expect_problem(404)


def test_delete_takes_the_servers_tools_with_it(stack, mcp):
    s = _register_http(mcp)
    name = s["name"]
    tool = f"{name}.echo"
    stack.sql("INSERT INTO tool_manifests (tenant_id, name, description, mcp_server, mcp_tool,"
              " annotations) VALUES (:'p1', :'p2', 'Echoes.', :'p3', 'echo',"
              " '{\"readOnlyHint\": true}')", mcp.tenant_id, tool, name)
    tools = mcp.request("GET", "/v1/tools").expect_json(200)["items"]
    mine = [t for t in tools if t["name"] == tool]
    assert len(mine) == 1, tools
    assert mine[0]["mcp_server"] == name, mine
    assert mine[0]["annotations"] == {"readOnlyHint": True}, mine
    got = mcp.request("GET", "/v1/tools/" + tool).expect_json(200)
    assert got["mcp_server"] == name, got
    # Built-in tools have no server.
    assert all(t["mcp_server"] is None for t in tools if t["name"] != tool), tools

    mcp.request("DELETE", _path(name)).expect(204)
    mcp.request("GET", _path(name)).expect_problem(404)
    mcp.request("DELETE", _path(name)).expect_problem(404)
    mcp.request("GET", "/v1/tools/" + tool).expect_problem(404)
    assert stack.sql("SELECT count(*) FROM tool_manifests WHERE tenant_id = :'p1'"
                     " AND mcp_server = :'p2'", mcp.tenant_id, name) == [["0"]]
    assert mcp.request("GET", "/v1/mcp-servers").expect_json(200)["items"] == []


def test_refresh_queues_a_discovery_job(stack, mcp):
    s = _register_stdio(mcp, "everything")
    # Once the first discovery has left the queue, a refresh is a new job.
    wait_for(lambda: _job_status(stack, s["refresh_job_id"]) != "queued",
             what="the first discovery to start")
    r = mcp.request("POST", _path(s["name"], "/refresh"))
    got = r.expect_json(202)
    job_id = got["refresh_job_id"]
    assert job_id != s["refresh_job_id"], got
    assert r.header("Location") == f"/v1/jobs/{job_id}", r.describe()
    job = mcp.request("GET", f"/v1/jobs/{job_id}").expect_json(200)
    assert job["type"] == "mcp.discover", job
    assert _job(stack, job_id)[2] == {"server": s["name"]}


def _job_status(stack, job_id):
    return stack.sql("SELECT status FROM jobs WHERE id = :'p1'", job_id)[0][0]


def test_refresh_while_a_discovery_is_queued_answers_that_one(stack, mcp):
    holder = _hold_running_cap(stack, mcp)
    try:
        s = _register_http(mcp)
        assert _job_status(stack, s["refresh_job_id"]) == "queued"
        for _ in range(3):
            r = mcp.request("POST", _path(s["name"], "/refresh"))
            assert r.expect_json(202)["refresh_job_id"] == s["refresh_job_id"], r.describe()
            assert r.header("Location") == f"/v1/jobs/{s['refresh_job_id']}"
        assert _count_rows(stack, mcp.tenant_id) == (1, 2)   # the server's job and the holder
    finally:
        mcp.request("DELETE", f"/v1/jobs/{holder}")


def test_mutations_are_audited(stack, mcp):
    name = _name("aud")
    calls = [("POST", "/v1/mcp-servers", {"name": name, "transport": "http", "url": MCP_URL},
              "mcp-servers.create", 202),
             ("PATCH", _path(name), {"resource": "graph"}, "mcp-servers.update", 200),
             ("POST", _path(name, "/refresh"), None, "mcp-servers.update", 202),
             ("DELETE", _path(name), None, "mcp-servers.delete", 204)]
    for method, path, body, action, status in calls:
        rid = "it-mcp-" + uuid.uuid4().hex
        mcp.request(method, path, body=body, headers={"X-Request-Id": rid}).expect(status)
        rows = wait_for(lambda: stack.sql(
            "SELECT action, resource, outcome, detail->>'status' FROM audit_logs"
            " WHERE request_id = :'p1'", rid), what=f"the audit row of {method} {path}")
        time.sleep(0.2)
        assert rows == [[action, f"mcp-servers/{name}", "ok", str(status)]], rows
    # Reads leave none.
    rid = "it-mcp-" + uuid.uuid4().hex
    mcp.request("GET", "/v1/mcp-servers", headers={"X-Request-Id": rid}).expect(200)
    time.sleep(0.5)
    assert stack.sql("SELECT count(*) FROM audit_logs WHERE request_id = :'p1'",
                     rid) == [["0"]]
