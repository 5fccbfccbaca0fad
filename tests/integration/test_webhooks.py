"""
Completion webhooks: the `webhook` field of jobs and agent runs and its
allow-lists, the tenant's signing secret, delivery from the outbox with
retries through a failing and a hanging receiver, the delivery log of
GET /v1/jobs/{id}/webhook-deliveries, and a worker SIGKILLed in the middle
of a delivery.

A receiver of the test's own (Receiver below) listens on the port the
session stack's allow-list admits (agentgate_test.stack.WEBHOOK_URL); each
test uses a path of its own under it, and the receiver answers each
request on that path as the test scripted it. Signatures are checked here
with Python's own HMAC, not with agentgate's code.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import threading
import time
import uuid

import pytest

from agentgate_test.stack import WEBHOOK_PORT, WEBHOOK_TIMEOUT_MS, WEBHOOK_URL
from agentgate_test.waiting import wait_for

# A delivery's lease is the attempt timeout plus the sender's margin (5 s,
# worker/runtime/webhooks.h), after which another worker claims it.
LEASE_S = WEBHOOK_TIMEOUT_MS / 1000 + 5

OK = {"outcome": "succeed"}


class Receiver:
    """A local webhook receiver. script(path, actions) sets how the next
    requests to path are answered, in order: an HTTP status (int) or
    "hang" (answer nothing until released, longer than the sender's
    timeout); once the script is used up, 200. Every request is kept."""

    def __init__(self, port):
        self.lock = threading.Lock()
        self.scripts = {}
        self.requests = []          # (path, headers, body, action)
        self.release = threading.Event()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with receiver.lock:
                    actions = receiver.scripts.get(self.path, [])
                    action = actions.pop(0) if actions else 200
                    receiver.requests.append((self.path, dict(
                        (k.lower(), v) for k, v in self.headers.items()), body, action))
                    receiver.arrived.notify_all()
                if action == "hang":
                    receiver.release.wait(30)
                    action = 200
                try:
                    self.send_response(action)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass        # the sender gave up (timeout, killed)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def script(self, path, actions):
        with self.lock:
            self.scripts[path] = list(actions)

    def on(self, path):
        with self.lock:
            return [r for r in self.requests if r[0] == path]

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver(stack):
    r = Receiver(WEBHOOK_PORT)
    try:
        yield r
    finally:
        r.stop()


def hook_path():
    return f"/hooks/{uuid.uuid4().hex}"


def hook_url(path):
    return WEBHOOK_URL.rsplit("/hooks", 1)[0] + path


def rotate_secret(tenant):
    r = tenant.request("POST", f"/v1/tenants/{tenant.tenant_id}/webhook-secret")
    body = r.expect_json(200)
    assert body["webhook_secret"].startswith("whsec_"), body
    assert len(base64.b64decode(body["webhook_secret"][6:])) == 32, body
    assert r.header("Cache-Control") == "no-store"
    return body["webhook_secret"]


def signature_ok(secret, headers, body):
    """Standard Webhooks verification, done by hand."""
    key = base64.b64decode(secret[len("whsec_"):])
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def deliveries(tenant, job_id):
    return tenant.request("GET", f"/v1/jobs/{job_id}/webhook-deliveries").expect_json(200)


def wait_delivery(tenant, job_id, states=("delivered", "failed"), timeout=40):
    def done():
        d = deliveries(tenant, job_id)
        return d if d["items"] and d["items"][0]["state"] in states else None
    return wait_for(done, timeout=timeout, what=f"webhook of job {job_id} {'/'.join(states)}")


def print_log(title, d):
    print(f"\n{title}: delivery {d['id']} ({d['event_type']} to {d['url']}) -> {d['state']}")
    for a in d["attempt_log"]:
        print(f"  attempt {a['attempt']} worker={a['worker_id']} started={a['started_at']} "
              f"status={a['status_code']} error={a['error']!r} duration_ms={a['duration_ms']}")


# --------------------------------------------------------------------------
# The field and its allow-lists
# --------------------------------------------------------------------------

@pytest.mark.parametrize("webhook", [
    123,
    "",
    "http://127.0.0.1:1/elsewhere",
    "https://example.com/hooks/x",
    "ftp://127.0.0.1/hooks/x",
    WEBHOOK_URL + "/../admin",
    WEBHOOK_URL + "/" + "x" * 2100,
])
def test_webhook_outside_the_allow_list_is_422_and_writes_nothing(tenant, webhook):
    for path, body in (("/v1/jobs", {"type": "test", "payload": OK, "webhook": webhook}),
                       ("/v1/agent-runs", {"prompt": "hi", "webhook": webhook})):
        p = tenant.request("POST", path, body=body).expect_problem(422)
        assert p["errors"][0]["pointer"] == "/webhook", p
    assert tenant.list_jobs().expect_json(200)["items"] == []


def test_tenant_allow_list_narrows_the_operators(tenant):
    inside = WEBHOOK_URL + "/team-a"
    r = tenant.request("PATCH", f"/v1/tenants/{tenant.tenant_id}",
                       body={"settings": {"webhook_url_allowlist": [inside]}})
    assert r.expect_json(200)["settings"]["webhook_url_allowlist"] == [inside]
    # The settings cache of the gateway's loop threads may hold the old
    # settings for a moment: wait until the narrower list is enforced.
    wait_for(lambda: tenant.request("POST", "/v1/jobs", body={
        "type": "test", "payload": OK, "webhook": WEBHOOK_URL + "/team-b/x"}).status == 422,
        what="the tenant's allow-list enforced")
    p = tenant.request("POST", "/v1/jobs", body={
        "type": "test", "payload": OK, "webhook": WEBHOOK_URL + "/team-b/x"}).expect_problem(422)
    assert "tenant" in p["detail"], p
    tenant.submit("test", OK, webhook=inside + "/x")
    # A bad list is refused and changes nothing.
    for bad in ("http://x/", ["ftp://x/"], ["http://a/,http://b/"], [1]):
        tenant.request("PATCH", f"/v1/tenants/{tenant.tenant_id}",
                       body={"settings": {"webhook_url_allowlist": bad}}).expect_problem(422)
    got = tenant.request("GET", f"/v1/tenants/{tenant.tenant_id}").expect_json(200)
    assert got["settings"]["webhook_url_allowlist"] == [inside]


def test_secret_rotation_is_the_tenants_own(tenant, other_tenant):
    first = rotate_secret(tenant)
    second = rotate_secret(tenant)
    assert first != second
    got = tenant.request("GET", f"/v1/tenants/{tenant.tenant_id}").expect_json(200)
    assert "webhook_secret" not in json.dumps(got) and second not in json.dumps(got)
    other_tenant.request("POST", f"/v1/tenants/{tenant.tenant_id}/webhook-secret") \
        .expect_problem(404)
    viewer = tenant.make_token(roles=["user"])
    tenant.request("POST", f"/v1/tenants/{tenant.tenant_id}/webhook-secret",
                   token=viewer).expect_problem(403)
    # Refusals changed nothing: the stored secret is still the second.
    rows = tenant.stack.sql("SELECT secret FROM tenant_webhook_secrets WHERE tenant_id = :'p1'",
                            tenant.tenant_id)
    assert rows == [[second]]


# --------------------------------------------------------------------------
# Delivery
# --------------------------------------------------------------------------

def test_delivery_retries_a_500_and_a_timeout_then_succeeds_signed(tenant, receiver):
    secret = rotate_secret(tenant)
    path = hook_path()
    receiver.script(path, [500, "hang", 200])
    job = tenant.submit("test", {"outcome": "succeed", "result": {"answer": 42}},
                        webhook=hook_url(path))
    assert tenant.wait_job(job["id"])["status"] == "succeeded"
    d = wait_delivery(tenant, job["id"])
    assert d["job_id"] == job["id"] and d["webhook"] == hook_url(path)
    item = d["items"][0]
    print_log("500, timeout, then 200", item)
    assert item["state"] == "delivered" and item["event_type"] == "job.succeeded", item
    assert item["attempts"] == 3 and item["last_status"] == 200, item
    log = item["attempt_log"]
    assert [a["attempt"] for a in log] == [1, 2, 3]
    assert log[0]["status_code"] == 500 and log[0]["error"] == "HTTP 500", log
    assert log[1]["status_code"] is None and "timed out" in log[1]["error"], log
    assert log[2]["status_code"] == 200 and log[2]["error"] is None, log
    assert all(a["finished_at"] and a["duration_ms"] is not None for a in log), log

    got = receiver.on(path)
    assert [g[3] for g in got] == [500, "hang", 200]
    ids = {g[1]["webhook-id"] for g in got}
    assert ids == {item["id"]}, "every attempt carries the same webhook-id"
    for _, headers, body, _ in got:
        assert headers["content-type"] == "application/json"
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 300
        assert signature_ok(secret, headers, body), headers
        assert not signature_ok("whsec_" + base64.b64encode(b"k" * 32).decode(), headers, body)
        event = json.loads(body)
        assert event["type"] == "job.succeeded"
        assert event["data"]["id"] == job["id"] and event["data"]["status"] == "succeeded"
        assert event["data"]["result"] == {"answer": 42}

    # Each attempt continues the job's trace: same trace id as the job's
    # stored traceparent, a span of its own.
    job_tp = tenant.stack.sql("SELECT traceparent FROM jobs WHERE id = :'p1'", job["id"])[0][0]
    assert job_tp, "the job has a traceparent"
    sent = [g[1].get("traceparent", "") for g in got]
    assert all(tp.split("-")[1] == job_tp.split("-")[1] for tp in sent), (job_tp, sent)
    assert len({tp.split("-")[2] for tp in sent} | {job_tp.split("-")[2]}) == len(sent) + 1, sent


def test_failed_and_cancelled_jobs_are_delivered_too(tenant, receiver):
    secret = rotate_secret(tenant)
    path = hook_path()
    failed = tenant.submit("test", {"outcome": "fail"}, webhook=hook_url(path))
    # Cancelled while queued (the gateway writes that terminal state).
    later = tenant.submit("test", OK, webhook=hook_url(path), run_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400)))
    tenant.request("DELETE", f"/v1/jobs/{later['id']}").expect_json(200)
    for job, kind in ((failed, "job.failed"), (later, "job.cancelled")):
        d = wait_delivery(tenant, job["id"])["items"][0]
        assert d["state"] == "delivered" and d["event_type"] == kind, d
    bodies = [json.loads(b) for _, h, b, _ in receiver.on(path) if signature_ok(secret, h, b)]
    assert sorted(b["type"] for b in bodies) == ["job.cancelled", "job.failed"]
    # A retry keeps the webhook: its own end is reported too.
    retry = tenant.request("POST", f"/v1/jobs/{failed['id']}/retry").expect_json(202)
    d = wait_delivery(tenant, retry["id"])
    assert d["webhook"] == hook_url(path) and d["items"][0]["event_type"] == "job.failed"


def test_agent_run_webhook_is_read_through_its_job(tenant, receiver):
    path = hook_path()
    r = tenant.request("POST", "/v1/agent-runs", body={
        "prompt": "What time is it in UTC?", "response_mode": "fallback-only",
        "webhook": hook_url(path)})
    run = r.expect_json(202)
    tenant.wait_run(run["id"])
    d = wait_delivery(tenant, run["job_id"])["items"][0]
    assert d["state"] == "delivered", d
    (_, _, body, _), = receiver.on(path)
    event = json.loads(body)
    assert event["data"]["id"] == run["job_id"] and event["data"]["type"] == "agent.run"


def test_deliveries_of_a_job_without_webhook_and_of_other_tenants(tenant, other_tenant,
                                                                 receiver):
    plain = tenant.submit("test", OK)
    tenant.wait_job(plain["id"])
    assert deliveries(tenant, plain["id"]) == {"job_id": plain["id"], "webhook": None,
                                               "items": []}
    path = hook_path()
    job = tenant.submit("test", OK, webhook=hook_url(path))
    wait_delivery(tenant, job["id"])
    other_tenant.request("GET", f"/v1/jobs/{job['id']}/webhook-deliveries").expect_problem(404)
    tenant.request("GET", "/v1/jobs/not-a-uuid/webhook-deliveries").expect_problem(404)
    tenant.request("GET", f"/v1/jobs/{uuid.uuid4()}/webhook-deliveries").expect_problem(404)
    # Row-level security: the services' role sees no other tenant's rows.
    rows = tenant.stack.sql_app("SELECT count(*) FROM webhook_deliveries WHERE job_id = :'p1'",
                                job["id"], tenant=other_tenant.tenant_id)
    assert rows == [["0"]]


def worker_pid(stack, n):
    with open(os.path.join(stack.dir, "pids", f"worker-{n}.pid")) as f:
        return int(f.read().strip())


def test_worker_killed_mid_delivery_another_worker_delivers(stack, tenant, receiver):
    secret = rotate_secret(tenant)
    path = hook_path()
    receiver.release.clear()
    receiver.script(path, ["hang"])
    job = tenant.submit("test", OK, webhook=hook_url(path))
    with receiver.lock:
        assert receiver.arrived.wait_for(lambda: any(r[0] == path for r in receiver.requests),
                                         timeout=20), "the first attempt never arrived"
    # The attempt is open (the receiver holds it): find its worker and kill it.
    d = deliveries(tenant, job["id"])["items"][0]
    open_attempt = d["attempt_log"][-1]
    assert open_attempt["finished_at"] is None, d
    victim = int(open_attempt["worker_id"].split("-", 1)[1])
    os.kill(worker_pid(stack, victim), signal.SIGKILL)
    try:
        # Once the lease runs out another worker claims it and delivers.
        d = wait_delivery(tenant, job["id"], timeout=LEASE_S + 20)["items"][0]
    finally:
        receiver.release.set()
        stack.worker("kill", victim)
        stack.worker("start", victim)
    print_log("worker SIGKILLed mid-delivery", d)
    assert d["state"] == "delivered" and d["attempts"] == 2, d
    first, second = d["attempt_log"]
    assert first["worker_id"] == f"local-{victim}" and first["status_code"] is None
    assert "worker lost" in first["error"], first
    assert second["worker_id"] != first["worker_id"] and second["status_code"] == 200, second
    got = receiver.on(path)
    assert len(got) == 2 and got[0][1]["webhook-id"] == got[1][1]["webhook-id"] == d["id"]
    assert all(signature_ok(secret, h, b) for _, h, b, _ in got)
