"""``colorquant worker`` processes, each in its own process group with its log in a file."""

import os
import re
import subprocess
import time
from collections import Counter
from pathlib import Path

from harness.commands import REPO, clean_env, colorquant_command
from harness.processes import children_of, cpu_ticks, is_alive, stop_group, wait_for

#: The line a Celery worker logs once it consumes, with its node name.
READY_LINE = re.compile(r"(colorquant-[0-9a-f]+@\S+) ready\.")
#: A task taken off the queue, and a task ended (any outcome), by task id, in a worker's log.
RECEIVED_LINE = re.compile(r"Task \S+\[([0-9a-f-]+)\] received")
ENDED_LINE = re.compile(r"Task \S+\[([0-9a-f-]+)\] (?:succeeded|retry|raised|failed|rejected)")
#: Mingle's last line after a (re)connection: from then on the worker consumes.
MINGLED_LINE = re.compile(r"mingle: (?:all alone|sync complete)")


class WorkerProcess:
    """``colorquant worker -c N --broker URL``, started as a person would.

    ``env`` is added to a clean environment (no COLORQUANT_ setting of the caller leaks in).
    """

    def __init__(
        self,
        broker: str,
        log_path: Path,
        concurrency: int = 1,
        env: dict | None = None,
        loglevel: str = "INFO",
    ):
        self.broker = broker
        self.log_path = Path(log_path)
        self.concurrency = concurrency
        self.env = env or {}
        self.loglevel = loglevel
        self.process: subprocess.Popen | None = None
        self.node = ""

    def start(self) -> "WorkerProcess":
        argv = ["worker", "-c", str(self.concurrency), "--broker", self.broker]
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [*colorquant_command(), *argv, "--loglevel", self.loglevel],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(self.env),
                cwd=REPO,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pool_pids(self) -> list[int]:
        return children_of(self.pid)

    def wait_ready(self, timeout: float = 90) -> "WorkerProcess":
        """Wait until the worker consumes and every pool process is up; note its node name."""

        def ready():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"worker exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            match = READY_LINE.search(self.log())
            return match if match and len(self.pool_pids()) >= self.concurrency else None

        self.node = wait_for(ready, f"worker {self.pid} to be ready", timeout).group(1)
        return self

    def received_tasks(self) -> Counter:
        """How often each task id was taken off the queue by this worker (a redelivered or
        retried task counts again)."""
        return Counter(RECEIVED_LINE.findall(self.log()))

    def tasks_in_hand(self) -> set[str]:
        """Task ids this worker received and has not ended, as far as its log tells."""
        log = self.log()
        return set(Counter(RECEIVED_LINE.findall(log)) - Counter(ENDED_LINE.findall(log)))

    def consuming_since_last_connect(self) -> bool:
        """Whether the worker, since it last (re)connected, is through mingle and consumes."""
        log = self.log()
        since = log.rfind("Connected to ")
        return since >= 0 and MINGLED_LINE.search(log, since) is not None

    def tasks_since_last_connect(self) -> int:
        """Tasks this worker finished since it last (re)connected to the broker."""
        log = self.log()
        since = log.rfind("Connected to ")
        return log[since:].count("] succeeded in ") if since >= 0 else 0

    def busy_pool_pid(self, window: float = 0.15) -> int | None:
        """A pool process that is using CPU right now (so it is running a task), if any."""
        before = {pid: cpu_ticks(pid) for pid in self.pool_pids()}
        time.sleep(window)
        busy = [pid for pid, ticks in before.items() if cpu_ticks(pid) > ticks and is_alive(pid)]
        return busy[0] if busy else None

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass

    def reap(self, graceful: bool = False, timeout: float = 30) -> int | None:
        """Stop the worker and its pool if still running; return its exit code.

        By default SIGKILL to the whole group (teardown needs no warm shutdown, and it keeps
        the tests fast); ``graceful`` sends SIGTERM first and waits up to ``timeout``.
        """
        if self.process is None:
            return None
        return stop_group(self.process, grace_s=timeout if graceful else 0)
