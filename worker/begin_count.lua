-- begin_count: a worker is about to count the colours of one count-phase chunk of a
-- shared-palette job; may it go on, and which rows does the ledger hold for that chunk?
--
-- KEYS[1] meta      the job's meta hash (phase, cancelled)
-- KEYS[2] attempts  NUL + 'c' + chunk id -> deliveries of that count chunk begun
-- KEYS[3] counting  chunk id -> message rows of the count chunks not counted yet
-- ARGV[1] chunk      the chunk id of the message
-- ARGV[2] now        Unix time, seconds
-- ARGV[3] retention  seconds the attempts hash lives
--
-- Returns {verdict, deliveries, rows_json}; verdict is 'go', 'unknown' (no such job),
-- 'cancelled', or 'finished' (the chunk is counted already, or was never the job's: a
-- redelivered or forged message, dropped without reading a pixel).

if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown', 0, ''} end
if redis.call('HEXISTS', KEYS[1], 'cancelled') == 1 then return {'cancelled', 0, ''} end
local rows = redis.call('HGET', KEYS[3], ARGV[1])
if not rows or redis.call('HGET', KEYS[1], 'phase') ~= 'count' then
  return {'finished', 0, ''}
end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
local deliveries = redis.call('HINCRBY', KEYS[2], '\0c' .. ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {'go', deliveries, rows}
