-- seal_job: the submit has published every message; from now on the job can finish, and its
-- keys live for the retention instead of the short submit lease.
--
-- KEYS[1..5] meta items failures attempts chunks  (the job's keys, meta first)
-- ARGV[1] now        Unix time, seconds
-- ARGV[2] retention  seconds the job's keys live after this
--
-- Returns 1, or 0 when the job does not exist (its lease ran out).

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'enqueued', 1, 'updated_at', ARGV[1])
mark_finished(KEYS[1], ARGV[1])
keep(KEYS, KEYS[1], ARGV[2])
return 1
