#!lua flags=allow-oom
-- Return the jobs of expired leases (their worker died, stalled or gave up) to the taking end of
-- the pending queue. Every job being worked on has a lease, so none can be stranded.
-- KEYS[1] processing zset  {P}:queue:processing (member "<lease id>:<job>", score = deadline)
-- KEYS[2] pending list     {P}:queue:pending
-- KEYS[3] wake list        {P}:queue:wake
-- ARGV[1] now, Unix ms
-- ARGV[2] most leases to end in one call
-- ARGV[3] most wake tokens kept
-- Returns the number of jobs moved back.
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, lease in ipairs(expired) do
  redis.call('ZREM', KEYS[1], lease)
  redis.call('RPUSH', KEYS[2], string.sub(lease, string.find(lease, ':', 1, true) + 1))
end
if #expired > 0 then
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
end
return #expired
