-- Register a worker and refresh its liveness key.
-- KEYS[1] heartbeat key   {P}:queue:heartbeat:<worker>
-- KEYS[2] worker set      {P}:queue:workers
-- ARGV[1] worker id
-- ARGV[2] heartbeat lifetime in ms (the reaper treats the worker as dead once it expires)
-- Returns 1.
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
