"""Tenant isolation: another tenant's job does not exist for you (404, never
403), cannot be cancelled by you, and is not in your listing."""

from agentgate_test.client import check_frames


def test_other_tenant_sees_404_and_cannot_cancel(tenant, other_tenant):
    a, b = tenant, other_tenant
    job = a.submit("long-running", {"duration_ms": 20000,
                                    "progress_interval_ms": 200})
    jid = job["id"]
    try:
        before = a.wait_job(jid, ("running",))

        b.request("GET", f"/v1/jobs/{jid}").expect_problem(404)
        b.sse(f"/v1/jobs/{jid}/events").response().expect_problem(404)
        b.sse(f"/v1/jobs/{jid}/events", token=None,
              access_token=b.token).response().expect_problem(404)
        b.request("DELETE", f"/v1/jobs/{jid}").expect_problem(404)

        after = a.get_job(jid)
        assert after["status"] == "running", (
            f"another tenant's DELETE changed the job: {before} -> {after}")

        listed = b.list_jobs().expect_json(200)
        assert listed["items"] == [], (
            f"a fresh tenant's listing is not empty: {listed}")
        assert listed["next_cursor"] is None, listed
        mine = a.list_jobs().expect_json(200)
        assert [j["id"] for j in mine["items"]] == [jid], mine
    finally:
        a.request("DELETE", f"/v1/jobs/{jid}")
    done = a.wait_job(jid)
    assert done["status"] == "cancelled", done


def test_same_tenant_other_user_sees_the_job(stack, tenant):
    job = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    colleague = stack.tenant(tenant_id=tenant.tenant_id, sub="colleague")
    got = colleague.get_job(job["id"])
    assert got["id"] == job["id"]
    events = colleague.events(job["id"])
    check_frames(events, job["id"])
