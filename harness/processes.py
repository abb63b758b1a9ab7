"""Waiting for conditions and finding, watching and stopping processes (Linux ``/proc``)."""

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

#: Longest a test or benchmark waits for a process or a job by default, in seconds. Generous:
#: CI machines are slow and shared.
PATIENCE_S = 180


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    condition: Callable[[], object], what: str, timeout: float = PATIENCE_S, poll: float = 0.1
):
    """Poll ``condition`` until it returns something truthy, and return that; at the deadline
    raise AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(pid: int) -> list[int]:
    """Live direct children of ``pid``."""
    kids = set()
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as handle:
                kids.update(int(kid) for kid in handle.read().split())
        except FileNotFoundError:
            continue
    return sorted(kid for kid in kids if is_alive(kid))


def is_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 when it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    return [
        pid
        for pid in all_pids()
        if (fields := _stat_fields(pid)) and int(fields[2]) == pgid and fields[0] != "Z"
    ]


def scheduler_ns(pid: int) -> tuple[int, int]:
    """Nanoseconds ``pid`` ran on a CPU and waited for one (``/proc/PID/schedstat``)."""
    try:
        ran, waited, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0, 0
    return int(ran), int(waited)


def stop_group(process: subprocess.Popen, grace_s: float = 15) -> int | None:
    """Stop a process started with ``start_new_session=True`` and everything in its group.

    SIGTERM first (a warm shutdown) when ``grace_s`` > 0, then SIGKILL to whatever is left of
    the group, pool processes that outlived their parent included. Returns the exit code.
    """
    if grace_s > 0 and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    if process.returncode is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the unreaped leader keeps the group ours
        except ProcessLookupError:
            pass
    else:
        for pid in group_members(process.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    return process.returncode
