"""Running ``colorquant`` as a person would: the environment's own script, in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

#: The repository root: the working directory of every command run here.
REPO = Path(__file__).resolve().parent.parent


def colorquant_command() -> list[str]:
    """The ``colorquant`` script of this interpreter's environment (the working tree, installed
    editable), never whichever copy is first on PATH; else ``python -m cli``."""
    script = Path(sys.executable).with_name("colorquant")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cli"]


def clean_env(extra: dict | None = None) -> dict:
    """This process's environment without any COLORQUANT_ setting (nor COLORQUANT_DEBUG, so
    errors look as a person sees them), unbuffered, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("COLORQUANT_")}
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_colorquant(*args, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``colorquant ARGS`` with exactly ``env``, capturing its output as text (a file name
    that is not UTF-8 is printed as its bytes, and read back with the same lone surrogates)."""
    return subprocess.run(
        [*colorquant_command(), *map(str, args)],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=env,
        timeout=timeout,
        cwd=REPO,
    )
