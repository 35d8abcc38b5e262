-- release: ARGV worker, id. Gives a held job back to the front of the line without counting
-- the start. Returns requeued | cancelled | dropped | stale.
local worker, id = ARGV[1], ARGV[2]
if redis.call('LREM', inflight_key(worker), 1, id) == 0 then
  return 'stale'
end
return give_back(id, now_ms(), true)
