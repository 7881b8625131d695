#!lua
-- Check and consume a code in one step, so concurrent verifies cannot both succeed and
-- concurrent wrong guesses cannot exceed the attempt limit. No flags: at maxmemory Redis refuses
-- the whole script, so every verify (right or wrong) gets the same 503 and no guess is ever
-- compared without being counted.
-- KEYS[1] code hash        P:{<tag>}:code    fields: mac (HMAC digest), tries (wrong guesses so far),
--                                            job, created (see activate.lua)
-- KEYS[2] failure counter  P:{<tag>}:fails   (integer with a TTL; survives new codes)
-- ARGV[1] HMAC digest of the submitted code (computed with a key Redis never sees)
-- ARGV[2] wrong guesses allowed per code
-- ARGV[3] failures allowed per address and window
-- ARGV[4] failure window in ms
-- Returns {1, 0} verified, {0, 0} incorrect (wrong, expired, used, absent or burned: one answer),
-- {2, retry_after_ms} when the address is over its failure limit.
-- The digests are keyed MACs, so comparing them with == leaks nothing an attacker can use.
local fails = tonumber(redis.call('GET', KEYS[2]) or '0')
if fails >= tonumber(ARGV[3]) then
  local left = redis.call('PTTL', KEYS[2])
  if left < 0 then
    redis.call('PEXPIRE', KEYS[2], ARGV[4])
    left = tonumber(ARGV[4])
  end
  return {2, left}
end
local stored = redis.call('HGET', KEYS[1], 'mac')
if stored and stored == ARGV[1] then
  -- Used up: the digest goes, job and created stay so a redelivered job cannot revive it.
  redis.call('HDEL', KEYS[1], 'mac', 'tries')
  redis.call('DEL', KEYS[2])
  return {1, 0}
end
if stored then
  local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
  if tries >= tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[1], 'mac', 'tries')
  end
end
redis.call('INCR', KEYS[2])
if redis.call('PTTL', KEYS[2]) < 0 then
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {0, 0}
