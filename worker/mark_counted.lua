-- mark_counted: a count chunk's merged colour counts are safely in OUT/.colorquant/JOB/counts/
-- (and its bad images recorded as failed); strike it off the count ledger. The call that
-- leaves no count chunk in a sealed job moves the job to the fit phase, exactly once.
--
-- KEYS[1] meta      the job's meta hash (phase, counted, enqueued, cancelled)
-- KEYS[2] attempts  NUL + 'c' + chunk id -> deliveries of that count chunk (cleared here)
-- KEYS[3] counting  chunk id -> message rows of the count chunks not counted yet
-- KEYS[4] counted   chunk id -> '<images>:<rows>' of the chunks counted: the fit merges exactly
--                   their files, and puts a chunk whose file it cannot read back (recount.lua)
-- ARGV[1] chunk      the chunk id counted, or '' (the submit's seal asks only for the switch)
-- ARGV[2] images     images of the chunk whose counts are in its file
-- ARGV[3] now        Unix time, seconds
-- ARGV[4] retention  seconds the job's keys live after this
--
-- Returns 1 when this call moved the job from count to fit (its caller sends the fit task),
-- 0 otherwise (another call did, the count phase goes on, or the job is gone or cancelled).

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then
  local rows = redis.call('HGET', KEYS[3], ARGV[1])
  if rows then
    redis.call('HDEL', KEYS[3], ARGV[1])
    redis.call('HSET', KEYS[4], ARGV[1], ARGV[2] .. ':' .. rows)
    redis.call('HINCRBY', KEYS[1], 'counted', ARGV[2])
    redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
  end
  redis.call('HDEL', KEYS[2], '\0c' .. ARGV[1])
  for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
  end
end
local m = redis.call('HMGET', KEYS[1], 'phase', 'enqueued', 'cancelled')
if m[1] == 'count' and m[2] and not m[3] and redis.call('HLEN', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[1], 'phase', 'fit', 'updated_at', ARGV[3])
  return 1
end
return 0
