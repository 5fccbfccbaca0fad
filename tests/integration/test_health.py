"""Health endpoints: answered without a token, from the real dependencies."""

import pytest

HEALTHY = ("ok", "up", "healthy", "pass")


@pytest.mark.parametrize("path", ["/v1/health/live", "/v1/health/ready"])
def test_live_and_ready_answer_200_without_auth(stack, tenant, path):
    r = tenant.request("GET", path, token=None).expect(200)
    assert r.header("X-Request-Id"), "health response lacks X-Request-Id"


def test_components_report_postgres_and_redis(stack, tenant):
    r = tenant.request("GET", "/v1/health/components", token=None)
    body = r.expect_json(200)
    assert r.header("X-Request-Id"), "health response lacks X-Request-Id"
    assert body.get("status") in HEALTHY, (
        f"overall status {body.get('status')!r} is not healthy: {body}")
    comps = body.get("components")
    assert isinstance(comps, dict), f"no components object: {body}"
    for name in ("postgres", "redis"):
        assert name in comps, f"components lack {name}: {body}"
        assert comps[name].get("status") in HEALTHY, (
            f"{name} status {comps[name].get('status')!r} with a running "
            f"{name}: {body}")
