"""The web console (/console/) in a real browser: Debian's chromium,
headless, driven by chromium-driver through python3-selenium, against the
session stack. A person's paths through it: signing in and out, starting
an agent run from the form and watching the model's tokens arrive, a long
job cancelled from its page, a failed job retried, the jobs list filtered
and updating by itself, another tenant's job id shown as not found, the
operator's pages (queues, workers, dead letters with retry and discard),
and a finished job's page opening its event stream once and never again
(the console closes it on the terminal event, and a stream that does not
is stopped by the gateway's 204). The console's files themselves (CSP,
ETag, redirect, 404) are checked over plain HTTP.

Every page is photographed into AGENTGATE_SCREENSHOT_DIR (default
build/console-screenshots/), which CI keeps. The browser's console log
must show no Content-Security-Policy violation: nothing of the console is
inline."""

import time

import pytest

from agentgate_test import browser as browser_lib
from agentgate_test.client import http_request
from agentgate_test.waiting import TIMEOUT, wait_for

STORY = ["The ", "lighthouse ", "keeper ", "counted ", "ships ", "until ", "the ",
         "fog ", "lifted ", "and ", "every ", "one ", "came ", "home."]


@pytest.fixture(scope="module")
def browser(stack):
    why = browser_lib.missing()
    if why:
        pytest.fail(why, pytrace=False)
    b = browser_lib.Browser()
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture
def page(browser, tenant):
    """The browser signed in as this test's tenant; fails the test on any
    CSP violation the page reported."""
    browser.sign_in(tenant.token)
    browser.reset_logs()
    yield browser
    bad = browser.csp_violations()
    assert not bad, f"Content-Security-Policy violations: {bad}"


# --------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------

def test_console_files_are_served_with_a_strict_csp(stack):
    r = http_request("GET", "/console")
    assert r.status == 301 and r.header("Location") == "/console/", r.describe()

    r = http_request("GET", "/console/")
    assert r.status == 200, r.describe()
    assert r.content_type == "text/html"
    csp = r.header("Content-Security-Policy")
    for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                 "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert part in csp, f"CSP {csp!r} lacks {part!r}"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("Cache-Control") == "no-cache", r.header("Cache-Control")
    etag = r.header("ETag")
    assert etag and etag.startswith('"') and etag.endswith('"'), etag
    html = r.body.decode()
    assert "<script" in html and "<script>" not in html and "style=" not in html, (
        "index.html must hold no inline script or style")

    again = http_request("GET", "/console/", headers={"If-None-Match": etag})
    assert again.status == 304 and again.body == b"", again.describe()
    assert again.header("ETag") == etag

    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css"),
                        ("favicon.svg", "image/svg+xml"), ("index.html", "text/html")):
        f = http_request("GET", "/console/" + name)
        assert f.status == 200 and f.content_type == ctype, f.describe()
        assert "default-src 'self'" in f.header("Content-Security-Policy")
        head = http_request("HEAD", "/console/" + name)
        assert head.status == 200 and head.body == b"", head.describe()

    http_request("GET", "/console/nope.js").expect_problem(404)
    http_request("GET", "/console/a/b.js").expect_problem(404)
    r = http_request("POST", "/console/")
    r.expect_problem(405)
    assert r.header("Allow") == "GET"


# --------------------------------------------------------------------------
# Signing in and out
# --------------------------------------------------------------------------

def test_sign_in_rejects_a_bad_token_and_sign_out_forgets_the_token(browser, tenant):
    b = browser
    b.driver.get(browser_lib.CONSOLE_URL + "#/jobs")
    b.js("sessionStorage.clear()")
    b.driver.get(browser_lib.CONSOLE_URL + "#/jobs")
    # Signed out, any page leads to the sign-in form.
    b.wait("return location.hash.startsWith('#/signin') && document.querySelector('#token')",
           what="the sign-in page")
    b.screenshot("signin")

    forged = tenant.make_token(secret="not-the-stack-secret-" + "x" * 20)
    b.js("document.querySelector('#token').value = arguments[0]", forged)
    b.click("#signin")
    msg = b.wait("const m = document.querySelector('#signin-msg'); return m && m.innerText",
                 what="the rejection message")
    assert "rejected" in msg and "signature" in msg, msg
    assert b.js("return sessionStorage.getItem('agentgate.token')") is None

    b.sign_in(tenant.token)
    who = b.js("return document.querySelector('#who').innerText")
    assert tenant.tenant_id in who and tenant.sub in who, who
    assert b.js("return sessionStorage.getItem('agentgate.token')") == tenant.token

    b.click("#signout")
    b.wait("return location.hash.startsWith('#/signin') && document.querySelector('#token')",
           what="the sign-in page after sign-out")
    assert b.js("return sessionStorage.getItem('agentgate.token')") is None
    assert b.csp_violations() == []


def test_error_states_say_why(browser, tenant):
    b = browser
    # A token whose scopes stop short of agent runs: the page says what is missing.
    narrow = tenant.make_token(roles=["user"], scope="jobs:read")
    b.sign_in(narrow)
    b.open("#/runs")
    text = b.wait("const e = document.querySelector('#runs-list .state.error'); return e && e.innerText",
                  what="the 403 state")
    assert "Not allowed" in text and "scopes do not allow read on agent-runs" in text, text
    b.screenshot("forbidden")

    # A token the gateway no longer accepts (here: signed with another key,
    # put in place behind the console's back): every page says so.
    b.js("sessionStorage.setItem('agentgate.token', arguments[0])",
         tenant.make_token(secret="another-secret-" + "y" * 24))
    b.open("#/queues")
    text = b.wait("const e = document.querySelector('#queues .state.error'); return e && e.innerText",
                  what="the 401 state")
    assert "token was rejected" in text and "Sign in" in text, text
    assert b.csp_violations() == []


# --------------------------------------------------------------------------
# Agent runs
# --------------------------------------------------------------------------

def test_agent_run_from_the_form_streams_tokens_and_succeeds(page, stack, tenant, llm_standin):
    b = page
    model = llm_standin.unique_name("m")
    llm_standin.register_model(stack, tenant.tenant_id, model, "/console")
    # Every model call of the run streams the story a piece every 150 ms.
    llm_standin.script("/console", model, [{"chunks": STORY, "chunk_delay_ms": 150}] * 12)

    b.open("#/runs/new")
    b.wait("return document.querySelector('#run-tools input[name=tool]')", what="the tools list")
    b.select("#run-model", model)
    b.select("#run-planning", "none")
    b.select("#run-response", "llm-required")
    b.select("#run-session", "__new")
    b.driver.find_element("css selector", "#run-prompt").send_keys(
        "Tell me about the lighthouse keeper")
    b.screenshot("new-run")
    b.click("#run-submit")
    run_id = b.wait("const m = location.hash.match(/^#\\/runs\\/([0-9a-f-]{36})$/); return m && m[1]",
                    what="the run's page")

    # Tokens arrive while the run is still running, a few at a time.
    seen = []
    shot = None
    deadline = time.monotonic() + TIMEOUT * 2
    while time.monotonic() < deadline:
        n, status = b.js("const t = document.querySelector('#tokens');"
                         "const s = document.querySelector('#run .summary .badge');"
                         "return [t ? Number(t.dataset.deltas) : 0, s ? s.dataset.status : null]")
        seen.append((n, status))
        if status in ("succeeded", "failed", "cancelled"):
            break
        if status == "running" and n >= 5 and not shot:
            shot = b.screenshot("run-streaming")
        time.sleep(0.1)
    assert seen[-1][1] == "succeeded", f"run did not succeed: {seen[-5:]}\n{b.text()[:1500]}"
    live_counts = sorted({n for n, s in seen if s == "running" and n > 0})
    assert len(live_counts) >= 3, (
        f"tokens did not stream in while the run ran (delta counts seen running: {live_counts})")
    story = "".join(STORY)
    tokens = b.js("return document.querySelector('#tokens').innerText")
    assert story in tokens.replace("\n", ""), tokens[:500]

    out = b.wait("const o = document.querySelector('#output'); return o && o.innerText",
                 what="the output")
    assert story in out, out
    run = tenant.wait_run(run_id)
    assert run["status"] == "succeeded" and run["session_id"], run
    steps = b.js("return [...document.querySelectorAll('#steps .step')].map(s => s.dataset.status)")
    assert steps and all(s in ("completed", "skipped") for s in steps), steps
    assert len(steps) == len(run["steps"]), (steps, run["steps"])
    metrics = b.js("return document.querySelector('#metrics').innerText")
    assert "LLM calls" in metrics and "Tokens out" in metrics, metrics
    assert b.js("return document.querySelector('#stream-state').dataset.state") == "ended"
    b.screenshot("run")

    b.open("#/runs")
    b.wait("return document.querySelector('#runs-table tr[data-id=\"' + arguments[0] + '\"]')"
           " || document.querySelector('#runs-list .state')", run_id, what="the runs list")
    b.screenshot("runs")


# --------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------

def test_cancel_a_long_job_from_its_page(page, tenant):
    b = page
    job = tenant.submit("demo", {"events": 600, "duration_ms": 120000})
    b.open(f"#/jobs/{job['id']}")
    b.wait("return document.querySelector('#events li[data-type=\"job.progress\"]')",
           what="progress events arriving live")
    b.wait("return (document.querySelector('#view .summary .badge') || {}).dataset?.status === 'running'",
           what="the page showing running")
    pct = b.js("return Number(document.querySelector('#job .progress').dataset.pct)")
    assert 0 <= pct < 100
    b.screenshot("job")
    b.click("#cancel")
    b.wait("return document.querySelector('#events li[data-type=\"job.cancelled\"]')",
           what="the job.cancelled event")
    b.wait("return arguments[0] === (document.querySelector('#view .summary .badge') || {}).dataset?.status",
           "cancelled", what="the page showing cancelled")
    assert tenant.get_job(job["id"])["status"] == "cancelled"
    assert b.js("return document.querySelector('#retry').disabled") is False
    assert b.js("return document.querySelector('#cancel').disabled") is True
    b.screenshot("job-cancelled")


def test_retry_a_failed_job_from_its_page(page, tenant):
    b = page
    job = tenant.submit("test", {"outcome": "fail",
                                 "error": {"code": "console_fail", "message": "failed on purpose"}})
    tenant.wait_job(job["id"])
    b.open(f"#/jobs/{job['id']}")
    err = b.wait("const e = document.querySelector('#job-error'); return e && e.innerText",
                 what="the error")
    assert "console_fail" in err and "failed on purpose" in err, err
    b.screenshot("job-failed")
    b.click("#retry")
    new_id = b.wait("const m = location.hash.match(/^#\\/jobs\\/([0-9a-f-]{36})$/);"
                    "return m && m[1] !== arguments[0] && m[1]", job["id"], what="the new job's page")
    b.wait("return document.querySelector('#job-id') && document.querySelector('#job-id').innerText === arguments[0]",
           new_id, what="the new job's fields")
    fields_text = b.js("return document.querySelector('#job .fields').innerText")
    assert "Retry of" in fields_text, fields_text
    new = tenant.wait_job(new_id)
    assert new["retry_of"] == job["id"] and new["type"] == "test", new
    assert tenant.get_job(job["id"])["status"] == "failed"


def test_the_jobs_list_filters_and_updates_itself(page, tenant):
    b = page
    ok = tenant.submit("demo", {"events": 1, "duration_ms": 10})
    bad = tenant.submit("test", {"outcome": "fail"})
    tenant.wait_job(ok["id"])
    tenant.wait_job(bad["id"])
    b.open("#/jobs")
    row = "return document.querySelector('#jobs-table tr[data-id=\"' + arguments[0] + '\"]')"
    b.wait(row, ok["id"], what="the demo job's row")
    b.wait(row, bad["id"], what="the test job's row")

    # A job submitted while the page is open appears without a reload.
    late = tenant.submit("demo", {"events": 1, "duration_ms": 10})
    b.wait(row, late["id"], what="a new job appearing by itself")
    ids = b.js("return [...document.querySelectorAll('#jobs-table tbody tr')].map(r => r.dataset.id)")
    assert ids.index(late["id"]) < ids.index(bad["id"]) < ids.index(ok["id"]), "not newest first"
    b.screenshot("jobs")

    b.select("#filter-status", "failed")
    b.wait("return location.hash.includes('status=failed') && document.querySelector('#jobs-table')",
           what="the filtered list")
    b.wait("return [...document.querySelectorAll('#jobs-table tbody tr')].every(r => r.dataset.status === 'failed')"
           " && document.querySelector('#jobs-table tr[data-id=\"' + arguments[0] + '\"]')", bad["id"],
           what="only failed jobs")
    assert not b.js(row, ok["id"])
    assert b.js("return document.querySelector('#filter-status').value") == "failed"

    b.select("#filter-type", "demo")
    b.wait("return location.hash.includes('type=demo') && location.hash.includes('status=failed')"
           " && document.querySelector('#jobs-list .empty')", what="no failed demo jobs")
    b.screenshot("jobs-filtered-empty")


def test_another_tenants_job_is_not_found(page, other_tenant):
    b = page
    theirs = other_tenant.submit("demo", {"events": 1, "duration_ms": 10})
    b.open(f"#/jobs/{theirs['id']}")
    text = b.wait("const e = document.querySelector('#job .state.not-found'); return e && e.innerText",
                  what="the not-found state")
    assert "Not found" in text, text
    assert not b.js("return document.querySelector('#events')")
    b.screenshot("not-found")


def test_a_finished_jobs_page_opens_one_event_stream_and_then_none(page, tenant):
    b = page
    job = tenant.submit("demo", {"events": 3, "duration_ms": 30})
    done = tenant.wait_job(job["id"])
    assert done["status"] == "succeeded"
    events_path = f"/v1/jobs/{job['id']}/events"
    b.reset_logs()
    b.open(f"#/jobs/{job['id']}")
    b.wait("return document.querySelector('#events li[data-type=\"job.succeeded\"]')",
           what="the replayed terminal event")
    # Several of EventSource's reconnection delays (the stream says 1 s).
    time.sleep(3.5)
    reqs = b.requests(events_path)
    assert len(reqs) == 1, f"the page made {len(reqs)} event requests: {reqs}"
    assert reqs[0]["status"] == 200 and reqs[0]["type"] == "EventSource", reqs
    assert b.js("return document.querySelector('#stream-state').dataset.state") == "ended"
    n_events = b.js("return document.querySelectorAll('#events li').length")
    assert n_events == done["last_event_id"], n_events

    # An EventSource that does not close itself: it gets the log, comes
    # back once with Last-Event-ID at the terminal event, is answered 204
    # and stops for good (readyState CLOSED, no further request).
    b.reset_logs()
    result = b.driver.execute_async_script("""
        const [path, token, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
        const es = new EventSource(path + '?access_token=' + encodeURIComponent(token));
        const seen = [];
        for (const t of ['job.queued', 'job.started', 'job.progress', 'job.succeeded'])
            es.addEventListener(t, (e) => seen.push(e.lastEventId));
        setTimeout(() => { const s = es.readyState; es.close(); done({seen, state: s}); }, 5000);
    """, events_path, tenant.token)
    reqs = b.requests(events_path)
    statuses = [r["status"] for r in reqs]
    assert statuses == [200, 204], (
        f"a raw EventSource on a finished job: requests answered {statuses} "
        f"(expected one 200 stream, then one 204 that stops it)")
    assert result["state"] == 2, f"EventSource readyState {result['state']} (2 = CLOSED)"
    assert result["seen"] == [str(i) for i in range(1, done["last_event_id"] + 1)], result


# --------------------------------------------------------------------------
# The operator's pages
# --------------------------------------------------------------------------

def test_queues_workers_and_dead_letters(page, stack, tenant):
    b = page
    dead = [tenant.submit("test", {"outcome": "fail", "error": {"code": f"dl_{i}", "message": "dead"}})
            for i in range(4)]
    for j in dead:
        tenant.wait_job(j["id"])

    b.open("#/queues")
    b.wait("return document.querySelector('#queues-table tr[data-type=\"test\"]')", what="the queues table")
    dead_cell = b.js("return document.querySelector('#queues-table tr[data-type=\"test\"]').children[4].innerText")
    assert int(dead_cell) >= 4, dead_cell
    b.screenshot("queues")

    b.open("#/workers")
    n = b.wait("return document.querySelectorAll('#workers-table tbody tr').length", what="live workers")
    assert n >= 1
    b.screenshot("workers")

    b.open("#/dead-letters?type=test")
    row = "return document.querySelector('#dead-table tr[data-id=\"' + arguments[0] + '\"]')"
    for j in dead:
        b.wait(row, j["id"], what=f"dead letter {j['id']}")
    b.screenshot("dead-letters")

    # Retry one, discard one: each leaves the list.
    b.click(f"#dead-table tr[data-id=\"{dead[0]['id']}\"] .dl-retry")
    b.wait("return !document.querySelector('#dead-table tr[data-id=\"' + arguments[0] + '\"]')",
           dead[0]["id"], what="the retried entry leaving")
    b.click(f"#dead-table tr[data-id=\"{dead[1]['id']}\"] .dl-discard")
    b.wait("return !document.querySelector('#dead-table tr[data-id=\"' + arguments[0] + '\"]')",
           dead[1]["id"], what="the discarded entry leaving")
    retried = wait_for(lambda: [j for j in tenant.list_jobs(type="test").expect_json(200)["items"]
                                if j.get("retry_of") == dead[0]["id"]], what="the retry's new job")
    tenant.wait_job(retried[0]["id"])     # it fails again: a new dead letter
    assert tenant.get_job(dead[1]["id"])["status"] == "failed"

    # Discard all asks twice, then empties the list.
    b.click(".discard-all")
    assert "Discard every" in b.js("return document.querySelector('.discard-all').innerText")
    b.click(".discard-all")
    b.wait("return document.querySelector('#dead-letters .empty')", what="an empty dead-letter list")
    left = tenant.request("GET", "/v1/dead-letters?type=test").expect_json(200)
    assert left["items"] == [], left
    b.screenshot("dead-letters-empty")
