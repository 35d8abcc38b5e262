-- enqueue: ARGV id, kind, queue, payload, max_attempts, unique key ('' = none)
-- Returns {1, id} (new) or {0, existing id}.
local id, unique = ARGV[1], ARGV[6]
if unique ~= '' then
  local uk = base .. 'unique:' .. unique
  local holder = redis.call('GET', uk)
  if holder then
    local st = redis.call('HGET', jkey(holder), 'state')
    if st and not is_terminal(st) then
      return { 0, holder }
    end
  end
  redis.call('SET', uk, id)
end
local now = now_ms()
redis.call('HSET', jkey(id), 'id', id, 'kind', ARGV[2], 'queue', ARGV[3], 'payload', ARGV[4],
  'state', 'waiting', 'attempts', 0, 'max_attempts', ARGV[5], 'starts', 0, 'recovered', 0,
  'created_at', now, 'enqueued_at', now, 'unique', unique, 'queued', 1)
redis.call('LPUSH', K_WAITING, id)
redis.call('HINCRBY', K_STATS, 'enqueued', 1)
return { 1, id }
