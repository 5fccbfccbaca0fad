"""Retries and dead letters: POST /v1/jobs/{id}/retry, the dead-letter
list with its retry and discard of one and of all, and GET
/v1/agent-runs with its filters and cursor. Against the real stack: the
retried jobs run on the real workers."""

import time
import uuid

import pytest

ALL_SCOPES = ("agent-runs:read agent-runs:write jobs:read jobs:write tools:read "
              "tools:write tenants:read tenants:write models:read models:write "
              "mcp-servers:read mcp-servers:write")
RUN_ITEM_FIELDS = {"id", "job_id", "session_id", "status", "prompt", "model",
                   "created_at", "started_at", "finished_at"}


def _failed(tenant, code="E_RETRY", **payload):
    """A test job that failed for good, waited for."""
    body = {"outcome": "fail", "error": {"code": code}}
    body.update(payload)
    job = tenant.submit("test", body, max_attempts=1)
    done = tenant.wait_job(job["id"], ("failed", "succeeded", "cancelled"))
    assert done["status"] == "failed", done
    return done


def _retry(tenant, job_id, expect=202, path=None, token=True):
    r = tenant.request("POST", path or f"/v1/jobs/{job_id}/retry", token=token)
    if expect != 202:
        return r.expect_problem(expect)
    job = r.expect_json(202)
    assert r.header("Location") == f"/v1/jobs/{job['id']}", r.describe()
    return job


def _dead(tenant, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return tenant.request("GET", "/v1/dead-letters" + ("?" + q if q else "")).expect_json(200)


def _dead_ids(tenant, **params):
    """Every dead letter's id over all pages, newest first."""
    ids, cursor = [], None
    for _ in range(50):
        page = _dead(tenant, cursor=cursor, **params)
        assert set(page) == {"items", "next_cursor"}, page
        ids += [j["id"] for j in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("dead-letter pagination does not end")


# ---------------------------------------------------------------------------
# POST /v1/jobs/{id}/retry
# ---------------------------------------------------------------------------

def test_retry_of_a_failed_job_is_a_new_job_that_succeeds(tenant):
    # Fails until a moment has passed, as a job whose dependency was down.
    until = int(time.time() * 1000) + 1500
    old = _failed(tenant, fail_until_ms=until, outcome="succeed", result={"ok": 1})
    assert old["error"]["code"] == "test_unavailable", old
    assert old["retry_of"] is None, old
    while time.time() * 1000 < until + 50:
        time.sleep(0.05)

    new = _retry(tenant, old["id"])
    assert new["id"] != old["id"]
    assert new["retry_of"] == old["id"], new
    assert new["status"] == "queued" and new["attempts"] == 0, new
    for f in ("type", "payload", "priority", "max_attempts", "timeout_s"):
        assert new[f] == old[f], (f, new, old)
    # The 202 is the row as GET shows it.
    assert tenant.get_job(new["id"])["retry_of"] == old["id"]
    done = tenant.wait_job(new["id"])
    assert done["status"] == "succeeded", done
    assert done["result"] == {"ok": 1}, done
    # The original is as it was: still failed, its log still ended.
    again = tenant.get_job(old["id"])
    for f in ("status", "error", "attempts", "finished_at", "last_event_id"):
        assert again[f] == old[f], (f, again, old)
    events = tenant.events(old["id"])
    assert events[-1].event == "job.failed", [e.event for e in events]


def test_retry_of_a_cancelled_job_succeeds(tenant):
    job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 1500})
    tenant.wait_job(job["id"], ("running",))
    tenant.request("DELETE", f"/v1/jobs/{job['id']}").expect(200, 202)
    old = tenant.wait_job(job["id"])
    assert old["status"] == "cancelled", old
    new = _retry(tenant, old["id"])
    assert new["retry_of"] == old["id"] and new["payload"] == old["payload"], new
    done = tenant.wait_job(new["id"])
    assert done["status"] == "succeeded" and done["retry_of"] == old["id"], done
    assert tenant.get_job(old["id"])["status"] == "cancelled"
    # A cancelled job is never a dead letter.
    assert _dead_ids(tenant) == []


@pytest.mark.parametrize("status", ["succeeded", "running", "queued"])
def test_retry_of_an_unfinished_or_succeeded_job_is_409(tenant, status):
    if status == "succeeded":
        job = tenant.submit("test", {"outcome": "succeed"})
        tenant.wait_job(job["id"], ("succeeded",))
    elif status == "running":
        job = tenant.submit("test", {"outcome": "succeed", "sleep_ms": 30000})
        tenant.wait_job(job["id"], ("running",))
    else:
        later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        job = tenant.submit("test", {"outcome": "succeed"}, run_at=later)
    p = _retry(tenant, job["id"], expect=409)
    assert status in p["detail"], p
    if status != "succeeded":
        tenant.request("DELETE", f"/v1/jobs/{job['id']}")


def test_retry_of_another_tenants_job_is_404(tenant, other_tenant):
    old = _failed(other_tenant)
    p = _retry(tenant, old["id"], expect=404)
    assert p["detail"] == "no job with this id", p
    _retry(tenant, str(uuid.uuid4()), expect=404)
    _retry(tenant, "not-a-uuid", expect=404)
    # Nothing was made in either tenant.
    assert tenant.list_jobs().expect_json(200)["items"] == []
    assert [j["id"] for j in other_tenant.list_jobs().expect_json(200)["items"]] == [old["id"]]


def test_retry_of_an_agent_run_makes_a_new_run(tenant):
    r = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "write a haiku about retries", "response_mode": "llm-required",
        "planning_mode": "none", "max_iterations": 3})
    run = r.expect_json(202)
    old = tenant.wait_run(run["id"])
    assert old["status"] == "failed", old

    new = _retry(tenant, run["job_id"])
    assert new["type"] == "agent.run" and new["retry_of"] == run["job_id"], new
    assert new["run_id"] and new["run_id"] != run["id"], new
    assert new["payload"]["run_id"] == new["run_id"], new
    assert new["payload"]["prompt"] == old["prompt"], new
    fresh = tenant.request("GET", f"/v1/agent-runs/{new['run_id']}").expect_json(200)
    assert fresh["job_id"] == new["id"], fresh
    for f in ("prompt", "model", "planning_mode", "response_mode", "max_iterations",
              "tools", "timeout_s", "session_id"):
        assert fresh[f] == old[f], (f, fresh, old)
    # The same options, the same outcome: it fails the same way.
    done = tenant.wait_run(new["run_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "llm_unavailable", done


def test_rbac_of_retries(tenant):
    old = _failed(tenant)
    viewer = tenant.make_token(roles=["viewer"], scope=ALL_SCOPES)
    p = _retry(tenant, old["id"], expect=403, token=viewer)
    assert p["detail"] == "your roles do not allow create on jobs", p
    p = _retry(tenant, None, expect=403, token=viewer,
               path=f"/v1/dead-letters/{old['id']}/retry")
    p = tenant.request("POST", "/v1/dead-letters/retry", token=viewer).expect_problem(403)
    p = tenant.request("DELETE", f"/v1/dead-letters/{old['id']}",
                       token=viewer).expect_problem(403)
    assert p["detail"] == "your roles do not allow delete on jobs", p
    tenant.request("DELETE", "/v1/dead-letters", token=viewer).expect_problem(403)
    # A viewer reads the list; a user may retry and discard (jobs: crd).
    page = tenant.request("GET", "/v1/dead-letters", token=viewer).expect_json(200)
    assert [j["id"] for j in page["items"]] == [old["id"]], page
    user = tenant.make_token(roles=["user"], scope=ALL_SCOPES)
    new = _retry(tenant, old["id"], token=user)
    assert new["retry_of"] == old["id"]
    tenant.wait_job(new["id"], ("failed",))     # the same payload fails again
    tenant.request("DELETE", f"/v1/dead-letters/{new['id']}", token=user).expect(204)
    # A token with jobs:write but not agent-runs:write retries plain jobs,
    # not an agent run's job.
    r = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "hello", "response_mode": "llm-required", "planning_mode": "none"})
    run = r.expect_json(202)
    tenant.wait_run(run["id"])
    jobs_only = tenant.make_token(roles=["admin"], scope="jobs:read jobs:write")
    p = _retry(tenant, run["job_id"], expect=403, token=jobs_only)
    assert p["detail"] == "the token's scopes do not allow create on agent-runs", p
    p = _retry(tenant, None, expect=403, token=jobs_only,
               path=f"/v1/dead-letters/{run['job_id']}/retry")
    # The entry was not claimed: it is still in the list.
    assert run["job_id"] in _dead_ids(tenant)
    # Retry-all of that token leaves the agent run's entry where it is.
    out = tenant.request("POST", "/v1/dead-letters/retry",
                         token=jobs_only).expect_json(200)
    assert out == {"retried": 0, "jobs": []}, out
    assert _dead_ids(tenant) == [run["job_id"]]


# ---------------------------------------------------------------------------
# Dead letters
# ---------------------------------------------------------------------------

def test_dead_letters_list_retry_and_discard(tenant, other_tenant):
    a = _failed(tenant, code="A")
    b = _failed(tenant, code="B")
    c = _failed(tenant, code="C")
    ok = tenant.submit("test", {"outcome": "succeed"})
    tenant.wait_job(ok["id"], ("succeeded",))
    theirs = _failed(other_tenant)

    page = _dead(tenant)
    assert [j["id"] for j in page["items"]] == [c["id"], b["id"], a["id"]], page
    assert page["items"][0] == tenant.get_job(c["id"]), "an entry is the job's JSON"
    assert page["next_cursor"] is None
    assert _dead_ids(tenant, limit=1) == [c["id"], b["id"], a["id"]]
    assert _dead_ids(tenant, type="demo") == []

    # Another tenant's entry is not found, for retry and discard alike.
    tenant.request("POST", f"/v1/dead-letters/{theirs['id']}/retry").expect_problem(404)
    tenant.request("DELETE", f"/v1/dead-letters/{theirs['id']}").expect_problem(404)
    assert _dead_ids(other_tenant) == [theirs["id"]]

    # Retry one: a new job; the entry leaves the list, the job stays failed.
    # The retry fails as b did (the same payload) and is an entry of its own.
    new = _retry(tenant, None, path=f"/v1/dead-letters/{b['id']}/retry")
    assert new["retry_of"] == b["id"] and new["payload"] == b["payload"], new
    tenant.wait_job(new["id"], ("failed",))
    assert _dead_ids(tenant) == [new["id"], c["id"], a["id"]]
    assert tenant.get_job(b["id"])["status"] == "failed"
    # Once resolved it is not an entry any more; nor is a job that never failed.
    tenant.request("POST", f"/v1/dead-letters/{b['id']}/retry").expect_problem(404)
    tenant.request("DELETE", f"/v1/dead-letters/{ok['id']}").expect_problem(404)
    tenant.request("DELETE", "/v1/dead-letters/not-a-uuid").expect_problem(404)

    # Discard one: 204, gone from the list, the job untouched.
    r = tenant.request("DELETE", f"/v1/dead-letters/{a['id']}")
    r.expect(204)
    assert _dead_ids(tenant) == [new["id"], c["id"]]
    assert tenant.get_job(a["id"]) == a
    tenant.request("DELETE", f"/v1/dead-letters/{a['id']}").expect_problem(404)

    # A retry through /v1/jobs/{id}/retry resolves the entry as well.
    again = _retry(tenant, c["id"])
    tenant.wait_job(again["id"], ("failed",))
    assert _dead_ids(tenant) == [again["id"], new["id"]]


def _timed_out(tenant):
    """A long-running job that failed for good by running past its timeout."""
    job = tenant.submit("long-running", {"duration_ms": 5000, "progress_interval_ms": 1000},
                        timeout_s=1, max_attempts=1)
    done = tenant.wait_job(job["id"])
    assert done["status"] == "failed", done
    return done


def test_dead_letters_retry_all_and_discard_all(tenant, other_tenant):
    fails = [_failed(tenant, code=f"E{i}") for i in range(3)]
    slow = _timed_out(tenant)
    theirs = _failed(other_tenant)

    # Of one type.
    out = tenant.request("POST", "/v1/dead-letters/retry?type=long-running").expect_json(200)
    assert out["retried"] == 1 and len(out["jobs"]) == 1, out
    slow2 = tenant.get_job(out["jobs"][0])
    assert slow2["retry_of"] == slow["id"] and slow2["type"] == "long-running", slow2
    assert tenant.wait_job(slow2["id"])["status"] == "failed"     # times out again
    assert sorted(_dead_ids(tenant)) == sorted([f["id"] for f in fails] + [slow2["id"]])

    # All: four retries, oldest entry first.
    out = tenant.request("POST", "/v1/dead-letters/retry").expect_json(200)
    assert out["retried"] == 4 and len(set(out["jobs"])) == 4, out
    retried = [tenant.get_job(i)["retry_of"] for i in out["jobs"]]
    assert retried == [f["id"] for f in fails] + [slow2["id"]], retried
    assert not set(_dead_ids(tenant)) & set(retried), "a retried entry is still listed"
    for i in out["jobs"]:
        tenant.wait_job(i, ("failed",))
    assert sorted(_dead_ids(tenant)) == sorted(out["jobs"])

    # Discard of one type, then of all: counts; the other tenant's stay.
    out = tenant.request("DELETE", "/v1/dead-letters?type=long-running").expect_json(200)
    assert out == {"discarded": 1}, out
    assert len(_dead_ids(tenant)) == 3
    out = tenant.request("DELETE", "/v1/dead-letters").expect_json(200)
    assert out == {"discarded": 3}, out
    assert _dead_ids(tenant) == []
    assert tenant.request("DELETE", "/v1/dead-letters").expect_json(200) == {"discarded": 0}
    assert tenant.request("POST", "/v1/dead-letters/retry").expect_json(200) == \
        {"retried": 0, "jobs": []}
    assert _dead_ids(other_tenant) == [theirs["id"]]
    # Discarded jobs are still failed jobs.
    assert all(tenant.get_job(f["id"])["status"] == "failed" for f in fails)


def test_dead_letters_retry_all_takes_1000_a_call(stack, tenant):
    # 1005 failed jobs, written as a DBA would (the API cannot fail jobs
    # that fast); each retry fails again at once, on the real workers.
    stack.sql("INSERT INTO jobs (id, tenant_id, type, status, payload, max_attempts,"
              " attempts, created_by, created_at, finished_at, error_code, error_message)"
              " SELECT gen_random_uuid(), :'p1', 'test', 'failed',"
              " '{\"outcome\":\"fail\"}', 1, 1, 'seed', now() - g * interval '1 ms',"
              " now(), 'E', 'seeded' FROM generate_series(1, 1005) g", tenant.tenant_id)
    out = tenant.request("POST", "/v1/dead-letters/retry").expect_json(200)
    assert out["retried"] == 1000 and len(set(out["jobs"])) == 1000, out["retried"]
    left = stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1' AND created_by = 'seed'"
                     " AND dead_resolved_at IS NULL", tenant.tenant_id)
    assert left == [["5"]], left
    made = stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1' AND retry_of IS NOT NULL",
                     tenant.tenant_id)
    assert made == [["1000"]], made
    # The next call takes the 5 left, oldest first, and whichever retries
    # have failed again by now (they are dead letters of their own).
    out = tenant.request("POST", "/v1/dead-letters/retry").expect_json(200)
    assert 5 <= out["retried"] <= 1000, out["retried"]
    left = stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1' AND created_by = 'seed'"
                     " AND dead_resolved_at IS NULL", tenant.tenant_id)
    assert left == [["0"]], left


def test_dead_letters_bad_queries_are_400(tenant):
    for q in ("type=nosuch", "limit=0", "limit=201", "cursor=abc"):
        p = tenant.request("GET", f"/v1/dead-letters?{q}").expect_problem(400)
        assert p["type"].endswith("bad-query"), p
    tenant.request("POST", "/v1/dead-letters/retry?type=nosuch").expect_problem(400)
    tenant.request("DELETE", "/v1/dead-letters?type=nosuch").expect_problem(400)


def test_dead_letters_concurrent_retries_of_one_entry_make_one_job(stack, tenant):
    import concurrent.futures
    old = _failed(tenant)
    path = f"/v1/dead-letters/{old['id']}/retry"
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda _: tenant.request("POST", path).status, range(8)))
    assert sorted(got) == [202] + [404] * 7, got
    n = stack.sql("SELECT count(*) FROM jobs WHERE retry_of = :'p1'", old["id"])
    assert n == [["1"]], n


# ---------------------------------------------------------------------------
# GET /v1/agent-runs
# ---------------------------------------------------------------------------

def _runs(tenant, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return tenant.request("GET", "/v1/agent-runs" + ("?" + q if q else ""))


def _walk_runs(tenant, **params):
    items, cursor = [], None
    for _ in range(50):
        page = _runs(tenant, cursor=cursor, **params).expect_json(200)
        assert set(page) == {"items", "next_cursor"}, page
        if params.get("limit"):
            assert len(page["items"]) <= int(params["limit"])
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], page
    raise AssertionError("agent-runs pagination does not end")


def test_agent_runs_list_filters_and_cursor(tenant, other_tenant):
    session = tenant.request("POST", "/v1/sessions", body={"title": "s"}).expect_json(201)
    body = {"planning_mode": "none", "response_mode": "fallback-only"}
    ids = []
    for i in range(5):
        b = dict(body, prompt=f"hello {i}")
        if i % 2 == 0:      # behind the session's active run, if any
            b["session_id"] = session["id"]
            b["multitask_strategy"] = "enqueue"
        ids.append(tenant.request("POST", "/v1/agent-runs", body=b).expect_json(202)["id"])
    failing = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "fail please", "response_mode": "llm-required",
        "planning_mode": "none"}).expect_json(202)["id"]
    ids.append(failing)
    for i in ids:
        tenant.wait_run(i)
    other_tenant.request("POST", "/v1/agent-runs",
                         body=dict(body, prompt="theirs")).expect_json(202)

    items = _walk_runs(tenant, limit=2)
    assert [r["id"] for r in items] == list(reversed(ids)), items
    for r in items:
        assert RUN_ITEM_FIELDS <= set(r), r
        assert r["links"]["self"] == f"/v1/agent-runs/{r['id']}"
    assert items[-1]["prompt"] == "hello 0" and items[-1]["session_id"] == session["id"]
    one = tenant.request("GET", f"/v1/agent-runs/{ids[0]}").expect_json(200)
    for f in RUN_ITEM_FIELDS:
        assert items[-1][f] == one[f], (f, items[-1], one)

    in_session = _walk_runs(tenant, session_id=session["id"], limit=1)
    assert [r["id"] for r in in_session] == [ids[4], ids[2], ids[0]], in_session
    failed = _walk_runs(tenant, status="failed")
    assert [r["id"] for r in failed] == [failing], failed
    ok = _walk_runs(tenant, status="succeeded", limit=3)
    assert [r["id"] for r in ok] == list(reversed(ids[:5])), ok
    assert _walk_runs(tenant, session_id=str(uuid.uuid4())) == []

    for q in ("status=nope", "status=cancelling", "session_id=x", "limit=0",
              "limit=abc", "cursor=!!"):
        p = _runs(tenant, **dict([q.split("=", 1)])).expect_problem(400)
        assert p["type"].endswith("bad-query"), (q, p)

    viewer = tenant.make_token(roles=["viewer"], scope=ALL_SCOPES)
    page = tenant.request("GET", "/v1/agent-runs", token=viewer).expect_json(200)
    assert len(page["items"]) == 6
    jobs_only = tenant.make_token(roles=["admin"], scope="jobs:read")
    p = tenant.request("GET", "/v1/agent-runs", token=jobs_only).expect_problem(403)
    assert p["detail"] == "the token's scopes do not allow read on agent-runs", p
