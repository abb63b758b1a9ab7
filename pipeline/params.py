"""The parameters of one quantization, validated once and carried everywhere as plain data."""

from dataclasses import dataclass, replace

from pipeline.settings import (
    DEFAULT_DITHER,
    EXPORT_FORMATS,
    IMAGE_FORMATS,
    MAX_COLORS,
    MAX_SEED,
    METHODS,
    METRICS_LEVELS,
    MIN_COLORS,
    PER_IMAGE,
    SHARED,
    SPACES,
)

#: The space of palette files and messages written before ``space`` existed: the seed's.
LEGACY_SPACE = "rgb"


@dataclass(frozen=True)
class QuantizeParams:
    """What a user chose: palette size, sampling, seed, method, colour space and dithering
    strength, where the palette comes from, and what is written.

    ``sample`` is ``None`` for "all pixels" (the default: fit the colour histogram) or a pixel
    count for the seed example's random subsample. ``random`` ignores ``sample``. ``space`` is
    where k-means measures distance, for fitting and labelling alike (``rgb`` is the seed's).

    ``palette`` is ``per-image`` (each image fits its own), ``shared`` (one palette fitted on
    the merged colour counts of the whole job) or the name of a palette file. ``colors`` is the
    palette given to every image: the file's, or the shared one once it is fitted; with it, no
    image runs a fit. ``format`` is the output image format, ``exports`` the palette files
    written beside each output.
    """

    k: int = 64
    sample: int | None = None
    seed: int = 0
    method: str = "kmeans"
    space: str = SPACES[0]
    dither: float = DEFAULT_DITHER
    metrics: str = METRICS_LEVELS[0]
    palette: str = PER_IMAGE
    colors: tuple[tuple[int, ...], ...] | None = None
    format: str = "png"
    exports: tuple[str, ...] = ()

    def __post_init__(self):
        if isinstance(self.k, bool) or not isinstance(self.k, int):
            raise ValueError(f"k must be an integer, got {self.k!r}")
        if not MIN_COLORS <= self.k <= MAX_COLORS:
            raise ValueError(f"k must be between {MIN_COLORS} and {MAX_COLORS}, got {self.k}")
        if self.sample is not None and (not isinstance(self.sample, int) or self.sample < 1):
            raise ValueError(f"sample must be 'all' or a positive pixel count, got {self.sample!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.space not in SPACES:
            raise ValueError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        object.__setattr__(self, "dither", parse_dither(self.dither))
        if self.metrics not in METRICS_LEVELS:
            levels = ", ".join(METRICS_LEVELS)
            raise ValueError(f"metrics must be one of {levels}, got {self.metrics!r}")
        if not isinstance(self.palette, str) or not self.palette:
            raise ValueError(f"palette must be per-image, shared or a file, got {self.palette!r}")
        if self.palette == PER_IMAGE and self.colors is not None:
            raise ValueError("a per-image palette is fitted, not given")
        if self.colors is not None:
            _check_colors(self.colors)
        if self.format not in IMAGE_FORMATS:
            raise ValueError(
                f"format must be one of {', '.join(IMAGE_FORMATS)}, got {self.format!r}"
            )
        unknown = [kind for kind in self.exports if kind not in EXPORT_FORMATS]
        if unknown or not isinstance(self.exports, tuple):
            raise ValueError(f"exports must be among {', '.join(EXPORT_FORMATS)}, got {unknown}")

    @property
    def given(self) -> bool:
        """True when every image is labelled with a palette from outside (no fit per image)."""
        return self.palette != PER_IMAGE

    @property
    def shared(self) -> bool:
        return self.palette == SHARED

    def with_colors(self, colors) -> "QuantizeParams":
        """These parameters with the given palette ``colors`` ((n, 3|4) integers)."""
        rows = tuple(tuple(int(v) for v in row) for row in colors)
        return replace(self, colors=rows)

    def image_work(self) -> "QuantizeParams":
        """What decides an output image's pixels and format: the palette's colours and the
        exports aside (the colours are compared with the output's own, exports by file)."""
        return replace(self, colors=None, exports=())

    @property
    def sample_label(self) -> str | int:
        """How ``sample`` is written in the palette JSON: ``"all"`` or the pixel count."""
        return "all" if self.sample is None else self.sample

    def to_json(self, with_colors: bool = True) -> dict:
        """The parameters as they appear in messages and (``with_colors=False``, since the
        palette is listed there anyway) in palette files."""
        document = {
            "k": self.k,
            "method": self.method,
            "sample": self.sample_label,
            "seed": self.seed,
            "space": self.space,
            "dither": self.dither,
            # Not "metrics": in a palette file that key holds the measured values.
            "metrics_level": self.metrics,
            "palette": self.palette,
            "format": self.format,
            "exports": list(self.exports),
        }
        if with_colors and self.colors is not None:
            document["palette_colors"] = [list(row) for row in self.colors]
        return document

    @classmethod
    def from_json(cls, data: dict) -> "QuantizeParams":
        """Inverse of :meth:`to_json`; raises ValueError on anything malformed. Documents
        written before palettes and formats existed read as per-image PNG."""
        colors = data.get("palette_colors")
        try:
            return cls(
                k=data["k"],
                sample=parse_sample(data["sample"]),
                seed=data["seed"],
                method=data["method"],
                space=data.get("space", LEGACY_SPACE),
                dither=data.get("dither", 0.0),  # files from before dithering were undithered
                metrics=data.get("metrics_level", METRICS_LEVELS[0]),
                palette=data.get("palette", PER_IMAGE),
                colors=None if colors is None else tuple(tuple(row) for row in colors),
                format=data.get("format", "png"),
                exports=tuple(data.get("exports", ())),
            )
        except TypeError as exc:
            raise ValueError(f"malformed parameters: {exc}") from None


def parse_sample(value) -> int | None:
    """Turn ``"all"`` or a count (as int or text) into ``None`` or an int; ValueError otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"--sample must be 'all' or a pixel count, got {value!r}") from None
    if count < 1:
        raise ValueError(f"--sample must be 'all' or a positive pixel count, got {value!r}")
    return count


def parse_dither(value) -> float:
    """A dithering strength from 0 to 1 (as number or text) → float; ValueError otherwise."""
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"--dither must be a number from 0 to 1, got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= level <= 1.0:
        raise ValueError(f"--dither must be a number from 0 to 1, got {value!r}")
    return level


def _check_colors(colors) -> None:
    if not isinstance(colors, tuple) or not 1 <= len(colors) <= MAX_COLORS:
        raise ValueError(f"a palette holds 1 to {MAX_COLORS} colours")
    widths = {len(row) for row in colors}
    if widths - {3, 4} or len(widths) != 1:
        raise ValueError("palette colours are all RGB or all RGBA")
    if any(not isinstance(v, int) or not 0 <= v <= 255 for row in colors for v in row):
        raise ValueError("palette colour values run from 0 to 255")


def parse_exports(text: str | None) -> tuple[str, ...]:
    """``"gpl,act"`` → ``("gpl", "act")``: ordered as EXPORT_FORMATS, repeats dropped."""
    asked = {part.strip().lower().lstrip(".") for part in (text or "").split(",") if part.strip()}
    unknown = sorted(asked - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(
            f"--export takes a comma-separated list of {', '.join(EXPORT_FORMATS)}; "
            f"got {', '.join(unknown)}"
        )
    return tuple(kind for kind in EXPORT_FORMATS if kind in asked)
