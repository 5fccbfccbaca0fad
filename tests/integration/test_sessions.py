"""Sessions: POST/GET/DELETE /v1/sessions, a session's runs, keyset
pagination, validation that changes nothing, problem details, and tenant
isolation."""

import time
import uuid

import pytest

SESSION_FIELDS = ("id", "title", "metadata", "created_by", "created_at",
                  "updated_at", "links")


def _create(tenant, body=None, raw=None):
    r = tenant.request("POST", "/v1/sessions", body=body, raw=raw)
    s = r.expect_json(201)
    for f in SESSION_FIELDS:
        assert f in s, f"session lacks {f!r}: {s}"
    assert r.header("Location") == f"/v1/sessions/{s['id']}", (
        f"Location {r.header('Location')!r} for {s['id']}")
    assert s["links"]["self"] == f"/v1/sessions/{s['id']}", s
    assert s["runs"] == [] and s["runs_total"] == 0, s
    assert s["runs_truncated"] is False, s
    return s


def _list(tenant, **params):
    q = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    return tenant.request("GET", "/v1/sessions" + ("?" + q if q else ""))


def _walk(tenant, limit):
    items, cursor = [], None
    for _ in range(50):
        page = _list(tenant, limit=limit, cursor=cursor).expect_json(200)
        assert set(page) == {"items", "next_cursor"}, page
        assert len(page["items"]) <= limit, page
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], f"empty page with a cursor: {page}"
    raise AssertionError("session pagination does not end")


def _run(tenant, session_id, prompt="hello there", expect=202):
    r = tenant.request("POST", "/v1/agent-runs",
                       body={"prompt": prompt, "session_id": session_id,
                             "planning_mode": "none",
                             "response_mode": "fallback-only"})
    return r.expect_json(expect) if expect == 202 else r.expect_problem(expect)


def _assert_no_sessions(tenant):
    page = _list(tenant).expect_json(200)
    assert page["items"] == [], f"a refused request created a session: {page}"


def test_create_and_get_a_session(tenant):
    s = _create(tenant, {"title": "Quarterly report", "metadata": {"k": [1, "two"]}})
    assert s["title"] == "Quarterly report"
    assert s["metadata"] == {"k": [1, "two"]}
    assert s["created_by"] == tenant.sub
    uuid.UUID(s["id"])
    got = tenant.request("GET", f"/v1/sessions/{s['id']}").expect_json(200)
    assert got == s, f"GET differs from the 201 body:\n{got}\n{s}"


def test_create_without_a_body_or_fields(tenant):
    a = _create(tenant)
    assert a["title"] is None and a["metadata"] == {}, a
    b = _create(tenant, {})
    c = _create(tenant, {"title": None, "metadata": None})
    assert b["metadata"] == {} and c["title"] is None, (b, c)
    assert len({a["id"], b["id"], c["id"]}) == 3


@pytest.mark.parametrize("body,pointer", [
    ({"title": 5}, "/title"),
    ({"title": ["a"]}, "/title"),
    ({"title": "x" * 257}, "/title"),
    ({"metadata": [1, 2]}, "/metadata"),
    ({"metadata": "text"}, "/metadata"),
    ({"metadata": {"blob": "x" * (16 * 1024)}}, "/metadata"),
    ({"bogus": 1}, "/bogus"),
], ids=["title-number", "title-array", "title-too-long", "metadata-array",
        "metadata-string", "metadata-too-large", "unknown-field"])
def test_invalid_session_is_422_naming_the_field(tenant, body, pointer):
    p = tenant.request("POST", "/v1/sessions", body=body).expect_problem(422)
    assert [e["pointer"] for e in p.get("errors", [])] == [pointer], p
    assert pointer[1:] in p["detail"], p
    _assert_no_sessions(tenant)


def test_title_limit_counts_characters_not_bytes(tenant):
    s = _create(tenant, {"title": "é" * 256})
    assert s["title"] == "é" * 256


@pytest.mark.parametrize("raw,status", [
    (b'{"title":', 400), (b"[1]", 422), (b'"x"', 422),
])
def test_malformed_or_non_object_body(tenant, raw, status):
    tenant.request("POST", "/v1/sessions", raw=raw).expect_problem(status)
    _assert_no_sessions(tenant)


def test_listing_is_newest_first_with_a_cursor(tenant):
    ids = [_create(tenant, {"title": f"s{i}"})["id"] for i in range(5)]
    items = _walk(tenant, limit=2)
    assert [s["id"] for s in items] == list(reversed(ids)), items
    for s in items:
        assert "runs" not in s, f"a listed session carries its runs: {s}"
        for f in SESSION_FIELDS:
            assert f in s, f"listed session lacks {f!r}: {s}"
    whole = _list(tenant, limit=200).expect_json(200)
    assert [s["id"] for s in whole["items"]] == list(reversed(ids))
    assert whole["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=x",
                                   "cursor=bogus", "cursor=" + "A" * 300])
def test_bad_listing_parameters_are_400(tenant, query):
    tenant.request("GET", "/v1/sessions?" + query).expect_problem(400)


def test_session_shows_its_runs_oldest_first(tenant):
    s = _create(tenant, {"title": "chat"})
    before = s["updated_at"]
    time.sleep(0.01)
    runs = []
    for i in range(3):      # one at a time: a busy session refuses a new run
        runs.append(_run(tenant, s["id"], prompt=f"hello number {i}"))
        tenant.wait_run(runs[-1]["id"])
    got = tenant.request("GET", f"/v1/sessions/{s['id']}").expect_json(200)
    assert got["updated_at"] > before, (
        f"a run in the session did not bump updated_at: {before} -> {got['updated_at']}")
    assert got["runs_total"] == 3 and got["runs_truncated"] is False, got
    assert [r["id"] for r in got["runs"]] == [r["id"] for r in runs], got["runs"]
    for i, r in enumerate(got["runs"]):
        assert set(r) >= {"id", "status", "prompt", "output_preview",
                          "created_at", "finished_at", "links"}, r
        assert r["prompt"] == f"hello number {i}", r
        assert r["status"] == "succeeded", r
        assert r["finished_at"], r
        assert isinstance(r["output_preview"], str) and r["output_preview"], r
        assert len(r["output_preview"]) <= 280, r
        assert r["links"]["self"] == f"/v1/agent-runs/{r['id']}", r
        full = tenant.request("GET", r["links"]["self"]).expect_json(200)
        assert full["session_id"] == s["id"], full
        assert full["output"].startswith(r["output_preview"]), (full, r)


def test_a_long_session_shows_its_latest_runs_and_says_it_was_cut(stack, tenant):
    s = _create(tenant, {"title": "long"})
    # 105 finished runs, written directly: each a job and its run row, one
    # second apart so their order is plain.
    stack.sql("""
        WITH g AS (SELECT i, gen_random_uuid() AS jid, gen_random_uuid() AS rid,
                          now() - make_interval(secs => 200 - i) AS t
                     FROM generate_series(1, 105) i),
             j AS (INSERT INTO jobs (id, tenant_id, type, status, payload, created_by,
                                     created_at, finished_at)
                   SELECT jid, :'p1', 'agent.run', 'succeeded', '{}', 'tester', t, t
                     FROM g RETURNING id)
        INSERT INTO agent_runs (id, tenant_id, job_id, session_id, created_by,
                                prompt, output, created_at)
        SELECT rid, :'p1', jid, :'p2'::uuid, 'tester', 'turn ' || i, repeat('o', 1000), t
          FROM g WHERE EXISTS (SELECT 1 FROM j)
    """, tenant.tenant_id, s["id"])
    got = tenant.request("GET", f"/v1/sessions/{s['id']}").expect_json(200)
    assert got["runs_total"] == 105 and got["runs_truncated"] is True, (
        {k: v for k, v in got.items() if k != "runs"})
    prompts = [r["prompt"] for r in got["runs"]]
    assert prompts == [f"turn {i}" for i in range(6, 106)], prompts[:3] + prompts[-3:]
    assert all(len(r["output_preview"]) == 280 for r in got["runs"])


def test_delete_keeps_the_runs(stack, tenant):
    s = _create(tenant, {"title": "to go"})
    run = _run(tenant, s["id"])
    tenant.wait_run(run["id"])
    r = tenant.request("DELETE", f"/v1/sessions/{s['id']}")
    r.expect(204)
    assert r.body == b"", r.describe()
    tenant.request("GET", f"/v1/sessions/{s['id']}").expect_problem(404)
    tenant.request("DELETE", f"/v1/sessions/{s['id']}").expect_problem(404)
    assert _list(tenant).expect_json(200)["items"] == []
    got = tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)
    assert got["session_id"] is None and got["status"] == "succeeded", got
    # A run can no longer be filed under it.
    p = _run(tenant, s["id"], expect=404)
    assert p["detail"] == "session not found", p


def test_other_tenant_gets_404_everywhere(stack, tenant, other_tenant):
    s = _create(tenant, {"title": "private", "metadata": {"secret": "A's"}})
    sid = s["id"]
    other_tenant.request("GET", f"/v1/sessions/{sid}").expect_problem(404)
    other_tenant.request("DELETE", f"/v1/sessions/{sid}").expect_problem(404)
    assert _list(other_tenant).expect_json(200)["items"] == []
    p = _run(other_tenant, sid, expect=404)
    assert p["detail"] == "session not found", p
    assert other_tenant.list_jobs().expect_json(200)["items"] == [], (
        "a refused run created a job")
    # A's session is untouched by B's attempts.
    got = tenant.request("GET", f"/v1/sessions/{sid}").expect_json(200)
    assert got["updated_at"] == s["updated_at"] and got["runs_total"] == 0, got
    rows = stack.sql("SELECT count(*) FROM sessions WHERE id = :'p1'", sid)
    assert rows == [["1"]], rows


def test_unknown_and_malformed_ids_are_404(tenant):
    unknown = str(uuid.uuid4())
    for path in (f"/v1/sessions/{unknown}", "/v1/sessions/not-a-uuid",
                 f"/v1/sessions/{unknown}x", "/v1/sessions/" + "a" * 100):
        tenant.request("GET", path).expect_problem(404)
        tenant.request("DELETE", path).expect_problem(404)


@pytest.mark.parametrize("method,path,allow", [
    ("PUT", "/v1/sessions", "GET, POST"),
    ("DELETE", "/v1/sessions", "GET, POST"),
    ("POST", f"/v1/sessions/{uuid.uuid4()}", "GET, DELETE"),
    ("PATCH", f"/v1/sessions/{uuid.uuid4()}", "GET, DELETE"),
])
def test_wrong_method_is_405_with_allow(tenant, method, path, allow):
    r = tenant.request(method, path, raw=b"{}")
    r.expect_problem(405)
    assert r.header("Allow") == allow, r.describe()


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1/sessions"), ("GET", "/v1/sessions"),
    ("GET", f"/v1/sessions/{uuid.uuid4()}"),
    ("DELETE", f"/v1/sessions/{uuid.uuid4()}"),
])
def test_sessions_need_a_token(tenant, method, path):
    r = tenant.request(method, path, body={} if method == "POST" else None,
                       token=None)
    r.expect_problem(401)
    bad = tenant.make_token(secret="not-the-secret")
    tenant.request(method, path, body={} if method == "POST" else None,
                   token=bad).expect_problem(401)
    _assert_no_sessions(tenant)
