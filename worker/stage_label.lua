-- stage_label: the fit writes the label chunks of a shared-palette job into the job's chunk
-- ledger (a batch at a time) before it switches the job to the label phase. Written only while
-- the phase is 'fit', so a late repeat of the fit never brings back a chunk already finished.
--
-- KEYS[1] meta      the job's meta hash (phase)
-- KEYS[2] chunks    chunk id -> message rows (the ledger of label chunks, as for any job)
-- ARGV[1] retention  seconds the chunk ledger lives
-- ARGV[2..] pairs    chunk id, rows JSON
--
-- Returns 1 when written, 0 when the job is not in the fit phase (or gone).

if redis.call('HGET', KEYS[1], 'phase') ~= 'fit' then return 0 end
if #ARGV > 1 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 2))
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
return 1
