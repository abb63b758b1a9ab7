"""Finding the images under the PATHs a user gave, and naming their outputs.

The walk is a generator, so a folder of any size is streamed, never listed whole in memory. It
never reads a file: it only decides, from names and link targets, what will be processed and
where its output goes. The same naming is used by ``colorquant run`` and ``colorquant submit``.
"""

import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.settings import IMAGE_EXTENSIONS, PALETTE_SUFFIX

OUTSIDE_LINK = "symlink points outside the input tree; not read"
NOT_REGULAR = "not a regular file"

#: Reason a link whose target does not exist (deleted, or on an unmounted disk) fails.
BROKEN_LINK = "a broken link: its target does not exist"
NOT_AN_IMAGE_NAME = "not an image file name (see the accepted extensions in --help)"
#: Reason a file named on the command line whose name starts with a dot fails: its extension
#: may well be an image's, so NOT_AN_IMAGE_NAME would send the user to --help for nothing.
HIDDEN_NAME = "a hidden file (its name starts with a dot): colorquant skips those; rename it"


class InputError(ValueError):
    """A PATH or OUT that cannot be used at all: a usage error, reported before any work."""


@dataclass(frozen=True)
class InputItem:
    """One image to process: where it is, what it is called in reports, and where it goes.

    ``root`` is the absolute input root, ``rel`` the POSIX path below it, ``source`` the name used
    in reports and palettes, ``output`` the PNG path below OUT. ``error`` is set when the item
    fails without being read (a symlink leaving the tree, a FIFO).
    """

    root: str
    rel: str
    source: str
    output: str
    error: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.root, self.rel)

    def to_json(self) -> dict:
        return {"root": self.root, "rel": self.rel, "source": self.source, "output": self.output}

    @classmethod
    def from_json(cls, data: dict) -> "InputItem":
        return cls(data["root"], data["rel"], data["source"], data["output"])


def palette_path_for(output: str) -> str:
    """The palette JSON that sits beside an output PNG: ``a/b.png`` → ``a/b.palette.json``."""
    return output[: -len(".png")] + PALETTE_SUFFIX


def output_paths(
    out_root: str | Path, output: str, fmt: str = "png", exports: Iterable[str] = ()
) -> tuple[Path, ...]:
    """Every file written for an output name: the image (in format ``fmt``), its palette JSON
    and each palette export, refusing a name that leaves OUT."""
    relative = PurePosixPath(output)
    if relative.is_absolute() or ".." in relative.parts or not output.endswith(".png"):
        raise ValueError(f"output path {output!r} leaves the output folder; nothing written")
    root = Path(out_root)
    stem = output[: -len(".png")]
    exported = (root / f"{stem}.{kind}" for kind in exports)
    return (root / f"{stem}.{fmt}", root / palette_path_for(output), *exported)


def is_image_name(name: str) -> bool:
    # os.path, not pathlib: the walk calls this once per file, and a Path costs ten times more.
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def is_inside(path: Path, root: Path) -> bool:
    """True when ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or root in path.parents


@dataclass(frozen=True)
class InputRoot:
    """One PATH from the command line: a folder walked recursively, or a single file."""

    path: Path  # absolute, as the user gave it (not resolved, so relative names stay readable)
    prefix: str  # where its outputs go below OUT; "" for a single PATH

    @property
    def is_file(self) -> bool:
        return not self.path.is_dir()


def resolve_roots(paths: Iterable[str | Path], out: str | Path) -> list[InputRoot]:
    """Check the PATHs and OUT, and give each PATH its place below OUT.

    Raises InputError for a missing PATH, or for OUT inside an input folder (the outputs would be
    fed back in as inputs on the next run).
    """
    absolute = [Path(os.path.abspath(p)) for p in paths]
    if not absolute:
        raise InputError("give at least one file or folder to process")
    for path in absolute:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
    _refuse_overlaps(absolute)
    out_real = Path(os.path.abspath(out)).resolve()
    for path in absolute:
        if path.is_dir() and is_inside(out_real, path.resolve()):
            raise InputError(f"OUT {out} is inside the input folder {path}; choose another -o")
    if len(absolute) == 1:
        return [InputRoot(absolute[0], "")]
    return [
        InputRoot(path, prefix)
        for path, prefix in zip(absolute, _unique_prefixes(absolute), strict=True)
    ]


def _refuse_overlaps(paths: list[Path]) -> None:
    """The same image must not be processed twice in one job: no PATH twice, none inside
    another PATH's folder."""
    real = [path.resolve() for path in paths]
    for index, path in enumerate(real):
        for other_index, other in enumerate(real):
            overlaps = path == other or (other.is_dir() and is_inside(path, other))
            if index != other_index and overlaps:
                if path == other and index > other_index:
                    continue  # reported once, from the first of the pair
                raise InputError(
                    f"{paths[index]} is also inside {paths[other_index]}; give one or the other"
                    if path != other
                    else f"{paths[index]} is given twice"
                )


def _unique_prefixes(paths: list[Path]) -> list[str]:
    """Each folder PATH's subfolder below OUT when several PATHs are given: its name, made
    unique. Files given directly go to the top of OUT, so they get no prefix."""
    seen: Counter = Counter()
    prefixes = []
    for path in paths:
        if not path.is_dir():
            prefixes.append("")
            continue
        name = path.name or "root"
        seen[name] += 1
        prefixes.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return prefixes


class InputWalk:
    """Iterates the images below a set of roots, counting what it ignores on the way."""

    def __init__(self, roots: list[InputRoot]):
        self.roots = roots
        self.ignored = 0
        #: Ignored files by kind (their extension, "hidden", or "no extension"), to say what a
        #: folder without images held.
        self.ignored_kinds: Counter = Counter()

    def _ignore(self, name: str) -> None:
        self.ignored += 1
        if name.startswith("."):
            self.ignored_kinds["hidden"] += 1
        else:
            self.ignored_kinds[Path(name).suffix.lower() or "no extension"] += 1

    def __iter__(self) -> Iterator[InputItem]:
        yield from self._direct_files([root.path for root in self.roots if root.is_file])
        for root in self.roots:
            if not root.is_file:
                yield from self._walk_folder(root)

    def _direct_files(self, paths: list[Path]) -> Iterator[InputItem]:
        """Files named on the command line: outputs at the top of OUT, names kept apart."""
        names = Counter(path.name for path in paths)
        for path, output in zip(paths, output_names([p.name for p in paths]), strict=True):
            source = path.name if names[path.name] == 1 else str(path)
            if path.name.startswith("."):
                error = HIDDEN_NAME  # named on purpose, so say why nothing came of it
            elif not is_image_name(path.name):
                error = NOT_AN_IMAGE_NAME
            else:
                error = None if path.resolve().is_file() else _not_a_file_reason(path)
            yield InputItem(str(path.parent), path.name, source, output, error)

    def _walk_folder(self, root: InputRoot) -> Iterator[InputItem]:
        """One folder at a time, with plain strings (rel_dir "" is the root): a flat folder of
        100,000 files holds its names in memory, never 100,000 path objects."""
        real_root = root.path.resolve()
        visited = {real_root}
        base = str(root.path)
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            try:
                with os.scandir(os.path.join(base, rel_dir)) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError as exc:
                yield self._item(root, rel_dir, "", f"cannot list folder: {exc.strerror}")
                continue
            images, subfolders = self._classify(entries, rel_dir, real_root, visited)
            del entries
            names = output_names([name for name, _ in images])
            for (name, error), out_name in zip(images, names, strict=True):
                yield self._item(root, rel_dir, name, error, out_name)
            stack.extend(reversed(subfolders))

    def finds_anything(self) -> bool:
        """Whether iterating would yield any item, stopping at the first one. Entries are
        classified one by one as the folder listing streams them, unsorted: a flat folder of
        100,000 files is not listed whole and sorted just to find that it holds an image."""
        if any(root.is_file for root in self.roots):
            return True
        for root in self.roots:
            real_root = root.path.resolve()
            visited = {real_root}
            stack = [""]
            while stack:
                rel_dir = stack.pop()
                try:
                    with os.scandir(os.path.join(str(root.path), rel_dir)) as listing:
                        for entry in listing:
                            images, subfolders = self._classify(
                                (entry,), rel_dir, real_root, visited
                            )
                            if images:
                                return True
                            stack.extend(subfolders)
                except OSError:
                    return True  # the walk yields a "cannot list folder" item for it
        return False

    def _classify(self, entries, rel_dir: str, real_root: Path, visited: set) -> tuple:
        """The images of one folder's sorted entries as (name, error), and its subfolders."""
        images = []
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                if entry.is_file():
                    self._ignore(entry.name)
                continue
            error = None
            if entry.is_symlink():
                target = Path(os.path.realpath(entry.path))
                if not is_inside(target, real_root):
                    if entry.is_dir() or is_image_name(entry.name):
                        images.append((entry.name, OUTSIDE_LINK))
                    else:
                        self._ignore(entry.name)
                    continue
            if entry.is_dir():
                real = Path(os.path.realpath(entry.path))
                if real not in visited:
                    visited.add(real)
                    subfolders.append(_joined(rel_dir, entry.name))
                continue
            if not is_image_name(entry.name):
                self._ignore(entry.name)
                continue
            if not entry.is_file():
                error = BROKEN_LINK if _is_broken_link(entry.path) else NOT_REGULAR
            images.append((entry.name, error))
        return images, subfolders

    @staticmethod
    def _item(root, rel_dir: str, name: str, error, out_name=None) -> InputItem:
        rel = _joined(rel_dir, name) or "."
        out_rel = _joined(rel_dir, out_name or name) or "."
        source = f"{root.prefix}/{rel}" if root.prefix else rel
        output = f"{root.prefix}/{out_rel}" if root.prefix else out_rel
        return InputItem(str(root.path), rel, source, output, error)


def _is_broken_link(path) -> bool:
    return os.path.islink(path) and not os.path.exists(path)


def _not_a_file_reason(path: Path) -> str:
    return BROKEN_LINK if _is_broken_link(path) else NOT_REGULAR


def describe_ignored(kinds: Counter) -> str:
    """``3 files ignored (.heic ×2, .txt ×1)``, most common kind first."""
    total = sum(kinds.values())
    listed = ", ".join(f"{kind} ×{count}" for kind, count in kinds.most_common())
    return f"{total} file{'s' if total != 1 else ''} ignored ({listed})" if total else "nothing"


def first_image(roots: list[InputRoot]) -> tuple[bool, InputWalk]:
    """Whether the roots hold any image, walking only until the first one is found; the walk
    is returned so that, when there is none, what it ignored can be reported."""
    walk = InputWalk(roots)
    return walk.finds_anything(), walk


def _joined(rel_dir: str, name: str) -> str:
    """``rel_dir/name`` as POSIX text; "" stands for the root."""
    if not rel_dir:
        return name
    return f"{rel_dir}/{name}" if name else rel_dir


def output_names(names: list[str]) -> list[str]:
    """Output PNG names for the image files of one folder, unique and deterministic.

    ``b.jpg`` becomes ``b.png``. When several files share a stem (``b.jpg`` and ``b.png``), each
    keeps its extension (``b.jpg.png``, ``b.png.png``) so neither overwrites the other. Names
    are compared case-insensitively (``B.jpg`` and ``b.png`` share a stem), because OUT may be on
    a file system where ``B.png`` and ``b.png`` are one file.
    """
    name_stems = [_stem(name) for name in names]
    stems = Counter(stem.casefold() for stem in name_stems)
    wanted = [
        (stem if stems[stem.casefold()] == 1 else name) + ".png"
        for name, stem in zip(names, name_stems, strict=True)
    ]
    taken: Counter = Counter()
    unique = []
    for name in wanted:
        taken[name.casefold()] += 1
        count = taken[name.casefold()]
        unique.append(name if count == 1 else f"{name[:-4]}~{count}.png")
    return unique


def _stem(name: str) -> str:
    """``Path(name).stem`` for a file name, at a tenth of the cost."""
    stem, suffix = os.path.splitext(name)
    return stem if suffix != "." else name
