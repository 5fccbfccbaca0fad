"""What the logs carry: the gateway's request log (AGENTGATE_ACCESS_LOG=on)
with method, route template, status, latency_ms, request_id and tenant_id
as fields of their own; a worker's lines about a job with job_id and
tenant_id; and the journald priority prefix only when stderr is the
stream $JOURNAL_STREAM names, as under systemd.

Ports: the gateways of this file use 20420-20429."""

import json
import os
from concurrent.futures import ThreadPoolExecutor

from agentgate_test.paths import bin_path
from agentgate_test.services import own_gateway, own_process, stack_env
from agentgate_test.waiting import wait_for

ACCESS_PORT = 20420
QUIET_PORT = 20421
JOURNAL_PORT = 20422


def json_lines(text):
    """Each line's JSON object (a journald prefix "<N>" removed)."""
    out = []
    for line in text.splitlines():
        if line.startswith("<") and ">" in line[:4]:
            line = line[line.index(">") + 1:]
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def access_lines(text):
    return [o for o in json_lines(text) if "latency_ms" in o]


def test_request_log_fields(stack, tenant):
    with own_gateway(stack, "access-log", {"AGENTGATE_ACCESS_LOG": "on"},
                     port=ACCESS_PORT) as g:
        auth = {"Authorization": "Bearer " + tenant.token, "X-Request-Id": "it-access-1"}
        body = json.dumps({"type": "demo", "payload": {"events": 1, "duration_ms": 0}})
        status, _, raw = g.request("POST", "/v1/jobs", body=body,
                                   headers=dict(auth, **{"Content-Type": "application/json"}))
        assert status == 202, raw
        job_id = json.loads(raw)["id"]
        auth["X-Request-Id"] = "it-access-2"
        assert g.request("GET", f"/v1/jobs/{job_id}?access_token=SECRETSECRET",
                         headers=auth)[0] == 200
        assert g.request("GET", "/no/such/thing", headers={"X-Request-Id": "it-access-3"})[0] == 404

        def lines():
            got = {o.get("request_id"): o for o in access_lines(g.log())}
            return got if {"it-access-1", "it-access-2", "it-access-3"} <= got.keys() else None
        got = wait_for(lines, what="three request log lines")

        post, get, missing = got["it-access-1"], got["it-access-2"], got["it-access-3"]
        assert post["level"] == "info"
        assert (post["method"], post["route"], post["status"]) == ("POST", "/v1/jobs", 202)
        assert (get["method"], get["route"], get["status"]) == ("GET", "/v1/jobs/{id}", 200)
        assert (missing["route"], missing["status"]) == ("unmatched", 404)
        for o in (post, get, missing):
            assert isinstance(o["latency_ms"], int) and o["latency_ms"] >= 0
        assert post["tenant_id"] == tenant.tenant_id == get["tenant_id"]
        assert "tenant_id" not in missing
        # The template, never the path as sent: no id, no query, no token.
        log = g.log()
        assert "SECRETSECRET" not in log
        assert job_id not in json.dumps(get)


def test_request_log_of_batched_submits(stack, tenant, other_tenant):
    """Submits answered together from one callback (the group commit) each
    get one line with their own request id and tenant."""
    with own_gateway(stack, "access-log-batch", {"AGENTGATE_ACCESS_LOG": "on",
                                                 "AGENTGATE_GATEWAY_THREADS": "1"},
                     port=ACCESS_PORT + 1) as g:
        def submit(i):
            who = tenant if i % 2 else other_tenant
            rid = f"it-batch-{i}"
            status, _, raw = g.request(
                "POST", "/v1/jobs", body=json.dumps({"type": "test", "payload": {"outcome": "succeed"}}),
                headers={"Authorization": "Bearer " + who.token, "X-Request-Id": rid,
                         "Content-Type": "application/json"})
            assert status == 202, raw
            return rid, who.tenant_id
        with ThreadPoolExecutor(16) as ex:
            sent = dict(ex.map(submit, range(48)))

        def lines():
            got = [o for o in access_lines(g.log()) if o.get("request_id", "").startswith("it-batch-")]
            return got if len(got) >= len(sent) else None
        got = wait_for(lines, what="a request line per submit")
        assert sorted(o["request_id"] for o in got) == sorted(sent)
        wrong = [o for o in got if o.get("tenant_id") != sent[o["request_id"]]]
        assert not wrong, wrong[:3]


def test_request_log_off_by_default(stack, tenant):
    with own_gateway(stack, "quiet", {}, port=QUIET_PORT) as g:
        assert g.request("GET", "/v1/health/live", headers={"X-Request-Id": "it-quiet"})[0] == 200
        assert g.request("GET", "/no/such/thing")[0] == 404
        assert access_lines(g.log()) == []


def test_worker_lines_carry_job_and_tenant(stack, tenant):
    job = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    tenant.wait_job(job["id"])
    logs = os.path.join(stack.dir, "logs")

    def claimed():
        for name in os.listdir(logs):
            if name.startswith("worker"):
                with open(os.path.join(logs, name), encoding="utf-8", errors="replace") as f:
                    for o in json_lines(f.read()):
                        if o.get("job_id") == job["id"]:
                            return o
        return None
    line = wait_for(claimed, what="a worker line with the job's job_id")
    assert line["tenant_id"] == tenant.tenant_id
    assert line["service"] == "worker"


def test_journald_prefix_only_on_the_journal_stream(stack, tenant):
    log_path = os.path.join(stack.dir, "logs", "gateway-journal.log")
    open(log_path, "ab").close()
    st = os.stat(log_path)
    env = stack_env(stack)
    env.update({"AGENTGATE_LISTEN": f"127.0.0.1:{JOURNAL_PORT}", "AGENTGATE_ACCESS_LOG": "on",
                "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    with own_process([bin_path("agentgate-gateway")], env, log_path):
        def answered():
            try:
                from http.client import HTTPConnection
                c = HTTPConnection("127.0.0.1", JOURNAL_PORT, timeout=2)
                c.request("GET", "/nope")
                return c.getresponse().status == 404
            except OSError:
                return False
        wait_for(answered, what="the journal gateway answering")

        def text():
            with open(log_path, encoding="utf-8") as f:
                t = f.read()
            return t if '"route":"unmatched"' in t else None
        t = wait_for(text, what="the request line")
    lines = [ln for ln in t.splitlines() if ln]
    assert lines and all(ln[:3] in ("<3>", "<4>", "<6>", "<7>") for ln in lines), lines
    for ln in lines:
        level = json.loads(ln[3:])["level"]
        assert ln[:3] == {"debug": "<7>", "info": "<6>", "warn": "<4>", "error": "<3>"}[level]
    # The stack's gateway runs without JOURNAL_STREAM: plain JSON lines.
    with open(os.path.join(stack.dir, "logs", "gateway.log"), encoding="utf-8") as f:
        lines = [ln for ln in f.read().splitlines() if not ln.startswith("--- ")]
    assert lines and all(ln.startswith("{") for ln in lines), lines[:3]
