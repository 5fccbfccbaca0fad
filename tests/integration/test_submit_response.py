"""The 202 of POST /v1/jobs is rendered by the gateway (gateway/api/api_util.c)
from what the insert returns (sql/migrations/009_submit.sql), not by
PostgreSQL: it must stay byte for byte what GET /v1/jobs/{id} answers
for the same fresh job. The statements behind it are prepared once per
database connection, so they must also survive a PostgreSQL restart."""
import datetime
import threading

from agentgate_test.stack import stack_dep, wait_ready


def _future(days=30, micro=123456):
    """An RFC 3339 time far enough ahead that no worker claims the job
    (so GET still shows it queued), with sub-millisecond digits to check
    the truncation to milliseconds."""
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    at = at.replace(microsecond=micro)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _post_raw(tenant, body):
    r = tenant.request("POST", "/v1/jobs", body=body)
    job = r.expect_json(202)
    return r, job


def _assert_same_bytes(tenant, body):
    posted, job = _post_raw(tenant, body)
    got = tenant.request("GET", f"/v1/jobs/{job['id']}").expect(200)
    assert posted.body == got.body, (
        f"202 body differs from GET body:\n 202: {posted.body!r}\n GET: {got.body!r}")
    return job


def test_202_body_is_the_get_body_byte_for_byte(tenant):
    tricky = {"q": 'a"b\\c', "ctl": "\u0001\u001f\t\n\r\b\f", "snow": "\u2603 \U0001f600",
              # Numbers as the gateway keeps them exactly (a 20-digit one that a
              # double does not hold is refused: test_errors.py).
              "num": [1.50, 1e2, -0.0, 0.1, 12345678901234567000, -7],
              "zz": {"b": 1, "a": 2, "longer": 3}, "null": None, "empty": "", "t": True}
    bodies = [
        {"type": "test", "payload": {"outcome": "succeed", "result": tricky},
         "run_at": _future(), "priority": -1000, "max_attempts": 100, "timeout_s": 86400},
        {"type": "demo", "payload": {"events": 1, "duration_ms": 0},
         "run_at": _future(days=200, micro=999999), "priority": 1000},
        {"type": "test", "payload": {"outcome": "fail"}, "run_at": _future(micro=0)},
    ]
    for body in bodies:
        job = _assert_same_bytes(tenant, body)
        assert job["status"] == "queued" and job["last_event_id"] == 1, job
        assert job["run_at"].endswith("Z") and len(job["run_at"]) == 24, job
        assert job["created_at"].endswith("Z") and len(job["created_at"]) == 24, job


def test_run_at_in_the_past_is_rendered_as_stored(tenant):
    # A past run_at is kept (the job runs at once): 1 ms after the epoch is
    # what the gateway stores for any time before 1970.
    r, job = _post_raw(tenant, {"type": "test", "payload": {"outcome": "succeed"},
                                "run_at": "1969-12-31T23:59:59.999Z"})
    assert job["run_at"] == "1970-01-01T00:00:00.001Z", job
    row = tenant.stack.sql(
        "SELECT api_ts(run_at), api_ts(created_at) FROM jobs WHERE id = :'p1'", job["id"])
    assert row == [[job["run_at"], job["created_at"]]], (row, job)


def test_jobs_of_two_tenants_in_one_batch_each_stay_their_own(tenant, other_tenant):
    n = 40
    results, errors = {}, []

    def submit(who, i):
        try:
            body = {"type": "test", "payload": {"outcome": "succeed", "result": {"i": i}},
                    "run_at": _future()}
            results[(who.tenant_id, i)] = _post_raw(who, body)
        except BaseException as e:          # reported by the main thread
            errors.append(f"{who.tenant_id} {i}: {e}")

    threads = [threading.Thread(target=submit, args=(t, i))
               for i in range(n) for t in (tenant, other_tenant)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(results) == 2 * n
    for (tid, i), (posted, job) in results.items():
        owner, stranger = (tenant, other_tenant) if tid == tenant.tenant_id \
            else (other_tenant, tenant)
        assert job["payload"] == {"outcome": "succeed", "result": {"i": i}}, job
        got = owner.request("GET", f"/v1/jobs/{job['id']}").expect(200)
        assert got.body == posted.body
        stranger.request("GET", f"/v1/jobs/{job['id']}").expect_problem(404)
    owners = tenant.stack.sql(
        "SELECT tenant_id, count(*) FROM jobs WHERE id = ANY(:'p1'::uuid[])"
        " GROUP BY tenant_id ORDER BY tenant_id",
        "{" + ",".join(job["id"] for _, job in results.values()) + "}")
    assert sorted(owners) == sorted([[tenant.tenant_id, str(n)],
                                     [other_tenant.tenant_id, str(n)]]), owners


def test_prepared_statements_survive_a_postgres_restart(stack, tenant):
    before = _assert_same_bytes(tenant, {"type": "test", "payload": {"outcome": "succeed"},
                                         "run_at": _future()})
    stack_dep(stack, "pg", "restart")
    wait_ready()
    # New connections: every statement is prepared again on first use.
    for _ in range(3):
        _assert_same_bytes(tenant, {"type": "test", "payload": {"outcome": "succeed"},
                                    "run_at": _future()})
    assert tenant.get_job(before["id"])["id"] == before["id"]
    items = tenant.list_jobs(limit=5).expect_json(200)["items"]
    assert items, "listing is empty after the restart"
