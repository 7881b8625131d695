-- wrk script for POST /otp/generate: every request gets a distinct address
-- (<prefix>-t<thread>-<counter>@bench.example), so the per-address limits (default 1/60 s, 5/h)
-- never answer 429 and every request does the full work (limits + enqueue).
-- Usage: wrk -s bench/generate.lua URL -- <prefix>
-- done() prints one line `JSON {...}` with requests, errors (status = non-2xx/3xx) and latency in µs.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  prefix = args[1] or "gen"
  counter = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  return wrk.format(nil, "/otp/generate", nil,
    string.format('{"email":"%s-t%d-%d@bench.example"}', prefix, tid, counter))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"non2xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
