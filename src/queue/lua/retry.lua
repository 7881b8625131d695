#!lua flags=allow-oom
-- End a lease by scheduling its job for a later attempt.
-- KEYS[1] processing zset  {P}:queue:processing
-- KEYS[2] delayed zset     {P}:queue:delayed (score = due time, Unix ms)
-- ARGV[1] the lease ("<lease id>:<job>")
-- ARGV[2] the job with its attempt count raised
-- ARGV[3] due time, Unix ms
-- Returns 1 when scheduled, 0 when the lease had ended already (it expired and was reaped).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
