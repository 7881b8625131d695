#!lua flags=allow-oom
-- Lease up to N pending jobs in one round trip. allow-oom: moving a job from one key to another
-- barely changes memory, and jobs already accepted must keep flowing while Redis refuses new work.
-- KEYS[1] pending list      {P}:queue:pending (workers take from the right end)
-- KEYS[2] processing zset   {P}:queue:processing (member "<lease id>:<job>", score = lease deadline)
-- KEYS[3] lease counter     {P}:queue:lease_seq
-- ARGV[1] most jobs to take
-- ARGV[2] lease deadline, Unix ms
-- Returns the leases taken ("<lease id>:<job>"), oldest job first (possibly none).
local leases = {}
for _ = 1, tonumber(ARGV[1]) do
  local job = redis.call('RPOP', KEYS[1])
  if not job then
    break
  end
  local lease = redis.call('INCR', KEYS[3]) .. ':' .. job
  redis.call('ZADD', KEYS[2], ARGV[2], lease)
  leases[#leases + 1] = lease
end
return leases
