-- Move up to N pending jobs onto a worker's processing list in one round trip (the non-blocking
-- fast path; an idle worker falls back to BLMOVE).
-- KEYS[1] pending list     {P}:queue:pending (workers take from the right end)
-- KEYS[2] processing list  {P}:queue:processing:<worker>
-- ARGV[1] most jobs to take
-- Returns the jobs taken, oldest first (possibly none).
local jobs = {}
for _ = 1, tonumber(ARGV[1]) do
  local job = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not job then
    break
  end
  jobs[#jobs + 1] = job
end
return jobs
