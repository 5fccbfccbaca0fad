"""Tenant isolation in depth.

Over HTTP: tenant B (an admin of its own tenant, so no role check stands
in the way) walks every endpoint that names an object, pointed at tenant
A's job, run, session, tool, model and tenant: each answers 404 (never
403, which would say the object exists), the listings leave A's objects
out, and A's rows are byte for byte what they were before.

In PostgreSQL: the services' role (agentgate_app) under row-level
security sees only the rows of the tenant set for it, none with no
tenant set, and cannot write a row of another tenant, even with SQL that
has no tenant filter at all.
"""

import json
import uuid

import pytest

from agentgate_test.stack import redis_cli

TENANT_TABLES = ("jobs", "job_events", "sessions", "agent_runs", "steps",
                 "audit_logs", "tenants", "tool_manifests", "model_defaults")

# The tenant column of each table.
TENANT_COLUMN = {t: "tenant_id" for t in TENANT_TABLES}
TENANT_COLUMN["tenants"] = "id"


def _snapshot(stack, tenant_id, moving_job=None):
    """Every row of tenant_id in every tenant table, as JSON text, read as
    the owner (who sees all tenants); moving_job (a running job, whose row
    and events move on by themselves) left out."""
    snap = {}
    skip = moving_job or "00000000-0000-0000-0000-000000000000"
    for t in TENANT_TABLES:
        col = TENANT_COLUMN[t]
        extra = {"jobs": " AND id <> :'p2'", "job_events": " AND job_id <> :'p2'"}.get(t, "")
        rows = stack.sql(f"SELECT row_to_json(x)::text FROM {t} x WHERE {col} = :'p1'{extra}"
                         " ORDER BY row_to_json(x)::text", tenant_id, skip)
        snap[t] = [r[0] for r in rows]
    return snap


def _make_objects(stack, a):
    """A's objects: a running job, a finished agent run in a session, a
    tenant tool, a tenant model and a tenant row."""
    objs = {}
    job = a.submit("long-running", {"duration_ms": 30000, "progress_interval_ms": 500})
    objs["job"] = job["id"]
    objs["session"] = a.request("POST", "/v1/sessions",
                                body={"title": "A's session"}).expect_json(201)["id"]
    run = a.request("POST", "/v1/agent-runs",
                    body={"prompt": "what time is it", "session_id": objs["session"]}
                    ).expect_json(202)
    objs["run"] = run["id"]
    objs["run_job"] = run["job_id"]
    a.wait_run(run["id"])
    objs["tool"] = "it.tool-" + uuid.uuid4().hex[:8]
    stack.sql("INSERT INTO tool_manifests (tenant_id, name, description)"
              " VALUES (:'p1', :'p2', 'A''s own tool')", a.tenant_id, objs["tool"])
    model = a.request("POST", "/v1/models",
                      body={"provider": "builtin",
                            "model": "it-a-" + uuid.uuid4().hex[:8]}).expect_json(201)
    objs["model"] = model["id"]
    objs["model_name"] = model["model"]
    a.request("PATCH", f"/v1/tenants/{a.tenant_id}",
              body={"name": "Tenant A", "settings": {"max_running": 50}}).expect_json(200)
    a.wait_job(objs["job"], ("running",))
    return objs


def _expect_404(resp):
    assert resp.status != 403, "403 tells that the object exists: " + resp.describe()
    resp.expect_problem(404)


def test_every_endpoint_answers_404_for_another_tenants_objects(stack, tenant, other_tenant):
    a, b = tenant, other_tenant
    objs = _make_objects(stack, a)
    try:
        before = _snapshot(stack, a.tenant_id, objs["job"])
        assert before["jobs"] and before["sessions"] and before["agent_runs"], before
        assert before["tenants"] and before["model_defaults"] and before["tool_manifests"]

        job, run, sess = objs["job"], objs["run"], objs["session"]
        # Jobs: read, events (SSE, header and query token), cancel.
        _expect_404(b.request("GET", f"/v1/jobs/{job}"))
        _expect_404(b.request("GET", f"/v1/jobs/{objs['run_job']}"))
        _expect_404(b.sse(f"/v1/jobs/{job}/events").response())
        _expect_404(b.sse(f"/v1/jobs/{job}/events", token=None,
                          access_token=b.token).response())
        _expect_404(b.request("DELETE", f"/v1/jobs/{job}"))
        # Agent runs: read (by run id, and by its job id), events, cancel.
        _expect_404(b.request("GET", f"/v1/agent-runs/{run}"))
        _expect_404(b.request("GET", f"/v1/agent-runs/{objs['run_job']}"))
        _expect_404(b.sse(f"/v1/agent-runs/{run}/events").response())
        _expect_404(b.request("DELETE", f"/v1/agent-runs/{run}"))
        # A run in A's session.
        p = b.request("POST", "/v1/agent-runs",
                      body={"prompt": "hi", "session_id": sess})
        _expect_404(p)
        # Sessions: read, delete.
        _expect_404(b.request("GET", f"/v1/sessions/{sess}"))
        _expect_404(b.request("DELETE", f"/v1/sessions/{sess}"))
        # Tools: A's own tool.
        _expect_404(b.request("GET", f"/v1/tools/{objs['tool']}"))
        # Models: update, delete.
        _expect_404(b.request("PATCH", f"/v1/models/{objs['model']}",
                              body={"model": "stolen"}))
        _expect_404(b.request("DELETE", f"/v1/models/{objs['model']}"))
        # Tenants: read, update.
        _expect_404(b.request("GET", f"/v1/tenants/{a.tenant_id}"))
        _expect_404(b.request("PATCH", f"/v1/tenants/{a.tenant_id}",
                              body={"name": "stolen", "settings": {"max_running": 1}}))

        # Listings leave A out.
        listed = b.list_jobs().expect_json(200)
        assert listed["items"] == [], listed
        listed = b.request("GET", "/v1/sessions").expect_json(200)
        assert listed["items"] == [], listed
        tools = b.request("GET", "/v1/tools").expect_json(200)
        assert objs["tool"] not in [t["name"] for t in tools["items"]], tools
        models = b.request("GET", "/v1/models").expect_json(200)
        assert objs["model_name"] not in json.dumps(models), models
        tenants = b.request("GET", "/v1/tenants").expect_json(200)
        assert [t["id"] for t in tenants["items"]] == [b.tenant_id], tenants

        # Nothing of A changed (B's refused requests may audit B's own rows).
        after = _snapshot(stack, a.tenant_id, objs["job"])
        for t in TENANT_TABLES:
            assert after[t] == before[t], f"{t} of A changed:\n{before[t]}\n{after[t]}"
        got = a.get_job(job)
        assert got["status"] == "running", f"B's DELETE touched A's job: {got}"
        row = stack.sql("SELECT cancel_requested_at IS NULL FROM jobs WHERE id = :'p1'", job)
        assert row == [["t"]], row
        assert a.request("GET", f"/v1/sessions/{sess}").expect_json(200)["id"] == sess
    finally:
        a.request("DELETE", f"/v1/jobs/{objs['job']}")
    assert a.wait_job(objs["job"])["status"] == "cancelled"


# --------------------------------------------------------------------------
# Row-level security, in SQL, as the services' role
# --------------------------------------------------------------------------

def _owner_rows(stack, table, tenant_id):
    col = TENANT_COLUMN[table]
    return stack.sql(f"SELECT count(*) FROM {table} WHERE {col} = :'p1'", tenant_id)[0][0]


@pytest.fixture
def two_tenants_with_rows(stack, tenant, other_tenant):
    """A and B, each with rows in every tenant table."""
    for t in (tenant, other_tenant):
        _make_objects(stack, t)
        t.request("DELETE", "/v1/jobs/" + t.list_jobs(status="running")
                  .expect_json(200)["items"][0]["id"])
        stack.sql("INSERT INTO audit_logs (tenant_id, principal, action, resource, outcome)"
                  " VALUES (:'p1', 'it', 'test', 'test', 'ok')", t.tenant_id)
    return tenant, other_tenant


def test_app_role_sees_only_the_tenant_it_set(stack, two_tenants_with_rows):
    a, b = two_tenants_with_rows
    assert stack.database_url != stack.owner_url, "the services run as the owner"
    role = stack.sql_app("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles"
                         " WHERE rolname = current_user")
    assert role == [["agentgate_app", "f", "f"]], role
    for table in TENANT_TABLES:
        col = TENANT_COLUMN[table]
        assert int(_owner_rows(stack, table, a.tenant_id)) > 0, f"A has no {table} rows"
        assert int(_owner_rows(stack, table, b.tenant_id)) > 0, f"B has no {table} rows"
        # No WHERE at all: only B's rows (and, for the two catalogs, the
        # global rows with tenant_id NULL).
        seen = stack.sql_app(f"SELECT DISTINCT coalesce({col}, '<global>') FROM {table}",
                             tenant=b.tenant_id)
        seen = sorted(r[0] for r in seen)
        allowed = {b.tenant_id, "<global>"} if table in ("tool_manifests", "model_defaults") \
            else {b.tenant_id}
        assert b.tenant_id in seen and set(seen) <= allowed, f"{table} as B: {seen}"
        # No tenant set: no tenant's row.
        none = stack.sql_app(f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL")
        assert none == [["0"]], f"{table} with no tenant set: {none}"
        # An empty setting is no tenant, too.
        empty = stack.sql_app(f"SELECT count(*) FROM {table} WHERE {col} IS NOT NULL",
                              tenant="")
        assert empty == [["0"]], f"{table} with an empty tenant: {empty}"


WRITES = [
    ("jobs", "INSERT INTO jobs (id, tenant_id, type, status, payload, created_by)"
             " VALUES (gen_random_uuid(), :'p1', 'demo', 'queued', '{}', 'x')"),
    ("sessions", "INSERT INTO sessions (id, tenant_id, created_by)"
                 " VALUES (gen_random_uuid(), :'p1', 'x')"),
    ("audit_logs", "INSERT INTO audit_logs (tenant_id, principal, action, resource, outcome)"
                   " VALUES (:'p1', 'x', 'x', 'x', 'x')"),
    ("tenants", "INSERT INTO tenants (id, name) VALUES (:'p1' || '-x', 'x')"),
    ("tool_manifests", "INSERT INTO tool_manifests (tenant_id, name, description)"
                       " VALUES (:'p1', 'it.x', 'x')"),
    ("model_defaults", "INSERT INTO model_defaults (scope, tenant_id, provider, model)"
                       " VALUES ('tenant', :'p1', 'builtin', 'x')"),
]


@pytest.mark.parametrize("table,sql", WRITES, ids=[w[0] for w in WRITES])
def test_app_role_cannot_write_another_tenants_row(stack, tenant, other_tenant, table, sql):
    a, b = tenant, other_tenant
    r = stack.sql_app(sql, a.tenant_id, tenant=b.tenant_id, check=False)
    assert r.returncode != 0 and "row-level security" in r.stderr, (
        f"insert of A's {table} row as B: rc={r.returncode} {r.stderr}")
    # With no tenant set it fails the same way.
    r = stack.sql_app(sql, a.tenant_id, check=False)
    assert r.returncode != 0 and "row-level security" in r.stderr, r.stderr


def test_app_role_cannot_move_or_touch_rows_across_tenants(stack, tenant, other_tenant):
    a, b = tenant, other_tenant
    job = a.submit("demo", {"events": 0, "duration_ms": 0})
    a.wait_job(job["id"])
    before = _snapshot(stack, a.tenant_id)
    # Statements with no tenant filter change nothing of A's as B ...
    out = stack.sql_app("UPDATE jobs SET error_message = 'x' RETURNING id;"
                        " DELETE FROM sessions RETURNING id;"
                        " UPDATE tenants SET name = 'x' RETURNING id",
                        tenant=b.tenant_id)
    assert out == [], out
    # ... and B cannot hand its own row over to A.
    b.submit("demo", {"events": 0, "duration_ms": 0})
    r = stack.sql_app("UPDATE jobs SET tenant_id = :'p1'", a.tenant_id,
                      tenant=b.tenant_id, check=False)
    assert r.returncode != 0 and "row-level security" in r.stderr, r.stderr
    assert _snapshot(stack, a.tenant_id) == before


def test_global_catalog_rows_are_read_only_for_the_services(stack, tenant):
    rows = stack.sql_app("SELECT count(*) FROM tool_manifests WHERE tenant_id IS NULL",
                         tenant=tenant.tenant_id)
    assert int(rows[0][0]) > 0, "global tools are not visible"
    for sql in ("UPDATE tool_manifests SET description = 'x' WHERE tenant_id IS NULL"
                " RETURNING id",
                "DELETE FROM model_defaults WHERE tenant_id IS NULL RETURNING id"):
        assert stack.sql_app(sql, tenant=tenant.tenant_id) == [], sql
    r = stack.sql_app("INSERT INTO model_defaults (scope, provider, model)"
                      " VALUES ('global', 'builtin', 'x')", tenant=tenant.tenant_id,
                      check=False)
    assert r.returncode != 0 and "row-level security" in r.stderr, r.stderr


def test_app_role_has_no_schema_or_owner_powers(stack):
    for sql in ("CREATE TABLE it_x (a int)",
                "ALTER TABLE jobs NO FORCE ROW LEVEL SECURITY",
                "DROP POLICY tenant_rows ON jobs",
                "SELECT count(*) FROM schema_migrations",
                "DELETE FROM jobs",
                "SET ROLE agentgate"):
        r = stack.sql_app(sql, check=False)
        assert r.returncode != 0, f"the app role may: {sql}"


def test_definer_functions_are_for_the_app_role_only(stack):
    rows = stack.sql("SELECT p.proname, p.prosecdef, p.proconfig::text,"
                     " has_function_privilege('public', p.oid, 'EXECUTE')"
                     " FROM pg_proc p WHERE p.prosecdef ORDER BY 1")
    names = [r[0] for r in rows]
    assert names == sorted(["agentgate_claim_job", "agentgate_lock_expired",
                            # a batch of claims in one statement (025_claim_batch.sql)
                            "agentgate_claim_jobs",
                            "agentgate_queued_jobs", "agentgate_heartbeat",
                            "agentgate_cancel_requested",
                            # undecided approvals past their time (022_approvals.sql)
                            "agentgate_expired_approvals", "agentgate_expire_approval",
                            # retention (016_retention.sql)
                            "agentgate_retention_jobs", "agentgate_retention_audit",
                            # the gateway's queue depth gauges (018_queue_depth.sql)
                            "agentgate_queue_depths",
                            # completion webhooks (020_webhooks.sql)
                            "webhook_claim", "webhook_record", "webhook_outbox_write",
                            "webhook_secret_for_new_tenant",
                            # due schedules of every tenant (021_schedules.sql)
                            "agentgate_due_schedules",
                            # held agent runs of every tenant (024_multitask.sql)
                            "agentgate_held_runs_ready", "agentgate_release_held_run"]), rows
    for name, _, config, public in rows:
        assert "search_path=public, pg_temp" in config, (name, config)
        assert public == "f", f"{name} is executable by PUBLIC"


def test_tenant_owned_redis_keys_are_namespaced(stack, tenant):
    """Redis keys a tenant's data lives under carry its tenant id: the
    cache tools' keys (cache:{tenant}:{key}), rate limits (rate:{tenant}:...)
    and idempotency records (idempotency:{tenant}:{hash}). Job keys
    (jobs:state:{id}, ...) are per job UUID and built only after the job's
    tenant was checked against PostgreSQL."""
    idem = "idem-" + uuid.uuid4().hex[:8]
    tenant.request("POST", "/v1/jobs", body={"type": "demo", "payload": {"events": 0}},
                   headers={"Idempotency-Key": idem}).expect(202, 201)
    out = redis_cli("--scan", timeout=30).stdout.split()
    assert out, "redis --scan found no keys at all"
    for k in out:
        if k.startswith(("cache:", "rate:", "idempotency:")):
            parts = k.split(":")
            assert len(parts) >= 3 and parts[1], f"tenant-owned key without tenant: {k}"
        elif k.startswith("jobs:") and k.count(":") >= 2 and not k.startswith(
                ("jobs:queue:", "jobs:delayed:", "jobs:ready:", "jobs:active:",
                 "jobs:turns:")):
            uuid.UUID(k.split(":")[2])  # per-job keys end in the job's UUID
