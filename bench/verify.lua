-- wrk script for POST /otp/verify with wrong codes, cycling over many addresses that have a live
-- code. The input file has `<address>\t<wrong 6-digit code>` lines (written by otp-burst
-- --wrong-codes: the mailed code + 1, so a guess never verifies by chance).
-- Usage: wrk -s bench/verify.lua URL -- <file>
-- Requests are built once per thread in init(); the threads start at different offsets.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  local path = args[1] or error("verify.lua needs the wrong-codes file as its argument")
  reqs = {}
  for line in io.lines(path) do
    local email, otp = line:match("^(%S+)\t(%d+)$")
    if email then
      reqs[#reqs + 1] = wrk.format("POST", "/otp/verify",
        { ["Content-Type"] = "application/json" },
        string.format('{"email":"%s","otp":"%s"}', email, otp))
    end
  end
  if #reqs == 0 then error("no addresses in " .. path) end
  i = (tid * 7919) % #reqs
end

function request()
  i = i % #reqs + 1
  return reqs[i]
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
