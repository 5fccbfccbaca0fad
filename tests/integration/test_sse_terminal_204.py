"""A request for a finished job's events whose resume point (Last-Event-ID
or ?after=) is at or past the terminal event is answered 204 No Content,
which the HTML standard defines as "stop reconnecting" for EventSource, so
a browser page left open on a finished job stops asking. A resume point
before the terminal event still replays and ends; a running job still
streams; and a stream that resumed past the end of a job still running
ends when the job does."""

import pytest

from agentgate_test.client import TERMINAL_EVENTS, check_frames


def _finished_demo(tenant):
    """A finished demo job (queued, started, one progress, succeeded) and
    its terminal event id."""
    job = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    done = tenant.wait_job(job["id"], ("succeeded",))
    assert done["last_event_id"] == 4, done
    return job, done["last_event_id"]


def _expect_204(stream, what):
    r = stream.response()
    assert r.status == 204, f"{what}: expected 204 No Content, got " + r.describe()
    assert r.body == b"", f"{what}: 204 with a body: {r.body!r}"
    assert r.header("Content-Length") in (None, "0"), r.headers
    assert r.header("Content-Type") is None, (
        f"{what}: 204 with a Content-Type: {r.header('Content-Type')!r}")


@pytest.mark.parametrize("how,offset", [
    ("after", 0), ("after", 5), ("last_event_id", 0), ("last_event_id", 5),
], ids=["after=terminal", "after=terminal+5", "Last-Event-ID=terminal",
        "Last-Event-ID=terminal+5"])
def test_resume_at_or_past_the_terminal_event_is_204(tenant, how, offset):
    job, terminal = _finished_demo(tenant)
    s = tenant.sse(f"/v1/jobs/{job['id']}/events", **{how: terminal + offset})
    _expect_204(s, f"{how}={terminal + offset}")


def test_header_wins_over_query_for_the_204(tenant):
    job, terminal = _finished_demo(tenant)
    # Last-Event-ID is the resume point when both are given.
    s = tenant.sse(f"/v1/jobs/{job['id']}/events", after=1, last_event_id=terminal)
    _expect_204(s, "Last-Event-ID=terminal with after=1")
    got = tenant.events(job["id"], after=terminal, last_event_id=terminal - 1)
    assert [e.id for e in got] == [terminal], got


def test_resume_before_the_terminal_event_replays_it_and_ends(tenant):
    job, terminal = _finished_demo(tenant)
    for kw in ({"after": terminal - 1}, {"last_event_id": terminal - 1}):
        s = tenant.open_events(job["id"], **kw)
        got = s.read_to_end(timeout=10)
        assert s.eof, f"{kw}: stream not closed"
        check_frames(got, job["id"], first_id=terminal)
        assert [(e.id, e.event) for e in got] == [(terminal, "job.succeeded")], (
            f"{kw}: {got!r}")


def test_run_events_answer_204_after_the_terminal_event(tenant):
    r = tenant.request("POST", "/v1/agent-runs",
                       body={"prompt": "hello there", "planning_mode": "none"})
    run = r.expect_json(202)
    done = tenant.wait_run(run["id"], ("succeeded",))
    job = tenant.get_job(done["job_id"])
    terminal = job["last_event_id"]
    assert terminal > 1, job
    path = f"/v1/agent-runs/{run['id']}/events"
    _expect_204(tenant.sse(path, after=terminal), f"{path} after=terminal")
    _expect_204(tenant.sse(path, last_event_id=terminal + 5),
                f"{path} Last-Event-ID=terminal+5")
    s = tenant.sse(path, after=terminal - 1)
    assert s.status == 200, s.response().describe()
    got = s.read_to_end(timeout=10)
    assert [e.id for e in got] == [terminal], got
    assert got[0].event in TERMINAL_EVENTS, got


def test_running_job_with_a_resume_point_still_streams(tenant):
    n = 6
    job = tenant.submit("demo", {"events": n, "duration_ms": 1500})
    tenant.wait_job(job["id"], ("running",))
    s = tenant.open_events(job["id"], after=1)
    first = s.next_event(timeout=10, what="the first event after 1")
    assert first is not None and first.id == 2, s.events
    got = s.read_to_end(timeout=15)
    check_frames(got, job["id"], first_id=2)
    assert got[-1].event == "job.succeeded" and got[-1].id == n + 3, got
    # The same request once it has ended: nothing more, stop reconnecting.
    _expect_204(tenant.sse(f"/v1/jobs/{job['id']}/events", last_event_id=n + 3),
                "Last-Event-ID=terminal once the job ended")


def test_stream_resumed_past_the_end_of_a_running_job_ends_with_it(tenant):
    job = tenant.submit("demo", {"events": 2, "duration_ms": 1000})
    tenant.wait_job(job["id"], ("running",))
    # An id past anything the job will write (5 is its terminal event):
    # the stream opens, sends nothing, and closes when the job ends.
    s = tenant.open_events(job["id"], after=50)
    got = s.read_to_end(timeout=15)
    assert got == [], got
    assert tenant.get_job(job["id"])["status"] == "succeeded"
    _expect_204(tenant.sse(f"/v1/jobs/{job['id']}/events", after=50), "after=50")
