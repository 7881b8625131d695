#!lua flags=allow-oom
-- Renew the leases a live worker still holds, so the reaper leaves their jobs alone.
-- KEYS[1] processing zset  {P}:queue:processing
-- ARGV[1] new deadline, Unix ms
-- ARGV[2..] the leases ("<lease id>:<job>")
-- Returns the number renewed; a lease that already expired and was reaped is not re-created.
local renewed = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
