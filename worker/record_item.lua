-- record_item: count one image's outcome, exactly once however often it is delivered.
--
-- KEYS[1] meta      the job's meta hash (counters done/failed/skipped/retrying)
-- KEYS[2] items     source -> final status (or 'retrying'): the idempotency marker
-- KEYS[3] failures  source -> failure record JSON {"path", "error", "item"}
-- KEYS[4] attempts  source -> deliveries begun and not finished
-- KEYS[5] chunks    chunk id -> message rows (only renewed here)
-- ARGV[1] source        the image, relative to its input root
-- ARGV[2] status        'done', 'skipped' or 'failed'
-- ARGV[3] failure_json  the failure record when status is 'failed', else ''
-- ARGV[4] now           Unix time, seconds
-- ARGV[5] retention     seconds the job's keys live after this
--
-- Returns 'counted', 'duplicate' (already final: a newer failure reason is kept) or 'unknown'.
-- An item under retry moves from 'retrying' to its new status.

if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
redis.call('HDEL', KEYS[4], ARGV[1])
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and old ~= 'retrying' then
  if old == 'failed' and ARGV[2] == 'failed' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[3]) end
  return 'duplicate'
end
if old == 'retrying' then redis.call('HINCRBY', KEYS[1], 'retrying', -1) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], ARGV[2], 1)
if ARGV[2] == 'failed' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
mark_finished(KEYS[1], ARGV[4])
keep(KEYS, KEYS[1], ARGV[5])
return 'counted'
