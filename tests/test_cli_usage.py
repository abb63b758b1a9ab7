"""The command line as a first-time user meets it: flag errors and ``--help``."""

import re

import pytest

from tests.conftest import run_cli

#: Each bad command line, and words its one error line must contain.
FLAG_ERRORS = [
    (["-k", "1"], "-k/--colors must be a whole number from 2 to 256"),
    (["-k", "300"], "-k/--colors must be a whole number from 2 to 256"),
    (["-k", "many"], "-k/--colors must be a whole number"),
    (["-j", "0"], "-j/--jobs must be a whole number, 1 or more"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to"),
    (["--dither", "2"], "--dither must be a number from 0.0 to 1.0"),
    (["--bogus"], "unknown option --bogus"),
    (["--seed"], "--seed needs a value (see colorquant run --help)"),
    (["--sample", "lots"], "--sample"),
    (["--method", "octree"], "method"),
    (["--sample", "5", "-k", "64"], "--sample 5 draws fewer pixels than the 64 colours"),
]


def test_every_flag_error_is_one_plain_line_with_exit_2(tmp_path):
    (tmp_path / "in").mkdir()
    cases = [
        (["run", tmp_path / "in", "-o", tmp_path / "out", *args], words)
        for args, words in FLAG_ERRORS
    ]
    cases += [
        (["run", tmp_path / "in"], "colorquant run needs -o/--out OUT"),
        (["run", "-o", tmp_path / "out"], "colorquant run needs PATH"),
        (["submit", tmp_path / "in"], "colorquant submit needs -o/--out OUT"),
        (["status"], "colorquant status needs JOB"),
        (["compare", tmp_path / "in" / "x.png"], "colorquant compare needs -o/--out"),
    ]
    for args, words in cases:
        completed = run_cli(*args)
        lines = completed.stderr.strip().splitlines()
        assert completed.returncode == 2, (args, completed.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, completed.stderr)
        assert words in lines[0], (args, lines[0])
        assert "Input should be" not in lines[0] and "╭" not in completed.stderr
    assert not (tmp_path / "out").exists(), "a flag error creates nothing"


COMMANDS = [
    "",
    "run",
    "submit",
    "status",
    "watch",
    "jobs",
    "cancel",
    "retry",
    "worker",
    "compare",
    "demo",
    "report",
    "exporter",
]

#: Notation a person should not have to decode: Python types, Click's ranges and placeholders.
JARGON = re.compile(r"<bool>|<list\[|\{\w+\}|<int|<str>|<path>|<float|x<=|<=x|>=1\]")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_speaks_plainly(command):
    completed = run_cli(*command.split(), "--help")
    assert completed.returncode == 0, completed.stderr
    assert not JARGON.search(completed.stdout), JARGON.search(completed.stdout).group(0)


def test_the_command_list_wraps_summaries_only_at_the_terminal_width():
    """A summary's docstring line breaks must not break it mid-sentence in the command list:
    at 70 columns the report's summary, whose docstring breaks after "palette,", flows on."""
    listed = run_cli("--help", env={"COLUMNS": "70"}).stdout
    report_lines = listed[listed.index("│ report") :].split("│ exporter")[0].splitlines()
    assert len(report_lines) >= 2
    for line in report_lines[:-1]:  # each line but the last is filled to the width
        words = line.strip("│ ").split()
        assert len(line.strip("│ ")) > 70 - 30, (line, words)


def test_run_help_shows_defaults_and_the_accepted_extensions():
    shown = " ".join(run_cli("run", "--help").stdout.split())
    assert "[default: all cores]" in shown
    assert "[default: 64]" in shown
    for extension in (".jpg", ".png", ".webp", ".tiff"):
        assert extension in shown


def one_error(completed) -> str:
    lines = completed.stderr.strip().splitlines()
    assert completed.returncode == 2 and len(lines) == 1, completed.stderr
    return lines[0]


def test_out_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    afile = tmp_path / "afile.txt"
    afile.write_text("mine\n")
    assert "is a file, not a folder" in one_error(run_cli("run", tmp_path / "in", "-o", afile))
    assert afile.read_text() == "mine\n"


def test_submit_with_the_broker_down_creates_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"")
    out = tmp_path / "out"
    completed = run_cli("submit", tmp_path / "in", "-o", out, "--broker", "redis://127.0.0.1:9/0")
    one_error(completed)
    assert not out.exists()


def test_a_folder_without_images_says_what_it_held(tmp_path):
    """Exit 2 (a usage error: most likely the wrong folder), and OUT is not created."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "IMG_1.HEIX").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    out = tmp_path / "out"
    for command in (["run"], ["submit", "--broker", "redis://127.0.0.1:9/0"]):
        message = one_error(run_cli(*command, folder, "-o", out))
        assert "no images in" in message and "2 files ignored" in message
        assert ".heix ×1" in message and ".txt ×1" in message and ".jpg" in message
    assert not out.exists()


def test_job_errors_leaves_an_encoding_bug_to_the_top_level_handler():
    """A bad setting (ValueError) is a one-line usage error; a UnicodeError is a bug and must
    not pass for one (it reaches main(), named by type, traceback under COLORQUANT_DEBUG)."""
    import typer

    from cli.errors import EXIT_USAGE, job_errors

    with pytest.raises(typer.Exit) as stopped, job_errors():
        raise ValueError("job x was cancelled; submit the folder again instead")
    assert stopped.value.exit_code == EXIT_USAGE
    with pytest.raises(UnicodeEncodeError), job_errors():
        "caf\udce9".encode()


def test_an_internal_error_is_one_line_with_exit_1_not_the_usage_code(monkeypatch, capsys):
    """A bug deep in a command (injected here: no real input reaches one) must not exit 2,
    which tells scripts to fix their command line; COLORQUANT_DEBUG lets its traceback out."""
    import cli
    from cli import actions
    from cli.errors import EXIT_INTERNAL_ERROR, EXIT_USAGE

    def broken(*_args):
        raise KeyError("slot\nmissing")

    monkeypatch.setattr(actions, "show_jobs", broken)
    monkeypatch.setattr("sys.argv", ["colorquant", "jobs"])
    monkeypatch.delenv("COLORQUANT_DEBUG", raising=False)
    with pytest.raises(SystemExit) as ended:
        cli.main()
    assert ended.value.code == EXIT_INTERNAL_ERROR != EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: internal error: KeyError")
    assert "COLORQUANT_DEBUG=1" in lines[0]
    monkeypatch.setenv("COLORQUANT_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main()
