#!/usr/bin/env python3
"""bench/sse_latency.py URL TOKEN [EVENTS] - submits one demo job emitting
EVENTS progress events over 5 s, follows its SSE stream, and prints the
delivery latency of each progress event: the worker's event timestamp
("ts", taken before its PostgreSQL insert) to the moment the client read
the frame. Prints one line: events, p50, p99, max (ms)."""
import datetime
import http.client
import json
import sys
import time
import urllib.parse


def main():
    url, token = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    u = urllib.parse.urlsplit(url)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("POST", "/v1/jobs", json.dumps(
        {"type": "demo", "payload": {"events": n, "duration_ms": 5000}}), headers)
    r = c.getresponse()
    if r.status != 202:
        sys.exit(f"sse_latency: submit answered {r.status}: {r.read()[:200]!r}")
    job = json.loads(r.read())
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", f"/v1/jobs/{job['id']}/events", headers=headers)
    r = c.getresponse()
    lat = []
    for raw in r:
        line = raw.decode()
        if not line.startswith("data: "):
            continue
        now = time.time()
        ev = json.loads(line[6:])
        ts = datetime.datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp()
        if ev["type"] == "job.progress":
            lat.append((now - ts) * 1000.0)
        if ev["type"] in ("job.succeeded", "job.failed", "job.cancelled"):
            break
    if not lat:
        sys.exit("sse_latency: no progress events arrived")
    lat.sort()
    print(f"{len(lat)} events, p50 {lat[len(lat) // 2]:.2f} ms, "
          f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.2f} ms, max {lat[-1]:.2f} ms")


if __name__ == "__main__":
    main()
