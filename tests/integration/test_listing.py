"""GET /v1/jobs: newest first, keyset pagination, filters, bad parameters."""

import base64

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


def _cursor(text):
    """A cursor as the API encodes one: base64url of created_at|id."""
    return base64.urlsafe_b64encode(text.encode("latin-1")).rstrip(b"=").decode()


def _decoded(cursor):
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("latin-1")


ID = "01a2511f-d563-719c-9215-bf297475e32f"

# Cursors a client could make by editing a real one: each decodes and has
# the two parts, but the time is not a time PostgreSQL printed.
TAMPERED = [
    "2026-13-45 10:00:00.123456+00", "0000-00-00 00:00:00+00", "0000-01-01 00:00:00+00",
    "2026-02-29 10:00:00+00", "2026-04-31 10:00:00+00", "2026-12-07 24:00:00+00",
    "2026-12-07 23:60:00+00", "2026-12-07 23:59:60+00", "2026-12-07 15:29:30+99",
    "2026-12-07 15:29:30.1234567+00", "2026-12-07 15:29:30", "infinity", "epoch",
    "12026-12-07 15:29:30+00", "2026-12-07 15:29:30+00 BC", "2026-12-07T15:29:30Z",
    "2026-12-07 15:29:30+00'; SELECT 1; --", "",
]


@pytest.mark.parametrize("ts", TAMPERED)
def test_tampered_cursor_is_400(tenant, ts):
    p = tenant.list_jobs(cursor=_cursor(f"{ts}|{ID}")).expect_problem(400)
    assert p["type"] == "urn:agentgate:problem:bad-query", p
    assert p["detail"] == "cursor is not one this API returned", p


def test_every_one_byte_change_of_a_cursor_is_200_or_400(tenant):
    for _ in range(3):
        tenant.submit("demo", {"events": 0, "duration_ms": 0})
    good = tenant.list_jobs(limit=1).expect_json(200)["next_cursor"]
    text = _decoded(good)
    assert "|" in text, text
    seen = {200: 0, 400: 0}
    for i in range(len(text)):
        for c in "09:-+. |aZ\x00\x7f":
            if text[i] == c:
                continue
            r = tenant.list_jobs(limit=1, cursor=_cursor(text[:i] + c + text[i + 1:]))
            assert r.status in (200, 400), f"byte {i} -> {c!r}: " + r.describe()
            if r.status == 400:
                r.expect_problem(400)
            seen[r.status] += 1
    assert seen[400] > seen[200] > 0, seen
