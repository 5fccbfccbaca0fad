"""Schedules: POST/GET/PATCH/DELETE /v1/schedules, next_run_at as the
cron expression and time zone say, validation that changes nothing, RBAC
and tenant isolation; and the workers' firing: each tick exactly once with
several workers racing, a tick missed while every worker was down fires
once on return, a worker SIGKILLed on its way loses nothing.

Ticks are made due without waiting for the clock: the schedules fire
yearly ("0 0 1 1 *", so no real tick comes during a test) and the test
moves next_run_at back to a past January 1st in SQL, as if the workers
had been down since, and they fire it on their next round."""

import datetime
import time
import uuid
from zoneinfo import ZoneInfo

from agentgate_test.waiting import wait_for

SCHEDULE_FIELDS = ("id", "name", "cron", "timezone", "paused", "next_run_at",
                   "last_tick_at", "job", "agent_run", "recent_ticks",
                   "created_by", "created_at", "updated_at", "links")

JOB = {"type": "test", "payload": {"outcome": "succeed"}}


def _ts(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _create(tenant, body, expect=201):
    r = tenant.request("POST", "/v1/schedules", body=body)
    if expect != 201:
        return r.expect_problem(expect)
    s = r.expect_json(201)
    for f in SCHEDULE_FIELDS:
        assert f in s, f"schedule lacks {f!r}: {s}"
    assert r.header("Location") == f"/v1/schedules/{s['id']}", r.header("Location")
    assert s["links"]["self"] == f"/v1/schedules/{s['id']}", s
    return s


def _get(tenant, sid, expect=200):
    r = tenant.request("GET", f"/v1/schedules/{sid}")
    return r.expect_json(200) if expect == 200 else r.expect_problem(expect)


def _patch(tenant, sid, body, expect=200):
    r = tenant.request("PATCH", f"/v1/schedules/{sid}", body=body)
    return r.expect_json(200) if expect == 200 else r.expect_problem(expect)


def _list(tenant, token=True):
    items, cursor = [], None
    for _ in range(50):
        q = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = tenant.request("GET", "/v1/schedules" + q, token=token).expect_json(200)
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("schedule pagination does not end")


YEARLY = "0 0 1 1 *"


def _make_due(stack, sid, year):
    """Moves the schedule's next tick back to January 1st of year, 00:00
    UTC (a tick of YEARLY); returns that tick."""
    tick = f"{year}-01-01T00:00:00.000Z"
    rows = stack.sql("UPDATE schedules SET next_run_at = :'p2'::timestamptz"
                     " WHERE id = :'p1'::uuid RETURNING id", sid, tick)
    assert len(rows) == 1, rows
    return tick


def _ticks(stack, sid):
    return stack.sql(
        "SELECT to_char(tick_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'), job_id,"
        " coalesce(run_id::text, ''), worker_id FROM schedule_ticks"
        " WHERE schedule_id = :'p1'::uuid ORDER BY tick_at", sid)


def _fired(tenant, sid, n):
    """Waits until the schedule shows n ticks and a next_run_at in the
    future again; returns it."""
    def done():
        s = _get(tenant, sid)
        if len(s["recent_ticks"]) >= n and s["next_run_at"] and \
                _ts(s["next_run_at"]) > datetime.datetime.now(datetime.timezone.utc):
            return s
        return None
    return wait_for(done, what=f"schedule {sid} fired {n} ticks")


# --------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------

def test_create_read_pause_change_delete(tenant):
    s = _create(tenant, {"name": "nightly", "cron": "*/5 * * * *",
                         "timezone": "Europe/Berlin", "job": JOB})
    assert s["cron"] == "*/5 * * * *" and s["timezone"] == "Europe/Berlin", s
    assert s["paused"] is False and s["recent_ticks"] == [], s
    assert s["job"] == {"type": "test", "payload": {"outcome": "succeed"}, "priority": 0,
                        "max_attempts": 1, "timeout_s": 300}, s
    assert s["agent_run"] is None and s["created_by"] == tenant.sub, s
    nxt = _ts(s["next_run_at"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert now < nxt <= now + datetime.timedelta(minutes=5), s
    assert nxt.minute % 5 == 0 and nxt.second == 0, s

    assert _get(tenant, s["id"]) == s
    assert [x["id"] for x in _list(tenant)] == [s["id"]]

    renamed = _patch(tenant, s["id"], {"name": "hourly-ish"})
    assert renamed["name"] == "hourly-ish", renamed
    assert renamed["next_run_at"] == s["next_run_at"], renamed

    paused = _patch(tenant, s["id"], {"paused": True})
    assert paused["paused"] is True and paused["next_run_at"] is None, paused

    # Weekdays at 09:00 in New York: the next such instant, as zoneinfo says.
    changed = _patch(tenant, s["id"], {"paused": False, "cron": "0 9 * * mon-fri",
                                      "timezone": "America/New_York", "name": None})
    assert changed["paused"] is False and changed["name"] is None, changed
    local = _ts(changed["next_run_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute, local.second) == (9, 0, 0), changed
    assert local.weekday() < 5, changed
    assert _ts(changed["next_run_at"]) - now <= datetime.timedelta(days=3, hours=1), changed

    r = tenant.request("DELETE", f"/v1/schedules/{s['id']}")
    assert r.status == 204, r.describe()
    _get(tenant, s["id"], expect=404)
    tenant.request("DELETE", f"/v1/schedules/{s['id']}").expect_problem(404)
    assert _list(tenant) == []


def test_created_paused_has_no_next_run(tenant):
    s = _create(tenant, {"cron": "@daily", "job": JOB, "paused": True})
    assert s["paused"] is True and s["next_run_at"] is None, s
    assert s["timezone"] == "UTC", s
    resumed = _patch(tenant, s["id"], {"paused": False})
    nxt = _ts(resumed["next_run_at"])
    assert (nxt.hour, nxt.minute) == (0, 0), resumed


def test_bad_input_is_422_with_its_pointer_and_changes_nothing(tenant):
    cases = [
        ({"job": JOB}, "/cron"),
        ({"cron": "61 * * * *", "job": JOB}, "/cron"),
        ({"cron": "* * * *", "job": JOB}, "/cron"),
        ({"cron": "0 0 30 2 *", "job": JOB}, "/cron"),
        ({"cron": "* * * * *", "timezone": "Mars/Olympus_Mons", "job": JOB}, "/timezone"),
        ({"cron": "* * * * *", "timezone": "../../etc/passwd", "job": JOB}, "/timezone"),
        ({"cron": "* * * * *"}, "/job"),
        ({"cron": "* * * * *", "job": JOB, "agent_run": {"prompt": "x"}}, "/agent_run"),
        ({"cron": "* * * * *", "job": {"type": "nope"}}, "/job/type"),
        ({"cron": "* * * * *", "job": {"type": "agent.run", "payload": {}}}, "/job/type"),
        ({"cron": "* * * * *", "job": {"type": "test", "payload": {"outcome": 3}}},
         "/job/payload/outcome"),
        ({"cron": "* * * * *", "job": dict(JOB, priority=5000)}, "/job/priority"),
        ({"cron": "* * * * *", "job": dict(JOB, extra=1)}, "/job/extra"),
        ({"cron": "* * * * *", "agent_run": {"planning_mode": "none"}}, "/agent_run/prompt"),
        ({"cron": "* * * * *", "agent_run": {"prompt": "x", "session_id": str(uuid.uuid4())}},
         "/agent_run/session_id"),
        ({"cron": "* * * * *", "agent_run": {"prompt": "x", "model": "no-such-model"}},
         "/agent_run/model"),
        ({"cron": "* * * * *", "job": JOB, "paused": "yes"}, "/paused"),
        ({"cron": "* * * * *", "job": JOB, "name": "n" * 129}, "/name"),
    ]
    for body, pointer in cases:
        p = _create(tenant, body, expect=422)
        assert [e["pointer"] for e in p["errors"]] == [pointer], (body, p)
    _create(tenant, {"cron": "* * * * *", "job": JOB, "when": 1}, expect=422)
    assert _list(tenant) == [], "a refused request created a schedule"

    s = _create(tenant, {"cron": "0 * * * *", "job": JOB})
    for body, pointer in [({"cron": "0 25 * * *"}, "/cron"), ({"timezone": "Nowhere"},
                          "/timezone"), ({"paused": 1}, "/paused"), ({"cron": None}, "/cron")]:
        p = _patch(tenant, s["id"], body, expect=422)
        assert [e["pointer"] for e in p["errors"]] == [pointer], (body, p)
    assert _get(tenant, s["id"]) == s, "a refused PATCH changed the schedule"


def test_a_tenant_has_at_most_1000_schedules(stack, tenant, other_tenant):
    stack.sql("INSERT INTO schedules (id, tenant_id, cron, timezone, kind, job_type,"
              " max_attempts, timeout_s, payload, next_run_at, created_by)"
              " SELECT gen_random_uuid(), :'p1', '0 0 1 1 *', 'UTC', 'job', 'test', 1, 60,"
              " '{}', now() + interval '300 days', 'seed' FROM generate_series(1, 999)",
              tenant.tenant_id)
    _create(tenant, {"cron": "0 0 1 1 *", "job": JOB})
    p = _create(tenant, {"cron": "0 0 1 1 *", "job": JOB}, expect=409)
    assert p["type"] == "urn:agentgate:problem:too-many-schedules", p
    count = stack.sql("SELECT count(*) FROM schedules WHERE tenant_id = :'p1'",
                      tenant.tenant_id)
    assert count == [["1000"]], count
    _create(other_tenant, {"cron": "0 0 1 1 *", "job": JOB})


def test_other_tenants_schedules_are_404(tenant, other_tenant):
    s = _create(tenant, {"cron": "0 * * * *", "job": JOB})
    _get(other_tenant, s["id"], expect=404)
    _patch(other_tenant, s["id"], {"paused": True}, expect=404)
    other_tenant.request("DELETE", f"/v1/schedules/{s['id']}").expect_problem(404)
    assert _list(other_tenant) == []
    assert _get(tenant, s["id"]) == s
    _get(tenant, str(uuid.uuid4()), expect=404)
    _get(tenant, "not-a-uuid", expect=404)


def test_row_level_security_holds_schedules_to_their_tenant(stack, tenant, other_tenant):
    s = _create(tenant, {"cron": YEARLY, "job": JOB})
    _make_due(stack, s["id"], 2025)
    _fired(tenant, s["id"], 1)
    for table in ("schedules", "schedule_ticks"):
        assert stack.sql_app(f"SELECT count(*) FROM {table}",
                             tenant=other_tenant.tenant_id) == [["0"]], table
        assert stack.sql_app(f"SELECT count(*) FROM {table}") == [["0"]], table
        assert stack.sql_app(f"SELECT count(*) FROM {table}",
                             tenant=tenant.tenant_id) == [["1"]], table
    r = stack.sql_app("UPDATE schedules SET paused = true RETURNING id",
                      tenant=other_tenant.tenant_id)
    assert r == [], r
    assert _get(tenant, s["id"])["paused"] is False


def test_roles_and_scopes(tenant):
    job_s = _create(tenant, {"cron": "0 * * * *", "job": JOB})
    run_s = _create(tenant, {"cron": "0 * * * *", "agent_run": {"prompt": "hi"}})

    viewer = tenant.make_token(roles=["viewer"])
    r = tenant.request("POST", "/v1/schedules", body={"cron": "0 * * * *", "job": JOB},
                       token=viewer)
    r.expect_problem(403)
    assert tenant.request("GET", f"/v1/schedules/{job_s['id']}", token=viewer).status == 200
    tenant.request("PATCH", f"/v1/schedules/{job_s['id']}", body={"paused": True},
                   token=viewer).expect_problem(403)
    tenant.request("DELETE", f"/v1/schedules/{job_s['id']}", token=viewer).expect_problem(403)

    # Jobs but not agent runs: run schedules are out of reach, and hidden.
    jobs_only = tenant.make_token(roles=["admin"], scope="jobs:read jobs:write")
    r = tenant.request("POST", "/v1/schedules", token=jobs_only,
                       body={"cron": "0 * * * *", "agent_run": {"prompt": "hi"}})
    r.expect_problem(403)
    assert [x["id"] for x in _list(tenant, token=jobs_only)] == [job_s["id"]]
    tenant.request("GET", f"/v1/schedules/{run_s['id']}", token=jobs_only).expect_problem(403)
    tenant.request("PATCH", f"/v1/schedules/{run_s['id']}", body={"paused": True},
                   token=jobs_only).expect_problem(403)
    tenant.request("DELETE", f"/v1/schedules/{run_s['id']}",
                   token=jobs_only).expect_problem(403)
    assert _get(tenant, run_s["id"])["paused"] is False
    assert sorted(x["id"] for x in _list(tenant)) == sorted([job_s["id"], run_s["id"]])


# --------------------------------------------------------------------------
# Firing
# --------------------------------------------------------------------------

def test_each_tick_fires_once_with_several_workers(stack, tenant):
    extra = (3, 4)
    for n in extra:
        stack.worker("start", n)
    try:
        ids = [_create(tenant, {"cron": YEARLY, "job": JOB})["id"] for _ in range(12)]
        for rnd in range(3):
            ticks = {sid: _make_due(stack, sid, 2025 - rnd) for sid in ids}
            for sid in ids:
                _fired(tenant, sid, rnd + 1)
            for sid in ids:
                got = _ticks(stack, sid)
                assert len(got) == rnd + 1, (sid, got)
                assert ticks[sid] in [t[0] + ".000Z" for t in got], (ticks[sid], got)
        workers = {t[3] for sid in ids for t in _ticks(stack, sid)}
        print(f"\n{len(ids)} schedules x 3 ticks fired by workers {sorted(workers)}")
    finally:
        for n in extra:
            stack.worker("stop", n)
    jobs = stack.sql("SELECT count(*), count(DISTINCT id) FROM jobs WHERE tenant_id = :'p1'",
                     tenant.tenant_id)
    assert jobs == [["36", "36"]], jobs
    s = _get(tenant, ids[0])
    assert [t["tick_at"] for t in s["recent_ticks"]] == sorted(
        (t["tick_at"] for t in s["recent_ticks"]), reverse=True), s
    for t in s["recent_ticks"]:
        assert tenant.wait_job(t["job_id"])["status"] == "succeeded"
        assert t["links"]["job"] == f"/v1/jobs/{t['job_id']}", t
    s = _get(tenant, ids[0])
    by = {t[1]: t[3] for t in _ticks(stack, ids[0])}
    print(f"schedule {s['id']} ({s['cron']} {s['timezone']}), next_run_at {s['next_run_at']}:")
    for t in s["recent_ticks"]:
        print(f"  tick {t['tick_at']} fired {t['fired_at']} by {by[t['job_id']]}"
              f" -> job {t['job_id']} {t['status']}")


def test_missed_ticks_fire_once_through_a_killed_worker(stack, tenant):
    s = _create(tenant, {"cron": YEARLY, "job": JOB})
    for n in (1, 2):
        stack.worker("stop", n)
    try:
        # Everything down since 2020: seven ticks missed.
        tick = _make_due(stack, s["id"], 2020)
        time.sleep(0.5)
        assert _ticks(stack, s["id"]) == [], "fired with no worker running"
        # A worker that comes back and is SIGKILLed at once, maybe mid-tick.
        stack.worker("start", 1)
        stack.worker("kill", 1)
    finally:
        for n in (1, 2):
            stack.worker("start", n)
    fired = _fired(tenant, s["id"], 1)
    time.sleep(2.5)     # two more firing rounds of both workers
    got = _ticks(stack, s["id"])
    assert len(got) == 1 and got[0][0] + ".000Z" == tick, (tick, got)
    again = _get(tenant, s["id"])
    assert len(again["recent_ticks"]) == 1, again
    assert again["last_tick_at"] == tick, again
    nxt = _ts(fired["next_run_at"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert nxt == datetime.datetime(now.year + 1, 1, 1, tzinfo=datetime.timezone.utc), fired
    job = tenant.wait_job(got[0][1])
    assert job["status"] == "succeeded" and job["type"] == "test", job
    print(f"\nschedule {s['id']}: seven ticks missed, one worker SIGKILLed on return;"
          f" ticks fired: {[(t[0], t[1], t[3]) for t in got]}, job {job['status']},"
          f" next_run_at {again['next_run_at']}")


def test_a_schedule_keeps_its_latest_100_ticks(stack, tenant):
    s = _create(tenant, {"cron": YEARLY, "job": JOB})
    stack.sql("INSERT INTO schedule_ticks (schedule_id, tenant_id, tick_at, job_id)"
              " SELECT :'p1'::uuid, :'p2', timestamptz '1900-01-01' + make_interval(years => g),"
              " gen_random_uuid() FROM generate_series(0, 119) g", s["id"], tenant.tenant_id)
    _make_due(stack, s["id"], 2025)
    _fired(tenant, s["id"], 1)
    rows = stack.sql("SELECT count(*), min(extract(year FROM tick_at AT TIME ZONE 'UTC')),"
                     " max(extract(year FROM tick_at AT TIME ZONE 'UTC'))"
                     " FROM schedule_ticks WHERE schedule_id = :'p1'::uuid", s["id"])
    assert rows == [["100", "1921", "2025"]], rows
    shown = _get(tenant, s["id"])["recent_ticks"]
    assert len(shown) == 10 and shown[0]["tick_at"] == "2025-01-01T00:00:00.000Z", shown
    assert shown[1]["status"] is None, shown        # a job that is not there


def test_agent_run_schedule_creates_runs(stack, tenant):
    s = _create(tenant, {"cron": "30 9 * * *", "timezone": "Asia/Kolkata",
                         "agent_run": {"prompt": "Summarise the day",
                                       "planning_mode": "none",
                                       "response_mode": "fallback-only"}})
    assert s["job"] is None and s["agent_run"]["prompt"] == "Summarise the day", s
    nxt = _ts(s["next_run_at"])
    assert (nxt.hour, nxt.minute) == (4, 0), s      # 09:30 at UTC+05:30
    stack.sql("UPDATE schedules SET next_run_at = now() - interval '1 hour'"
              " WHERE id = :'p1'::uuid", s["id"])
    fired = _fired(tenant, s["id"], 1)
    t = fired["recent_ticks"][0]
    assert t["run_id"], t
    run = tenant.wait_run(t["run_id"])
    assert run["status"] == "succeeded" and run["job_id"] == t["job_id"], run
    assert run["prompt"] == "Summarise the day" and run["session_id"] is None, run
    nxt = _ts(fired["next_run_at"])
    assert (nxt.hour, nxt.minute) == (4, 0), fired
