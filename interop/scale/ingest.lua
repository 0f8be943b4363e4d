-- wrk script for scripts/bench-scale.sh: POSTs the same 1 MiB recording to the ingest endpoint
-- and prints one JSON line with throughput, latency percentiles and non-201 answers.
-- Environment: BENCH_BODY (file with the body), BENCH_AUTH (Authorization header value).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "audio/x-wav"
  wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")
  bad = 0
end

function response(status, headers, body)
  if status ~= 201 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local not_created = 0
  for _, t in ipairs(threads) do
    not_created = not_created + (t:get("bad") or 0)
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.2f, "rps": %.1f, "p50_ms": %.1f, "p99_ms": %.1f, "not_201": %d, "socket_errors": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, not_created,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
