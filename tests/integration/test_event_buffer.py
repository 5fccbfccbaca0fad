"""The worker's event buffer (worker/runtime/event_buffer.c): events reach SSE
clients at once and PostgreSQL in batches, and the guarantee kept is that
every event a client saw is in PostgreSQL by the time the job ends, is
stored within a short bound while the job runs, and survives the worker
being killed, with the history PostgreSQL keeps being the one clients saw."""

import time

from agentgate_test.client import check_frames


def _stored(stack, job_id):
    rows = stack.sql("SELECT seq, body FROM job_events WHERE job_id = :'p1' ORDER BY seq",
                     job_id)
    return {int(seq): body for seq, body in rows}


def test_events_seen_live_are_stored_within_a_bound(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 3000, "progress_interval_ms": 100})
    s = tenant.open_events(job["id"])
    checked = 0
    while checked < 5:
        e = s.next_event(what="a progress event")
        assert e is not None, "the stream ended before five progress events"
        if e.event != "job.progress":
            continue
        deadline = time.monotonic() + 1.0
        while e.id not in _stored(stack, job["id"]):
            assert time.monotonic() < deadline, (
                f"event {e.id} was seen live but not stored in PostgreSQL within 1 s")
            time.sleep(0.02)
        assert _stored(stack, job["id"])[e.id] == e.data, "stored body differs from the live one"
        checked += 1
    s.close()
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    stored = _stored(stack, job["id"])
    assert sorted(stored) == list(range(1, len(stored) + 1)), f"ids {sorted(stored)}"
    assert [e.id for e in events] == sorted(stored)


def test_no_op_jobs_end_with_every_event_stored(stack, tenant):
    ids = [tenant.submit("test", {"outcome": "succeed"})["id"] for _ in range(20)]
    for jid in ids:
        assert tenant.wait_job(jid)["status"] == "succeeded"
        stored = _stored(stack, jid)
        assert sorted(stored) == [1, 2, 3], f"job {jid}: ids {sorted(stored)}"
        events = tenant.events(jid)
        assert [e.event for e in events] == ["job.queued", "job.started", "job.succeeded"]
        assert [e.data for e in events] == [stored[1], stored[2], stored[3]]


def test_history_seen_live_survives_a_killed_worker(stack, tenant):
    job = tenant.submit("long-running", {"duration_ms": 4000, "progress_interval_ms": 150},
                        max_attempts=3)
    s = tenant.open_events(job["id"])
    s.read_until(lambda e: e.event == "job.progress" and e.id >= 5, what="event 5")
    seen = list(s.events)
    s.close()
    stack.worker("kill", 1)
    stack.worker("kill", 2)
    stack.worker("start", 1)
    stack.worker("start", 2)
    assert tenant.wait_job(job["id"], timeout=60)["status"] == "succeeded"

    stored = _stored(stack, job["id"])
    assert sorted(stored) == list(range(1, len(stored) + 1)), f"ids {sorted(stored)}"
    for e in seen:
        assert stored.get(e.id) == e.data, (
            f"event {e.id} seen live as {e.data[:100]!r} is stored as "
            f"{(stored.get(e.id) or '')[:100]!r}")
    replay = tenant.events(job["id"])
    check_frames(replay, job["id"])
    assert [e.data for e in replay] == [stored[i] for i in sorted(stored)]
