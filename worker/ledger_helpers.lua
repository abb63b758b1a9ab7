-- Helpers shared by the job-ledger scripts; worker/jobs.py puts this text in front of each
-- script that calls them, so each script stays one atomic EVALSHA.
--
-- mark_finished(meta, now): set the job's finished_at once the submit is sealed (enqueued), every
--   item has a final status (done + failed + skipped >= total) and no retry is in flight.
-- keep(keys, meta, retention): renew the expiry of the job's keys. Before the seal the meta hash
--   keeps its short submit lease (keys[1] is skipped), so a submit killed midway expires soon.

local function mark_finished(meta, now)
  local m = redis.call('HMGET', meta, 'enqueued', 'total', 'done', 'failed', 'skipped',
                       'retrying')
  if m[1] and (tonumber(m[3] or 0) + tonumber(m[4] or 0) + tonumber(m[5] or 0)
               >= tonumber(m[2] or 0)) and tonumber(m[6] or 0) == 0 then
    redis.call('HSETNX', meta, 'finished_at', now)
  end
end

local function keep(keys, meta, retention)
  if redis.call('HEXISTS', meta, 'enqueued') == 1 then
    for _, key in ipairs(keys) do redis.call('EXPIRE', key, retention) end
  else
    for i = 2, #keys do redis.call('EXPIRE', keys[i], retention) end
  end
end
