-- Shared by every script (prepended at build time, see client.rs `lua!`).
-- KEYS[1] is the queue's base `<prefix>:{<prefix>:<queue>}:`; every key of the queue is
-- built from it (names must match queue/keys.rs). Times are Redis' clock in ms, so that
-- workers on different hosts agree on lease deadlines.
local base = KEYS[1]
local K_WAITING = base .. 'waiting'
local K_SCHEDULED = base .. 'scheduled'
local K_RUNNING = base .. 'running'
local K_LEASES = base .. 'leases'
local K_FINISHED = base .. 'finished'
local K_DEAD = base .. 'dead'
local K_STATS = base .. 'stats'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function jkey(id)
  return base .. 'job:' .. id
end

local function inflight_key(worker)
  return base .. 'inflight:' .. worker
end

local function is_terminal(st)
  return st == 'succeeded' or st == 'failed' or st == 'dead' or st == 'cancelled'
end

-- Frees the job's uniqueness key if this job holds it.
local function release_unique(jk, id)
  local u = redis.call('HGET', jk, 'unique')
  if u and u ~= '' then
    local uk = base .. 'unique:' .. u
    if redis.call('GET', uk) == id then
      redis.call('DEL', uk)
    end
  end
end

-- Appends one error record (a JSON object) to the job's `errors` array, keeping the last 20.
local function push_error(jk, record_json)
  local raw = redis.call('HGET', jk, 'errors')
  local list = {}
  if raw and raw ~= '' then
    list = cjson.decode(raw)
  end
  list[#list + 1] = cjson.decode(record_json)
  while #list > 20 do
    table.remove(list, 1)
  end
  redis.call('HSET', jk, 'errors', cjson.encode(list))
end

-- Ends a job in `finished` (succeeded/cancelled) or `dead`.
local function finish(jk, id, state, now)
  redis.call('HSET', jk, 'state', state, 'finished_at', now)
  if state == 'dead' then
    redis.call('ZADD', K_DEAD, now, id)
  else
    redis.call('ZADD', K_FINISHED, now, id)
  end
  redis.call('HINCRBY', K_STATS, state, 1)
  release_unique(jk, id)
end

-- Marks a popped id as running for `worker`; nil if it is not waiting (cancelled while in the
-- list, or deleted). The caller has put the id into the worker's inflight list.
local function try_start(id, worker, now)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'state', 'payload', 'attempts', 'starts')
  if f[1] ~= 'waiting' then
    if f[1] then
      redis.call('HSET', jk, 'queued', 0)
    end
    return nil
  end
  local starts = (tonumber(f[4]) or 0) + 1
  redis.call('HSET', jk, 'state', 'running', 'worker', worker, 'started_at', now,
    'starts', starts, 'queued', 0)
  redis.call('ZADD', K_RUNNING, now, id)
  return { id, f[2], tonumber(f[3]) or 0, starts }
end

-- Puts a job a worker holds back at the front of the line (graceful stop, worker gone). The
-- caller has removed it from the inflight list. `uncount` undoes the start (a release).
-- Returns 'requeued', 'cancelled' or 'dropped'.
local function give_back(id, now, uncount)
  local jk = jkey(id)
  local f = redis.call('HMGET', jk, 'state', 'starts', 'cancel')
  if f[1] == 'running' then
    redis.call('ZREM', K_RUNNING, id)
    if f[3] == '1' then
      finish(jk, id, 'cancelled', now)
      return 'cancelled'
    end
    local starts = tonumber(f[2]) or 0
    if uncount and starts > 0 then
      starts = starts - 1
    end
    redis.call('HSET', jk, 'state', 'waiting', 'starts', starts, 'queued', 1, 'enqueued_at', now)
    redis.call('RPUSH', K_WAITING, id)
    return 'requeued'
  elseif f[1] == 'waiting' then
    -- Moved by BLMOVE but never started: still counted as queued.
    redis.call('RPUSH', K_WAITING, id)
    return 'requeued'
  elseif f[1] then
    redis.call('HSET', jk, 'queued', 0)
  end
  return 'dropped'
end
