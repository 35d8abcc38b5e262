-- heartbeat: ARGV worker, lease_ms, registering ('1' when the worker announces itself), then
-- the ids of this queue the worker is running.
-- Renews the worker's lease. Returns {lost, {ids asked to cancel}, {ids no longer held}};
-- lost = 1 when the lease had expired (or Redis lost it): the worker registers again. The
-- ids no longer held were taken back (`recover`) and may already run elsewhere, or again on
-- this very worker: the worker stops exactly those runs, without a report (fencing).
local worker, lease, registering = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local now = now_ms()
local lost = 0
if redis.call('DEL', base .. 'lost:' .. worker) == 1 then
  lost = 1
end
if not registering and not redis.call('ZSCORE', K_LEASES, worker) then
  lost = 1
end
if registering then
  lost = 0
end
redis.call('ZADD', K_LEASES, now + lease, worker)
local inflight = inflight_key(worker)
local cancel = {}
for _, id in ipairs(redis.call('LRANGE', inflight, 0, -1)) do
  if redis.call('HGET', jkey(id), 'cancel') == '1' then
    cancel[#cancel + 1] = id
  end
end
local gone = {}
for i = 4, #ARGV do
  if not redis.call('LPOS', inflight, ARGV[i]) then
    gone[#gone + 1] = ARGV[i]
  end
end
return { lost, cancel, gone }
