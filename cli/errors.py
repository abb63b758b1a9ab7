"""Exit codes and the one-line ``error: ...`` convention every command follows."""

import json
import sys

import typer
from rich.console import Console
from rich.markup import escape

try:  # Typer 0.2x carries its own copy of Click; earlier ones use Click itself
    from typer._click import exceptions as click
except ImportError:  # pragma: no cover
    from click import exceptions as click

#: Exit codes, as scripts rely on them: every image succeeded / some failed (or a watched job
#: was cancelled) / a usage error or an unreachable broker.
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2

#: Exit code of an unexpected internal error (a bug, not the person's mistake). The design's
#: codes are 0, 1 and 2; 2 would tell a script to fix its command line, so an internal error
#: takes 1, the code for "the command ran but something failed".
EXIT_INTERNAL_ERROR = EXIT_SOME_FAILED

#: The environment variable that lets an internal error's traceback through, for a bug report.
DEBUG_ENV = "COLORQUANT_DEBUG"

#: Exit code after Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130

# soft_wrap: long paths stay on one line, so piped or logged output stays greppable.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    err.print(f"[red]error:[/] {escape(message)}")


def print_warning(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}")


def usage_error(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit to raise (code 2)."""
    print_error(message)
    return typer.Exit(EXIT_USAGE)


#: ValueErrors that are never a person's mistake but a bug (an encoding slip, a corrupt
#: record): they reach main()'s handler, named by type and with a traceback under
#: COLORQUANT_DEBUG, rather than passing for a usage error.
INTERNAL_VALUE_ERRORS = (UnicodeError, json.JSONDecodeError)


class job_errors:
    """Turn an unreachable broker, an unknown job or a bad setting into one line and exit 2."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        from worker.client import UnknownJob
        from worker.jobs import BrokerUnreachable

        if isinstance(exc, INTERNAL_VALUE_ERRORS):
            return False
        if isinstance(exc, BrokerUnreachable | ValueError):
            raise usage_error(str(exc)) from None
        if isinstance(exc, UnknownJob):
            raise usage_error(f"no job {exc} (never submitted, or expired)") from None
        return False


def flag_error_message(exc) -> str:
    """A Click usage error in plain words, for one ``error: ...`` line (no usage box)."""
    param = getattr(exc, "param", None)
    command = _command_path(exc)
    if isinstance(exc, click.NoSuchOption):
        message = f"unknown option {exc.option_name} for {command}"
        if exc.possibilities:
            message += f"; did you mean {' or '.join(sorted(exc.possibilities))}?"
        return f"{message} (see {command} --help)"
    if isinstance(exc, click.MissingParameter) and param is not None:
        return f"{command} needs {_flag_name(param)}{_value_name(param)} (see {command} --help)"
    if isinstance(exc, click.BadOptionUsage) and exc.option_name:
        return f"{exc.option_name} needs a value (see {command} --help)"
    if isinstance(exc, click.BadParameter) and param is not None:
        return f"{_flag_name(param)} {_rule(param)}"
    return exc.format_message().rstrip(".")


def _command_path(exc) -> str:
    """``colorquant run``: the command whose --help the error line points to. Typer's parser
    raises a missing option value (``run ... -k``) without its context; the command is then
    the first word after the program's name (colorquant's own options take no value)."""
    if getattr(exc, "ctx", None) is not None:
        return exc.ctx.command_path
    words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    return f"colorquant {words[0]}" if words else "colorquant"


def _flag_name(param) -> str:
    if param.param_type_name == "argument":
        return param.metavar or param.name.upper()
    return "/".join(param.opts)


def _value_name(param) -> str:
    return f" {param.metavar}" if param.param_type_name == "option" and param.metavar else ""


def _rule(param) -> str:
    """What a value of ``param`` must be, said from its declaration."""
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    kind = "a number" if isinstance(low, float) or isinstance(high, float) else "a whole number"
    if low is not None and high is not None:
        return f"must be {kind} from {low} to {high}"
    if low is not None:
        return f"must be {kind}, {low} or more"
    return f"does not accept that value (see --help: {param.metavar or param.name})"
