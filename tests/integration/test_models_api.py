"""GET /v1/models and the model check of POST /v1/agent-runs: the
model_defaults rows a tenant sees (global and its own, never another
tenant's), the configured providers' model (served by a second gateway
started here with AGENTGATE_LLM_PROVIDERS set, on the same database), and
no secret ever shown."""

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

from conftest import TIMEOUT, Resp

BUILTIN_MODEL = "builtin-deterministic-1"
SECRET_KEY = "sk-it-" + uuid.uuid4().hex
PROVIDER_URL = "http://127.0.0.1:9/it-never-shown/v1"
CONFIGURED_MODEL = "it-configured-" + uuid.uuid4().hex[:8]
MODEL_FIELDS = {"model", "provider", "scope", "is_default"}


def _models(tenant, request=None):
    r = (request or tenant.request)("GET", "/v1/models")
    body = r.expect_json(200)
    assert set(body) == {"items", "truncated"} and body["truncated"] is False, body
    for m in body["items"]:
        assert MODEL_FIELDS <= set(m), m
        assert set(m) <= MODEL_FIELDS | {"providers"}, f"unexpected fields: {m}"
    return body["items"], r.body


def _add_model(stack, tenant_id, model, provider="it-provider", default=False,
               base_url="http://10.9.8.7:1234/internal", params=None):
    stack.sql("""
        INSERT INTO model_defaults (scope, tenant_id, provider, model, base_url,
                                    params, is_default)
        VALUES (CASE WHEN :'p1' = '' THEN 'global' ELSE 'tenant' END,
                nullif(:'p1', ''), :'p2', :'p3', :'p4', :'p5'::jsonb, :'p6'::boolean)
    """, tenant_id or "", provider, model, base_url,
              json.dumps(params or {"api_key": SECRET_KEY}),
              "true" if default else "false")


def _start_run(tenant, request=None, **body):
    body.setdefault("prompt", "hello there")
    body.setdefault("planning_mode", "none")
    body.setdefault("response_mode", "fallback-only")
    return (request or tenant.request)("POST", "/v1/agent-runs", body=body)


def test_global_builtin_model_is_listed_without_secrets(stack, tenant):
    items, raw = _models(tenant)
    builtin = [m for m in items if m["model"] == BUILTIN_MODEL]
    assert builtin == [{"model": BUILTIN_MODEL, "provider": "builtin",
                        "scope": "global", "is_default": True}], items
    assert b"base_url" not in raw and b"params" not in raw, raw


def test_tenant_models_are_its_own(stack, tenant, other_tenant):
    mine = "it-model-" + uuid.uuid4().hex[:8]
    _add_model(stack, tenant.tenant_id, mine, default=True)
    items, raw = _models(tenant)
    assert items[0] == {"model": mine, "provider": "it-provider",
                        "scope": "tenant", "is_default": True}, (
        f"the tenant's own model is not listed first: {items}")
    assert SECRET_KEY.encode() not in raw and b"10.9.8.7" not in raw, raw
    theirs, raw_b = _models(other_tenant)
    assert mine not in [m["model"] for m in theirs], theirs
    assert mine.encode() not in raw_b
    assert BUILTIN_MODEL in [m["model"] for m in theirs]

    # The model check of a run follows the same rows.
    r = _start_run(tenant, model=mine)
    run = r.expect_json(202)
    got = tenant.request("GET", f"/v1/agent-runs/{run['id']}").expect_json(200)
    assert got["model"] == mine, got
    p = _start_run(other_tenant, model=mine).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/model"], p
    assert "model" in p["detail"], p
    assert other_tenant.list_jobs().expect_json(200)["items"] == []


def test_named_builtin_and_global_models_are_accepted(stack, tenant, request):
    run = _start_run(tenant, model=BUILTIN_MODEL).expect_json(202)
    assert tenant.wait_run(run["id"])["model"] == BUILTIN_MODEL
    glob = "it-global-" + uuid.uuid4().hex[:8]
    _add_model(stack, None, glob)
    request.addfinalizer(lambda: stack.sql(
        "DELETE FROM model_defaults WHERE scope = 'global' AND model = :'p1'", glob))
    _start_run(tenant, model=glob).expect_json(202)
    assert glob in [m["model"] for m in _models(tenant)[0]]


@pytest.mark.parametrize("model", ["no-such-model-" + uuid.uuid4().hex[:6],
                                   CONFIGURED_MODEL, "BUILTIN-DETERMINISTIC-1"])
def test_unknown_model_is_422_and_creates_nothing(tenant, model):
    p = _start_run(tenant, model=model).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/model"], p
    assert "model" in p["detail"], p
    assert tenant.list_jobs().expect_json(200)["items"] == []


def test_configured_model_is_not_listed_without_providers(tenant):
    assert CONFIGURED_MODEL not in [m["model"] for m in _models(tenant)[0]]


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_wrong_method_is_405_with_allow(tenant, method):
    r = tenant.request(method, "/v1/models", raw=b"{}")
    r.expect_problem(405)
    assert r.header("Allow") == "GET", r.describe()


def test_models_need_a_token(tenant):
    tenant.request("GET", "/v1/models", token=None).expect_problem(401)
    tenant.request("GET", "/v1/models",
                   token=tenant.make_token(tenant_id=None)).expect_problem(401)


# -- a gateway with configured providers ---------------------------------------

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def configured_gateway(stack):
    """A second gateway on the stack's database and Redis whose settings
    name two providers and a model. Its log is under the stack's logs/, so
    the suite's sanitizer scan reads it too."""
    bindir = os.path.abspath(os.environ.get(
        "AGENTGATE_BIN", os.path.join(os.path.dirname(__file__), "..", "..",
                                      "build", "bin")))
    port = _free_port()
    env = dict(os.environ,
               AGENTGATE_LISTEN=f"127.0.0.1:{port}",
               AGENTGATE_GATEWAY_THREADS="1",
               AGENTGATE_LLM_PROVIDERS=f"primary={PROVIDER_URL}, backup={PROVIDER_URL}",
               AGENTGATE_LLM_API_KEYS=f"primary={SECRET_KEY},backup={SECRET_KEY}",
               AGENTGATE_LLM_MODEL=CONFIGURED_MODEL)
    log = open(os.path.join(stack.dir, "logs", "gateway-models-test.log"), "ab")
    proc = subprocess.Popen(
        [os.path.join(bindir, "agentgate-gateway"), "--config",
         os.path.join(stack.dir, "agentgate.env")],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def request(method, path, body=None, token=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            h = {"Accept": "application/json"}
            if token:
                h["Authorization"] = "Bearer " + token
            raw = None if body is None else json.dumps(body).encode()
            if raw is not None:
                h["Content-Type"] = "application/json"
            conn.request(method, path, body=raw, headers=h)
            r = conn.getresponse()
            return Resp(method, path, r.status, r.headers, r.read())
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert proc.poll() is None, (
                f"the second gateway exited {proc.returncode}; see {log.name}")
            try:
                if request("GET", "/v1/health/live").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the second gateway did not start"
            time.sleep(0.05)
        yield request
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _via(gw, tenant):
    return lambda method, path, body=None: gw(method, path, body, tenant.token)


def test_configured_model_is_listed_with_provider_names_only(configured_gateway,
                                                              tenant):
    items, raw = _models(tenant, _via(configured_gateway, tenant))
    conf = [m for m in items if m["scope"] == "config"]
    assert conf == [{"model": CONFIGURED_MODEL, "provider": "primary",
                     "providers": ["primary", "backup"], "scope": "config",
                     "is_default": True}], items
    assert BUILTIN_MODEL in [m["model"] for m in items]
    assert SECRET_KEY.encode() not in raw, raw
    assert b"it-never-shown" not in raw and b"127.0.0.1:9" not in raw, raw


def test_configured_model_is_accepted_by_that_gateway_only(stack, configured_gateway,
                                                           tenant):
    via = _via(configured_gateway, tenant)
    run = _start_run(tenant, via, model=CONFIGURED_MODEL).expect_json(202)
    rows = stack.sql("SELECT model FROM agent_runs WHERE id = :'p1'", run["id"])
    assert rows == [[CONFIGURED_MODEL]], rows
    # The gateway without providers does not serve it.
    _start_run(tenant, model=CONFIGURED_MODEL).expect_problem(422)
    # Nor does the configured one serve a model nobody has.
    p = _start_run(tenant, via, model="nobody-serves-this").expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == ["/model"], p
    tenant.wait_run(run["id"])
