#!lua
-- Per-address generate limits and the enqueue, atomically: a request either passes both
-- limits and is queued, or changes nothing. No flags: Redis refuses it outright when at
-- maxmemory, so a full Redis answers 503 instead of accepting work it cannot hold.
-- KEYS[1] cooldown key     {P}:limit:<tag>:cooldown   (string with a TTL)
-- KEYS[2] hourly counter   {P}:limit:<tag>:hour       (integer with a TTL)
-- KEYS[3] pending queue    {P}:queue:pending          (list)
-- KEYS[4] wake list        {P}:queue:wake             (tokens for idle workers)
-- ARGV[1] cooldown in ms (0 = no cooldown)
-- ARGV[2] sends allowed per window
-- ARGV[3] window in ms
-- ARGV[4] job payload (JSON)
-- ARGV[5] most wake tokens kept
-- Returns {1, 0} when queued, {0, retry_after_ms} when limited: the wait until a generate would
-- pass both limits (the later of the cooldown and, when the cap is reached, the window's end).
local cooldown = redis.call('PTTL', KEYS[1])
local sent = tonumber(redis.call('GET', KEYS[2]) or '0')
if sent >= tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[2])
  if left < 0 then
    -- A counter without TTL would block forever: give it one now.
    redis.call('PEXPIRE', KEYS[2], ARGV[3])
    left = tonumber(ARGV[3])
  end
  return {0, math.max(left, cooldown)}
end
if cooldown > 0 then
  return {0, cooldown}
end
if tonumber(ARGV[1]) > 0 then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
redis.call('INCR', KEYS[2])
if redis.call('PTTL', KEYS[2]) < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('LPUSH', KEYS[3], ARGV[4])
redis.call('LPUSH', KEYS[4], '1')
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[5]) - 1)
return {1, 0}
