-- lead: the scheduler's leader lease. KEYS[1] is the base of the pseudo-queue `scheduler`.
-- ARGV me, ttl_ms, mode ('lead' or 'resign').
-- lead: returns 2 if `me` just became the leader, 1 if it already was (lease renewed), 0 if
--   another worker leads (the lease expires ttl_ms after the leader's last renewal).
-- resign: drops the lease if `me` holds it (a clean stop hands over at once); returns 1 if so.
local key = base .. 'leader'
local me, ttl, mode = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('GET', key)
if mode == 'resign' then
  if cur == me then
    redis.call('DEL', key)
    return 1
  end
  return 0
end
if cur == me then
  redis.call('PEXPIRE', key, ttl)
  return 1
end
if not cur then
  redis.call('SET', key, me, 'PX', ttl)
  redis.call('INCR', base .. 'term')
  return 2
end
return 0
