"""The parameters of one quantization, validated once and carried everywhere as plain data."""

from dataclasses import dataclass

from pipeline.settings import (
    DEFAULT_DITHER,
    MAX_COLORS,
    MAX_SEED,
    METHODS,
    METRICS_LEVELS,
    MIN_COLORS,
    SPACES,
)

#: The space of palette files and messages written before ``space`` existed: the seed's.
LEGACY_SPACE = "rgb"


@dataclass(frozen=True)
class QuantizeParams:
    """What a user chose: palette size, sampling, seed, method, colour space and
    dithering strength.

    ``sample`` is ``None`` for "all pixels" (the default: fit the colour histogram) or a pixel
    count for the seed example's random subsample. ``random`` ignores ``sample``. ``space`` is
    where k-means measures distance, for fitting and labelling alike (``rgb`` is the seed's).
    """

    k: int = 64
    sample: int | None = None
    seed: int = 0
    method: str = "kmeans"
    space: str = SPACES[0]
    dither: float = DEFAULT_DITHER
    metrics: str = METRICS_LEVELS[0]

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

    @property
    def sample_label(self) -> str | int:
        """How ``sample`` is written in the palette JSON: ``"all"`` or the pixel count."""
        return "all" if self.sample is None else self.sample

    def to_json(self) -> dict:
        """The parameters as they appear in messages and palette files."""
        return {
            "k": self.k,
            "method": self.method,
            "sample": self.sample_label,
            "seed": self.seed,
            "space": self.space,
            "dither": self.dither,
            # Not "metrics": in a palette file that key holds the measured values.
            "metrics_level": self.metrics,
        }

    @classmethod
    def from_json(cls, data: dict) -> "QuantizeParams":
        """Inverse of :meth:`to_json`; raises ValueError on anything malformed."""
        return cls(
            k=data["k"],
            sample=parse_sample(data["sample"]),
            seed=data["seed"],
            method=data["method"],
            space=data.get("space", LEGACY_SPACE),
            dither=data.get("dither", 0.0),  # files from before dithering were undithered
            metrics=data.get("metrics_level", METRICS_LEVELS[0]),
        )


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
