-- record_chunk: count the outcomes of several images of one chunk, each exactly once however
-- often it is delivered, in one call (a worker's results since its last call).
--
-- KEYS[1] meta      the job's meta hash (counters done/failed/skipped/retrying)
-- KEYS[2] items     source -> final status (or 'retrying'): the idempotency marker
-- KEYS[3] failures  source -> failure record JSON {"path", "error", "item"}
-- KEYS[4] attempts  NUL + chunk id -> deliveries of the chunk (cleared once it is finished;
--                   a first delivery, the only one counted this way, begins no single image)
-- KEYS[5] chunks    chunk id -> message rows
-- ARGV[1] now        Unix time, seconds
-- ARGV[2] retention  seconds the job's keys live after this
-- ARGV[3] finished   chunk id whose every image is now final (struck off the ledger with its
--                    delivery counter, and the job's keys renewed), or '' for a batch midway
-- ARGV[4..] triples  source, status ('done', 'skipped' or 'failed'), failure_json (or '')
--
-- Returns {cancelled (0/1), then per triple 1 when counted now, 0 when already final (a newer
-- failure reason is kept)}, or {'unknown'} when the job does not exist.

local job = redis.call('HMGET', KEYS[1], 'job', 'cancelled')
if not job[1] then return {'unknown'} end
local sources = {}
for i = 4, #ARGV, 3 do sources[#sources + 1] = ARGV[i] end
local reply = {job[2] and 1 or 0}
if #sources > 0 then
  local olds = redis.call('HMGET', KEYS[2], unpack(sources))
  local statuses, failures, retried, counts = {}, {}, {}, {}
  for n, old in ipairs(olds) do
    local source, status, failure = ARGV[3 * n + 1], ARGV[3 * n + 2], ARGV[3 * n + 3]
    if old and old ~= 'retrying' then
      if old == 'failed' and status == 'failed' then
        failures[#failures + 1] = source
        failures[#failures + 1] = failure
      end
      reply[n + 1] = 0
    else
      if old == 'retrying' then retried[#retried + 1] = source end
      statuses[#statuses + 1] = source
      statuses[#statuses + 1] = status
      if status == 'failed' then
        failures[#failures + 1] = source
        failures[#failures + 1] = failure
      end
      counts[status] = (counts[status] or 0) + 1
      reply[n + 1] = 1
    end
  end
  if #statuses > 0 then redis.call('HSET', KEYS[2], unpack(statuses)) end
  if #retried > 0 then
    redis.call('HDEL', KEYS[3], unpack(retried))
    redis.call('HINCRBY', KEYS[1], 'retrying', -#retried)
  end
  if #failures > 0 then redis.call('HSET', KEYS[3], unpack(failures)) end
  for status, count in pairs(counts) do redis.call('HINCRBY', KEYS[1], status, count) end
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[1])
mark_finished(KEYS[1], ARGV[1])
if ARGV[3] ~= '' then
  redis.call('HDEL', KEYS[5], ARGV[3])
  redis.call('HDEL', KEYS[4], '\0' .. ARGV[3])
end
-- Renewing the expiry once per chunk is enough; a new key gets one at once.
if ARGV[3] ~= '' or redis.call('TTL', KEYS[2]) < 0 then keep(KEYS, KEYS[1], ARGV[2]) end
return reply
