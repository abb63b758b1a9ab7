"""colorquant's command line: every command a person types.

- ``cli.app``: the Typer app, one short function per command;
- ``cli.options``: the options shared by ``run`` and ``submit`` (add a new one there, once);
- ``cli.actions``: the plain functions the commands call;
- ``cli.render``: how results look on a terminal (progress, tables, reports);
- ``cli.documents``: the JSON documents printed with ``--json``;
- ``cli.errors``: exit codes and the one-line ``error: ...`` convention.

Nothing here imports numpy or scikit-learn at module level, so ``--help`` and the job
commands answer at once.
"""

from cli.app import app, main

__all__ = ["app", "main"]
