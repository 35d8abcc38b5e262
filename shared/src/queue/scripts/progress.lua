-- progress: ARGV id, done, total, message. Only for a running job. Returns 1 if written.
local jk = jkey(ARGV[1])
if redis.call('HGET', jk, 'state') ~= 'running' then
  return 0
end
redis.call('HSET', jk, 'progress_done', ARGV[2], 'progress_total', ARGV[3], 'progress_msg', ARGV[4])
return 1
