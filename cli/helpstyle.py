"""Help notation a person reads without knowing Python: ``--overwrite`` with no ``<bool>``,
``PATH...`` instead of ``{paths}...`` and ``<list[Path]>``, and ranges said in each option's own
words instead of ``<int range> [0<=x<=4294967295]``.

Typer draws its help from methods of its parameter classes; :func:`use_plain_notation` replaces
the three that produce that notation. A test reads every command's ``--help`` to keep it so.
"""

from typer import core


def _type_column(self, ctx) -> str | None:
    """What the help shows after an option's names: its metavar, nothing for a flag or an
    argument (the argument's name already says it), else the type in capitals."""
    if isinstance(self, core.TyperArgument) or getattr(self, "is_flag", False):
        return None
    if self.metavar is not None:
        return self.metavar
    label = self.display_type(ctx).strip("<>").removesuffix(" range")
    return {"int": "N", "str": "TEXT", "float": "NUMBER"}.get(label, label.upper())


def _usage_name(self) -> str:
    """An argument in the usage line: ``PATH...``, or ``[PATH]`` when it may be left out."""
    name = self.metavar or self.name.upper()
    if self.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if self.required else f"[{name}]"


def _rich_name(self) -> str:
    return _usage_name(self).strip("[]")


def _no_range(self) -> None:
    return None


def use_plain_notation() -> None:
    """Install the plain notation on Typer's parameter classes (idempotent)."""
    core._TyperParameter.display_type_rich = _type_column
    core.TyperOption.display_type_rich = _type_column
    core.TyperArgument._usage_display_name = _usage_name
    core.TyperArgument._rich_display_name = _rich_name
    core._TyperParameter._get_number_range_help_str = _no_range
    core.TyperOption._get_number_range_help_str = _no_range
