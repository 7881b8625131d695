-- wrk script for POST /otp/generate: every request gets a distinct address
-- (<prefix>-t<thread>-<counter>@bench.example), so the per-address limits (default 1/60 s, 5/h)
-- never answer 429 and every request does the full work (limits + enqueue).
-- Usage: wrk -s bench/generate.lua URL -- <prefix>
-- done() prints one line `JSON {...}` with requests, errors (status = non-2xx/3xx) and latency in µs.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

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
