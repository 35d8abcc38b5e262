-- fetch: ARGV worker, max, lease_ms
-- Pops up to `max` ids (oldest first) into the worker's inflight list and marks them running.
-- Returns {{id, payload, attempts, starts}, ...}.
local worker, max, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ids = redis.call('RPOP', K_WAITING, max)
if not ids then
  return {}
end
local now = now_ms()
local inflight = inflight_key(worker)
local out = {}
for _, id in ipairs(ids) do
  local r = try_start(id, worker, now)
  if r then
    redis.call('LPUSH', inflight, id)
    out[#out + 1] = r
  end
end
if #out > 0 then
  redis.call('ZADD', K_LEASES, now + lease, worker)
end
return out
