-- wrk script of bench_intake.py: POST /v1/alerts with a distinct native alert per request.
--
--   wrk -t2 -c64 -d8s -s bench/intake_post.lua http://127.0.0.1:PORT/v1/alerts -- PREFIX SITE
--
-- Each request's key is PREFIX-<thread>-<counter>, so every request is a new occurrence (give
-- each wrk run its own PREFIX). Answers are counted by status: 202 is an alert accepted
-- durably. At the end one line "WRKJSON {...}" carries the counts and latency (microseconds).

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or "wrk"
  site = args[2] or "bench-site"
  counter = 0
  accepted = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"site":"%s","key":"%s-%d-%d","title":"Weld seam anomaly on line 3"}',
    site, prefix, tid, counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local ok, bad = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("accepted")
    bad = bad + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"accepted":%d,"other_status":%d,' ..
    '"errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, ok, bad,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
