#!lua flags=allow-oom
-- End a lease by moving its job to the dead-letter list, which is bounded in length and age.
-- KEYS[1] processing zset  {P}:queue:processing
-- KEYS[2] dead list        {P}:queue:dead (newest first; entries are JSON with dead_ms)
-- ARGV[1] the lease ("<lease id>:<job>")
-- ARGV[2] the job annotated with its last error and dead_ms (addresses masked)
-- ARGV[3] most entries the dead list keeps
-- ARGV[4] entries dead before this time (Unix ms) are dropped
-- Returns {1, trimmed} when moved (trimmed: older entries dropped for length or age),
--         {0, 0} when the lease had ended already (it expired and was reaped).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return {0, 0}
end
redis.call('LPUSH', KEYS[2], ARGV[2])
local before = redis.call('LLEN', KEYS[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
local trimmed = before - redis.call('LLEN', KEYS[2])
-- The oldest entries sit at the right end; a bounded number per call keeps the script short.
for _ = 1, 100 do
  local oldest = redis.call('LINDEX', KEYS[2], -1)
  if not oldest then
    break
  end
  local ok, entry = pcall(cjson.decode, oldest)
  if not (ok and type(entry) == 'table' and tonumber(entry.dead_ms)
      and tonumber(entry.dead_ms) < tonumber(ARGV[4])) then
    break
  end
  redis.call('RPOP', KEYS[2])
  trimmed = trimmed + 1
end
return {1, trimmed}
