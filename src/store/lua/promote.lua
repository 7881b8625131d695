-- Move due jobs from the delayed set to the front of the pending queue.
-- KEYS[1] delayed zset  {P}:queue:delayed
-- KEYS[2] pending list  {P}:queue:pending (workers take from the right end)
-- ARGV[1] now, Unix ms
-- ARGV[2] most jobs to move in one call
-- Returns the number of jobs moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('RPUSH', KEYS[2], job)
end
return #due
