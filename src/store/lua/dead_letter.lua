-- Move a job that cannot be delivered from a worker's processing list to the dead-letter list.
-- KEYS[1] processing list  {P}:queue:processing:<worker>
-- KEYS[2] dead list        {P}:queue:dead
-- ARGV[1] the job as it was fetched
-- ARGV[2] the job annotated with its last error
-- Returns 1 when moved, 0 when the job was no longer on the processing list (reaped).
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[2], ARGV[2])
return 1
