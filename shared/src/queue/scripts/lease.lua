-- lease: a named exclusive lease with a fencing term, kept in one queue's hash tag (the index
-- writer's lease lives in the queue `index`). KEYS[1] is the queue's base.
-- ARGV name, me, ttl_ms, mode ('acquire', 'renew' or 'release').
-- Keys: base..'lease:'..name (string: the holder, PX ttl), base..'lease_term:'..name (counter:
--   incremented at every new holder, so a later holder always has a larger term).
-- acquire: {term, ''} if `me` holds it now (a new term, or its own if it held it already, the
--   lease renewed); {0, holder} if another holds it.
-- renew: {term, ''} if `me` still holds it (renewed); {0, holder or ''} if not (expired or taken).
-- release: {1, ''} if `me` held it (deleted); {0, ''} otherwise.
local key = base .. 'lease:' .. ARGV[1]
local termkey = base .. 'lease_term:' .. ARGV[1]
local me, ttl, mode = ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('GET', key)
if mode == 'release' then
  if cur == me then
    redis.call('DEL', key)
    return {1, ''}
  end
  return {0, ''}
end
if cur == me then
  redis.call('PEXPIRE', key, ttl)
  return {tonumber(redis.call('GET', termkey) or '0'), ''}
end
if mode == 'renew' then
  return {0, cur or ''}
end
if not cur then
  redis.call('SET', key, me, 'PX', ttl)
  return {redis.call('INCR', termkey), ''}
end
return {0, cur}
