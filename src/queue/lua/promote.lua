#!lua flags=allow-oom
-- Move due retries to the taking end of the pending queue and wake idle workers.
-- KEYS[1] delayed zset  {P}:queue:delayed (score = due time, Unix ms)
-- KEYS[2] pending list  {P}:queue:pending (workers take from the right end)
-- KEYS[3] wake list     {P}:queue:wake
-- ARGV[1] now, Unix ms
-- ARGV[2] most jobs to move in one call
-- ARGV[3] most wake tokens kept
-- Returns the number of jobs moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('RPUSH', KEYS[2], job)
end
if #due > 0 then
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
end
return #due
