-- A worker leaving cleanly: put back anything still on its processing list, then deregister.
-- KEYS[1] processing list {P}:queue:processing:<worker>
-- KEYS[2] pending list    {P}:queue:pending
-- KEYS[3] worker set      {P}:queue:workers
-- KEYS[4] heartbeat key   {P}:queue:heartbeat:<worker>
-- ARGV[1] worker id
-- Returns the number of jobs put back.
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'RIGHT') do
  moved = moved + 1
end
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
return moved
