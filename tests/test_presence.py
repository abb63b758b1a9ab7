"""Worker heartbeats (``worker.presence``) on a real redis-server: how ``status`` knows whether
any worker is alive."""

import redis

from worker.presence import STALE_S, beat, leave, workers_alive


def test_a_worker_is_alive_from_its_heartbeat_until_it_leaves_or_goes_quiet(ledger_url):
    client = redis.Redis.from_url(ledger_url)
    assert workers_alive(client) == 0
    beat(client, "colorquant-a@host", now=1000.0)
    beat(client, "colorquant-b@host", now=1000.0)
    assert workers_alive(client, now=1000.0 + STALE_S - 1) == 2
    assert workers_alive(client, now=1000.0 + STALE_S + 1) == 0  # killed or frozen: no beats
    leave(client, "colorquant-a@host")
    assert workers_alive(client, now=1001.0) == 1
    beat(client, "colorquant-b@host", now=1000.0 + 20 * STALE_S)
    assert client.zcard("colorquant:workers") == 1  # long-silent entries are forgotten
