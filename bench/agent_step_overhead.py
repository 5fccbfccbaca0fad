#!/usr/bin/env python3
"""bench/agent_step_overhead.py URL TOKEN --db DATABASE_URL [options]

The time agentgate itself adds per agent step, with a model that answers
at once: the OpenAI stand-in (tests/fakes/openai_standin.py, started here
on a free port unless --standin gives one), whose unscripted answer is an
echo streamed in a few chunks with no delay.

A fresh model served by the stand-in is registered for the token's tenant
(a model_defaults row, through psql on --db), then --runs agent runs
naming it are submitted one after another (each waited for), so runs do
not queue behind each other. For each run the steps' timestamps are read
from PostgreSQL (steps.finished_at and agent_runs.started_at/finished_at,
all clock_timestamp()) and the stand-in's own record of each model call
(time.time() when the request line had arrived, and after the last byte
of its answer).

Method: a run's timeline, from agent_runs.started_at to finished_at, is
cut at each step's finished_at. Step k owns the time from the end of step
k-1 (the run's start for the first) to its own end, and the last step also
owns the run's tail (final persistence, the terminal event). A step's
overhead is that interval minus the time the stand-in spent answering
inside it: from the arrival of its request line (before Python parses
headers and body) to its last byte written (the usage chunk, [DONE] and
the chunked encoding's end included). So it holds everything agentgate
does around and between the model calls: planning, step rows, events,
the tool pipeline with the tool itself, persistence. It also holds the
HTTP hops to the stand-in and Python's wake-up to read each request line:
an upper bound of agentgate's share. Both clocks are this machine's
realtime clock. The stand-in's share that was taken out is printed too
(per model call: arrival to last byte, and the part of it before the body
was parsed and after the last content chunk), so the figure can be read
against the older method, which counted those parts as agentgate's.

A second figure takes out instead what the worker itself measured: each
step's output.model_ms (its requests to the model, as the router timed
them, less its own work on streamed deltas) and output.tool_ms (the
tool's own time), from the same intervals. It holds no HTTP hop and no
wake-up of the stand-in: it is agentgate's own time.

Prints lines "label: value": that figure overall and by action, the
stand-in-based one: the per-step p50/p99/max, the per-run mean,
the stand-in's share taken out, the steps by action, and the WAL fsyncs
per step (pg_stat_wal.wal_sync across the runs, read after PostgreSQL's
stats flush: every fsync of the bench's own PostgreSQL, so those of the
WAL writer for commits that did not wait for one too).
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, pct, start_standin, standin_model  # noqa: E402

TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


def psql(db, sql):
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", db, "-c", sql],
                       text=True, check=True, capture_output=True)
    return r.stdout


# Backends report their statistics at most this long after the fact.
STATS_FLUSH_S = 11


def wal_syncs(db):
    """pg_stat_wal.wal_sync: the WAL fsyncs of the whole server so far."""
    return int(psql(db, "SELECT wal_sync FROM pg_stat_wal").strip())


def run_one(a, body, auth):
    """Submits one agent run and waits for its end: (id, status, run)."""
    st, data = call(a.url, "POST", "/v1/agent-runs", body, auth)
    if st != 202:
        sys.exit(f"agent_step_overhead: submit answered {st}: {data[:200]!r}")
    rid = json.loads(data)["id"]
    deadline = time.time() + 60
    r = {}
    while time.time() < deadline:
        st, data = call(a.url, "GET", f"/v1/agent-runs/{rid}", None, auth)
        r = json.loads(data) if st == 200 else {}
        if r.get("status") in TERMINAL:
            break
        time.sleep(0.005)
    return rid, r.get("status"), r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("--db", required=True, help="PostgreSQL URL (reads steps, writes model_defaults)")
    ap.add_argument("--standin", help="URL of a running stand-in (default: start one)")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--prompt", default="What time is it now in UTC?")
    ap.add_argument("--tool", default="system.time",
                    help="the tool the model's first answer calls ('' for none)")
    a = ap.parse_args()

    proc = None
    standin = a.standin
    if not standin:
        proc, standin = start_standin("agent_step_overhead")
    try:
        model = standin_model(a.db, a.token, f"{standin}/bench/v1")
        auth = {"Authorization": "Bearer " + a.token}
        time.sleep(STATS_FLUSH_S)      # what came before is counted before
        wal_sync0 = wal_syncs(a.db)
        ids, states = [], {}
        for _ in range(a.runs):
            # The intent classifier's call is answered "chat"; the next
            # one asks for the tool (offered under its name with "__" for
            # "."), so every run has a tool:invoke step; later calls get
            # the stand-in's echo.
            body = {"prompt": a.prompt, "model": model}
            if a.tool:
                body["tools"] = [a.tool]
                st, _ = call(standin, "POST", "/_standin/script",
                             {"prefix": "/bench", "model": model, "responses": [
                                 {"chunks": ["chat"]},
                                 {"tool_calls": [{"id": "call_1",
                                                  "name": a.tool.replace(".", "__"),
                                                  "arguments": "{}"}]}]})
                if st != 200:
                    sys.exit(f"agent_step_overhead: scripting the stand-in answered {st}")
            rid, status, _ = run_one(a, body, auth)
            states[status] = states.get(status, 0) + 1
            ids.append(rid)

        time.sleep(STATS_FLUSH_S)
        wal_sync = wal_syncs(a.db) - wal_sync0
        st, data = call(standin, "GET", "/_standin/requests?" +
                        urllib.parse.urlencode({"prefix": "/bench", "model": model}))
        model_spans, standin_ms, standin_edges_ms = [], [], []
        for q in json.loads(data):
            start = q.get("arrived") or q["received"]
            last_chunk = q["chunk_times"][-1] if q["chunk_times"] else q["received"]
            end = q.get("done") or last_chunk
            model_spans.append((start, end))
            standin_ms.append((end - start) * 1000.0)
            standin_edges_ms.append(((q["received"] - start) + (end - last_chunk)) * 1000.0)
        model_spans.sort()
        id_list = ",".join(f"'{i}'" for i in ids)
        rows = psql(a.db,
                    "SELECT r.id, extract(epoch FROM r.started_at), extract(epoch FROM r.finished_at),"
                    " s.idx, s.action, extract(epoch FROM s.finished_at),"
                    " coalesce(s.output->>'model_ms', ''), coalesce(s.output->>'tool_ms', '')"
                    " FROM agent_runs r JOIN steps s ON s.run_id = r.id"
                    f" WHERE r.id IN ({id_list}) AND r.finished_at IS NOT NULL"
                    " AND s.finished_at IS NOT NULL ORDER BY r.id, s.idx")
        runs = {}
        for line in rows.splitlines():
            rid, t0, t1, idx, action, fin, model_ms, tool_ms = line.split("|")
            runs.setdefault(rid, (float(t0), float(t1), []))[2].append(
                (action, float(fin), model_ms, tool_ms))

        def model_time(lo, hi):
            return sum(max(0.0, min(e, hi) - max(s, lo)) for s, e in model_spans
                       if e > lo and s < hi)

        per_step, per_run, by_action = [], [], {}
        # The same intervals less the model and tool time the worker itself
        # measured (the step's output.model_ms and output.tool_ms).
        own_step, own_by_action, own_reported = [], {}, 0
        for t0, t1, steps in runs.values():
            prev, total = t0, 0.0
            for k, (action, fin, model_ms, tool_ms) in enumerate(steps):
                end = t1 if k == len(steps) - 1 else fin
                ov = (end - prev - model_time(prev, end)) * 1000.0
                per_step.append(ov)
                by_action.setdefault(action, []).append(ov)
                own_reported += model_ms != "" or tool_ms != ""
                own = (end - prev) * 1000.0 - float(model_ms or 0) - float(tool_ms or 0)
                own_step.append(own)
                own_by_action.setdefault(action, []).append(own)
                total += ov
                prev = end
            per_run.append(total / len(steps))
        if not per_step:
            sys.exit(f"agent_step_overhead: no finished steps (runs: {states})")
        per_step.sort()
        own_step.sort()
        n_model = len(model_spans)
        if own_reported:
            print(f"per agent step, less the worker's own model and tool times: "
                  f"p50 {pct(own_step, 0.5):.2f} ms, p99 {pct(own_step, 0.99):.2f} ms, "
                  f"max {own_step[-1]:.2f} ms over {len(own_step)} steps "
                  f"({own_reported} with a model or tool call)")
            print("by action, less the worker's own model and tool times: " + "; ".join(
                f"{k} p50 {pct(v, 0.5):.2f} ms p99 {pct(v, 0.99):.2f} ms (n {len(v)})"
                for k, v in sorted(own_by_action.items())))
        else:
            print("per agent step, less the worker's own model and tool times: not reported "
                  "(steps without output.model_ms / output.tool_ms)")
        print(f"per agent step: p50 {pct(per_step, 0.5):.2f} ms, p99 {pct(per_step, 0.99):.2f} ms, "
              f"max {per_step[-1]:.2f} ms over {len(per_step)} steps of {len(runs)} runs "
              f"({', '.join(f'{v} {k}' for k, v in sorted(states.items(), key=str))}), "
              f"{n_model} model calls")
        print(f"per run (overhead / steps): mean {sum(per_run) / len(per_run):.2f} ms, "
              f"p50 {pct(per_run, 0.5):.2f} ms, p99 {pct(per_run, 0.99):.2f} ms")
        if standin_ms:
            print(f"stand-in's own time per model call (taken out above): "
                  f"p50 {pct(standin_ms, 0.5):.2f} ms, p99 {pct(standin_ms, 0.99):.2f} ms; "
                  f"of it, parsing the request and ending the answer: "
                  f"p50 {pct(standin_edges_ms, 0.5):.2f} ms")
        print(f"WAL fsyncs per agent step: {wal_sync / len(per_step):.2f} "
              f"({wal_sync} over the runs' {len(per_step)} steps)")
        print("by action: " + "; ".join(
            f"{k} p50 {pct(v, 0.5):.2f} ms p99 {pct(v, 0.99):.2f} ms (n {len(v)})"
            for k, v in sorted(by_action.items())))
        # The built-in provider's pause between deltas is invented latency;
        # a run's metrics say how much of overall_ms it was.
        _, status, r = run_one(a, {"prompt": a.prompt}, auth)
        m = r.get("metrics") or {}
        print(f"built-in provider run (no model), its invented pause: overall_ms "
              f"{m.get('overall_ms')}, of which builtin_pause_ms {m.get('builtin_pause_ms')} "
              f"(AGENTGATE_BUILTIN_DELTA_PAUSE_MS, default 10 per delta event), "
              f"llm_calls {m.get('llm_calls')}, {status}")
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=5)


if __name__ == "__main__":
    main()
