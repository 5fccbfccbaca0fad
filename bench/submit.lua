-- wrk script: POST /v1/jobs (a no-op "test" job) with a bearer token from
-- the environment (AGENTGATE_TOKEN). Used by bench/run and by hand:
--   AGENTGATE_TOKEN=... wrk -t1 -c64 -d15s -s bench/submit.lua http://127.0.0.1:8080
-- No response() callback: wrk already counts 4xx/5xx answers
-- (summary.errors.status), and a Lua call per answer would slow wrk down.
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AGENTGATE_TOKEN")
wrk.body = '{"type":"test","payload":{"outcome":"succeed"}}'

function done(summary, latency, requests)
  local e = summary.errors
  local p50, p99 = latency:percentile(50), latency:percentile(99)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, p99/p50 %.2f, "
    .. "errors: HTTP 4xx/5xx %d, socket %d\n",
    p50 / 1000, p99 / 1000, latency:percentile(99.9) / 1000, p50 > 0 and p99 / p50 or 0,
    e.status, e.connect + e.read + e.write + e.timeout))
end
