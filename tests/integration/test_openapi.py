"""GET /openapi.json against the real gateway: the document it serves is
the one `agentgate-gateway --openapi` prints (which `make openapi-lint`
lints), every operation in it is a route the gateway answers (never its
"no such endpoint" 404, never 405), every route of router.c's table is in
it, every problem slug the gateway's sources send is one of its problem
types, every operation has an id and every body a schema, and the
gateway's real answers (jobs, runs, sessions, the operator routes,
problems) fit the schemas the document gives for their status."""

import json
import os
import re
import subprocess
import uuid

from agentgate_test.paths import REPO, bin_path

METHODS = ("get", "post", "put", "patch", "delete")


def served(tenant):
    r = tenant.request("GET", "/openapi.json", token=None)
    doc = r.expect_json(200)
    assert r.content_type.startswith("application/json"), r.describe()
    return r, doc


def operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def router_rows():
    """(VERB, pattern, route id, needs_auth) of each row of router.c's table."""
    with open(os.path.join(REPO, "gateway", "core", "router.c")) as f:
        src = f.read()
    rows = re.findall(r'\{\s*VERB_(\w+),\s*"([^"]+)",\s*(ROUTE_\w+),\s*([01])\s*\}', src)
    assert len(rows) > 30, "could not read router.c's route table"
    return rows


def shape(path):
    """A path with its parameters made alike: /v1/jobs/{id} -> /v1/jobs/{}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_document_is_served_without_a_token_with_an_etag(tenant):
    r, doc = served(tenant)
    assert doc["openapi"] == "3.1.0"
    etag = r.header("ETag")
    assert etag and etag.startswith('"'), r.describe()
    again = tenant.request("GET", "/openapi.json", token=None,
                           headers={"If-None-Match": etag})
    again.expect(304)
    assert again.body == b""


def test_served_document_is_the_dumped_one(tenant):
    _, doc = served(tenant)
    out = subprocess.run([bin_path("agentgate-gateway"), "--openapi"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == doc


def test_every_route_of_the_router_is_in_the_document(tenant):
    _, doc = served(tenant)
    have = {(shape(p), m) for p, m, _ in operations(doc)}
    for verb, pattern, route, needs_auth in router_rows():
        want = (re.sub(r"[*+]", "{}", pattern), verb.lower())
        assert want in have, f"{route} ({verb} {pattern}) is not in /openapi.json"
        op = doc["paths"][[p for p in doc["paths"] if shape(p) == want[0]][0]][want[1]]
        assert (op["security"] == []) == (needs_auth == "0"), (
            f"{route}: security {op['security']} but needs_auth {needs_auth}")
    assert len(have) == len(router_rows()), "the document has operations router.c lacks"


def example_path(path):
    """path with each parameter filled with something that names nothing."""
    fill = {"id": str(uuid.uuid4()), "name": "no-such-name", "file": "no-such-file.js"}
    return re.sub(r"\{([^}]*)\}", lambda m: fill.get(m.group(1), "x"), path)


def test_every_operation_is_answered_by_the_gateway(tenant):
    """A fresh tenant (nothing of it exists, so nothing real changes) calls
    each operation: whatever the answer (a 403 for a scope it lacks, a 404
    for an object that does not exist), the router must know the route."""
    _, doc = served(tenant)
    for path, method, op in operations(doc):
        url = example_path(path)
        body = {} if "requestBody" in op else None
        r = tenant.request(method.upper(), url, body=body)
        assert r.status != 405, f"{op['operationId']}: {r.describe()}"
        if r.status == 404:
            p = r.json()
            assert p.get("detail") != "no such endpoint", (
                f"{op['operationId']} ({method.upper()} {path}) is not a route: {r.describe()}")


def test_a_method_the_document_lacks_is_405(tenant):
    """Each documented path exists in the router: a method it does not
    list is 405 with Allow, not 404."""
    _, doc = served(tenant)

    def methods_for(url):
        # Every documented path the URL fits ("/v1/dead-letters/retry" is
        # also a "/v1/dead-letters/{id}"), as the router matches them.
        found = set()
        for path, item in doc["paths"].items():
            pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]*\}", path))
            if re.fullmatch(pattern, url):
                found |= {m for m in item if m in METHODS}
        return found

    for path, item in doc["paths"].items():
        url = example_path(path)
        r = tenant.request("PUT", url)
        assert "put" not in item
        assert r.status == 405, f"PUT {path}: {r.describe()}"
        allow = {m.strip().lower() for m in r.header("Allow").split(",")}
        assert allow == methods_for(url), f"{url}: Allow {allow}"


def test_operations_have_ids_and_bodies_have_schemas(tenant):
    _, doc = served(tenant)
    ids = [op.get("operationId") for _, _, op in operations(doc)]
    assert all(ids), "an operation lacks operationId"
    assert len(ids) == len(set(ids)), "an operationId is used twice"
    for path, method, op in operations(doc):
        if "requestBody" in op:
            for media in op["requestBody"]["content"].values():
                assert "schema" in media, f"{method} {path}: body without a schema"
        for status, answer in op["responses"].items():
            for media in answer.get("content", {}).values():
                assert "schema" in media, f"{method} {path} {status}: no schema"


def source_problem_slugs():
    """Every slug the gateway's C sources answer a problem with."""
    slugs = set()
    call = re.compile(r'(?:http_reply_problem|http_write_raw_problem|answer_and_close)'
                      r'\([^;]*?\b\d{3}\s*,\s*"([a-z][a-z-]*)"', re.S)
    assign = re.compile(r'\bslug\s*=\s*"([a-z][a-z-]*)"')
    for root, _, files in os.walk(os.path.join(REPO, "gateway")):
        for name in files:
            if name.endswith(".c"):
                with open(os.path.join(root, name)) as f:
                    src = f.read()
                slugs.update(call.findall(src))
                slugs.update(assign.findall(src))
    assert "not-found" in slugs and "request-timeout" in slugs, slugs
    return slugs


def test_problem_types_are_the_ones_the_gateway_sends(tenant):
    _, doc = served(tenant)
    prefix = "urn:agentgate:problem:"
    listed = {t[len(prefix):] for t in
              doc["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]}
    sent = source_problem_slugs()
    assert sent - listed == set(), (
        f"problems sent but missing from openapi.c's problems[]: {sorted(sent - listed)}")
    assert listed - sent == set(), (
        f"problems listed in openapi.c that no source sends: {sorted(listed - sent)}")


def test_job_bodies_offer_the_types_the_gateway_accepts(tenant):
    _, doc = served(tenant)
    choices = doc["components"]["schemas"]["JobCreate"]["discriminator"]["mapping"]
    assert {"demo", "test", "long-running"} <= set(choices)
    assert "agent.run" not in choices and "mcp.discover" not in choices
    for type_ in choices:
        r = tenant.request("POST", "/v1/jobs",
                           body={"type": type_, "payload": {"nonsense": 1}})
        p = r.expect_problem(422)
        assert p["type"].endswith("validation-failed"), (type_, p)


# --------------------------------------------------------------------------
# The gateway's real answers against the document's schemas
# --------------------------------------------------------------------------

def resolve(doc, schema):
    while "$ref" in schema:
        at = doc
        for key in schema["$ref"][2:].split("/"):
            at = at[key]
        schema = at
    return schema


def problems_of(doc, schema, value, where="$"):
    """What is wrong with value under schema: the JSON Schema keywords the
    document uses (type, enum, const, required, properties,
    additionalProperties, items, oneOf, minimum, maximum)."""
    s = resolve(doc, schema)
    out = []
    types = s.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        kinds = {"null": value is None, "boolean": isinstance(value, bool),
                 "object": isinstance(value, dict), "array": isinstance(value, list),
                 "string": isinstance(value, str),
                 "integer": isinstance(value, int) and not isinstance(value, bool),
                 "number": isinstance(value, (int, float)) and not isinstance(value, bool)}
        if not any(kinds[t] for t in types):
            return [f"{where}: {value!r} is not {'/'.join(types)}"]
    if "enum" in s and value not in s["enum"]:
        out.append(f"{where}: {value!r} is not one of {s['enum']}")
    if "const" in s and value != s["const"]:
        out.append(f"{where}: {value!r} is not {s['const']!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in s and value < s["minimum"]:
            out.append(f"{where}: {value} < {s['minimum']}")
        if "maximum" in s and value > s["maximum"]:
            out.append(f"{where}: {value} > {s['maximum']}")
    if isinstance(value, dict):
        props = s.get("properties", {})
        out += [f"{where}: lacks {k}" for k in s.get("required", []) if k not in value]
        for k, v in value.items():
            if k in props:
                out += problems_of(doc, props[k], v, f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                out.append(f"{where}: has {k}, which the schema does not allow")
            elif isinstance(s.get("additionalProperties"), dict):
                out += problems_of(doc, s["additionalProperties"], v, f"{where}.{k}")
    if isinstance(value, list) and "items" in s:
        for i, v in enumerate(value):
            out += problems_of(doc, s["items"], v, f"{where}[{i}]")
    if "oneOf" in s:
        fits = [c for c in s["oneOf"] if not problems_of(doc, c, value, where)]
        if len(fits) != 1:
            out.append(f"{where}: fits {len(fits)} of oneOf, not exactly one")
    return out


def operation_for(doc, method, url):
    path_only = url.split("?")[0]
    found = None
    for path, item in doc["paths"].items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]*\}", path))
        if re.fullmatch(pattern, path_only) and method.lower() in item:
            # A literal path wins over a parameter ("/v1/dead-letters/retry").
            if "{" not in path or path_only == path:
                return item[method.lower()]
            found = item[method.lower()]
    assert found, f"{method} {url} is in no path of the document"
    return found


def check_answer(doc, tenant, method, url, body=None, token=True):
    """Calls the gateway and checks its answer against the operation's
    declared answer for that status; returns the parsed body."""
    r = tenant.request(method, url, body=body, token=token)
    op = operation_for(doc, method, url)
    answer = op["responses"].get(str(r.status))
    assert answer is not None, (
        f"{op['operationId']} answered {r.status}, which the document does not list: "
        f"{r.describe()}")
    answer = resolve(doc, answer)
    content = answer.get("content", {})
    if not content:
        assert r.body == b"", f"{op['operationId']} {r.status}: a body the document lacks"
        return None
    media = r.content_type.split(";")[0].strip()
    assert media in content or "*/*" in content, (
        f"{op['operationId']} {r.status}: {media} is not in {list(content)}")
    if not media.endswith("json"):
        return r.body
    value = r.json()
    wrong = problems_of(doc, content[media]["schema"], value)
    assert not wrong, f"{op['operationId']} {r.status}: " + "; ".join(wrong) + f"\n{value}"
    return value


def test_answers_fit_the_documented_schemas(stack):
    t = stack.tenant("oa")
    _, doc = served(t)
    job = check_answer(doc, t, "POST", "/v1/jobs",
                       {"type": "demo", "payload": {"events": 2, "duration_ms": 50}})
    assert not problems_of(doc, {"$ref": "#/components/schemas/JobCreate"},
                           {"type": "demo", "payload": {"events": 2, "duration_ms": 50}})
    t.wait_job(job["id"])
    check_answer(doc, t, "GET", f"/v1/jobs/{job['id']}")
    check_answer(doc, t, "GET", "/v1/jobs?limit=5")
    check_answer(doc, t, "DELETE", f"/v1/jobs/{job['id']}")             # 409 problem

    failed = t.submit("test", {"outcome": "fail"})
    t.wait_job(failed["id"])
    check_answer(doc, t, "GET", "/v1/dead-letters")
    check_answer(doc, t, "POST", f"/v1/jobs/{failed['id']}/retry")

    session = check_answer(doc, t, "POST", "/v1/sessions", {"title": "t"})
    run = check_answer(doc, t, "POST", "/v1/agent-runs",
                       {"prompt": "hello", "session_id": session["id"]})
    t.wait_run(run["id"])
    check_answer(doc, t, "GET", f"/v1/agent-runs/{run['id']}")
    check_answer(doc, t, "GET", "/v1/agent-runs")
    check_answer(doc, t, "GET", f"/v1/sessions/{session['id']}")
    check_answer(doc, t, "GET", "/v1/sessions")

    for url in ("/v1/tools", "/v1/models", "/v1/tenants", f"/v1/tenants/{t.tenant_id}",
                "/v1/queues", "/v1/workers", "/v1/health/live", "/v1/health/ready",
                "/v1/health/components", f"/v1/jobs/{uuid.uuid4()}"):
        check_answer(doc, t, "GET", url)
    check_answer(doc, t, "GET", "/v1/jobs", token=None)                 # 401 problem
    check_answer(doc, t, "POST", "/v1/jobs", {"type": "nope"})          # 422 problem
