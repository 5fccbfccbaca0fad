"""A client that keeps dropping its event stream and reconnecting at once
with Last-Event-ID (what EventSource does on a flaky network) must still
see every id exactly once, in order, and the end, while the job is running.
Each reconnect makes the job's last subscriber leave (the gateway
unsubscribes its channel) and a new one join right after."""
from agentgate_test.client import TERMINAL_EVENTS


def test_rapid_reconnects_with_last_event_id_lose_nothing(tenant):
    n = 40
    job = tenant.submit("demo", {"events": n, "duration_ms": 3000})
    seen, last, reconnects = [], None, 0
    while reconnects < 200:
        kw = {} if last is None else {"last_event_id": last}
        stream = tenant.open_events(job["id"], **kw)
        try:
            for _ in range(2):           # read a little, then drop the stream
                ev = stream.next_event(timeout=15, what=f"the event after {last}")
                if ev is None:
                    break
                seen.append(ev.id)
                last = ev.id
                if ev.event in TERMINAL_EVENTS:
                    break
        finally:
            stream.close()
        if seen and seen[-1] == n + 3:   # queued, started, n progress, succeeded
            break
        reconnects += 1
    assert seen == list(range(1, n + 4)), f"ids seen across {reconnects} reconnects: {seen}"
