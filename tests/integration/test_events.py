"""Event streams: resume by Last-Event-ID and ?after, resume from before the
Redis ring (served from PostgreSQL), concurrent subscribers, keepalives,
?access_token, and bad resume positions."""

import threading

import pytest

from agentgate_test.client import TERMINAL_EVENTS, check_frames
from agentgate_test.stack import KEEPALIVE_MS, RING_SIZE


def _demo_types(n):
    return ["job.queued", "job.started"] + ["job.progress"] * n + ["job.succeeded"]


@pytest.mark.parametrize("how", ["last_event_id", "after"])
def test_resume_live_stream_from_an_event_id(tenant, how):
    n, k = 10, 4
    job = tenant.submit("demo", {"events": n, "duration_ms": 2000})
    s = tenant.open_events(job["id"])
    s.read_until(lambda e: e.id == k, what=f"event {k}")
    s.close()
    assert [e.id for e in s.events] == list(range(1, k + 1))

    kw = {"last_event_id": k} if how == "last_event_id" else {"after": k}
    resumed = tenant.events(job["id"], **kw)
    check_frames(resumed, job["id"], first_id=k + 1)
    assert [e.id for e in resumed] == list(range(k + 1, n + 4)), (
        f"resume with {how}={k}: ids {[e.id for e in resumed]}")
    assert resumed[-1].event == "job.succeeded"

    full = tenant.events(job["id"])
    check_frames(full, job["id"])
    assert [e.data for e in full[:k]] == [e.data for e in s.events], (
        "the first connection's events differ from the replay")
    assert [e.data for e in full[k:]] == [e.data for e in resumed], (
        "resumed events differ from the replay of the same ids")


def test_resume_from_before_the_ring_has_no_gap(tenant):
    n = 50
    assert n + 3 > RING_SIZE
    job = tenant.submit("demo", {"events": n, "duration_ms": 500})
    tenant.wait_job(job["id"], ("succeeded",))
    total = n + 3

    full = tenant.events(job["id"])
    check_frames(full, job["id"])
    assert [e.event for e in full] == _demo_types(n)
    assert full[-1].id == total

    zero = tenant.events(job["id"], after=0)
    assert [e.data for e in zero] == [e.data for e in full], (
        f"after=0: ids {[e.id for e in zero]}")

    for after in (5, total - RING_SIZE - 1, total - RING_SIZE, total - 3):
        got = tenant.events(job["id"], after=after)
        check_frames(got, job["id"], first_id=after + 1)
        assert [e.data for e in got] == [e.data for e in full[after:]], (
            f"after={after}: ids {[e.id for e in got]}, "
            f"expected {after + 1}..{total}")

    hdr = tenant.events(job["id"], last_event_id=7)
    assert [e.data for e in hdr] == [e.data for e in full[7:]], (
        f"Last-Event-ID: 7 gave ids {[e.id for e in hdr]}")


def test_resume_after_the_last_event_is_204(tenant):
    # More cases in test_sse_terminal_204.py.
    job = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    done = tenant.wait_job(job["id"], ("succeeded",))
    last = done["last_event_id"]
    assert last == 4, done
    r = tenant.sse(f"/v1/jobs/{job['id']}/events", after=last).response()
    assert r.status == 204 and r.body == b"", r.describe()


def test_two_live_subscribers_get_the_same_sequence(tenant):
    n = 20
    job = tenant.submit("demo", {"events": n, "duration_ms": 2000})
    results, errors = {}, []

    def subscribe(name):
        try:
            results[name] = tenant.events(job["id"])
        except BaseException as e:       # reported by the main thread
            errors.append(f"{name}: {e}")

    threads = [threading.Thread(target=subscribe, args=(f"client{i}",))
               for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a subscriber hung"
    assert not errors, "; ".join(errors)
    a, b = results["client1"], results["client2"]
    check_frames(a, job["id"])
    check_frames(b, job["id"])
    assert [e.event for e in a] == _demo_types(n), [e.event for e in a]
    assert [e.data for e in a] == [e.data for e in b], (
        f"subscribers differ: {a!r} vs {b!r}")
    # Delivered live, as they happened over the job's 2 s, not in a burst
    # at the end.
    for name, evs in results.items():
        spread = evs[-1].t - next(e.t for e in evs if e.event == "job.progress")
        assert spread > 1.0, (
            f"{name} got the 2 s job's progress within {spread:.3f} s: the "
            "events were not streamed live")


def test_keepalive_comment_while_nothing_happens(tenant):
    job = tenant.submit("long-running", {"duration_ms": 3000,
                                         "progress_interval_ms": 2500})
    s = tenant.open_events(job["id"])
    events = s.read_to_end(timeout=20)
    check_frames(events, job["id"])
    assert events[-1].event in TERMINAL_EVENTS
    keepalives = [t for t, text in s.comments if text == "keepalive"]
    assert keepalives, (
        f"no ': keepalive' line in a stream idle for >{KEEPALIVE_MS} ms; "
        f"comments seen: {s.comments!r}")
    # job.started is followed by >= 2.5 s of silence: at least one
    # keepalive must fall inside it.
    i = next(i for i, e in enumerate(events) if e.event == "job.started")
    quiet_from, quiet_to = events[i].t, events[i + 1].t
    assert quiet_to - quiet_from > 2 * KEEPALIVE_MS / 1000, (
        f"no quiet period to test: {events!r}")
    inside = [t for t in keepalives if quiet_from < t < quiet_to]
    assert inside, (
        f"no keepalive during {quiet_to - quiet_from:.1f} s of silence "
        f"after job.started (interval {KEEPALIVE_MS} ms)")


def test_access_token_query_parameter_opens_the_stream(tenant):
    job = tenant.submit("demo", {"events": 1, "duration_ms": 0})
    events = tenant.events(job["id"], token=None, access_token=tenant.token)
    check_frames(events, job["id"])
    assert [e.event for e in events][-1] == "job.succeeded"

    bad = tenant.sse(f"/v1/jobs/{job['id']}/events", token=None,
                     access_token=tenant.make_token(secret="not-the-secret"))
    bad.response().expect_problem(401)
    none = tenant.sse(f"/v1/jobs/{job['id']}/events", token=None)
    r = none.response()
    r.expect_problem(401)


@pytest.mark.parametrize("kw", [{"last_event_id": "abc"},
                                {"last_event_id": "-1"},
                                {"last_event_id": "1.5"},
                                {"after": "x"},
                                {"after": "-3"}])
def test_bad_resume_position_is_400(tenant, kw):
    job = tenant.submit("demo", {"events": 0, "duration_ms": 0})
    s = tenant.sse(f"/v1/jobs/{job['id']}/events", **kw)
    s.response().expect_problem(400)
