-- begin_item: a worker is about to quantize one image of a job; may it go on?
--
-- KEYS[1] meta      the job's meta hash
-- KEYS[2] items     source -> final status (or 'retrying')
-- KEYS[3] attempts  source -> deliveries begun and not finished
-- ARGV[1] source          the image, relative to its input root
-- ARGV[2] now             Unix time, seconds
-- ARGV[3] retention       seconds the attempts hash lives
-- ARGV[4] max_deliveries  unfinished deliveries after which the image is poison
--
-- Returns 'go', 'finished' (already counted), 'cancelled', 'unknown' (no such job) or
-- 'poison' (the image killed its worker process too often).

if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HEXISTS', KEYS[1], 'cancelled') == 1 then return 'cancelled' end
local status = redis.call('HGET', KEYS[2], ARGV[1])
if status and status ~= 'retrying' then return 'finished' end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
local begun = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
redis.call('EXPIRE', KEYS[3], ARGV[3])
if begun > tonumber(ARGV[4]) then return 'poison' end
return 'go'
