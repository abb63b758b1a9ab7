"""The options of the commands, and the one set shared by every command that quantizes.

``run`` and ``submit`` take the same quantization settings. They are declared once, as the fields
of :class:`QuantizeOptions`; the :func:`quantize_options` decorator spreads those fields into a
command's signature (so Typer shows them as ordinary options) and hands the command one
``QuantizeOptions`` object. To give both commands a new option, add one field here.
"""

import dataclasses
import functools
import inspect
import os
from pathlib import Path
from typing import Annotated, get_type_hints

import typer

from pipeline.params import QuantizeParams
from pipeline.settings import (
    EXPORT_FORMATS,
    IMAGE_EXTENSIONS,
    IMAGE_FORMATS,
    MAX_COLORS,
    MAX_SEED,
    METHODS,
    METRICS_LEVELS,
    MIN_COLORS,
    SPACES,
)

#: The defaults of every quantization option, defined once by the parameters themselves.
DEFAULTS = QuantizeParams()


def choice_option(flag: str, choices: tuple[str, ...], help: str):
    """A text option taking one of ``choices``, shown as ``a|b|c`` in ``--help``."""
    return Annotated[str, typer.Option(flag, metavar="|".join(choices), help=help)]


#: The accepted image extensions, as the help lists them (a failure message points there).
EXTENSIONS_TEXT = " ".join(sorted(IMAGE_EXTENSIONS))

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        metavar="PATH...",
        help="Image files or folders; folders are walked recursively. Images are the files "
        f"named {EXTENSIONS_TEXT} (any case); other files are ignored.",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path,
    typer.Option("-o", "--out", metavar="OUT", help="Output folder; it mirrors the input tree."),
]
KOpt = Annotated[
    int,
    typer.Option(
        "-k",
        "--colors",
        metavar="K",
        min=MIN_COLORS,
        max=MAX_COLORS,
        help=f"Palette size, {MIN_COLORS} to {MAX_COLORS}.",
    ),
]
SampleOpt = Annotated[
    str,
    typer.Option(
        "--sample",
        metavar="all|N",
        help="Fit on all pixels through the colour histogram ([bold]all[/]), or on N "
        "random pixels as scikit-learn's example does.",
    ),
]
SeedOpt = Annotated[
    int,
    typer.Option(
        "--seed",
        metavar="SEED",
        min=0,
        max=MAX_SEED,
        help=f"Random seed, 0 to {MAX_SEED}: the same seed gives the same palette.",
    ),
]
MethodOpt = choice_option(
    "--method",
    METHODS,
    "[bold]kmeans[/], or [bold]random[/]: K random pixels as the codebook "
    "(the example's baseline; ignores --sample).",
)
SpaceOpt = choice_option(
    "--space",
    SPACES,
    "Colour space k-means measures distance in, to fit and to label: "
    "[bold]oklab[/] (perceptual: looks best) or [bold]rgb[/] (the example's: best PSNR).",
)
DitherOpt = Annotated[
    float,
    typer.Option(
        "--dither",
        metavar="LEVEL",
        min=0.0,
        max=1.0,
        help="Error-diffusion dithering strength, 0–1: hides banding in skies and skin, mostly "
        "in flat areas and gradients. [bold]0[/]: none, every pixel its nearest palette colour "
        "(flat graphics, the example's recipe).",
    ),
]
MetricsOpt = choice_option(
    "--metrics",
    METRICS_LEVELS,
    "[bold]basic[/]: MSE and PSNR in each palette JSON; [bold]full[/]: also the "
    "SSIMULACRA2 perceptual score (slower than the quantization itself).",
)
PaletteOpt = Annotated[
    str,
    typer.Option(
        "--palette",
        metavar="per-image|shared|FILE",
        help="Where the palette comes from: [bold]per-image[/] (each image fits its own), "
        "[bold]shared[/] (one palette fitted on the colours of every image, written as "
        "OUT/palette.json), or a palette FILE (.gpl, .act, .ase, or a colorquant .json) "
        "applied as it is, with no fit.",
    ),
]
FormatOpt = choice_option(
    "--format",
    IMAGE_FORMATS,
    "Output image format: indexed [bold]png[/], lossless [bold]webp[/] (palette mode, "
    "usually smaller), or [bold]gif[/] (one transparent colour, no partial alpha).",
)
ExportOpt = Annotated[
    str,
    typer.Option(
        "--export",
        metavar=",".join(EXPORT_FORMATS),
        help="Also write each palette as GIMP .gpl, Adobe .act / .ase, or CSS custom "
        "properties, beside its palette JSON (comma-separated).",
        show_default=False,
    ),
]
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Redo outputs that already exist with these settings, and replace files at the "
        "output paths that colorquant did not write.",
    ),
]
OverwriteFileOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite", help="Replace files at the output paths, even ones colorquant did not write."
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option(
        "-j",
        "--jobs",
        metavar="N",
        min=1,
        help="Worker processes, one or more. \\[default: all cores]",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        metavar="URL",
        help="Redis broker URL (default: $COLORQUANT_BROKER_URL, else "
        "redis://localhost:6379/0). A password in it is never printed.",
        show_default=False,
    ),
]
JobArg = Annotated[
    str, typer.Argument(metavar="JOB", help="Job id, as printed by submit.", show_default=False)
]


@dataclasses.dataclass(frozen=True)
class QuantizeOptions:
    """The settings shared by every command that quantizes a batch (``run``, ``submit``).

    Each field is one option: its annotation carries the Typer declaration and its default is
    the option's default.
    """

    k: KOpt = DEFAULTS.k
    sample: SampleOpt = "all"
    seed: SeedOpt = DEFAULTS.seed
    method: MethodOpt = DEFAULTS.method
    space: SpaceOpt = DEFAULTS.space
    dither: DitherOpt = DEFAULTS.dither
    metrics: MetricsOpt = DEFAULTS.metrics
    palette: PaletteOpt = DEFAULTS.palette
    format: FormatOpt = DEFAULTS.format
    export: ExportOpt = ""
    overwrite: OverwriteOpt = False


def quantize_options(command):
    """Give ``command`` the options of :class:`QuantizeOptions`, as one ``options`` argument.

    The command declares a parameter ``options: QuantizeOptions``; in the signature Typer sees,
    that parameter is replaced by one parameter per field, in field order.
    """
    hints = get_type_hints(QuantizeOptions, include_extras=True)
    fields = dataclasses.fields(QuantizeOptions)
    shared = [
        inspect.Parameter(
            field.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=field.default,
            annotation=hints[field.name],
        )
        for field in fields
    ]
    signature = inspect.signature(command)
    parameters = []
    for parameter in signature.parameters.values():
        if parameter.name == "options":
            parameters.extend(shared)
        else:
            kind = parameter.kind
            if parameters and parameters[-1].kind == inspect.Parameter.KEYWORD_ONLY:
                kind = inspect.Parameter.KEYWORD_ONLY
            parameters.append(parameter.replace(kind=kind))

    @functools.wraps(command)
    def wrapper(**kwargs):
        chosen = {field.name: kwargs.pop(field.name) for field in fields}
        return command(options=QuantizeOptions(**chosen), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def cpu_count() -> int:
    """The cores this process may run on (its affinity), which ``-j`` defaults to."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
