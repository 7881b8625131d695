#!lua flags=allow-oom
-- Make a mailed code the address's valid code, once the relay accepted its mail. allow-oom: a
-- mail already out must become verifiable even while Redis refuses new work.
-- KEYS[1] code hash  P:{<tag>}:code  fields: mac, tries, job (id of the job that mailed it),
--                    created (that job's creation, Unix ms). After a success or a burn only
--                    job and created remain, until the code's expiry.
-- ARGV[1] job id
-- ARGV[2] job creation time, Unix ms
-- ARGV[3] HMAC digest of the job's code
-- ARGV[4] lifetime left in ms (the code expires a fixed time after its generate)
-- Returns 1 activated (any older code and its wrong-guess count replaced),
--         0 this job's code was activated before (kept as it is: a redelivery neither resets
--           the try budget nor revives a used or burned code),
--        -1 a newer generate's code is active (kept: only the newest code verifies).
local current = redis.call('HMGET', KEYS[1], 'job', 'created')
if current[1] == ARGV[1] then
  return 0
end
if current[2] and tonumber(current[2]) > tonumber(ARGV[2]) then
  return -1
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'mac', ARGV[3], 'tries', 0, 'job', ARGV[1], 'created', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
