#!/usr/bin/env python3
"""bench/scale_reads.py URL TOKEN --deep-cursor C --long-job ID --recent-job ID

The reads of the scale bench (bench/run, part scale), timed from the
client: GET /v1/jobs pages and SSE replays from PostgreSQL. Run once on
the empty stack and once on the loaded history; bench/run prints the
ratios.

  list first page       GET /v1/jobs (limit 50), --requests times on one
                        kept-alive connection
  list deep page        the same with --deep-cursor (a cursor far into the
                        bench tenant's history)
  list status=cancelled GET /v1/jobs?status=cancelled, first and deep page
                        (the history's and the dropped backlogs' cancelled
                        jobs)
  replay ...            GET /v1/jobs/{id}/events?after=0 of a finished job
                        (a finished job's events are always read from
                        PostgreSQL, never from the Redis ring: gateway/sse),
                        on a fresh connection each, --replays times: the
                        time from the request's first byte to the read that
                        brought the terminal event

Prints one line per figure: key|label|p50_ms|p99_ms|what else.
Measures and changes nothing.
"""
import argparse
import http.client
import socket
import time
import urllib.parse

from benchlib import pct

TERMINAL = (b"event: job.succeeded", b"event: job.failed", b"event: job.cancelled")


def timed_gets(host, port, path, token, n):
    """n GETs of path on one kept-alive connection, as a client paging
    through a list would: (latencies ms, errors)."""
    lat, errors = [], 0
    h = {"Authorization": f"Bearer {token}"}
    c = http.client.HTTPConnection(host, port, timeout=30)
    for _ in range(n):
        t0 = time.perf_counter()
        c.request("GET", path, headers=h)
        r = c.getresponse()
        body = r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status != 200 or not body.startswith(b'{"items":[{'):
            errors += 1
    c.close()
    return lat, errors


def replay(host, port, job, token):
    """One replay from event 0: (ms to the terminal event, events seen)."""
    s = socket.create_connection((host, port), timeout=30)
    req = (f"GET /v1/jobs/{job}/events?after=0 HTTP/1.1\r\nHost: {host}\r\n"
           f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode()
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    while True:
        chunk = s.recv(262144)
        if not chunk:
            break
        buf += chunk
        if any(t in buf for t in TERMINAL):
            break
    ms = (time.perf_counter() - t0) * 1000
    s.close()
    ok = any(t in buf for t in TERMINAL)
    return (ms if ok else None), buf.count(b"\ndata: ")


def line(key, label, lat, extra):
    print(f"{key}|{label}|{pct(lat, 0.5):.2f}|{pct(lat, 0.99):.2f}|{extra}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--deep-cursor", required=True)
    ap.add_argument("--long-job", required=True)
    ap.add_argument("--recent-job", required=True)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--replays", type=int, default=50)
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    host, port = u.hostname, u.port
    cur = urllib.parse.quote(a.deep_cursor)
    for key, label, path in (
            ("list_first", "GET /v1/jobs first page", "/v1/jobs"),
            ("list_deep", "GET /v1/jobs deep page (cursor)", f"/v1/jobs?cursor={cur}"),
            ("list_cancelled", "GET /v1/jobs?status=cancelled first page",
             "/v1/jobs?status=cancelled"),
            ("list_cancelled_deep", "GET /v1/jobs?status=cancelled deep page",
             f"/v1/jobs?status=cancelled&cursor={cur}")):
        timed_gets(host, port, path, a.token, 20)   # warm-up
        lat, errors = timed_gets(host, port, path, a.token, a.requests)
        line(key, label, lat, f"{a.requests} requests, errors {errors}")
    for key, label, job in (("replay_long", "SSE replay from PG, a job of 1,000 events", a.long_job),
                            ("replay_recent", "SSE replay from PG, a recent job",
                             a.recent_job)):
        lat, events, failed = [], 0, 0
        for i in range(a.replays + 5):
            ms, ev = replay(host, port, job, a.token)
            if i < 5:
                continue   # warm-up
            if ms is None:
                failed += 1
            else:
                lat.append(ms)
                events = ev
        if not lat:
            print(f"{key}|{label}|n/a|n/a|every replay failed")
            continue
        line(key, label, lat, f"{a.replays} replays of {events} events each, failed {failed}")


if __name__ == "__main__":
    main()
