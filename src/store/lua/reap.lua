-- Return the jobs of workers whose heartbeat expired to the front of the pending queue.
-- KEYS[1] worker set    {P}:queue:workers
-- KEYS[2] pending list  {P}:queue:pending
-- ARGV[1] processing list prefix  {P}:queue:processing:
-- ARGV[2] heartbeat key prefix    {P}:queue:heartbeat:
-- Returns the number of jobs moved back.
-- The per-worker keys are derived from the set: they share the {P} hash tag, so one slot.
local moved = 0
for _, worker in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. worker) == 0 then
    local processing = ARGV[1] .. worker
    while redis.call('LMOVE', processing, KEYS[2], 'RIGHT', 'RIGHT') do
      moved = moved + 1
    end
    redis.call('SREM', KEYS[1], worker)
  end
end
return moved
