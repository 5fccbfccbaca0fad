"""GET /v1/tools and GET /v1/tools/{name}: the manifests a tenant sees
(its own rows over global ones, enabled only), name checks, problem
details, and tenant isolation. The rows are written here with stack.sql,
so the tests do not depend on which built-in tools are seeded."""

import json
import urllib.parse
import uuid

import pytest

TOOL_FIELDS = {"name", "description", "input_schema", "required_scopes",
               "rate_limit"}


def _name(prefix="it"):
    return f"{prefix}.tool_{uuid.uuid4().hex[:10]}"


def _add(stack, tenant_id, name, description="a test tool", schema=None,
         scopes=(), rate_limit=None, enabled=True):
    """Inserts a manifest row (tenant_id None: a global one)."""
    stack.sql("""
        INSERT INTO tool_manifests (tenant_id, name, description, input_schema,
                                    required_scopes, rate_limit, enabled)
        VALUES (nullif(:'p1', ''), :'p2', :'p3', :'p4'::jsonb,
                coalesce(string_to_array(nullif(:'p5', ''), ' '), '{}'),
                nullif(:'p6', '')::int, :'p7'::boolean)
    """, tenant_id or "", name, description,
              json.dumps(schema or {"type": "object"}), " ".join(scopes),
              "" if rate_limit is None else str(rate_limit),
              "true" if enabled else "false")


@pytest.fixture
def global_names(stack):
    """Global rows made by a test, removed after it (every tenant sees them)."""
    names = []
    yield names
    for n in names:
        stack.sql("DELETE FROM tool_manifests WHERE tenant_id IS NULL AND name = :'p1'", n)


def _tools(tenant):
    body = tenant.request("GET", "/v1/tools").expect_json(200)
    assert set(body) == {"items", "truncated"}, body
    assert body["truncated"] is False, body
    names = [t["name"] for t in body["items"]]
    assert names == sorted(names), f"tools not ordered by name: {names}"
    assert len(names) == len(set(names)), f"a tool listed twice: {names}"
    return {t["name"]: t for t in body["items"]}


def _get(tenant, name):
    return tenant.request("GET", "/v1/tools/" + urllib.parse.quote(name, safe=""))


def test_tenant_tool_is_listed_and_fetched_with_its_manifest(stack, tenant):
    name = _name()
    schema = {"type": "object", "properties": {"q": {"type": "string"}},
              "required": ["q"]}
    _add(stack, tenant.tenant_id, name, "Searches the test corpus.", schema,
         ("tools:search", "corpus:read"), 30)
    listed = _tools(tenant)
    assert name in listed, f"{name} not in {sorted(listed)}"
    t = listed[name]
    assert TOOL_FIELDS <= set(t), t
    assert t["description"] == "Searches the test corpus."
    assert t["input_schema"] == schema
    assert t["required_scopes"] == ["tools:search", "corpus:read"]
    assert t["rate_limit"] == 30
    got = _get(tenant, name).expect_json(200)
    assert got == t, f"GET /v1/tools/{name} differs from its listing:\n{got}\n{t}"
    for t in listed.values():
        assert TOOL_FIELDS <= set(t), t
        assert isinstance(t["required_scopes"], list), t


def test_tenant_row_overrides_the_global_one(stack, tenant, other_tenant,
                                             global_names):
    name = _name("itg")
    global_names.append(name)
    _add(stack, None, name, "the global one", scopes=("a",), rate_limit=5)
    _add(stack, tenant.tenant_id, name, "the tenant's own", scopes=("b",))
    mine = _tools(tenant)[name]
    theirs = _tools(other_tenant)[name]
    assert mine["description"] == "the tenant's own" and mine["required_scopes"] == ["b"], mine
    assert mine["rate_limit"] is None, mine
    assert theirs["description"] == "the global one" and theirs["rate_limit"] == 5, theirs
    assert _get(tenant, name).expect_json(200) == mine
    assert _get(other_tenant, name).expect_json(200) == theirs


def test_disabled_rows_are_hidden_and_a_disabled_tenant_row_withdraws_a_global_tool(
        stack, tenant, other_tenant, global_names):
    hidden, withdrawn = _name("itg"), _name("itg")
    global_names.extend([hidden, withdrawn])
    _add(stack, None, hidden, "disabled for all", enabled=False)
    _add(stack, None, withdrawn, "global, enabled")
    _add(stack, tenant.tenant_id, withdrawn, "off for this tenant", enabled=False)
    own_off = _name()
    _add(stack, tenant.tenant_id, own_off, "tenant's, disabled", enabled=False)

    mine = _tools(tenant)
    assert hidden not in mine and withdrawn not in mine and own_off not in mine, sorted(mine)
    for n in (hidden, withdrawn, own_off):
        _get(tenant, n).expect_problem(404)
    theirs = _tools(other_tenant)
    assert withdrawn in theirs and hidden not in theirs, sorted(theirs)
    _get(other_tenant, withdrawn).expect_json(200)


def test_other_tenant_does_not_see_a_tenant_tool(stack, tenant, other_tenant):
    name = _name()
    _add(stack, tenant.tenant_id, name, "A's private tool")
    assert name in _tools(tenant)
    assert name not in _tools(other_tenant)
    p = _get(other_tenant, name).expect_problem(404)
    assert "private" not in json.dumps(p), p


def test_a_128_character_name_is_served(stack, tenant):
    name = ("it." + uuid.uuid4().hex + "x" * 128)[:128]
    _add(stack, tenant.tenant_id, name, "long name")
    assert _get(tenant, name).expect_json(200)["name"] == name
    assert name in _tools(tenant)


@pytest.mark.parametrize("name", [
    "no-such-tool-" + uuid.uuid4().hex, "bad name", "semi;colon", "x" * 129,
    "quote'", "per%cent", "ünïcode",
])
def test_unknown_or_malformed_tool_name_is_404(tenant, name):
    p = _get(tenant, name).expect_problem(404)
    assert p["type"].endswith("not-found"), p


def test_tool_path_does_not_take_extra_segments(tenant):
    for path in ("/v1/tools/", "/v1/tools/a/b", "/v1/tools//x"):
        tenant.request("GET", path).expect_problem(404)


@pytest.mark.parametrize("method,path", [
    ("POST", "/v1/tools"), ("DELETE", "/v1/tools"),
    ("POST", "/v1/tools/system.time"), ("DELETE", "/v1/tools/system.time"),
])
def test_wrong_method_is_405_with_allow(tenant, method, path):
    r = tenant.request(method, path, raw=b"{}")
    r.expect_problem(405)
    assert r.header("Allow") == "GET", r.describe()


@pytest.mark.parametrize("path", ["/v1/tools", "/v1/tools/system.time"])
def test_tools_need_a_token(tenant, path):
    tenant.request("GET", path, token=None).expect_problem(401)
    expired = tenant.make_token(exp=1000, iat=900)
    tenant.request("GET", path, token=expired).expect_problem(401)
