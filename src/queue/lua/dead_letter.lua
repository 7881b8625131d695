#!lua flags=allow-oom
-- End a lease by moving its job to the bounded dead-letter list.
-- KEYS[1] processing zset  {P}:queue:processing
-- KEYS[2] dead list        {P}:queue:dead (newest first)
-- ARGV[1] the lease ("<lease id>:<job>")
-- ARGV[2] the job annotated with its last error
-- ARGV[3] most entries the dead list keeps
-- Returns 1 when moved, 0 when the lease had ended already (it expired and was reaped).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return 1
