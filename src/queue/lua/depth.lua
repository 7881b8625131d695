#!lua flags=no-writes
-- Queue depth by state and the oldest pending job, for metrics (read-only, so it runs under OOM).
-- KEYS[1] pending list  KEYS[2] processing zset  KEYS[3] delayed zset  KEYS[4] dead list
-- Returns {pending, processing, delayed, dead, oldest pending job or false}.
return {redis.call('LLEN', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
  redis.call('LLEN', KEYS[4]), redis.call('LINDEX', KEYS[1], -1)}
