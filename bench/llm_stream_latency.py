#!/usr/bin/env python3
"""bench/llm_stream_latency.py URL TOKEN --db DATABASE_URL [options]

The latency agentgate adds to a streamed model answer: from a chunk
leaving the model server to the llm.delta event carrying it reaching an
SSE client.

It uses the stand-in OpenAI server (tests/fakes/openai_standin.py; started
here on a free port unless --standin gives one), registers a fresh model
served by it for the token's tenant (a model_defaults row, through psql
on --db), scripts an answer of --chunks content chunks sent --pace-ms apart
(for each of the run's first --calls model calls), submits an agent run (llm-required, planning none) naming that
model, follows its SSE stream, and for every llm.delta event of that
answer (every streamed step) takes the client's receive time minus the stand-in's send time of
the last chunk the event contains. (The orchestrator may put several
chunks into one event; the wait for the later ones is part of what a
client sees, so it is counted.) Both clocks are this machine's time.time().

Prints one line: events, chunks, p50, p99, max (ms).
"""
import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, pct, start_standin, standin_model  # noqa: E402


def token(i):
    """The i-th chunk: a word of letters ("waaa ", "waab ", ...), so the
    orchestrator's PII scrubber, which holds back words with digits in
    case they are part of a number, lets each go as soon as it is whole."""
    letters = ""
    for _ in range(3):
        letters = chr(ord("a") + i % 26) + letters
        i //= 26
    return "w" + letters + " "


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--db", required=True, help="PostgreSQL URL for model_defaults")
    ap.add_argument("--standin", help="URL of a running stand-in (default: start one)")
    ap.add_argument("--chunks", type=int, default=200)
    ap.add_argument("--pace-ms", type=int, default=20)
    ap.add_argument("--calls", type=int, default=6,
                    help="model calls of the run that get the scripted answer")
    a = ap.parse_args()

    proc = None
    standin = a.standin
    if not standin:
        proc, standin = start_standin("llm_stream_latency")
    try:
        model = standin_model(a.db, a.token, f"{standin}/bench/v1")
        chunks = [token(i) for i in range(a.chunks)]
        st, _ = call(standin, "POST", "/_standin/script",
                     {"prefix": "/bench", "model": model,
                      "responses": [{"chunks": chunks, "chunk_delay_ms": a.pace_ms}]
                      * a.calls})
        if st != 200:
            sys.exit(f"llm_stream_latency: scripting the stand-in answered {st}")

        auth = {"Authorization": "Bearer " + a.token}
        st, data = call(a.url, "POST", "/v1/agent-runs",
                        {"prompt": "Stream me a long answer, please.", "model": model,
                         "response_mode": "llm-required", "planning_mode": "none"}, auth)
        if st != 202:
            sys.exit(f"llm_stream_latency: submit answered {st}: {data[:200]!r}")
        run = json.loads(data)
        u = urllib.parse.urlsplit(a.url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.request("GET", f"/v1/agent-runs/{run['id']}/events",
                  headers=dict(auth, Accept="text/event-stream"))
        r = c.getresponse()
        received = []       # (client time, step_id, delta)
        terminal = None
        for raw in r:
            line = raw.decode("utf-8")
            if not line.startswith("data: "):
                continue
            now = time.time()
            ev = json.loads(line[6:])
            if ev["type"] == "llm.delta":
                d = ev.get("data") or {}
                received.append((now, d.get("step_id"), d.get("delta", d.get("text", ""))))
            if ev["type"] in ("job.succeeded", "job.failed", "job.cancelled"):
                terminal = ev["type"]
                break
        c.close()

        st, data = call(standin, "GET", "/_standin/requests?" +
                        urllib.parse.urlencode({"prefix": "/bench", "model": model}))
        reqs = sorted((q for q in json.loads(data)
                       if len(q["content_chunk_times"]) == a.chunks),
                      key=lambda q: q["received"])
        if not reqs:
            sys.exit(f"llm_stream_latency: the scripted answer was not streamed "
                     f"(run {terminal})")
        # Calls are made one after another: a step's deltas belong to the
        # last request received before its first delta.
        steps = {}
        for t, s, d in received:
            steps.setdefault(s, []).append((t, d))
        lat, whole = [], "".join(chunks)
        for s, evs in steps.items():
            before = [q for q in reqs if q["received"] <= evs[0][0]]
            if not before:
                continue
            sent = before[-1]["content_chunk_times"]
            text = ""
            for t, d in evs:
                text += d
                n = text.count(" ")     # chunks complete so far: one space each
                if n:
                    lat.append((t - sent[min(n, a.chunks) - 1]) * 1000.0)
            if text != whole:
                print(f"llm_stream_latency: warning: step {s}: deltas differ from the "
                      f"chunks sent ({len(text)} vs {len(whole)} bytes)", file=sys.stderr)
        if not lat:
            sys.exit(f"llm_stream_latency: no llm.delta events of the answer (run {terminal})")
        lat.sort()
        print(f"{len(lat)} llm.delta events ({len(steps)} streamed calls of {a.chunks} "
              f"chunks, one every {a.pace_ms} ms), "
              f"p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms, max {lat[-1]:.2f} ms")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=5)


if __name__ == "__main__":
    main()
