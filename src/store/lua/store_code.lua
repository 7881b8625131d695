-- Replace any older code (and its wrong-guess count) with a new one and its TTL.
-- KEYS[1] code hash   P:{<tag>}:code
-- ARGV[1] HMAC digest of the new code
-- ARGV[2] lifetime in ms
-- Returns 1.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[1], 'tries', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
