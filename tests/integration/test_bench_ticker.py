"""The bench.ticker job type (bench/run's fan-out emitter): its events come
at the asked rate with a rising wall-clock send stamp, the job succeeds
with the count, and payloads outside its schema are refused."""

import time

import pytest

from agentgate_test.client import check_frames


def test_ticker_emits_stamped_events_at_its_rate(tenant):
    rate, seconds = 40, 1
    job = tenant.submit("bench.ticker", {"rate": rate, "duration_s": seconds})
    events = tenant.events(job["id"])
    check_frames(events, job["id"])
    ticks = [e for e in events if e.event == "job.progress"]
    assert len(ticks) == rate * seconds, f"{len(ticks)} ticks: {events}"
    now_us = time.time() * 1e6
    stamps = []
    for n, e in enumerate(ticks, start=1):
        data = e.body["data"]
        assert data["i"] == n, f"tick {n} carries i={data['i']}"
        stamps.append(data["sent_us"])
    assert stamps == sorted(stamps), "send stamps go backwards"
    assert now_us - 60e6 < stamps[0] <= now_us, "sent_us is not a wall-clock time in us"
    # Due at i/rate s from the start: the span is (n-1)/rate, whatever the
    # scheduling noise, within a generous bound on a shared machine.
    span_s = (stamps[-1] - stamps[0]) / 1e6
    assert (rate * seconds - 1) / rate * 0.9 <= span_s < seconds + 2, f"span {span_s:.3f} s"
    assert events[-1].event == "job.succeeded"
    assert tenant.wait_job(job["id"])["result"] == {"events": rate * seconds}


@pytest.mark.parametrize("payload,pointer", [
    ({"rate": 0}, "/payload/rate"),
    ({"rate": 10001}, "/payload/rate"),
    ({"duration_s": 0}, "/payload/duration_s"),
    ({"duration_s": 601}, "/payload/duration_s"),
    ({"rate": 10, "every": 1}, "/payload/every"),
])
def test_ticker_payload_outside_its_schema_is_422(tenant, payload, pointer):
    r = tenant.request("POST", "/v1/jobs", body={"type": "bench.ticker", "payload": payload})
    p = r.expect_problem(422)
    assert pointer in [e["pointer"] for e in p.get("errors", [])], p
