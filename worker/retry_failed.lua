-- retry_failed: `colorquant retry` takes every failed image of a job back, to send it again.
--
-- KEYS[1] meta      the job's meta hash (counters failed/retrying, finished_at, retried_at,
--                   retried)
-- KEYS[2] items     source -> final status; each failed source becomes 'retrying'
-- KEYS[3] failures  source -> failure record JSON; emptied
-- KEYS[4] attempts  source -> deliveries begun; reset for the retried sources
-- KEYS[5] chunks    chunk id -> message rows (only renewed here)
-- ARGV[1] now        Unix time, seconds
-- ARGV[2] retention  seconds the job's keys live after this
--
-- Returns the failure records taken (each holds the message row to re-send), or nil when the
-- job does not exist.

if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local records = redis.call('HVALS', KEYS[3])
local sources = redis.call('HKEYS', KEYS[3])
for _, source in ipairs(sources) do
  redis.call('HSET', KEYS[2], source, 'retrying')
  redis.call('HDEL', KEYS[4], source)
end
-- Nothing failed: nothing changes. (Lua's -#sources would be -0 here, written "-0", which
-- HINCRBY refuses as not an integer.)
if #sources == 0 then return records end
redis.call('DEL', KEYS[3])
redis.call('HINCRBY', KEYS[1], 'failed', -#sources)
redis.call('HINCRBY', KEYS[1], 'retrying', #sources)
-- The rate of a retried job is measured from here, over the retried images only.
redis.call('HDEL', KEYS[1], 'finished_at')
redis.call('HSET', KEYS[1], 'retried_at', ARGV[1], 'retried', #sources, 'updated_at', ARGV[1])
keep(KEYS, KEYS[1], ARGV[2])
return records
