"""The audit trail: every mutating API call leaves exactly
one audit_logs row - tenant, principal, action "<resource>.<action>",
resource, outcome, request id, detail {status, method, path} - written by
the gateway after the reply (gateway/admit/audit.c); reads leave none; refused
calls are recorded with their outcome; and a tool call in an agent run
leaves its own row (worker/tools/tools.c).

The row is inserted after the answer, so each check polls for it."""
import json
import time
import uuid

import pytest

from agentgate_test.waiting import TIMEOUT

AUDIT_WAIT_S = 10.0
DEMO = {"events": 1, "duration_ms": 0}


def _rid():
    return "it-audit-" + uuid.uuid4().hex


def _rows(stack, request_id, tools=False):
    """The audit rows of request_id: the gateway's, or with tools=True the
    tool invocations'."""
    rows = stack.sql(
        "SELECT tenant_id, principal, action, resource, outcome, request_id,"
        "       coalesce(detail::text, 'null')"
        "  FROM audit_logs WHERE request_id = :'p1'"
        "   AND (action = 'tool.invoke') = (:'p2' = 'yes') ORDER BY id",
        request_id, "yes" if tools else "no")
    return [{"tenant_id": r[0], "principal": r[1], "action": r[2], "resource": r[3],
             "outcome": r[4], "request_id": r[5], "detail": json.loads(r[6])}
            for r in rows]


def _wait_rows(stack, request_id, n=1, tools=False):
    """Waits for n rows of request_id, then a little more to see no more
    come, and returns them."""
    deadline = time.monotonic() + AUDIT_WAIT_S
    rows = _rows(stack, request_id, tools)
    while len(rows) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = _rows(stack, request_id, tools)
    time.sleep(0.3)
    return _rows(stack, request_id, tools)


def _one_row(stack, client, request_id, action, resource, outcome, status,
             method, path):
    rows = _wait_rows(stack, request_id)
    assert len(rows) == 1, f"expected one audit row for {request_id}: {rows}"
    row = rows[0]
    want = {"tenant_id": client.tenant_id, "principal": client.sub, "action": action,
            "resource": resource, "outcome": outcome, "request_id": request_id,
            "detail": {"status": status, "method": method, "path": path}}
    assert row == want, f"audit row\n  got  {row}\n  want {want}"
    return row


def _call(client, method, path, body=None, expect=None, **kw):
    rid = _rid()
    r = client.request(method, path, body=body, headers={"X-Request-Id": rid}, **kw)
    if expect is not None:
        r.expect(expect)
    assert r.header("X-Request-Id") == rid, r.describe()
    return rid, r


# --------------------------------------------------------------------------
# jobs, agent runs, sessions
# --------------------------------------------------------------------------

def test_job_create_and_cancel_leave_one_row_each(stack, tenant):
    rid, r = _call(tenant, "POST", "/v1/jobs", {"type": "demo", "payload": DEMO}, expect=202)
    job = r.json()
    _one_row(stack, tenant, rid, "jobs.create", f"jobs/{job['id']}", "ok", 202,
             "POST", "/v1/jobs")

    rid, r = _call(tenant, "DELETE", f"/v1/jobs/{job['id']}")
    assert r.status in (200, 202, 409), r.describe()
    outcome = "ok" if r.status < 400 else "rejected"
    _one_row(stack, tenant, rid, "jobs.delete", f"jobs/{job['id']}", outcome, r.status,
             "DELETE", f"/v1/jobs/{job['id']}")


def test_scheduled_job_cancel_is_ok(stack, tenant):
    """A job scheduled for later is still queued, so its cancel is 200."""
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 30 * 86400))
    job = tenant.submit("demo", DEMO, run_at=later)
    rid, _ = _call(tenant, "DELETE", f"/v1/jobs/{job['id']}", expect=200)
    _one_row(stack, tenant, rid, "jobs.delete", f"jobs/{job['id']}", "ok", 200,
             "DELETE", f"/v1/jobs/{job['id']}")


def test_run_create_and_cancel_leave_one_row_each(stack, tenant):
    rid, r = _call(tenant, "POST", "/v1/agent-runs", {"prompt": "say hello"},
                   expect=202)
    run = r.json()
    _one_row(stack, tenant, rid, "agent-runs.create", f"agent-runs/{run['id']}", "ok",
             202, "POST", "/v1/agent-runs")

    rid, r = _call(tenant, "DELETE", f"/v1/agent-runs/{run['id']}")
    assert r.status in (200, 202, 409), r.describe()
    outcome = "ok" if r.status < 400 else "rejected"
    _one_row(stack, tenant, rid, "agent-runs.delete", f"agent-runs/{run['id']}",
             outcome, r.status, "DELETE", f"/v1/agent-runs/{run['id']}")


def test_session_create_and_delete_leave_one_row_each(stack, tenant):
    rid, r = _call(tenant, "POST", "/v1/sessions", {"title": "audited"}, expect=201)
    sid = r.json()["id"]
    _one_row(stack, tenant, rid, "agent-runs.create", f"sessions/{sid}", "ok", 201,
             "POST", "/v1/sessions")

    rid, _ = _call(tenant, "DELETE", f"/v1/sessions/{sid}", expect=204)
    _one_row(stack, tenant, rid, "agent-runs.delete", f"sessions/{sid}", "ok", 204,
             "DELETE", f"/v1/sessions/{sid}")

    # Deleting it again is a 404: recorded as denied, on the same resource.
    rid, _ = _call(tenant, "DELETE", f"/v1/sessions/{sid}", expect=404)
    _one_row(stack, tenant, rid, "agent-runs.delete", f"sessions/{sid}", "denied", 404,
             "DELETE", f"/v1/sessions/{sid}")


# --------------------------------------------------------------------------
# models and tenants (admin endpoints)
# --------------------------------------------------------------------------

def test_model_create_update_delete_are_audited(stack, tenant):
    name = "audit-" + uuid.uuid4().hex[:8]
    rid, r = _call(tenant, "POST", "/v1/models", {"provider": "builtin", "model": name})
    if r.status == 404:
        pytest.skip("POST /v1/models is not served by this build")
    r.expect(201)
    mid = str(r.json()["id"])
    rows = _wait_rows(stack, rid)
    assert len(rows) == 1, rows
    assert rows[0]["action"] == "models.create" and rows[0]["outcome"] == "ok", rows
    assert rows[0]["resource"] in ("models", f"models/{mid}"), rows
    assert rows[0]["detail"] == {"status": 201, "method": "POST", "path": "/v1/models"}, rows

    rid, r = _call(tenant, "PATCH", f"/v1/models/{mid}", {"is_default": False})
    assert r.status == 200, r.describe()
    _one_row(stack, tenant, rid, "models.update", f"models/{mid}", "ok", 200,
             "PATCH", f"/v1/models/{mid}")

    rid, r = _call(tenant, "DELETE", f"/v1/models/{mid}")
    assert r.status in (200, 204), r.describe()
    _one_row(stack, tenant, rid, "models.delete", f"models/{mid}", "ok", r.status,
             "DELETE", f"/v1/models/{mid}")


def test_tenant_patch_is_audited(stack, tenant):
    path = f"/v1/tenants/{tenant.tenant_id}"
    rid, r = _call(tenant, "PATCH", path, {"name": "Audited Inc."})
    if r.status in (404, 405) and tenant.request("GET", path).status == 404:
        pytest.skip("PATCH /v1/tenants/{id} is not served by this build")
    assert r.status == 200, r.describe()
    _one_row(stack, tenant, rid, "tenants.update", f"tenants/{tenant.tenant_id}", "ok",
             200, "PATCH", path)


# --------------------------------------------------------------------------
# what is and is not recorded
# --------------------------------------------------------------------------

def test_reads_leave_no_row(stack, tenant):
    job = tenant.submit("demo", DEMO)
    rids = []
    for path in (f"/v1/jobs/{job['id']}", "/v1/jobs", "/v1/sessions", "/v1/tools",
                 "/v1/models", "/v1/health/live"):
        rid, _ = _call(tenant, "GET", path)
        rids.append(rid)
    # A write after the reads: once its row is there, the reads' would be too.
    rid, _ = _call(tenant, "POST", "/v1/sessions", {}, expect=201)
    assert len(_wait_rows(stack, rid)) == 1
    for rid in rids:
        assert _rows(stack, rid) == [], rid


def test_validation_failure_is_recorded_as_rejected(stack, tenant):
    rid, _ = _call(tenant, "POST", "/v1/jobs", {"type": "no.such.type"}, expect=422)
    _one_row(stack, tenant, rid, "jobs.create", "jobs", "rejected", 422, "POST",
             "/v1/jobs")


def test_forbidden_call_is_recorded_as_denied(stack, tenant):
    viewer = stack.tenant(tenant_id=tenant.tenant_id, sub="viewer-" + uuid.uuid4().hex[:8])
    viewer.token = viewer.make_token(roles=["viewer"])
    rid, r = _call(viewer, "POST", "/v1/jobs", {"type": "demo", "payload": DEMO},
                   expect=403)
    _one_row(stack, viewer, rid, "jobs.create", "jobs", "denied", 403, "POST", "/v1/jobs")
    assert _rows(stack, rid)[0]["principal"] == viewer.sub


def test_unauthenticated_call_leaves_no_row(stack, tenant):
    rid, _ = _call(tenant, "POST", "/v1/jobs", {"type": "demo"}, token=None, expect=401)
    rid2, _ = _call(tenant, "POST", "/v1/sessions", {}, expect=201)
    assert len(_wait_rows(stack, rid2)) == 1
    assert stack.sql("SELECT count(*) FROM audit_logs WHERE request_id = :'p1'",
                     rid) == [["0"]]


def test_the_path_is_recorded_without_its_query(stack, tenant):
    rid, _ = _call(tenant, "POST", "/v1/sessions?access_token=not-logged&x=1", {},
                   expect=201)
    rows = _wait_rows(stack, rid)
    assert len(rows) == 1, rows
    assert rows[0]["detail"]["path"] == "/v1/sessions", rows
    assert "not-logged" not in json.dumps(rows), rows


def test_a_caller_request_id_that_is_not_plain_is_replaced(stack, tenant):
    r = tenant.request("POST", "/v1/sessions", body={},
                       headers={"X-Request-Id": "bad id with spaces"})
    r.expect(201)
    rid = r.header("X-Request-Id")
    assert rid and rid != "bad id with spaces"
    assert len(_wait_rows(stack, rid)) == 1


# --------------------------------------------------------------------------
# tool invocations
# --------------------------------------------------------------------------

def test_a_tool_call_in_an_agent_run_leaves_its_row(stack, tenant):
    rid, r = _call(tenant, "POST", "/v1/agent-runs",
                   {"prompt": "what time is it in UTC?"}, expect=202)
    run = tenant.wait_run(r.json()["id"], timeout=TIMEOUT)
    assert run["status"] == "succeeded", run
    tools = _wait_rows(stack, rid, tools=True)
    assert len(tools) >= 1, f"no tool.invoke row for request {rid}"
    t = next((t for t in tools if t["resource"] == "tool:system.time"), None)
    assert t is not None, tools
    assert t["tenant_id"] == tenant.tenant_id and t["principal"] == tenant.sub, t
    assert t["outcome"] == "ok" and t["request_id"] == rid, t
    assert t["detail"]["run_id"] == run["id"] and t["detail"]["job_id"] == run["job_id"], t
    # ... beside the one row of the call that started the run.
    assert len(_rows(stack, rid)) == 1
