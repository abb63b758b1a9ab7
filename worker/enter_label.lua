-- enter_label: the shared palette is fitted and written, and every label chunk is in the
-- ledger; switch the job from fit to label, once, keeping the palette the labels use.
--
-- KEYS[1] meta      the job's meta hash (phase, shared_colors, updated_at)
-- KEYS[2] counted   chunk id -> '<images>:<rows>' of the counted chunks: no longer needed (the
--                   label chunks in the ledger hold the rows now), so deleted
-- ARGV[1] colors     the palette as JSON ([[r, g, b(, a)], ...]; at most 256 rows)
-- ARGV[2] now        Unix time, seconds
--
-- Returns 1 when this call switched the job (its caller publishes the label chunks), else 0.

if redis.call('HGET', KEYS[1], 'phase') ~= 'fit' then return 0 end
redis.call('HSET', KEYS[1], 'phase', 'label', 'shared_colors', ARGV[1], 'updated_at', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
