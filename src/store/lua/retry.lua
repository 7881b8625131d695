-- Take a failed job off a worker's processing list and schedule it for a later attempt.
-- KEYS[1] processing list  {P}:queue:processing:<worker>
-- KEYS[2] delayed zset     {P}:queue:delayed (score = due time in ms)
-- ARGV[1] the job as it was fetched
-- ARGV[2] the job with its attempt count raised
-- ARGV[3] due time, Unix ms
-- Returns 1 when scheduled, 0 when the job was no longer on the processing list (reaped).
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return 1
