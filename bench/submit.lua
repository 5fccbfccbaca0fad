-- wrk script: POST /v1/jobs with a bearer token from the environment
-- (AGENTGATE_TOKEN). Used by bench/run and by hand:
--   AGENTGATE_TOKEN=... wrk -t2 -c64 -d15s -s bench/submit.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.path = "/v1/jobs"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AGENTGATE_TOKEN")
wrk.body = '{"type":"test","payload":{"outcome":"succeed"}}'

local errors = 0
function response(status, headers, body)
  if status ~= 202 then errors = errors + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, non-202 %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, summary.errors.status))
end
