"""Retention: a worker's maintenance deletes finished jobs older than
their tenant's retention (settings.retention_days, else
AGENTGATE_RETENTION_DAYS) with their events, agent run and steps, and
audit rows older than AGENTGATE_AUDIT_RETENTION_DAYS, through the two
functions of sql/migrations/016_retention.sql, one worker at a time under
an advisory lock, and counts what it deleted in
agentgate_retention_deleted_rows_total{table}.

Rows are made old by writing their times with SQL as the owner (a DBA's
backdating); everything else is the real stack. The module runs one worker
of its own with a short retention interval (the session stack's workers
keep the default hour, so they do not run a round during the test); it
serves only bench.ticker, which these tests never submit.
"""

import os
import re
import subprocess
import urllib.request
import uuid

import pytest

from agentgate_test.paths import bin_path
from agentgate_test.ports import free_port, port_free
from agentgate_test.services import own_process, stack_env
from agentgate_test.stack import redis
from agentgate_test.waiting import wait_for

METRICS_PORT = 20610 if port_free(20610) else free_port()
WORKER_ID = "retention-it"
BATCH = 100
# The session advisory lock a retention round holds (worker/runtime/retention.c).
LOCK = "1634169445, 1"
LOCK_SKIPPED = "another worker holds the retention lock; round skipped"
TABLES = ("jobs", "job_events", "agent_runs", "steps", "audit_logs")


@pytest.fixture(scope="module")
def worker(stack):
    env = stack_env(stack)
    env.update({
        "AGENTGATE_WORKER_ID": WORKER_ID,
        "AGENTGATE_WORKER_QUEUES": "bench.ticker",
        "AGENTGATE_WORKER_CONCURRENCY": "1",
        "AGENTGATE_RETENTION_INTERVAL_MS": "300",
        "AGENTGATE_RETENTION_BATCH": str(BATCH),
        "AGENTGATE_WORKER_METRICS_LISTEN": f"127.0.0.1:{METRICS_PORT}",
        "AGENTGATE_LOG_LEVEL": "debug",
    })
    log_path = os.path.join(stack.dir, "logs", f"worker-{WORKER_ID}.log")
    with own_process([bin_path("agentgate-worker")], env, log_path) as proc:
        wait_for(lambda: proc.poll() is None and _scrape(quiet=True) is not None,
                 what="the retention worker's /metrics")
        proc.log_path = log_path
        yield proc
        assert proc.poll() is None, "the retention worker exited:\n" + _log(proc)


def _log(proc):
    with open(proc.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _scrape(quiet=False):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics",
                                    timeout=5) as r:
            return r.read().decode()
    except OSError:
        if quiet:
            return None
        raise


def _deleted():
    """agentgate_retention_deleted_rows_total by table, from the worker."""
    text = _scrape()
    out = {}
    for t in TABLES:
        m = re.search(r'^agentgate_retention_deleted_rows_total\{table="%s"\} (\S+)$' % t,
                      text, re.M)
        assert m, f"no deleted-rows series for {t}:\n{text}"
        out[t] = float(m.group(1))
    return out


def _job(stack, tenant_id, status, days_ago, events=1, job_id=None):
    """A job of tenant_id written as the owner: status, finished days_ago
    (None: not finished), with `events` events. Returns its id."""
    job_id = job_id or str(uuid.uuid4())
    # One statement: the worker may delete the job as soon as it is committed.
    stack.sql(
        "WITH j AS ("
        " INSERT INTO jobs (id, tenant_id, type, status, payload, created_by,"
        "                   created_at, started_at, finished_at, heartbeat_at,"
        "                   worker_id, attempts, last_event_id)"
        " VALUES (:'p1', :'p2', 'test', :'p3', '{}', 'retention-it',"
        "         now() - interval '400 days', now() - interval '400 days',"
        "         CASE WHEN :'p4' = '' THEN NULL"
        "              ELSE now() - make_interval(days => nullif(:'p4', '')::int) END,"
        "         CASE WHEN :'p3' = 'running' THEN now() + interval '1 day' END,"
        "         CASE WHEN :'p3' = 'running' THEN 'retention-it-elsewhere' END,"
        "         1, :'p5'::int) RETURNING id, tenant_id)"
        " INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
        " SELECT j.id, j.tenant_id, s, 'job.progress', '{}'"
        "   FROM j, generate_series(1, :'p5'::int) s",
        job_id, tenant_id, status, "" if days_ago is None else days_ago, events)
    return job_id


def _exists(stack, job_id):
    return stack.sql("SELECT count(*) FROM jobs WHERE id = :'p1'", job_id) == [["1"]]


def _count(stack, table, column, value):
    return int(stack.sql(f"SELECT count(*) FROM {table} WHERE {column} = :'p1'", value)[0][0])


def _audit(stack, tenant_id, days_ago):
    return stack.sql(
        "INSERT INTO audit_logs (tenant_id, principal, action, resource, outcome, created_at)"
        " VALUES (:'p1', 'retention-it', 'jobs.create', 'jobs', 'allowed',"
        "         now() - make_interval(days => :'p2'::int)) RETURNING id",
        tenant_id, days_ago)[0][0]


def _audit_exists(stack, audit_id):
    return stack.sql("SELECT count(*) FROM audit_logs WHERE id = :'p1'", audit_id) == [["1"]]


def _gone(stack, job_id):
    wait_for(lambda: not _exists(stack, job_id), what=f"job {job_id} deleted by retention")


def _cleanup(stack, *job_ids):
    stack.sql("DELETE FROM jobs WHERE id = ANY (string_to_array(:'p1', ',')::uuid[])",
              ",".join(job_ids))


# --------------------------------------------------------------------------


def test_old_finished_jobs_go_with_everything_of_theirs(stack, tenant, worker):
    before = _deleted()
    # A real agent run, finished, with its events, steps and Redis keys.
    run = tenant.request("POST", "/v1/agent-runs",
                         body={"prompt": "say hello"}).expect_json(202)
    tenant.wait_run(run["id"])
    run_job = run["job_id"]
    steps = int(stack.sql("SELECT count(*) FROM steps s JOIN agent_runs r ON r.id = s.run_id"
                          " WHERE r.job_id = :'p1'", run_job)[0][0])
    events = _count(stack, "job_events", "job_id", run_job)
    assert steps > 0 and events > 1, (steps, events)
    assert redis("EXISTS", f"jobs:state:{run_job}", f"jobs:events:{run_job}").strip() == "2"

    # In the dead-letter log before its row exists: the worker may delete
    # the row as soon as it is written.
    old_failed = str(uuid.uuid4())
    redis("LPUSH", "jobs:dead", old_failed)
    _job(stack, tenant.tenant_id, "failed", 45, events=3, job_id=old_failed)
    old_cancelled = _job(stack, tenant.tenant_id, "cancelled", 31)
    recent = _job(stack, tenant.tenant_id, "succeeded", 29)
    # Unfinished jobs stay however old they are.
    queued = _job(stack, tenant.tenant_id, "queued", None)
    stack.sql("UPDATE jobs SET run_at = now() + interval '1 year' WHERE id = :'p1'", queued)
    running = _job(stack, tenant.tenant_id, "running", None)
    stack.sql("UPDATE jobs SET finished_at = now() - interval '40 days' WHERE id = :'p1'",
              run_job)
    try:
        for j in (run_job, old_failed, old_cancelled):
            _gone(stack, j)
        assert _count(stack, "agent_runs", "job_id", run_job) == 0
        assert _count(stack, "job_events", "job_id", run_job) == 0
        assert _count(stack, "job_events", "job_id", old_failed) == 0
        assert stack.sql("SELECT count(*) FROM steps WHERE run_id = :'p1'",
                         run["id"]) == [["0"]]
        for j in (recent, queued, running):
            assert _exists(stack, j), j
            assert _count(stack, "job_events", "job_id", j) == 1, j
        # What Redis held of them went too.
        assert redis("EXISTS", f"jobs:state:{run_job}", f"jobs:events:{run_job}").strip() == "0"
        assert old_failed not in redis("LRANGE", "jobs:dead", "0", "-1").split()
        # Counted: at least what this test deleted (the session's other
        # tenants have nothing this old).
        after = _deleted()
        assert after["jobs"] - before["jobs"] >= 3, (before, after)
        assert after["job_events"] - before["job_events"] >= events + 4, (before, after)
        assert after["agent_runs"] - before["agent_runs"] >= 1, (before, after)
        assert after["steps"] - before["steps"] >= steps, (before, after)
        # The API no longer knows the deleted job.
        tenant.request("GET", f"/v1/jobs/{old_failed}").expect_problem(404)
    finally:
        _cleanup(stack, recent, queued, running)


def test_a_tenants_retention_days_overrides_the_default(stack, tenant, other_tenant, worker):
    path = f"/v1/tenants/{tenant.tenant_id}"
    for bad in (0, 3651, 1.5, "30", -1):
        p = tenant.request("PATCH", path,
                           body={"settings": {"retention_days": bad}}).expect_problem(422)
        assert "retention_days" in p["detail"], p
    t = tenant.request("PATCH", path,
                       body={"settings": {"retention_days": 90}}).expect_json(200)
    assert t["settings"] == {"retention_days": 90}, t
    other_tenant.request("PATCH", f"/v1/tenants/{other_tenant.tenant_id}",
                         body={"settings": {"retention_days": 5}}).expect_json(200)

    long_kept = _job(stack, tenant.tenant_id, "succeeded", 40)    # default would delete
    long_gone = _job(stack, tenant.tenant_id, "succeeded", 91)
    short_gone = _job(stack, other_tenant.tenant_id, "succeeded", 6)  # default would keep
    short_kept = _job(stack, other_tenant.tenant_id, "failed", 4)
    try:
        _gone(stack, long_gone)
        _gone(stack, short_gone)
        # Each tenant's jobs were judged in the same statement as its
        # deleted one.
        assert _exists(stack, long_kept) and _exists(stack, short_kept)
    finally:
        _cleanup(stack, long_kept, short_kept)


def test_audit_rows_have_a_retention_of_their_own(stack, tenant, worker):
    # A tenant's own retention is for its jobs: it does not shorten its
    # audit trail.
    tenant.request("PATCH", f"/v1/tenants/{tenant.tenant_id}",
                   body={"settings": {"retention_days": 1}}).expect_json(200)
    before = _deleted()
    very_old = _audit(stack, tenant.tenant_id, 366)
    old = _audit(stack, tenant.tenant_id, 200)       # past the jobs' 30 days, not the audit's
    recent = _audit(stack, tenant.tenant_id, 1)
    wait_for(lambda: not _audit_exists(stack, very_old), what="the 366-day audit row deleted")
    assert _audit_exists(stack, old) and _audit_exists(stack, recent)
    assert _deleted()["audit_logs"] - before["audit_logs"] >= 1


def test_a_backlog_goes_in_batches(stack, tenant, worker):
    before = _deleted()
    n = BATCH * 2 + 50
    stack.sql(
        "WITH j AS (INSERT INTO jobs (id, tenant_id, type, status, payload, created_by,"
        "                             finished_at, last_event_id)"
        "           SELECT gen_random_uuid(), :'p1', 'test', 'succeeded', '{}', 'retention-it',"
        "                  now() - interval '60 days' - s * interval '1 second', 1"
        "             FROM generate_series(1, :'p2'::int) s RETURNING id, tenant_id)"
        " INSERT INTO job_events (job_id, tenant_id, seq, type, body)"
        " SELECT id, tenant_id, 1, 'job.queued', '{}' FROM j",
        tenant.tenant_id, n)
    wait_for(lambda: _count(stack, "jobs", "tenant_id", tenant.tenant_id) == 0,
             what=f"{n} old jobs deleted")
    assert _count(stack, "job_events", "tenant_id", tenant.tenant_id) == 0
    after = _deleted()
    assert after["jobs"] - before["jobs"] >= n, (before, after)
    assert after["job_events"] - before["job_events"] >= n, (before, after)


def test_one_worker_at_a_time(stack, tenant, worker):
    """While another session holds the retention lock, the worker's rounds
    are skipped (and say so); once it is released, they delete again."""
    holder = subprocess.Popen(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               stack.owner_url],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    old = None
    try:
        # 'held' is printed once the lock is ours (a round of the worker
        # may hold it for a moment first).
        holder.stdin.write(f"SELECT pg_advisory_lock({LOCK});\nSELECT 'held';\n")
        holder.stdin.flush()
        lines = []
        while not lines or lines[-1] != "held":
            line = holder.stdout.readline()
            assert line, "psql ended: " + "".join(lines)
            lines.append(line.strip())
        old = _job(stack, tenant.tenant_id, "succeeded", 100)
        skipped = _log(worker).count(LOCK_SKIPPED)
        wait_for(lambda: _log(worker).count(LOCK_SKIPPED) >= skipped + 2,
                 what="two rounds skipped while the lock is held elsewhere")
        assert _exists(stack, old)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    _gone(stack, old)


def test_the_service_role_deletes_only_through_the_functions(stack, tenant, other_tenant):
    # Within retention: the module's worker, which may still be running,
    # leaves them alone.
    job = _job(stack, other_tenant.tenant_id, "succeeded", 1)
    audit = _audit(stack, other_tenant.tenant_id, 1)
    try:
        for sql in ("DELETE FROM jobs", "DELETE FROM job_events", "DELETE FROM agent_runs",
                    "DELETE FROM audit_logs", "TRUNCATE steps"):
            r = stack.sql_app(sql, tenant=other_tenant.tenant_id, check=False)
            assert r.returncode != 0 and "permission denied" in r.stderr, (sql, r.stderr)
        # The functions take no ids, tenants or dates, and refuse a retention
        # under one day or an outsized batch.
        for sql in ("SELECT * FROM agentgate_retention_jobs(0, 10)",
                    "SELECT * FROM agentgate_retention_jobs(-5, 10)",
                    "SELECT * FROM agentgate_retention_jobs(30, 100000)",
                    "SELECT agentgate_retention_audit(0, 10)",
                    "SELECT agentgate_retention_audit(365, 0)"):
            r = stack.sql_app(sql, check=False)
            assert r.returncode != 0 and "must be" in r.stderr, (sql, r.stderr)
        # The flag the functions set opens nothing to the service role.
        rows = stack.sql_app(
            "SELECT set_config('agentgate.retention', 'on', false) \\g /dev/null\n"
            "SELECT set_config('agentgate.maintenance', 'on', false) \\g /dev/null\n"
            "SELECT (SELECT count(*) FROM audit_logs WHERE id = :'p1'),"
            "       (SELECT count(*) FROM jobs WHERE id = :'p2')", audit, job)
        assert rows == [["0", "0"]], rows
        assert _exists(stack, job) and _audit_exists(stack, audit)
        # PUBLIC may not call them: only the service role was granted them.
        acl = stack.sql("SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE'),"
                        "       has_function_privilege('agentgate_app', p.oid, 'EXECUTE'),"
                        "       p.prosecdef"
                        "  FROM pg_proc p WHERE p.proname LIKE 'agentgate_retention_%'"
                        " ORDER BY 1")
        assert acl == [["agentgate_retention_audit", "f", "t", "t"],
                       ["agentgate_retention_jobs", "f", "t", "t"]], acl
    finally:
        _cleanup(stack, job)
        stack.sql("DELETE FROM audit_logs WHERE id = :'p1'", audit)


@pytest.mark.parametrize("setting,value", [
    ("AGENTGATE_RETENTION_DAYS", "0"),
    ("AGENTGATE_AUDIT_RETENTION_DAYS", "36501"),
    ("AGENTGATE_RETENTION_INTERVAL_MS", "-1"),
    ("AGENTGATE_RETENTION_BATCH", "10001"),
])
def test_a_bad_setting_stops_the_worker_at_start(stack, setting, value):
    env = stack_env(stack)
    env[setting] = value
    r = subprocess.run([bin_path("agentgate-worker")], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and setting in lines[0], r.stderr
