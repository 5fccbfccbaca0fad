"""GET /v1/jobs: newest first, keyset pagination, filters, bad parameters."""

import pytest


def _walk(tenant, **params):
    """Every item over all pages; checks page sizes and the cursor chain."""
    limit = params.get("limit")
    items, cursor, pages = [], None, 0
    while True:
        page = tenant.list_jobs(cursor=cursor, **params).expect_json(200)
        assert set(page) >= {"items", "next_cursor"}, page
        pages += 1
        assert pages <= 50, "pagination does not end"
        if limit is not None:
            assert len(page["items"]) <= limit, (
                f"page of {len(page['items'])} items with limit={limit}")
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert isinstance(cursor, str) and cursor, page
        assert page["items"], f"an empty page with a next_cursor: {page}"


def test_pagination_walks_every_job_once_newest_first(tenant):
    ids = [tenant.submit("demo", {"events": 0, "duration_ms": 0})["id"]
           for _ in range(5)]
    items = _walk(tenant, limit=2)
    got = [j["id"] for j in items]
    assert len(got) == len(set(got)), f"a job listed twice: {got}"
    assert got == list(reversed(ids)), (
        f"listing is not every job newest first:\n got {got}\n want "
        f"{list(reversed(ids))}")
    for j in items:
        assert {"id", "type", "status", "created_at", "links"} <= set(j), j
    stamps = [j["created_at"] for j in items]
    assert stamps == sorted(stamps, reverse=True), stamps

    one_page = tenant.list_jobs(limit=200).expect_json(200)
    assert [j["id"] for j in one_page["items"]] == got
    assert one_page["next_cursor"] is None


def test_status_and_type_filters(tenant):
    ok = [tenant.submit("demo", {"events": 0, "duration_ms": 0})["id"]
          for _ in range(3)]
    bad = tenant.submit("test", {"outcome": "fail", "error": {"code": "E"}},
                        max_attempts=1)["id"]
    for jid in ok:
        tenant.wait_job(jid, ("succeeded",))
    tenant.wait_job(bad, ("failed",))

    failed = _walk(tenant, status="failed")
    assert [j["id"] for j in failed] == [bad], failed
    succeeded = _walk(tenant, status="succeeded", limit=2)
    assert [j["id"] for j in succeeded] == list(reversed(ok)), succeeded
    assert all(j["status"] == "succeeded" for j in succeeded)
    assert _walk(tenant, status="queued") == []
    tests = _walk(tenant, type="test")
    assert [j["id"] for j in tests] == [bad], tests
    demos = _walk(tenant, type="demo", status="failed")
    assert demos == [], demos


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "201"},
                                    {"limit": "abc"}, {"limit": "-1"},
                                    {"status": "bogus"},
                                    {"cursor": "not-a-cursor"},
                                    {"cursor": "!!!!"}])
def test_bad_list_parameters_are_400(tenant, params):
    tenant.list_jobs(**params).expect_problem(400)
