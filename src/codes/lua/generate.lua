#!lua
-- Per-address limits, the queue-depth cap, the send budgets and the enqueue, atomically: a
-- request either passes every check and is queued, or changes nothing. No flags: Redis refuses
-- it outright when at maxmemory, so a full Redis answers 503 instead of accepting work it
-- cannot hold.
-- KEYS[1] cooldown key     {P}:limit:<tag>:cooldown   (string with a TTL)
-- KEYS[2] hourly counter   {P}:limit:<tag>:hour       (integer with a TTL)
-- KEYS[3] pending queue    {P}:queue:pending          (list)
-- KEYS[4] wake list        {P}:queue:wake             (tokens for idle workers)
-- KEYS[5] retry queue      {P}:queue:delayed          (zset)
-- KEYS[6] global budget    {P}:budget:global          (GCRA: theoretical arrival time, µs)
-- KEYS[7] domain budget    {P}:budget:domain:<tag>    (GCRA: theoretical arrival time, µs)
-- ARGV[1] cooldown in ms (0 = no cooldown)
-- ARGV[2] sends allowed per window
-- ARGV[3] window in ms
-- ARGV[4] job payload (JSON)
-- ARGV[5] most wake tokens kept
-- ARGV[6] most jobs waiting (pending + retrying) before refusing; 0 = no cap
-- ARGV[7] now, µs since the epoch (the caller's clock)
-- ARGV[8] global budget: µs between mails at the sustained rate; 0 = off
-- ARGV[9] domain budget: µs between mails at the sustained rate; 0 = off
-- ARGV[10] burst tolerance of both budgets, µs
-- ARGV[11] Retry-After when the queue is full, ms
-- Returns {status, retry_after_ms}: status 1 queued, 0 the address is limited, 2 the queue is
-- full, 3 the global budget is spent, 4 the domain's budget is spent. retry_after_ms is the wait
-- until that check would pass (0 when queued).
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

local cap = tonumber(ARGV[6])
if cap > 0 and redis.call('LLEN', KEYS[3]) + redis.call('ZCARD', KEYS[5]) >= cap then
  return {2, tonumber(ARGV[11])}
end

-- GCRA: a budget admits a mail at `now` unless its theoretical arrival time (TAT) lies more
-- than the tolerance ahead of now; admitting moves the TAT one interval on. So a budget lets
-- through tolerance / interval + 1 mails at once, then one per interval. Returns the new TAT,
-- or nil and the wait in ms.
local now = tonumber(ARGV[7])
local tolerance = tonumber(ARGV[10])
local function admit(key, interval)
  if interval == 0 then
    return 0, 0
  end
  local tat = math.max(tonumber(redis.call('GET', key) or '0'), now)
  local wait = tat - tolerance - now
  if wait > 0 then
    return nil, math.ceil(wait / 1000)
  end
  return tat + interval, 0
end
local global_interval = tonumber(ARGV[8])
local domain_interval = tonumber(ARGV[9])
local global_tat, global_wait = admit(KEYS[6], global_interval)
if not global_tat then
  return {3, global_wait}
end
local domain_tat, domain_wait = admit(KEYS[7], domain_interval)
if not domain_tat then
  return {4, domain_wait}
end
if global_interval > 0 then
  redis.call('SET', KEYS[6], string.format('%.0f', global_tat), 'PX', math.ceil((global_tat - now) / 1000))
end
if domain_interval > 0 then
  redis.call('SET', KEYS[7], string.format('%.0f', domain_tat), 'PX', math.ceil((domain_tat - now) / 1000))
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
