"""Exit codes and the one-line ``error: ...`` convention every command follows."""

import typer
from rich.console import Console
from rich.markup import escape

#: Exit codes, as scripts rely on them: every image succeeded / some failed (or a watched job
#: was cancelled) / a usage error or an unreachable broker.
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

#: Exit code after Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130

# soft_wrap: long paths stay on one line, so piped or logged output stays greppable.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    err.print(f"[red]error:[/] {escape(message)}")


def usage_error(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (code 2)."""
    print_error(message)
    return typer.Exit(EXIT_USAGE)


class job_errors:
    """Turn an unreachable broker, an unknown job or a bad setting into one line and exit 2."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from worker.client import UnknownJob
        from worker.jobs import BrokerUnreachable

        if isinstance(exc, BrokerUnreachable | ValueError):
            raise usage_error(str(exc)) from None
        if isinstance(exc, UnknownJob):
            raise usage_error(f"no job {exc} (never submitted, or expired)") from None
        return False
