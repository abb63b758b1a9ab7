"""Real parts for the tests and the benchmarks: redis-server, ``colorquant worker`` processes,
the ``colorquant`` command, and photos to feed them.

One harness, so that the integration tests, the fault tests and the distributed benchmark start
and stop these processes the same way. It lives outside ``tests/`` so the benchmarks can import
it without importing the tests, and it is not part of the installed package.
"""
