-- Queue depth by state and the oldest pending job, for metrics.
-- KEYS[1] pending list  KEYS[2] delayed zset  KEYS[3] dead list  KEYS[4] worker set
-- ARGV[1] processing list prefix {P}:queue:processing:
-- Returns {pending, processing, delayed, dead, oldest pending job or false}.
local processing = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  processing = processing + redis.call('LLEN', ARGV[1] .. worker)
end
local oldest = redis.call('LINDEX', KEYS[1], -1)
return {redis.call('LLEN', KEYS[1]), processing, redis.call('ZCARD', KEYS[2]), redis.call('LLEN', KEYS[3]), oldest}
