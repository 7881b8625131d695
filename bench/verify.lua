-- wrk script for POST /otp/verify with wrong codes, cycling over many addresses that have a live
-- code. The input file has `<address>\t<wrong 6-digit code>` lines (written by otp-burst
-- --wrong-codes: the mailed code + 1, so a guess never verifies by chance).
-- Usage: wrk -s bench/verify.lua URL -- <file>
-- Requests are built once per thread in init(); the threads start at different offsets.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

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
