"""POST /v1/jobs/batch: up to 1,000 jobs, each validated as POST /v1/jobs
validates one, written all together or not at all, answered in order, and
idempotent under Idempotency-Key."""
import json
import uuid

from agentgate_test.client import TERMINAL


def job_count(stack, tenant_id):
    return int(stack.sql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'",
                         tenant_id)[0][0])


def item(i, **extra):
    body = {"type": "test", "payload": {"outcome": "succeed", "result": {"i": i}}}
    body.update(extra)
    return body


def post_batch(t, jobs, headers=None, token=True):
    return t.request("POST", "/v1/jobs/batch", raw=json.dumps({"jobs": jobs}).encode(),
                     headers=headers, token=token)


def pointers(problem):
    return [e["pointer"] for e in problem.get("errors", [])]


def test_batch_answers_the_jobs_in_order_and_runs_them(stack, tenant):
    jobs = [item(i, priority=i) for i in range(5)]
    jobs.append({"type": "demo", "payload": {"events": 1, "duration_ms": 0}})
    body = post_batch(tenant, jobs).expect_json(202)
    got = body["jobs"]
    assert len(got) == 6, body
    assert len({j["id"] for j in got}) == 6, "job ids are not distinct"
    for i in range(5):
        assert got[i]["type"] == "test" and got[i]["status"] == "queued", got[i]
        assert got[i]["payload"] == jobs[i]["payload"], got[i]
        assert got[i]["priority"] == i and got[i]["last_event_id"] == 1, got[i]
    assert got[5]["type"] == "demo", got[5]
    for i, j in enumerate(got[:5]):
        done = tenant.wait_job(j["id"], TERMINAL)
        assert done["status"] == "succeeded" and done["result"] == {"i": i}, done
    assert tenant.wait_job(got[5]["id"], TERMINAL)["status"] == "succeeded"


def test_a_thousand_jobs_are_accepted_and_one_more_is_not(stack, tenant):
    before = job_count(stack, tenant.tenant_id)
    too_many = [item(i) for i in range(1001)]
    p = post_batch(tenant, too_many).expect_problem(422)
    assert "/jobs" in pointers(p), p
    assert job_count(stack, tenant.tenant_id) == before

    jobs = [{"type": "test", "payload": {"outcome": "succeed"}} for _ in range(1000)]
    got = post_batch(tenant, jobs).expect_json(202)["jobs"]
    assert len(got) == 1000 and len({j["id"] for j in got}) == 1000
    assert job_count(stack, tenant.tenant_id) == before + 1000
    # The last one runs like any other (enqueued after the commit).
    assert tenant.wait_job(got[-1]["id"], TERMINAL)["status"] == "succeeded"


def test_an_empty_or_malformed_batch_is_422(stack, tenant):
    before = job_count(stack, tenant.tenant_id)
    p = post_batch(tenant, []).expect_problem(422)
    assert "/jobs" in pointers(p), p
    r = tenant.request("POST", "/v1/jobs/batch", body={"jobs": {"type": "test"}})
    assert "/jobs" in pointers(r.expect_problem(422))
    r = tenant.request("POST", "/v1/jobs/batch", body={"jobs": [item(0)], "extra": 1})
    assert "/extra" in pointers(r.expect_problem(422))
    assert job_count(stack, tenant.tenant_id) == before


def test_one_bad_item_refuses_the_whole_batch_naming_its_index_and_path(stack, tenant):
    before = job_count(stack, tenant.tenant_id)
    cases = [
        ({"type": "demo", "payload": {"events": "many"}}, "/jobs/3/payload/events"),
        ({"type": "nope"}, "/jobs/3/type"),
        ({"type": "agent.run", "payload": {}}, "/jobs/3/type"),
        (item(3, priority=5000), "/jobs/3/priority"),
        (item(3, run_at="yesterday"), "/jobs/3/run_at"),
        (item(3, colour="red"), "/jobs/3/colour"),
        ("not an object", "/jobs/3"),
    ]
    for bad, pointer in cases:
        jobs = [item(i) for i in range(6)]
        jobs[3] = bad
        p = post_batch(tenant, jobs).expect_problem(422)
        assert pointer in pointers(p), (pointer, p)
        assert "jobs/3" in p["detail"], p
    assert job_count(stack, tenant.tenant_id) == before, "a refused batch wrote jobs"


def test_a_failing_insert_writes_none_of_the_batch(stack, tenant):
    """All or nothing at the database too: a batch whose insert fails part
    way (here a trigger refusing its fourth job) leaves no job behind and
    enqueues nothing."""
    marker = "boom-" + uuid.uuid4().hex[:8]
    fn = "batch_test_refuse_" + marker.replace("-", "_")
    stack.sql(f"""
        CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.payload->>'marker' = '{marker}' THEN
                RAISE EXCEPTION 'refused by test trigger';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {fn} BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION {fn}();
    """)
    try:
        before = job_count(stack, tenant.tenant_id)
        jobs = [{"type": "test", "payload": {"outcome": "succeed", "result": {"i": i}}}
                for i in range(6)]
        jobs[3]["payload"]["result"] = {"i": 3}
        jobs[3]["payload"]["marker"] = marker
        r = post_batch(tenant, jobs)
        assert r.status >= 400, r.describe()
        assert job_count(stack, tenant.tenant_id) == before, "part of the batch was written"
    finally:
        stack.sql(f"DROP TRIGGER {fn} ON jobs; DROP FUNCTION {fn}();")


def test_idempotency_key_replays_the_batch_and_creates_nothing_more(stack, tenant):
    key = "batch-" + uuid.uuid4().hex
    jobs = [item(i) for i in range(3)]
    first = post_batch(tenant, jobs, headers={"Idempotency-Key": key})
    ids = [j["id"] for j in first.expect_json(202)["jobs"]]
    count = job_count(stack, tenant.tenant_id)
    again = post_batch(tenant, jobs, headers={"Idempotency-Key": key})
    assert again.expect_json(202)["jobs"] == first.json()["jobs"]
    assert again.header("Idempotent-Replayed") == "true", again.describe()
    assert job_count(stack, tenant.tenant_id) == count
    other = post_batch(tenant, [item(9)], headers={"Idempotency-Key": key})
    other.expect_problem(422)
    assert job_count(stack, tenant.tenant_id) == count
    assert all(tenant.get_job(i)["id"] == i for i in ids)


def test_batch_jobs_belong_to_the_caller_s_tenant_only(stack, tenant, other_tenant):
    got = post_batch(tenant, [item(0), item(1)]).expect_json(202)["jobs"]
    for j in got:
        other_tenant.request("GET", f"/v1/jobs/{j['id']}").expect_problem(404)
        row = stack.sql("SELECT tenant_id FROM jobs WHERE id = :'p1'", j["id"])
        assert row[0][0] == tenant.tenant_id
    listed = other_tenant.list_jobs(limit=100).expect_json(200)
    assert not {j["id"] for j in got} & {j["id"] for j in listed["items"]}


def test_batch_needs_the_permission_to_create_jobs(stack, tenant):
    before = job_count(stack, tenant.tenant_id)
    viewer = tenant.make_token(roles=["viewer"])
    post_batch(tenant, [item(0)], token=viewer).expect_problem(403)
    no_scope = tenant.make_token(scope="jobs:read")
    post_batch(tenant, [item(0)], token=no_scope).expect_problem(403)
    post_batch(tenant, [item(0)], token=None).expect_problem(401)
    assert job_count(stack, tenant.tenant_id) == before
