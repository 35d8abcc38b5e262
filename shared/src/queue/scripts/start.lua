-- start: ARGV worker, id, lease_ms
-- After `BLMOVE waiting → inflight:<worker>`: marks the id running. Returns
-- {id, payload, attempts, starts}, or nil if the job is not to run (cancelled meanwhile, or
-- the worker no longer holds it).
local worker, id, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])
local inflight = inflight_key(worker)
if not redis.call('LPOS', inflight, id) then
  return nil
end
local now = now_ms()
local r = try_start(id, worker, now)
if not r then
  redis.call('LREM', inflight, 1, id)
  return nil
end
redis.call('ZADD', K_LEASES, now + lease, worker)
return r
