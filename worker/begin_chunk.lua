-- begin_chunk: a worker is about to quantize the images of one chunk message; may it go on?
--
-- KEYS[1] meta      the job's meta hash
-- KEYS[2] items     source -> final status (or 'retrying')
-- KEYS[3] attempts  source -> deliveries begun and not finished; NUL + chunk id -> deliveries
--                   of that chunk begun (a path never holds a NUL byte)
-- ARGV[1] chunk      the chunk id of the message
-- ARGV[2] now        Unix time, seconds
-- ARGV[3] retention  seconds the attempts hash lives
-- ARGV[4..] sources  the images of the message
--
-- Returns {verdict, deliveries, unfinished, status of each source ('' when none yet)}; verdict
-- is 'go', 'cancelled' or 'unknown' (no such job); deliveries counts this one (1 on a first
-- delivery); unfinished is how many of the sources have image deliveries that began and never
-- finished (a careful delivery of this chunk, or of another one, died on them).

if redis.call('EXISTS', KEYS[1]) == 0 then return {'unknown', 0, 0} end
if redis.call('HEXISTS', KEYS[1], 'cancelled') == 1 then return {'cancelled', 0, 0} end
redis.call('HSETNX', KEYS[1], 'started_at', ARGV[2])
local deliveries = redis.call('HINCRBY', KEYS[3], '\0' .. ARGV[1], 1)
redis.call('EXPIRE', KEYS[3], ARGV[3])
local reply = {'go', deliveries, 0}
if #ARGV > 3 then
  local statuses = redis.call('HMGET', KEYS[2], unpack(ARGV, 4))
  for i = 1, #statuses do reply[i + 3] = statuses[i] or '' end
  for _, begun in ipairs(redis.call('HMGET', KEYS[3], unpack(ARGV, 4))) do
    if begun then reply[3] = reply[3] + 1 end
  end
end
return reply
