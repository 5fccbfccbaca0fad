"""GET /v1/models and the model check of POST /v1/agent-runs: the
model_defaults rows a tenant sees (global and its own, never another
tenant's), the configured providers' model (served by a second gateway
started here with AGENTGATE_LLM_PROVIDERS set, on the same database), and
no secret ever shown. POST /v1/models, PATCH and DELETE /v1/models/{id}:
a tenant writes only its own rows, strictly checked."""

import http.client
import json
import os
import time
import uuid

import pytest

from agentgate_test.client import Resp
from agentgate_test.paths import bin_path
from agentgate_test.ports import free_port
from agentgate_test.services import own_process
from agentgate_test.waiting import TIMEOUT

BUILTIN_MODEL = "builtin-deterministic-1"
SECRET_KEY = "sk-it-" + uuid.uuid4().hex
PROVIDER_URL = "http://127.0.0.1:9/it-never-shown/v1"
CONFIGURED_MODEL = "it-configured-" + uuid.uuid4().hex[:8]
MODEL_FIELDS = {"id", "model", "provider", "scope", "is_default"}


def _models(tenant, request=None):
    r = (request or tenant.request)("GET", "/v1/models")
    body = r.expect_json(200)
    assert set(body) == {"items", "truncated"} and body["truncated"] is False, body
    for m in body["items"]:
        assert MODEL_FIELDS - {"id"} <= set(m), m
        assert ("id" in m) == (m["scope"] != "config"), m
        assert set(m) <= MODEL_FIELDS | {"providers"}, f"unexpected fields: {m}"
    return body["items"], r.body


def _no_id(m):
    assert isinstance(m["id"], str) and m["id"].isdigit(), m
    return {k: v for k, v in m.items() if k != "id"}


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
    builtin = [_no_id(m) for m in items if m["model"] == BUILTIN_MODEL]
    assert builtin == [{"model": BUILTIN_MODEL, "provider": "builtin",
                        "scope": "global", "is_default": True}], items
    assert b"base_url" not in raw and b"params" not in raw, raw


def test_tenant_models_are_its_own(stack, tenant, other_tenant):
    mine = "it-model-" + uuid.uuid4().hex[:8]
    _add_model(stack, tenant.tenant_id, mine, default=True)
    items, raw = _models(tenant)
    assert _no_id(items[0]) == {"model": mine, "provider": "it-provider",
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


@pytest.mark.parametrize("method,path,allow", [
    ("DELETE", "/v1/models", "GET, POST"),
    ("PATCH", "/v1/models", "GET, POST"),
    ("GET", "/v1/models/1", "PATCH, DELETE"),
    ("POST", "/v1/models/1", "PATCH, DELETE"),
])
def test_wrong_method_is_405_with_allow(tenant, method, path, allow):
    r = tenant.request(method, path, raw=b"{}")
    r.expect_problem(405)
    assert r.header("Allow") == allow, r.describe()


def test_models_need_a_token(tenant):
    tenant.request("GET", "/v1/models", token=None).expect_problem(401)
    tenant.request("GET", "/v1/models",
                   token=tenant.make_token(tenant_id=None)).expect_problem(401)


# -- a gateway with configured providers ---------------------------------------

@pytest.fixture(scope="module")
def configured_gateway(stack):
    """A second gateway on the stack's database and Redis whose settings
    name two providers and a model. Its log is under the stack's logs/, so
    the suite's sanitizer scan reads it too."""
    port = free_port()
    env = dict(os.environ,
               AGENTGATE_LISTEN=f"127.0.0.1:{port}",
               AGENTGATE_GATEWAY_THREADS="1",
               AGENTGATE_LLM_PROVIDERS=f"primary={PROVIDER_URL}, backup={PROVIDER_URL}",
               AGENTGATE_LLM_API_KEYS=f"primary={SECRET_KEY},backup={SECRET_KEY}",
               AGENTGATE_LLM_MODEL=CONFIGURED_MODEL)
    log_path = os.path.join(stack.dir, "logs", "gateway-models-test.log")
    argv = [bin_path("agentgate-gateway"), "--config", os.path.join(stack.dir, "agentgate.env")]

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

    with own_process(argv, env, log_path) as proc:
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert proc.poll() is None, (
                f"the second gateway exited {proc.returncode}; see {log_path}")
            try:
                if request("GET", "/v1/health/live").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the second gateway did not start"
            time.sleep(0.05)
        yield request


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


# -- POST /v1/models, PATCH and DELETE /v1/models/{id} ---------------------------

def _create(tenant, request=None, expect=201, **body):
    body.setdefault("provider", "builtin")
    body.setdefault("model", "it-own-" + uuid.uuid4().hex[:8])
    r = (request or tenant.request)("POST", "/v1/models", body=body)
    if expect != 201:
        return r.expect_problem(expect)
    m = r.expect_json(201)
    assert r.header("Location") == f"/v1/models/{m['id']}", r.describe()
    return m


def _row(stack, model_id):
    return stack.sql("SELECT scope, tenant_id, provider, model, coalesce(base_url, '-'),"
                     " params::text, is_default FROM model_defaults WHERE id = :'p1'",
                     model_id)


def test_create_update_delete_a_tenant_model(stack, tenant):
    m = _create(tenant, params={"api_key": SECRET_KEY, "temperature": 0.5})
    assert set(m) == MODEL_FIELDS and m["scope"] == "tenant" and m["provider"] == "builtin"
    assert m["is_default"] is False, m
    assert SECRET_KEY not in str(m)
    rows = _row(stack, m["id"])
    assert rows[0][:5] == ["tenant", tenant.tenant_id, "builtin", m["model"], "-"], rows
    assert m in _models(tenant)[0]
    # The new model can be named in a run.
    run = _start_run(tenant, model=m["model"]).expect_json(202)
    tenant.wait_run(run["id"])

    # PATCH is a merge patch: params members merge, others stay.
    p = tenant.request("PATCH", f"/v1/models/{m['id']}",
                       body={"is_default": True, "params": {"temperature": None, "top_p": 1}})
    got = p.expect_json(200)
    assert got == dict(m, is_default=True), got
    params = json.loads(_row(stack, m["id"])[0][5])
    assert params == {"api_key": SECRET_KEY, "top_p": 1}, params

    renamed = "it-renamed-" + uuid.uuid4().hex[:6]
    got = tenant.request("PATCH", f"/v1/models/{m['id']}",
                         body={"model": renamed}).expect_json(200)
    assert got["model"] == renamed and got["is_default"] is True, got

    r = tenant.request("DELETE", f"/v1/models/{m['id']}")
    r.expect(204)
    assert _row(stack, m["id"]) == []
    tenant.request("DELETE", f"/v1/models/{m['id']}").expect_problem(404)
    tenant.request("PATCH", f"/v1/models/{m['id']}", body={}).expect_problem(404)


def test_one_default_per_tenant(stack, tenant):
    a = _create(tenant, is_default=True)
    b = _create(tenant, is_default=True)
    defaults = [x["id"] for x in _models(tenant)[0]
                if x["scope"] == "tenant" and x["is_default"]]
    assert defaults == [b["id"]], defaults
    tenant.request("PATCH", f"/v1/models/{a['id']}", body={"is_default": True}).expect_json(200)
    defaults = [x["id"] for x in _models(tenant)[0]
                if x["scope"] == "tenant" and x["is_default"]]
    assert defaults == [a["id"]], defaults


def test_global_and_other_tenants_rows_are_404(stack, tenant, other_tenant):
    theirs = _create(other_tenant)
    (glob_id,), = stack.sql("SELECT id FROM model_defaults WHERE scope = 'global'"
                            " AND model = :'p1'", BUILTIN_MODEL)[0:1]
    for mid in (theirs["id"], glob_id, "999999999999", "abc", "0", "1" * 30):
        p = tenant.request("PATCH", f"/v1/models/{mid}",
                           body={"model": "stolen"}).expect_problem(404)
        assert p["detail"] == "no model with this id", p
        tenant.request("DELETE", f"/v1/models/{mid}").expect_problem(404)
    assert _row(stack, theirs["id"])[0][3] == theirs["model"]
    assert len(_row(stack, glob_id)) == 1


@pytest.mark.parametrize("body,pointer", [
    ({"model": "m"}, "/provider"),
    ({"provider": "openai", "model": "m"}, "/provider"),
    ({"provider": 5, "model": "m"}, "/provider"),
    ({"provider": "builtin"}, "/model"),
    ({"provider": "builtin", "model": ""}, "/model"),
    ({"provider": "builtin", "model": "has space"}, "/model"),
    ({"provider": "builtin", "model": "x" * 128}, "/model"),
    ({"provider": "builtin", "model": "m", "base_url": "http://10.0.0.1/v1"}, "/base_url"),
    ({"provider": "builtin", "model": "m", "params": [1]}, "/params"),
    ({"provider": "builtin", "model": "m", "params": {"x": "y" * 17000}}, "/params"),
    ({"provider": "builtin", "model": "m", "is_default": "yes"}, "/is_default"),
    ({"provider": "builtin", "model": "m", "scope": "global"}, "/scope"),
    ({"provider": "builtin", "model": "m", "tenant_id": "other"}, "/tenant_id"),
])
def test_bad_model_is_422_and_creates_nothing(stack, tenant, body, pointer):
    p = tenant.request("POST", "/v1/models", body=body).expect_problem(422)
    assert [e["pointer"] for e in p["errors"]] == [pointer], p
    assert stack.sql("SELECT count(*) FROM model_defaults WHERE tenant_id = :'p1'",
                     tenant.tenant_id) == [["0"]]


def test_bad_patch_is_422_and_changes_nothing(stack, tenant):
    m = _create(tenant)
    before = _row(stack, m["id"])
    for body, pointer in (({"provider": "nope"}, "/provider"), ({"model": None}, "/model"),
                          ({"is_default": None}, None), ({"scope": "global"}, "/scope")):
        r = tenant.request("PATCH", f"/v1/models/{m['id']}", body=body)
        if pointer is None:
            r.expect_json(200)     # null removes is_default: false
            continue
        p = r.expect_problem(422)
        assert [e["pointer"] for e in p["errors"]] == [pointer], p
    assert _row(stack, m["id"]) == before


def test_configured_providers_can_be_named(stack, configured_gateway, tenant):
    via = _via(configured_gateway, tenant)
    m = _create(tenant, via, provider="backup")
    assert m["provider"] == "backup", m
    # The main gateway has no configured providers: only builtin there.
    _create(tenant, expect=422, provider="backup")
    # A provider with a configured API key keeps its address: the key
    # would otherwise go to a URL the tenant chose.
    p = _create(tenant, via, expect=422, provider="primary",
                base_url="http://attacker.example/v1")
    assert [e["pointer"] for e in p["errors"]] == ["/base_url"], p
    _create(tenant, via, provider="primary", base_url=PROVIDER_URL + "/")
    p = via("PATCH", f"/v1/models/{m['id']}", {"base_url": "https://elsewhere.example/v1"})
    p.expect_problem(422)
    assert _row(stack, m["id"])[0][4] == "-"


def test_model_writes_follow_the_matrix(stack, tenant):
    m = _create(tenant)
    for role, create, update, delete in (("operator", 201, 200, 403),
                                         ("user", 403, 403, 403),
                                         ("viewer", 403, 403, 403)):
        tok = tenant.make_token(roles=[role], scope="models:read models:write")
        r = tenant.request("POST", "/v1/models",
                           body={"provider": "builtin", "model": "r-" + role}, token=tok)
        r.expect(create)
        tenant.request("PATCH", f"/v1/models/{m['id']}", body={}, token=tok).expect(update)
        tenant.request("DELETE", f"/v1/models/{m['id']}", token=tok).expect(delete)
    assert len(_row(stack, m["id"])) == 1


# -- one row per model and provider -------------------------------------------

def test_the_same_model_and_provider_twice_is_409(stack, tenant, other_tenant):
    m = _create(tenant)
    p = _create(tenant, expect=409, model=m["model"])
    assert p["type"] == "urn:agentgate:problem:conflict", p
    assert stack.sql("SELECT count(*) FROM model_defaults WHERE tenant_id = :'p1'",
                     tenant.tenant_id) == [["1"]]
    # Another tenant's rows are its own business.
    _create(other_tenant, model=m["model"])
    # A PATCH that would make a second row of the pair is refused too, and
    # changes nothing.
    other = _create(tenant)
    before = _row(stack, other["id"])
    tenant.request("PATCH", f"/v1/models/{other['id']}",
                   body={"model": m["model"]}).expect_problem(409)
    assert _row(stack, other["id"]) == before


def test_a_model_may_name_several_providers_its_fallback_chain(stack, configured_gateway,
                                                               tenant):
    via = _via(configured_gateway, tenant)
    m = _create(tenant, via)
    chained = _create(tenant, via, provider="backup", model=m["model"])
    assert chained["model"] == m["model"] and chained["provider"] == "backup"
    _create(tenant, via, expect=409, provider="backup", model=m["model"])


MIGRATION_012 = os.path.join(os.path.dirname(__file__), "..", "..", "sql", "migrations",
                             "012_models_unique.sql")


def test_the_migration_keeps_the_oldest_of_existing_duplicates(stack, tenant):
    # Run 012's statements again, in a transaction rolled back at the end,
    # over duplicates written as they could have been before it.
    with open(MIGRATION_012, encoding="utf-8") as f:
        migration = f.read()
    t, m = tenant.tenant_id, "dup-" + uuid.uuid4().hex[:8]
    script = f"""
BEGIN;
DROP INDEX model_defaults_tenant_model_provider;
INSERT INTO model_defaults (scope, tenant_id, provider, model, params, is_default)
VALUES ('tenant', :'p1', 'builtin', :'p2', '{{"n": 1}}', false),
       ('tenant', :'p1', 'builtin', :'p2', '{{"n": 2}}', true),
       ('tenant', :'p1', 'builtin', :'p2', '{{"n": 3}}', false),
       ('tenant', :'p1', 'it-other', :'p2', '{{"n": 4}}', false);
{migration}
SELECT provider, params->>'n', is_default FROM model_defaults
 WHERE tenant_id = :'p1' AND model = :'p2' ORDER BY id;
ROLLBACK;
"""
    rows = stack.sql(script, t, m)
    # The oldest builtin row stays and takes the default mark of the one
    # deleted; the other provider's row (the chain) stays as it was.
    assert rows == [["builtin", "1", "t"], ["it-other", "4", "f"]], rows
    assert stack.sql("SELECT count(*) FROM model_defaults WHERE model = :'p1'", m) == [["0"]]
