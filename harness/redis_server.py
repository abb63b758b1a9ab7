"""A real redis-server on a free loopback port, in its own data directory, restartable."""

import shutil
import subprocess
from pathlib import Path

import redis

from harness.processes import free_port, stop_group, wait_for


class ToolMissing(RuntimeError):
    """A program the harness needs is not installed."""


class RedisStartError(RuntimeError):
    """redis-server exited while starting; the message carries the end of its log."""


def redis_server_binary() -> str:
    """The redis-server on PATH; ToolMissing when there is none."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ToolMissing("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisServer:
    """One redis-server process on a fixed loopback port and data directory.

    ``appendonly`` keeps an AOF fsynced every second, as the compose file does, so a test can
    kill the server and start it again on the same port and data. ``tls`` is a dict of
    ``cert``, ``key`` and ``ca`` paths: the server then speaks TLS only.
    """

    def __init__(
        self,
        directory: Path,
        *,
        appendonly: bool = True,
        password: str | None = None,
        tls: dict | None = None,
    ):
        self.binary = redis_server_binary()
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password
        self.tls = tls
        self.process: subprocess.Popen | None = None
        self.log_path = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return self.database_url(0)

    def database_url(self, database: int) -> str:
        """The URL of one of the server's numbered databases."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return (
                f"rediss://{auth}127.0.0.1:{self.port}/{database}"
                f"?ssl_cert_reqs=required&ssl_ca_certs={self.tls['ca']}"
            )
        return f"redis://{auth}127.0.0.1:{self.port}/{database}"

    def argv(self) -> list[str]:
        argv = [self.binary, "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", ""]
        argv += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec"]
        argv += ["--maxmemory-policy", "noeviction", "--logfile", str(self.log_path)]
        argv += ["--daemonize", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        if not self.tls:
            return [*argv, "--port", str(self.port)]
        return [
            *argv,
            *("--port", "0", "--tls-port", str(self.port)),
            *("--tls-cert-file", str(self.tls["cert"]), "--tls-key-file", str(self.tls["key"])),
            *("--tls-ca-cert-file", str(self.tls["ca"]), "--tls-auth-clients", "no"),
        ]

    def start(self, timeout: float = 15) -> "RedisServer":
        """Start the server and wait until it answers with its data set loaded."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = subprocess.Popen(
            self.argv(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def answers():
            if self.process.poll() is not None:
                raise RedisStartError(f"redis-server exited at start:\n{self.log_tail()}")
            try:
                return self.client(socket_timeout=1).ping()
            except redis.RedisError:
                return False

        wait_for(answers, f"redis-server on port {self.port}", timeout, poll=0.05)
        # After an AOF restart, wait until the data set is loaded, not just the socket open.
        loaded = lambda: self.client().info("persistence")["loading"] == 0  # noqa: E731
        wait_for(loaded, "the AOF to load", timeout, poll=0.05)
        return self

    def client(self, **options) -> redis.Redis:
        return redis.Redis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=2, **options
        )

    def kill(self) -> None:
        """SIGKILL, as a crash: no AOF rewrite, no final fsync."""
        if self.process is not None:
            stop_group(self.process, grace_s=0)

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, grace_s=10)

    def aof_files(self) -> list[Path]:
        return sorted((self.dir / "appendonlydir").glob("*.incr.aof"))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no redis log)"
