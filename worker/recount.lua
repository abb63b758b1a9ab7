-- recount: the fit found counted chunks whose counts file is missing or unreadable (deleted or
-- damaged under OUT before the fit read it); put them back on the count ledger and the job
-- back in the count phase, so their count messages are sent again and the fit runs once
-- they are counted. Only from the fit phase, so of two fits that find the same damage, one
-- acts.
--
-- KEYS[1] meta      the job's meta hash (phase, counted, cancelled)
-- KEYS[2] counting  chunk id -> message rows of the count chunks not counted yet
-- KEYS[3] counted   chunk id -> '<images>:<rows>' of the chunks counted
-- ARGV[1] now        Unix time, seconds
-- ARGV[2] retention  seconds the count ledger lives (it was deleted when it emptied)
-- ARGV[3..] chunks   the chunk ids whose files are lost
--
-- Returns 1 when this call moved the job back to the count phase (its caller sends the count
-- messages), 0 otherwise (not in the fit phase, cancelled, or gone).

if redis.call('HGET', KEYS[1], 'phase') ~= 'fit' then return 0 end
if redis.call('HEXISTS', KEYS[1], 'cancelled') == 1 then return 0 end
for i = 3, #ARGV do
  local stored = redis.call('HGET', KEYS[3], ARGV[i])
  if stored then
    local images, rows = string.match(stored, '^(%d+):(.*)$')
    redis.call('HSET', KEYS[2], ARGV[i], rows)
    redis.call('HDEL', KEYS[3], ARGV[i])
    redis.call('HINCRBY', KEYS[1], 'counted', -tonumber(images))
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
redis.call('HSET', KEYS[1], 'phase', 'count', 'updated_at', ARGV[1])
return 1
